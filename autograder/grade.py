"""``python -m autograder grade``: submissions in, grades, feedback and report out."""
import concurrent.futures
import csv
import hashlib
import json
import multiprocessing
import os
import pathlib
import secrets
import shutil
import stat
import sys
import tempfile
import time

import nbformat
from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import SaveAutoGrades
from traitlets.config.loader import PyFileConfigLoader

from . import checks, collect, repair, worker
from .execute import DISK_LIMIT, MEMORY_LIMIT, reference_results
from .notebooks import NOTEBOOK_OF_TASK, NOTEBOOKS

ROOT = pathlib.Path(__file__).resolve().parents[1]
ASSIGNMENT = "gpt"
COLUMNS = ["student_id", "head", "multihead", "feedforward", "block", "gpt_model", "total", "status"]
MAX_NOTEBOOK_BYTES = repair.MAX_BYTES
COURSE_CONFIG = """\
c = get_config()
c.CourseDirectory.course_id = "gpt-from-scratch"
c.CourseDirectory.db_assignments = [dict(name="gpt")]
c.ClearSolutions.code_stub = {"python": "# НАЧАЛО ВАШЕГО РЕШЕНИЯ\\nraise NotImplementedError() # удалить эту строку в процессе решения\\n# КОНЕЦ ВАШЕГО РЕШЕНИЯ"}
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


def generate_assignment(course):
    """``nbgrader generate_assignment`` with the course's config, in this process."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    result = api.generate_assignment(ASSIGNMENT, force=True)
    if not result.get("success"):
        raise RuntimeError("nbgrader generate_assignment failed:\n" + result.get("error", ""))


def prepare_course(out):
    """OUT/course: an nbgrader course with the assignment and a gradebook."""
    course = out / "course"
    if not (course / "gradebook.db").is_file():
        course.mkdir(parents=True, exist_ok=True)
        shutil.copytree(ROOT / "source", course / "source", dirs_exist_ok=True)
        (course / "nbgrader_config.py").write_text(COURSE_CONFIG, encoding="utf-8")
        generate_assignment(course)
    secret_file = out / "secret.txt"
    if not secret_file.is_file():
        secret_file.write_text(secrets.token_hex(16))
        secret_file.chmod(0o600)
    secret = secret_file.read_text().strip()
    for task in checks.TASKS:  # computed once, read by every worker
        reference_results(task, secret, course / "reference")
    for task in checks.DEPENDENT_TASKS:
        reference_results(task, secret, course / "reference", own_deps=True)
    return course, secret


def normalize(path):
    """(notebook, problem): a v4 notebook without outputs, or the reason it is unusable."""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return None, "over 100 MB"
        return repair.load(path.read_bytes()), None
    except repair.InvalidNotebook as exc:
        return None, exc.reason
    except OSError as exc:
        return None, f"unreadable: {exc.strerror}"


def stage(student, course):
    """Copy a student's notebooks into submitted/; return problems and a hash."""
    folder = course / "submitted" / student.student_id / ASSIGNMENT
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    problems = list(student.notes)
    status = []
    digest = hashlib.sha256()
    release = course / "release" / ASSIGNMENT
    for name in NOTEBOOKS:
        path = student.notebooks.get(name)
        nb, problem = (None, None) if path is None else normalize(path)
        if path is None:
            status.append(f"missing {name}")
        elif problem:
            status.append(f"invalid notebook {name}: {problem}")
        if nb is None:
            nb = nbformat.read(str(release / f"{name}.ipynb"), as_version=4)
        else:
            repaired = repair.restore(nb, nbformat.read(str(release / f"{name}.ipynb"), as_version=4))
            if repaired:
                status.append(f"repaired {name}: " + ", ".join(repaired))
        digest.update(name.encode() + (path.read_bytes() if path and not problem else b"release"))
        text = nbformat.writes(nb)
        (folder / f"{name}.ipynb").write_text(text, encoding="utf-8")
    for extra in release.iterdir():
        if extra.suffix != ".ipynb":
            shutil.copy(extra, folder / extra.name)
    return status, problems, digest.hexdigest()


def kernel_environment():
    """Environment of the grading workers and the kernels they start."""
    return {"OMP_NUM_THREADS": "1", "GPT_COURSE_DATA": str(ROOT / "data" / "input.txt"),
            "GPT_MAX_ITERS": "1", "MPLBACKEND": "Agg"}


def stage_work(course, student_id):
    """A private nbgrader course for one student (nbgrader #174)."""
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"grade-{student_id}-", dir=course / "work"))
    shutil.copy(course / "gradebook.db", work / "gradebook.db")
    shutil.copy(course / "nbgrader_config.py", work / "nbgrader_config.py")
    shutil.copytree(course / "source", work / "source")
    shutil.copytree(course / "submitted" / student_id, work / "submitted" / student_id)
    return work


def copy_regular_file(src, folder):
    """Copy ``src`` into ``folder`` if it is a regular file, never through a link.

    The kernel could write into the folders nbgrader works in: only the
    notebooks and feedback pages nbgrader wrote come back, nothing the student
    planted beside them (links, big files).
    """
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return False
        with open(folder / src.name, "wb") as g:
            shutil.copyfileobj(f, g)
    return True


def collect_work(course, work, student_id):
    """Bring results back from a student's private course; return verdicts."""
    verdict_file = work / "verdicts.json"
    verdicts = json.loads(verdict_file.read_text(encoding="utf-8")) if verdict_file.is_file() else {}
    for kind, suffix in (("autograded", ".ipynb"), ("feedback", ".html")):
        dst = course / kind / student_id / ASSIGNMENT
        shutil.rmtree(dst.parent, ignore_errors=True)
        dst.mkdir(parents=True)
        for name in NOTEBOOKS:
            copy_regular_file(work / kind / student_id / ASSIGNMENT / f"{name}{suffix}", dst)
    shutil.rmtree(work, ignore_errors=True)
    return verdicts


