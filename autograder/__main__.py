"""Command line: ``python -m autograder grade|check|demo|serve``."""
import argparse
import os
import signal
import sys
import zipfile

import pathlib

INTERRUPTED = "\nпрервано (Ctrl+C)"


def _interrupted_while_loading(signum, frame):
    """Ctrl+C while the command still imports its modules (seconds): nothing has begun."""
    print(INTERRUPTED, file=sys.stderr, flush=True)
    os._exit(130)


if __name__ == "__main__":  # the command, not a test importing main: its own line, no traceback
    signal.signal(signal.SIGINT, _interrupted_while_loading)

# One BLAS thread here, as in the grading workers and kernels: numpy's OpenBLAS starts a thread per
# core when imported, and only a process with one thread forks its grading workers (classrun/pool.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from . import demo, selfcheck  # noqa: E402 (after the thread setting: they import numpy)
from .arguments import file_problem, out_problem, positive  # noqa: E402
from .classrun import cluster, collect, database, gradebook, grade, moodle, report, roster  # noqa: E402
from .worker.sandbox import bwrap_available  # noqa: E402


def input_problem(submissions, roster_file=None, worksheet=None, out=None):
    """Why the grade command cannot read its inputs or write OUT (in Russian), or None; checked
    before any work."""
    path = pathlib.Path(submissions)
    if not path.exists():
        return f"нет такой папки или архива с работами: {path}"
    if path.is_file() and not zipfile.is_zipfile(path):
        return f"{path}: не папка и не zip-архив с работами"
    problem = collect.archive_problem(path) if path.is_file() else None
    if problem:
        return problem
    problem = file_problem("--roster", roster_file) or file_problem("--moodle-worksheet", worksheet)
    problem = problem or (roster_file and roster.problem(pathlib.Path(roster_file)))
    problem = problem or (worksheet and moodle.worksheet_problem(pathlib.Path(worksheet)))
    if problem:
        return problem
    return out_problem(path, pathlib.Path(out)) if out is not None else None


def no_work_problem(submissions):
    """Why a folder of submissions holds nobody's work (in Russian), or None; checked after the
    options and the gradebook's database and cluster, before any work."""
    path = pathlib.Path(submissions)
    if path.is_dir() and not collect.collect(path):
        archives = sorted(p.name for p in path.glob("*.zip"))
        return f"в папке {path} нет работ: ни папок студентов, ни ноутбуков (.ipynb)" + (
            f"; в ней есть архив {archives[0]}: укажите команде его" if archives else "")
    return None


