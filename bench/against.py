"""Seconds per student of this grader against an earlier commit's, in one run.

Usage: python bench/against.py REV [--students N] [--repeat K]

Checks REV out into a temporary git worktree and, for each version, builds a
class of N students from that version's own release and example class
(``make demo``: reference, untouched release, typical mistakes), so each grader
grades the notebooks it was made for. Grades with ``python -m autograder grade``
(sandboxed, as by default) from REV and from this checkout, alternating, K
times each; prints the median seconds per student of each and their ratio.
"""
import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

CLASS = """
import pathlib, shutil, sys
from autograder import demo
folder, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
example = demo.build_class(folder / "example")
kinds = sorted(example.iterdir())
for i in range(n):
    shutil.copytree(kinds[i % len(kinds)], folder / "students" / f"s{i:03d}")
"""


def environment(code_root):
    return dict(os.environ, PYTHONPATH=str(code_root),
                PATH=os.pathsep.join([str(pathlib.Path(sys.executable).parent), os.environ.get("PATH", "")]))


def make_class_at(code_root, folder, n):
    """N students made from ``code_root``'s own release and example class."""
    subprocess.run([sys.executable, "-c", CLASS, str(folder), str(n)], cwd=code_root,
                   env=environment(code_root), check=True, capture_output=True)
    return folder / "students"


def grade_once(code_root, students, out):
    """Wall seconds of one grading run with the grader in ``code_root``."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(students), "--out", str(out)],
                   cwd=code_root, env=environment(code_root), check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rev")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        old = tmp / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.rev], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            classes = {"old": make_class_at(old, tmp / "class-old", args.students),
                       "new": make_class_at(ROOT, tmp / "class-new", args.students)}
            times = {"old": [], "new": []}
            for _ in range(args.repeat):
                for version, code_root in (("old", old), ("new", ROOT)):
                    times[version].append(grade_once(code_root, classes[version], tmp / f"out-{version}"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
    n = args.students
    old_s, new_s = statistics.median(times["old"]) / n, statistics.median(times["new"]) / n
    print(f"{n} students, {args.repeat} alternating runs each, sandboxed")
    print(f"{args.rev}: {old_s:5.2f} s per student (runs: {', '.join(f'{t:.1f}' for t in times['old'])} s)")
    print(f"this checkout: {new_s:5.2f} s per student (runs: {', '.join(f'{t:.1f}' for t in times['new'])} s)")
    print(f"ratio (this / {args.rev}): {new_s / old_s:.3f}")


if __name__ == "__main__":
    main()
