"""Where the test suite's CPU goes: every process's CPU, sampled from /proc while pytest runs.

    .venv/bin/python bench/suite_cpu.py [PYTEST ARGS ...]

With no arguments it runs what `make test` runs (``pytest -n 3 --dist loadgroup``). It
prints the machine's busy CPU-seconds and the wall time, the CPU by kind of process (a
grading command with everything it starts, kernels outside grading, the test processes,
Chromium, ...), the grading commands by the test that started them, and the tests that
took the most CPU with all they started, then the CPU by test file. A process that
lives less than a sampling period (0.2 s) is missed, so the kinds add up to a little less
than the machine's total. Run it on an otherwise idle machine.
"""
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from autograder.worker.sandbox.accounting import process_stats  # noqa: E402
TICK = os.sysconf("SC_CLK_TCK")
PERIOD_S = 0.2
# a grading command, or the fork server and kernel zygote of one run in a test's own process
GRADING = re.compile(r"-m autograder (grade|demo|serve|check)\b|'autograder\.worker|zygote_server\.py")
KINDS = [("kernel outside grading", re.compile(r"ipykernel")), ("Chromium", re.compile(r"chrom")),
         ("JupyterLab", re.compile(r"jupyter.*lab")), ("Dask", re.compile(r"dask|distributed|multiprocessing\.spawn")),
         ("PostgreSQL", re.compile(r"postgres"))]


# ------------------------------------------------------------------ in each test process
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Record when each test ran, and in which process (loaded with ``-p suite_cpu``)."""
    started = time.time()
    yield
    with open(os.environ["SUITE_CPU_TESTS"], "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": item.nodeid.split("@")[0], "pid": os.getpid(),
                            "start": started, "end": time.time()}) + "\n")


# ------------------------------------------------------------------ the sampler
def busy_ticks():
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6))   # user nice system irq softirq


class Sampler(threading.Thread):
    """Every process's CPU seconds, parent and command line, read every ``PERIOD_S``."""

    def __init__(self):
        super().__init__(daemon=True)
        self.processes, self.stop = {}, threading.Event()
        self._scan(first=True)

    def run(self):
        while not self.stop.wait(PERIOD_S):
            self._scan()
        self._scan()

    def _scan(self, first=False):
        for pid, comm, fields in process_stats():
            key = (pid, int(fields[19]))        # pid and start time: a pid may be reused
            cpu = (int(fields[11]) + int(fields[12])) / TICK
            seen = self.processes.get(key)
            now = time.time()
            if seen is None:
                seen = self.processes[key] = {"pid": pid, "ppid": int(fields[1]), "cmd": _command(pid, comm),
                                              "base": cpu if first else 0.0, "seen": now, "samples": []}
            used = cpu - seen["base"]
            if seen.get("cpu") != used:
                seen["samples"].append((now, used))
            seen["cpu"] = used


def _command(pid, comm):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = ""
    return command or "[" + comm.decode(errors="replace") + "]"


# ------------------------------------------------------------------ the breakdown
def _ancestry(processes):
    """A function giving a process's chain: itself, its parent, its parent's parent ... (at most
    64). A parent is the latest process of the parent pid seen by a second after the child."""
    by_pid = collections.defaultdict(list)
    for process in processes.values():
        by_pid[process["pid"]].append(process)

    def chain(process):
        found, node = [], process
        while node is not None and len(found) < 64:
            found.append(node)
            earlier = [p for p in by_pid.get(node["ppid"], []) if p["seen"] <= node["seen"] + 1]
            node = max(earlier, key=lambda p: p["seen"]) if earlier else None
        return found
    return chain


def breakdown(processes, tests):
    """(CPU by kind, CPU of the kind "other" by command, [(CPU, test) of each grading command])."""
    ancestry, test_pids = _ancestry(processes), {t["pid"] for t in tests}
    kinds, others, runs, tests_of = collections.Counter(), collections.Counter(), collections.defaultdict(float), {}
    for process in processes.values():
        chain = ancestry(process)
        run = next((p for p in reversed(chain) if GRADING.search(p["cmd"])), None)
        if run is not None:
            kinds["grading commands (all they start)"] += process["cpu"]
            runs[id(run)] += process["cpu"]
            tests_of[id(run)] = _test_of(chain, tests, test_pids, run["seen"])
        elif process["pid"] in test_pids:
            kinds["test processes"] += process["cpu"]
        else:
            kind = next((k for k, pattern in KINDS if pattern.search(process["cmd"])), "other")
            kinds[kind] += process["cpu"]
            if kind == "other":
                others[_short(process["cmd"])] += process["cpu"]
    return kinds, others, sorted(((cpu, tests_of[key]) for key, cpu in runs.items()), reverse=True)


