"""Seconds per student: ``python -m autograder grade`` vs stock ``nbgrader autograde``.

Usage: python bench/benchmark.py [--students N] [--no-sandbox]

Both grade the same N synthetic students (copies of the example class of
``make demo``: reference, untouched release and typical mistakes). Stock
nbgrader runs every notebook in the student's kernel with the in-kernel hidden
checks (``autograder.hidden``) and training cut to one step, one student after
another, as ``nbgrader autograde`` does.
"""
import argparse
import os
import pathlib
import shutil
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
               GPT_COURSE_DATA=str(ROOT / "data" / "input.txt"), MPLBACKEND="Agg")
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
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        students = make_class(tmp, args.students)
        ours = time_ours(students, tmp / "ours", not args.no_sandbox)
        stock = time_stock(students, tmp / "stock")
    n = args.students
    print(f"students: {n}, cores: {os.cpu_count()}, sandbox: {not args.no_sandbox}")
    print(f"python -m autograder grade: {ours:7.1f} s  = {ours / n:5.2f} s per student")
    print(f"nbgrader autograde (stock): {stock:7.1f} s  = {stock / n:5.2f} s per student")
    print(f"ratio stock / ours: {stock / ours:.2f}x")


if __name__ == "__main__":
    main()
