"""Seconds per student: the local pool against a Dask cluster of two single-threaded workers.

Usage: python bench/dask_vs_pool.py [--students N] [--repeat R]

The same N synthetic students (copies of the ``make demo`` class) are graded,
sandboxed, by ``python -m autograder grade`` on this machine's cores
(``--jobs 2``) and with ``--dask`` on a cluster of this machine: a ``dask
scheduler`` and two ``dask worker --nthreads 1`` processes (the CLI, as the
README's recipe starts them). Runs alternate, so both see the same machine
state. Two kinds of Dask run: *cold*, on workers started just before it
(their imports, zygotes and reference outputs fall inside the timed run, as
on a cluster's first run), and *warm*, on workers that graded the previous
run. Times are the wall time of the whole command, set-up included. Then one
worker alone grades the class: its seconds per student are what one more
single-threaded worker process (one more core of another machine) adds.
"""
import argparse
import json
import os
import pathlib
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchmark import make_class  # noqa: E402

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
ENV = dict(os.environ, **ONE_THREAD)
WORKER_ENV = dict(ENV, DASK_DISTRIBUTED__WORKER__DAEMON="False")  # workers start grading processes
TASK_SECONDS = re.compile(r" за ([\d.]+) с\)$", re.M)  # a Dask task's own grading time (grade.py)


class Cluster:
    """``dask scheduler`` and ``workers`` × ``dask worker --nthreads 1``, each a process group."""

    def __init__(self, folder, workers):
        self.processes = []
        info = folder / "scheduler.json"
        info.unlink(missing_ok=True)
        self._start([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(info), "--idle-timeout", "1800"], folder)
        deadline = time.monotonic() + 120
        while not info.is_file() or "address" not in info.read_text():
            if time.monotonic() > deadline:
                raise RuntimeError("the scheduler did not start")
            time.sleep(0.2)
        time.sleep(0.2)
        self.address = json.loads(info.read_text())["address"]
        for i in range(workers):
            self._start([sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1",
                         "--nworkers", "1", "--no-dashboard", "--death-timeout", "60",
                         "--local-directory", str(folder / f"worker-{i}")], folder, WORKER_ENV)
        from distributed import Client
        with Client(self.address, timeout=60, set_as_default=False) as client:
            deadline = time.monotonic() + 180
            while len(client.nthreads()) < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("the workers did not start")
                time.sleep(0.5)

    def _start(self, command, folder, env=ENV):
        self.processes.append(subprocess.Popen(command, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               start_new_session=True))

    def stop(self):
        for process in reversed(self.processes):
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def time_grade(students, out, *options):
    """Wall seconds of the grade command, and the Dask tasks' own seconds (if any)."""
    command = [sys.executable, "-m", "autograder", "grade", str(students), "--out", str(out), *options]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return seconds, [float(s) for s in TASK_SECONDS.findall(done.stderr)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (median)")
    args = parser.parse_args()
    n = args.students
    load = os.getloadavg()[0]
    runs = {"local": [], "cold": [], "warm": []}
    tasks = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        students = make_class(tmp, n)
        for r in range(args.repeat):  # alternate, so every kind sees the same machine state
            runs["local"].append(time_grade(students, tmp / f"local-{r}", "--jobs", "2")[0])
            cluster = Cluster(tmp, 2)
            try:
                for kind in ("cold", "warm"):
                    seconds, own = time_grade(students, tmp / f"{kind}-{r}", "--dask", cluster.address)
                    runs[kind].append(seconds)
                    tasks += own
            finally:
                cluster.stop()
        cluster = Cluster(tmp, 1)
        try:
            time_grade(students, tmp / "alone-warmup", "--dask", cluster.address)  # imports, zygote
            alone, alone_tasks = time_grade(students, tmp / "alone", "--dask", cluster.address)
        finally:
            cluster.stop()
    median = {kind: statistics.median(times) for kind, times in runs.items()}
    print(f"students: {n}, cores: {os.cpu_count()} (wall time of the whole command, set-up included; "
          f"median of {args.repeat}, alternating); load average {load:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    for kind, times in runs.items():
        print(f"runs (s) {kind:5}: " + ", ".join(f"{t:.1f}" for t in times))
    print(f"local pool, --jobs 2:                  {median['local'] / n:5.2f} s per student")
    for kind in ("cold", "warm"):
        print(f"Dask, 2 workers × 1 thread, {kind} workers: {median[kind] / n:5.2f} s per student "
              f"({100 * (median[kind] / median['local'] - 1):+.1f} % against the local pool)")
    print(f"a Dask task's own grading time (2 workers on {os.cpu_count()} cores, main process beside them): "
          f"median {statistics.median(tasks):.2f} s")
    print(f"one worker alone (warm): {alone / n:.2f} s per student (whole command), "
          f"its tasks' median {statistics.median(alone_tasks):.2f} s: one more single-threaded worker "
          f"process adds about {3600 / statistics.median(alone_tasks):.0f} students an hour")


if __name__ == "__main__":
    main()