def merge_scores(course, student_id):
    """Record the autograded notebooks' scores in the course gradebook."""
    url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(url) as gb:
        gb.update_or_create_student(student_id)
        gb.update_or_create_submission(ASSIGNMENT, student_id)
    scores = {}
    for task, name in NOTEBOOK_OF_TASK.items():
        path = course / "autograded" / student_id / ASSIGNMENT / f"{name}.ipynb"
        if not path.is_file():
            continue
        nb = nbformat.read(str(path), as_version=4)
        resources = {"nbgrader": {"notebook": name, "assignment": ASSIGNMENT,
                                  "student": student_id, "db_url": url}}
        SaveAutoGrades().preprocess(nb, resources)
    with Gradebook(url) as gb:
        for task, name in NOTEBOOK_OF_TASK.items():
            try:
                scores[task] = gb.find_grade(f"{task}_tests", name, ASSIGNMENT, student_id).score
            except Exception:
                scores[task] = 0.0
    return scores


def timeouts(course, student_id):
    found = []
    for name in NOTEBOOK_OF_TASK.values():
        path = course / "autograded" / student_id / ASSIGNMENT / f"{name}.ipynb"
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
        if "CellTimeoutError" in text:
            found.append(f"timeout in {name}")
        if MEMORY_LIMIT in text:
            found.append(f"memory limit in {name}")
        elif DISK_LIMIT in text:
            found.append(f"disk limit in {name}")
        elif "DeadKernelError" in text:
            found.append(f"kernel died in {name}")
    return found


BATCH_PER_WORKER = 20   # a fresh pool per batch keeps workers short-lived


def run_pool(todo, works, secret, cell_timeout, sandbox, course, jobs):
    """Yield (student, problem or None) as workers finish.

    Workers are recycled by starting a new pool every ``jobs * BATCH_PER_WORKER``
    students (``max_tasks_per_child`` can hang: CPython gh-115634). A student whose
    worker crashed is retried once in a fresh pool, so one crash costs no one else.
    """
    context = multiprocessing.get_context("spawn")
    queue, attempts = list(todo), dict.fromkeys(todo, 0)
    while queue:
        batch, queue = queue[:jobs * BATCH_PER_WORKER], queue[jobs * BATCH_PER_WORKER:]
        retry = []
        with concurrent.futures.ProcessPoolExecutor(
                jobs, mp_context=context, initializer=worker.init_pool,
                initargs=(kernel_environment(),)) as pool:
            futures = {pool.submit(worker.grade_student, str(works[sid]), sid, secret, cell_timeout,
                                   sandbox, str(course / "reference")): sid for sid in batch}
            for future in concurrent.futures.as_completed(futures):
                sid = futures[future]
                attempts[sid] += 1
                try:
                    ok, _ = future.result()
                    yield sid, None if ok else "grading error"
                except concurrent.futures.process.BrokenProcessPool:
                    if attempts[sid] < 2:
                        retry.append(sid)
                    else:
                        yield sid, "grading error (worker crashed)"
                except Exception as exc:  # a failed worker costs only this student
                    yield sid, f"grading error ({type(exc).__name__})"
        queue = retry + queue


def grade_all(submissions, out, sandbox=True, jobs=None, cell_timeout=60):
    """Grade every student; return the rows of grades.csv."""
    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    course, secret = prepare_course(out)
    (course / "work").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(submissions)
        if source.is_file():
            source = collect.extract(source, pathlib.Path(tmp) / "x")
        students = collect.collect(source)
        state_file = out / "state.json"
        state = json.loads(state_file.read_text()) if state_file.is_file() else {}
        todo, staged = [], {}
        for sid, student in students.items():
            status, notes, digest = stage(student, course)
            staged[sid] = (status, notes)
            if state.get(sid, {}).get("digest") != digest:
                todo.append(sid)
                state[sid] = {"digest": digest}
        log(f"студентов: {len(students)}, проверяется заново: {len(todo)}")
        jobs = min(jobs or os.cpu_count() or 1, max(len(todo), 1))
        started = time.time()
        works = {sid: stage_work(course, sid) for sid in todo}
        done = 0
        for sid, problem in run_pool(todo, works, secret, cell_timeout, sandbox, course, jobs):
            done += 1
            verdicts = collect_work(course, works[sid], sid)
            scores = merge_scores(course, sid)
            status = staged[sid][0] + timeouts(course, sid) + ([problem] if problem else [])
            state[sid].update(scores=scores, verdicts=verdicts, status=status, notes=staged[sid][1])
            log(f"[{done}/{len(todo)}] {sid}: {sum(scores.values()):g}/10 "
                f"({time.time() - started:.0f} с)")
        state_file.write_text(json.dumps(state, ensure_ascii=False, indent=1), encoding="utf-8")
    rows = []
    for sid in students:
        entry = state[sid]
        scores = entry["scores"]
        row = {"student_id": sid, **{t: f"{scores.get(t, 0):g}" for t in checks.TASKS}}
        row["total"] = f"{sum(scores.get(t, 0) for t in checks.TASKS):g}"
        row["status"] = "; ".join(entry["status"]) or "ok"
        rows.append(row)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    feedback = out / "feedback"
    for sid in students:
        src = course / "feedback" / sid / ASSIGNMENT
        if src.is_dir():
            shutil.rmtree(feedback / sid, ignore_errors=True)
            shutil.copytree(src, feedback / sid)
    shutil.copy(course / "gradebook.db", out / "gradebook.db")
    return rows, {sid: state[sid] for sid in students}


def print_table(rows):
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) if rows else len(c) for c in COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS))
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in COLUMNS))
