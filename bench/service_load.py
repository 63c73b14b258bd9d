"""The service's load test on both databases: 100 uploads from 30 students in bursts, then 100
more with a SIGKILL of the service midway and a restart (tests/test_service_load.py; make test
runs the SQLite half, this script adds the throw-away PostgreSQL).

Usage: python bench/service_load.py
"""
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import test_service_load  # noqa: E402


def main():
    for name, run in (("SQLite", test_service_load.run_load), ("PostgreSQL", test_service_load.run_on_postgresql)):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            again = run(pathlib.Path(tmp))
            print(f"{name}: 200 uploads from 30 students, SIGKILL and restart midway: every acknowledged "
                  f"upload graded and recorded once, none lost ({again} interrupted gradings redone), "
                  f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
