"""Command line: ``python -m autograder grade|check|demo``."""
import argparse
import sys

import pathlib

from . import demo, selfcheck
from .classrun import grade, report
from .worker.sandbox import bwrap_available


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a folder or zip of submissions")
    g.add_argument("submissions")
    g.add_argument("--out", required=True)
    g.add_argument("--jobs", type=int, default=None, help="students graded at once (default: all cores)")
    g.add_argument("--cell-timeout", type=int, default=60, help="seconds per cell")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run student code without the bubblewrap sandbox")
    d = sub.add_parser("demo", help="grade an example class")
    d.add_argument("--out", default="build/demo/out")
    d.add_argument("--jobs", type=int, default=None)
    d.add_argument("--unsafe-no-sandbox", action="store_true")
    k = sub.add_parser("check", help="run your notebooks (nbval) and the diagnosis of each task")
    k.add_argument("notebooks", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "check":
        return selfcheck.main(args.notebooks)
    if args.command == "demo":
        submissions = demo.build_class(pathlib.Path(args.out).parent / "submissions")
        args.submissions, args.cell_timeout = submissions, 60
    sandbox = not args.unsafe_no_sandbox
    if sandbox:
        ok, why = bwrap_available()
        if not ok:
            print(f"Песочница bubblewrap недоступна: {why}.\n"
                  "Студенческий код выполнялся бы с вашими правами. Установите bubblewrap "
                  "(make setup делает это) или, понимая риск, добавьте --unsafe-no-sandbox.",
                  file=sys.stderr)
            return 2
    out = pathlib.Path(args.out)
    results, info = grade.grade_all(args.submissions, out, sandbox=sandbox, jobs=args.jobs,
                                    cell_timeout=args.cell_timeout)
    grade.print_table(results.values())
    page = report.write(out.resolve(), results, info)
    print(f"\nоценки: {out / 'grades.csv'}\nотзывы: {out / 'feedback'}\nотчёт: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
