"""CPU-seconds of the students' self-check (``gpt_selfcheck.diagnose``) per task.

Usage: python bench/diagnosis.py [--repeat N]

Diagnoses every body of tests/mutations.py (bugs and correct alternatives) and
the reference solutions, each as its notebook cell would define it, with one
torch thread, and prints per task the median and the largest CPU time of one
diagnosis (process time, so other work on the machine does not count), and the
first diagnosis of a fresh process (lazy imports included). The student path
runs the diagnosis of every earlier step when a notebook imports them.
"""
import argparse
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402

from autograder import course, diagnosis  # noqa: E402
from mutations import ALTERNATIVES, BUGS  # noqa: E402
from students import class_namespace, reference_bodies  # noqa: E402


def cpu_seconds(task, namespace):
    started = time.process_time()
    diagnosis.diagnose(task, namespace)
    return time.process_time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="diagnoses of each body")
    args = parser.parse_args()
    torch.set_num_threads(1)
    references = reference_bodies()
    first = cpu_seconds("head", class_namespace("head", references["head"]))
    bodies = [(task, body) for task, body, _ in BUGS.values()] + list(ALTERNATIVES.values())
    bodies += list(references.items())
    times = {task: [] for task in course.TASK_KEYS}
    for task, body in bodies:
        namespace = class_namespace(task, body)
        for _ in range(args.repeat):
            times[task].append(cpu_seconds(task, namespace))
    print(f"first diagnosis in a fresh process (Head, imports included): {first:.3f} CPU-s")
    print(f"{'task':<12} {'bodies':>6} {'median':>8} {'max':>8}  (CPU-seconds per diagnosis)")
    for task, values in times.items():
        print(f"{task:<12} {len(values) // args.repeat:>6} {statistics.median(values):>8.3f} {max(values):>8.3f}")
    total = sum(statistics.median(values) for values in times.values())
    print(f"all five tasks, medians added: {total:.3f} CPU-s")


if __name__ == "__main__":
    main()