def cpu_by_test(processes, tests):
    """{test: CPU-s}: its test process's own CPU while it ran, and all that process started
    while it ran, with everything they started (a module's fixture counts to its first test)."""
    ancestry, test_pids = _ancestry(processes), {t["pid"] for t in tests}
    totals = collections.Counter()
    for process in processes.values():
        if process["pid"] in test_pids:
            last = 0.0
            for when, cpu in process.get("samples", []):
                totals[_test_at(tests, process["pid"], when)] += cpu - last
                last = cpu
            continue
        chain = ancestry(process)
        at = next((i for i, p in enumerate(chain) if p["pid"] in test_pids), None)
        if at is not None:  # started by the test process as its child chain[at - 1]
            totals[_test_at(tests, chain[at]["pid"], chain[at - 1]["seen"])] += process["cpu"]
    return totals


def _test_at(tests, pid, when):
    """The test running in the process ``pid`` at ``when``; else one that ended less than a
    second before (the sampler sees a process up to a period late), never the next test's."""
    own = [t for t in tests if t["pid"] == pid]
    return next((t["id"] for t in own if t["start"] <= when <= t["end"]),
                next((t["id"] for t in own if t["start"] <= when <= t["end"] + 1), "(no test)"))


def _short(command):
    """The command line with its paths cut to their last part, at most 60 characters."""
    return " ".join(os.path.basename(w) if w.startswith("/") else w for w in command.split())[:60]


def _test_of(chain, tests, test_pids, when):
    """The test that was running, at ``when``, in the test process above ``chain``."""
    pid = next((p["pid"] for p in chain if p["pid"] in test_pids), None)
    return _test_at(tests, pid, when) if pid is not None else "(no test)"


def main(args):
    args = args or ["-n", "3", "--dist", "loadgroup"]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        tests_file = f.name
    env = dict(os.environ, SUITE_CPU_TESTS=tests_file,
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.abspath(__file__)), ROOT]),
               PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    sampler = Sampler()
    busy, started = busy_ticks(), time.time()
    sampler.start()
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "suite_cpu", *args], cwd=ROOT, env=env)
    sampler.stop.set()
    sampler.join()
    wall, machine = time.time() - started, (busy_ticks() - busy) / TICK
    with open(tests_file, encoding="utf-8") as f:
        tests = [json.loads(line) for line in f]
    os.unlink(tests_file)
    kinds, others, runs = breakdown(sampler.processes, tests)
    print(f"\npytest exit {done.returncode}: {len(tests)} tests, {wall:.0f} s, the machine busy "
          f"{machine:.0f} CPU-s (sampled: {sum(kinds.values()):.0f})")
    for kind, cpu in kinds.most_common():
        print(f"{cpu:8.1f}  {kind}")
    for command, cpu in others.most_common(8):
        print(f"{cpu:8.1f}    other: {command}")
    by_test = collections.defaultdict(list)
    for cpu, test in runs:
        by_test[test].append(cpu)
    print(f"\n{len(runs)} grading commands, by the test that started them (CPU-s each):")
    for test, cpus in sorted(by_test.items(), key=lambda kv: -sum(kv[1])):
        print(f"{sum(cpus):8.1f}  {test}  {', '.join(f'{c:.1f}' for c in cpus)}")
    print("\nThe 25 tests that took the most CPU (their process's own and all they started), CPU-s:")
    per_test = cpu_by_test(sampler.processes, tests)
    for test, cpu in per_test.most_common(25):
        print(f"{cpu:8.1f}  {test}")
    per_file = collections.Counter()
    for test, cpu in per_test.items():
        per_file[test.split("::")[0]] += cpu
    print("\nBy file (its tests' CPU with all they started), CPU-s:")
    for name, cpu in per_file.most_common():
        print(f"{cpu:8.1f}  {name}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
