"""The submission service's speed on this machine: upload-to-result time of a lone upload, and
the throughput of a burst (seconds per submission) next to the batch command's seconds per
student on the same submissions, in the same run.

Usage: python bench/service_benchmark.py [--students N] [--lone K] [--unsafe-no-sandbox]

The service runs as ``python -m autograder serve`` on loopback (the real grader, sandboxed as
by default, ``--jobs`` all cores). After one warm-up upload (reported, not counted), K lone
uploads are timed from the request to the moment the result can be read (polled every 0.1 s);
then N students upload at once and the burst is timed from the first request to the last
result. ``python -m autograder grade`` then grades the same N students (the whole command,
set-up included, as bench/benchmark.py measures it), and once more for no students, so its
fixed set-up (the course, the reference outputs) can be told from the cost per student; the
running service paid that set-up when it started. Students: copies of the example class
of ``make demo``.
"""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmark import make_class  # noqa: E402  (bench/benchmark.py: the same class)
from service_server import Server, call, issue, submit  # noqa: E402

POLICY = "attempts_per_day = 0\nattempts_total = 0\nuploads_per_minute = 0\nqueued_per_student = 50\n"


def files_of(folder):
    return [(p.name, p.read_bytes()) for p in sorted(folder.glob("*.ipynb"))]


def timed_upload(server, token, files):
    """Seconds from the upload's request to its readable result."""
    start = time.perf_counter()
    status, ack = submit(server.url, token, files)
    if status != 201:
        raise RuntimeError(f"upload refused: {ack}")
    while True:
        status, state = call(f"{server.url}/api/submissions/{ack['id']}", token)
        if status == 200 and state.get("finished"):
            return time.perf_counter() - start, state
        if time.perf_counter() - start > 600:
            raise TimeoutError("no result in 600 s")
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--lone", type=int, default=3)
    parser.add_argument("--unsafe-no-sandbox", action="store_true")
    args = parser.parse_args()
    n = args.students
    sandbox = [] if not args.unsafe_no_sandbox else ["--unsafe-no-sandbox"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        students = make_class(tmp, n)
        lone_ids = [f"lone{i}" for i in range(args.lone + 1)]
        roster = {sid: ("Студент", sid) for sid in [p.name for p in sorted(students.iterdir())] + lone_ids}
        tokens, _ = issue(tmp / "out", roster)
        (tmp / "policy.toml").write_text(POLICY)
        reference = files_of(students / "s000")   # kinds sorted: s000 is a copy of the first kind
        with Server(tmp / "out", "--policy", str(tmp / "policy.toml"), *sandbox,
                    jobs=os.cpu_count() or 1) as server:
            cold, _ = timed_upload(server, tokens[lone_ids[0]], reference)
            lone = [timed_upload(server, tokens[sid], reference)[0] for sid in lone_ids[1:]]
            finished = {}
            start = time.perf_counter()

            def one(folder):
                finished[folder.name] = timed_upload(server, tokens[folder.name], files_of(folder))[0]

            threads = [threading.Thread(target=one, args=(folder,)) for folder in sorted(students.iterdir())]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            burst = time.perf_counter() - start
        if len(finished) != n:
            raise RuntimeError(f"only {len(finished)} of {n} burst uploads finished")
        def grade_command(folder, out):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out),
                            *sandbox], cwd=ROOT, check=True, capture_output=True)
            return time.perf_counter() - start

        batch = grade_command(students, tmp / "batch")
        (tmp / "nobody").mkdir()
        setup = grade_command(tmp / "nobody", tmp / "batch-nobody")
    print(f"cores: {os.cpu_count()}, students in the burst: {n}, sandbox: {'no' if sandbox else 'yes'}")
    print(f"lone upload to result (warm service): median {statistics.median(lone):.1f} s "
          f"(runs: {', '.join(f'{t:.1f}' for t in lone)}); first after start (cold): {cold:.1f} s")
    print(f"burst of {n}: {burst:.1f} s = {burst / n:.2f} s per submission "
          f"(upload to result: median {statistics.median(finished.values()):.1f} s, "
          f"longest {max(finished.values()):.1f} s)")
    print(f"python -m autograder grade, same {n} students: {batch:.1f} s = {batch / n:.2f} s per student "
          "(whole command, set-up included)")
    print(f"the same command for no students (its fixed set-up): {setup:.1f} s; per student beyond it: "
          f"{(batch - setup) / n:.2f} s")
    print(f"service burst / batch command: {burst / batch:.2f} (whole command), "
          f"{burst / max(batch - setup, 1e-9):.2f} (beyond its set-up)")


if __name__ == "__main__":
    main()
