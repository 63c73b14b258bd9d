"""Seconds per student: ``python -m autograder grade`` vs stock ``nbgrader autograde``.

Usage: python bench/benchmark.py [--students N] [--no-stock]

Our command runs twice (sandboxed, as by default, and with
``--unsafe-no-sandbox``) so the sandbox's cost is measured in the same run.
All grade the same N synthetic students (copies of the example class of
``make demo``: reference, untouched release and typical mistakes). Stock
nbgrader runs every notebook in the student's kernel with the in-kernel hidden
checks (``autograder.hidden``) and training cut to one step, one student after
another, as ``nbgrader autograde`` does.
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
sys.path.insert(0, str(ROOT))

from autograder import demo  # noqa: E402


def make_class(folder, n):
    example = demo.build_class(folder / "example")
    kinds = sorted(p for p in example.iterdir())
    students = folder / "students"
    for i in range(n):
        shutil.copytree(kinds[i % len(kinds)], students / f"s{i:03d}")
    return students


def time_ours(students, out, sandbox):
    command = [sys.executable, "-m", "autograder", "grade", str(students), "--out", str(out)]
    if not sandbox:
        command.append("--unsafe-no-sandbox")
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def time_stock(students, course):
    shutil.copytree(ROOT / "source", course / "source")
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
    env = dict(os.environ, PYTHONPATH=str(ROOT), GPT_MAX_ITERS="1",
               GPT_COURSE_DATA=str(ROOT / "source" / "gpt" / "data" / "input.txt"), MPLBACKEND="Agg")
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run(nbgrader + ["generate_assignment", "gpt", "--force"], cwd=course, env=env,
                   check=True, capture_output=True)
    for student in students.iterdir():
        shutil.copytree(student, course / "submitted" / student.name / "gpt")
    start = time.perf_counter()
    subprocess.run(nbgrader + ["autograde", "gpt", "--force", "--create"], cwd=course, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2, help="runs of our command per mode (median)")
    parser.add_argument("--no-stock", action="store_true", help="skip stock nbgrader (slowest)")
    args = parser.parse_args()
    n = args.students
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        students = make_class(tmp, n)
        runs = {True: [], False: []}
        for r in range(args.repeat):  # alternate, so both see the same machine state
            for sandbox in (True, False):
                runs[sandbox].append(time_ours(students, tmp / f"ours_{sandbox}_{r}", sandbox))
        sandboxed, plain = statistics.median(runs[True]), statistics.median(runs[False])
        stock = None if args.no_stock else time_stock(students, tmp / "stock")
    print(f"students: {n}, cores: {os.cpu_count()} (wall time of the whole command, set-up included; "
          f"median of {args.repeat})")
    print("runs (s): sandbox " + ", ".join(f"{t:.1f}" for t in runs[True])
          + "; no sandbox " + ", ".join(f"{t:.1f}" for t in runs[False]))
    print(f"python -m autograder grade (sandbox):         {sandboxed:7.1f} s = {sandboxed / n:5.2f} s per student")
    print(f"python -m autograder grade --unsafe-no-sandbox: {plain:5.1f} s = {plain / n:5.2f} s per student")
    print(f"sandbox overhead: {100 * (sandboxed / plain - 1):+.1f} %")
    if stock is not None:
        print(f"nbgrader autograde (stock, one by one):       {stock:7.1f} s = {stock / n:5.2f} s per student")
        print(f"speed-up over stock: {stock / sandboxed:.2f}x (sandboxed), {stock / plain:.2f}x (no sandbox)")


if __name__ == "__main__":
    main()
