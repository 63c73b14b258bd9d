"""CPU of one scan of the watchdog (accounting.sandbox_processes), with and without the
namespaces it keeps between scans, on this machine's processes as they are now.

    .venv/bin/python bench/watchdog_scan.py [--scans N] [--extra K]

The watchdog scans /proc five times a second for every running sandbox; its cost grows with
the host's processes (``--extra K`` starts K idle processes first, as a busy test suite or
grading machine has them). Prints the milliseconds of CPU per scan of each way and their ratio.
"""
import argparse
import os
import pathlib
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from autograder.worker.sandbox.accounting import pid_namespace, sandbox_processes  # noqa: E402


def per_scan_ms(scans, known):
    own = pid_namespace("self")
    started = time.process_time()
    for _ in range(scans):
        sandbox_processes([os.getpid()], own + 1, known)   # a namespace no process is in: all looked at
    return (time.process_time() - started) / scans * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=300)
    parser.add_argument("--extra", type=int, default=0, help="idle processes started first")
    args = parser.parse_args()
    idle = [subprocess.Popen(["sleep", "600"]) for _ in range(args.extra)]
    try:
        processes = sum(entry.isdigit() for entry in os.listdir("/proc"))
        every = [per_scan_ms(args.scans, None) for _ in range(2)]
        kept = [per_scan_ms(args.scans, {}) for _ in range(2)]
    finally:
        for process in idle:
            process.kill()
            process.wait()
    look_up, cached = min(every), min(kept)
    print(f"{processes} processes: {look_up:.2f} ms a scan reading every namespace, "
          f"{cached:.2f} ms keeping them (ratio {cached / look_up:.2f})")


if __name__ == "__main__":
    main()
