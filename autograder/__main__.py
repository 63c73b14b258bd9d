"""Command line: ``python -m autograder grade|check|demo``."""
import argparse
import sys

from . import grade


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
    args = parser.parse_args(argv)
    if args.command == "grade":
        sandbox = not args.unsafe_no_sandbox
        rows, _ = grade.grade_all(args.submissions, args.out, sandbox=False, jobs=args.jobs,
                                  cell_timeout=args.cell_timeout)
        grade.print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
