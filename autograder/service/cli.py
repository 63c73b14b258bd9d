"""``python -m autograder serve``: the service on uvicorn, or (``--issue-tokens``) personal links
for a roster written to ``OUT/tokens.csv`` and exit.

RUNS IN THE MAIN PROCESS. Checks everything it can before it starts: the policy file, the
database (one Russian line naming the cause), the sandbox.
"""
import csv
import importlib
import io
import logging
import os
import pathlib
import sys

from ..arguments import file_problem, folder_problem, port_problem
from ..classrun import database, roster as roster_file
from ..worker.sandbox import bwrap_available
from . import auth, policy as course_policy
from .storage import Store

log = logging.getLogger("autograder.service")


def database_url(args):
    if args.db_url:
        return database.canonical(args.db_url)
    out = pathlib.Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{out / 'service.db'}"


def public_url(args):
    return args.public_url or f"http://{args.host}:{args.port}"


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.chmod(path, 0o600)


def issue_tokens(args, store):
    """Tokens for the roster's students who have none (or all, with --reissue), and for the
    instructor if there is none (or with --instructor-link). Only hashes are kept."""
    out = pathlib.Path(args.out).resolve()
    base = public_url(args)
    names = roster_file.read(pathlib.Path(args.roster)) if args.roster else {}
    rows, kept = [], 0
    for sid, name in names.items():
        store.upsert_student(sid, name)
        if store.has_token("student", sid) and not args.reissue:
            kept += 1
            continue
        token = auth.new_token()
        store.add_token(auth.hashed(token), "student", sid, replace=True)
        student = store.student(sid)
        rows.append({"student_id": sid, "first_name": student["first_name"], "last_name": student["last_name"],
                     "email": student["email"], "link": auth.link(base, token)})
    if rows:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, ["student_id", "first_name", "last_name", "email", "link"])
        writer.writeheader()
        writer.writerows(rows)
        write_private(out / "tokens.csv", "\ufeff" + buffer.getvalue())
        print(f"персональные ссылки: {out / 'tokens.csv'} (новых: {len(rows)})")
    if kept:
        print(f"у {kept} студентов ссылки уже есть (хранятся только их хэши; --reissue выдаст новые)")
    if not names:
        print("нет --roster: студентам ссылки не выданы")
    if args.instructor_link or not store.has_token("instructor"):
        token = auth.new_token()
        store.add_token(auth.hashed(token), "instructor", None, replace=True)
        write_private(out / "instructor-link.txt", auth.link(base, token) + "\n")
        print(f"ссылка преподавателя: {out / 'instructor-link.txt'} (никому не пересылайте)")
    return 0


def load_grader(args, db_url):
    if args.grader:   # a stand-in behind the same interface (tests of the queue only)
        module, _, name = args.grader.partition(":")
        return getattr(importlib.import_module(module), name)(args.out)
    from .grading import BatchGrader
    gradebook_url = db_url if not db_url.startswith("sqlite") else ""
    return BatchGrader(args.out, gradebook_url, sandbox=not args.unsafe_no_sandbox,
                       cell_timeout=args.cell_timeout, jobs=args.jobs or os.cpu_count() or 1)


def main(args):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        rules = course_policy.load(args.policy)
    except course_policy.PolicyError as exc:
        print(f"ошибка: --policy: {exc}", file=sys.stderr)
        return 2
    problem = folder_problem(pathlib.Path(args.out)) or file_problem("--roster", args.roster)
    problem = problem or (args.roster and roster_file.problem(pathlib.Path(args.roster)))
    if not problem and not args.issue_tokens:
        problem = port_problem(args.host, args.port)
    if problem:
        print(f"ошибка: {problem}", file=sys.stderr)
        return 2
    url = database_url(args)
    if not url.startswith("sqlite"):
        problem = database.problem(url, "--db-url")
        if problem:
            print(f"ошибка: {problem}", file=sys.stderr)
            return 2
    store = Store(url)
    if args.issue_tokens:
        return issue_tokens(args, store)
    if not args.unsafe_no_sandbox and not args.grader:
        ok, why = bwrap_available()
        if not ok:
            print(f"Песочница bubblewrap недоступна: {why}. Установите bubblewrap (make setup) "
                  "или, понимая риск, добавьте --unsafe-no-sandbox.", file=sys.stderr)
            return 2
    import uvicorn
    from . import app as web
    from .queue import Dispatcher
    grader = load_grader(args, url)
    dispatcher = Dispatcher(store, grader, rules, args.jobs or os.cpu_count() or 1)
    if args.regrade:
        print(f"в очередь на перепроверку: {store.requeue_stale(grader.fingerprint)}")
    dispatcher.start()
    service = web.Service(store, dispatcher, rules, args.out, public_url(args))
    if not store.has_token("instructor"):
        print("ссылки преподавателя ещё нет: python -m autograder serve --issue-tokens --out "
              f"{args.out} [--roster ROSTER]", file=sys.stderr)
    print(f"сервис: {public_url(args)}/ (папка {pathlib.Path(args.out).resolve()}, база {database.shown(url)})",
          file=sys.stderr, flush=True)
    try:
        uvicorn.run(web.create(service), host=args.host, port=args.port, access_log=False, log_level="warning",
                    proxy_headers=True, forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
    finally:
        dispatcher.stop(timeout=120)
    return 0