def add_serve_arguments(parser):
    from .service.options import add_arguments  # the service itself loads on use
    add_arguments(parser)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m autograder")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade a folder or zip of submissions")
    g.add_argument("submissions")
    g.add_argument("--out", required=True)
    g.add_argument("--jobs", type=positive(int), default=None, help="students graded at once (default: all cores)")
    g.add_argument("--cell-timeout", type=positive(int), default=60, help="seconds per cell")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run student code without the bubblewrap sandbox")
    g.add_argument("--roster", help="CSV with id, first_name, last_name, email (or Moodle's participants export)")
    g.add_argument("--db-url", default="",
                   help="SQLAlchemy URL of the course gradebook, e.g. postgresql://user:password@host/db "
                        "(default: c.CourseDirectory.db_url of nbgrader_config.py, else OUT/course/gradebook.db)")
    g.add_argument("--moodle-worksheet", help="Moodle's grading worksheet CSV to fill in (OUT/moodle_grades.csv)")
    g.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="grade on the Dask cluster whose scheduler is at ADDRESS, e.g. tcp://head:8786 "
                        "(default: c.Autograder.dask of nbgrader_config.py, else this machine's cores)")
    g.add_argument("--no-dask", action="store_true", help="grade on this machine even if nbgrader_config.py names a cluster")
    g.add_argument("--dask-wait", type=positive(float), default=None, metavar="SECONDS",
                   help="how long a Dask run waits while no worker is admitted (default 600)")
    d = sub.add_parser("demo", help="grade an example class")
    d.add_argument("--out", default="build/demo/out")
    d.add_argument("--jobs", type=positive(int), default=None)
    d.add_argument("--unsafe-no-sandbox", action="store_true")
    k = sub.add_parser("check", help="run your notebooks (nbval) and the diagnosis of each task")
    k.add_argument("notebooks", nargs="+")
    s = sub.add_parser("serve", help="the submission service (web), or --issue-tokens")
    add_serve_arguments(s)
    args = parser.parse_args(argv)
    if args.command == "serve":
        from .service import cli as service_cli
        return service_cli.main(args)
    if args.command == "check":
        return selfcheck.main(args.notebooks)
    if args.command == "demo":
        out = pathlib.Path(args.out)
        problem = out_problem(out.parent / "submissions", out)   # the example class goes beside OUT
        if problem:
            print(f"ошибка: {problem}", file=sys.stderr)
            return 2
        submissions = demo.build_class(out.parent / "submissions")
        args.submissions, args.cell_timeout = submissions, 60
        args.roster = args.db_url = args.moodle_worksheet = args.dask = args.dask_wait = None
        args.no_dask = True
    problem = input_problem(args.submissions, args.roster, args.moodle_worksheet, args.out)
    db_url, db_source = args.db_url, "--db-url"
    if not db_url:
        db_url, db_source = gradebook.configured_db_url(), "c.CourseDirectory.db_url (nbgrader_config.py)"
    db_url = database.canonical(db_url) if db_url else ""
    if not problem and db_url:
        problem = database.problem(db_url, db_source)
    dask = "" if args.no_dask else (args.dask if args.dask is not None else gradebook.configured_dask())
    if not problem and dask:
        problem = cluster.problem(dask)
        if args.jobs:
            print("--jobs не действует с --dask: студентов проверяют рабочие Dask", file=sys.stderr)
    problem = problem or no_work_problem(args.submissions)
    if problem:
        print(f"ошибка: {problem}", file=sys.stderr)
        return 2
    sandbox = not args.unsafe_no_sandbox
    if sandbox and not dask:  # a Dask run's kernels start on its workers, which are checked there
        ok, why = bwrap_available()
        if not ok:
            print(f"Песочница bubblewrap недоступна: {why}.\n"
                  "Студенческий код выполнялся бы с вашими правами. Установите bubblewrap "
                  "(make setup делает это) или, понимая риск, добавьте --unsafe-no-sandbox.",
                  file=sys.stderr)
            return 2
    out = pathlib.Path(args.out)
    names = roster.read(pathlib.Path(args.roster)) if args.roster else None
    try:
        results, info = grade.grade_all(args.submissions, out, sandbox=sandbox, jobs=args.jobs,
                                        cell_timeout=args.cell_timeout, db_url=db_url, roster=names,
                                        dask=dask, dask_wait=args.dask_wait)
    except cluster.ClusterProblem as exc:
        print(f"ошибка: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nпрервано: проверенные студенты сохранены; та же команда проверит только остальных",
              file=sys.stderr)
        return 130
    grade.print_table(results.values())
    page = report.write(out.resolve(), results, info)
    worksheet = pathlib.Path(args.moodle_worksheet) if args.moodle_worksheet else None
    sheet, filled, left_out, held = moodle.write(out, results, worksheet)
    if worksheet and left_out:
        print(f"нет в листе оценок Moodle: {', '.join(left_out)}", file=sys.stderr)
    if held:
        print(f"ошибка проверки, оценка не выставлена (запустите grade ещё раз; причина — в отчёте): "
              f"{', '.join(held)}", file=sys.stderr)
    moodle_line = f"для Moodle: {sheet} (студентов: {len(filled)})\n" if worksheet or filled else ""
    print(f"\nоценки: {out / 'grades.csv'}\nотзывы: {out / 'feedback'}\n{moodle_line}отчёт: {page}")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before or after grading (during it, grade_all's own line)
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
