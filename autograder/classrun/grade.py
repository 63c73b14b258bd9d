"""``python -m autograder grade``: submissions in; grades, feedback and a record per student out.

RUNS IN THE MAIN PROCESS: collect the export, prepare the course, stage each
student, grade the changed ones with the run's executor (the local worker pool,
or a Dask cluster), merge each outcome into the course and its gradebook as it
comes, and write ``grades.csv``, ``state.json`` (the result records) and the
feedback pages. Every number shown anywhere comes from the result records.
"""
import contextlib
import csv
import datetime
import json
import os
import pathlib
import secrets
import shutil
import sys
import tempfile
import time

import torch

from ..checks import cases as checks_cases, reference
from ..course import ASSIGNMENT, CSV_COLUMNS, NOTEBOOKS, TASK_KEYS, TASKS, TOTAL_POINTS
from ..nbconfig import venv_on_path
from ..results import RunInfo, StudentResult
from . import collect, executor, fingerprint, gradebook, interruption, outcome, staging

STATE_FILE = "state.json"
JOURNAL_FILE = "state.partial.jsonl"  # students merged by a run that has not finished


def log(message):
    print(message, file=sys.stderr, flush=True)


def read_secret(out):
    secret_file = out / "secret.txt"
    if not secret_file.is_file():
        secret_file.write_text(secrets.token_hex(16))
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def cache_references(course, secret, grader_fingerprint):
    """Reference outputs of every task, computed once, read by every worker.

    On one thread: the cases are small, and torch's second thread only spins (twice the CPU
    seconds for the same outputs, measured); the workers are forked already (``grade_all``).
    """
    torch.set_num_threads(1)
    seed = checks_cases.case_seed(secret)
    key = reference.cache_key(seed, grader_fingerprint)
    for spec in TASKS:
        for own_deps in ((False, True) if spec.depends_on else (False,)):
            reference.cached_outputs(spec.key, checks_cases.make_cases(spec.key, seed, own_deps),
                                     course / "reference", key)


def read_state(out, run_fingerprint):
    """Earlier results of this grader and course: {student id: StudentResult} (see ``reusable``).

    ``state.json`` of the last finished run, then the students that a run which did not finish
    (interrupted, or stopped for want of workers) merged before it stopped (``record_progress``).
    """
    path = out / STATE_FILE
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if data.get("fingerprint", run_fingerprint) != run_fingerprint:
        if data.get("students"):
            log("проверяющий код или курс изменились: все работы проверяются заново")
        data = {}
    earlier = {sid: StudentResult.from_json(entry) for sid, entry in data.get("students", {}).items()}
    journal = out / JOURNAL_FILE
    if journal.is_file():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                if entry["fingerprint"] == run_fingerprint:
                    result = StudentResult.from_json(entry["student"])
                    earlier[result.student_id] = result
            except (ValueError, KeyError, TypeError):  # a line cut short when the run stopped
                continue
    return earlier


def reusable(earlier, sid, digest):
    """True when ``earlier`` holds a result for the same submission whose grading did not fail."""
    result = earlier.get(sid)
    return result is not None and result.digest == digest and not result.error


def record_progress(out, run_fingerprint, result):
    """Note a merged student at once, so that a run that does not finish loses no one."""
    line = json.dumps({"fingerprint": run_fingerprint, "student": result.to_json()}, ensure_ascii=False)
    with open(out / JOURNAL_FILE, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_state(out, run_fingerprint, results):
    data = {"fingerprint": run_fingerprint,
            "students": {sid: r.to_json() for sid, r in results.items()}}
    partial = out / (STATE_FILE + ".tmp")
    partial.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(partial, out / STATE_FILE)
    (out / JOURNAL_FILE).unlink(missing_ok=True)


def build_result(sid, student, status, notes, digest, record, scores):
    """The worker's record of a graded student, completed and checked against the gradebook."""
    result = record or StudentResult(sid, error="the worker wrote no result record")
    result.submission, result.notes, result.digest = status, notes, digest
    result.name = dict(student.name)
    differs = [f"{k}: gradebook {scores.get(k, 0):g}, record {result.task(k).points:g}"
               for k in TASK_KEYS if abs(scores.get(k, 0.0) - result.task(k).points) > 1e-9]
    if differs and not result.error:
        result.error = "gradebook and result record disagree (" + "; ".join(differs) + ")"
    return result


def grade_all(submissions, out, sandbox=True, jobs=None, cell_timeout=60, db_url="", roster=None,
              dask="", dask_wait=None):
    """Grade every student; return ({student id: StudentResult}, RunInfo).

    ``jobs`` local workers, or the workers of the Dask cluster whose scheduler is at ``dask``
    (``cluster.ClusterProblem`` when it cannot finish; the students merged are kept).
    The local workers are forked first, while this process has one thread (pool.py).
    """
    venv_on_path()
    local = None if dask else executor.open_executor("", jobs)
    with local or contextlib.nullcontext():
        if local is not None:
            local.fork_workers(sandbox)
        return _grade_all(local, submissions, out, sandbox, jobs, cell_timeout, db_url, roster, dask,
                          dask_wait)


def _grade_all(local, submissions, out, sandbox, jobs, cell_timeout, db_url, roster, dask, dask_wait):
    """``grade_all``'s run; ``local``: the local pool, its workers forked already (None with Dask)."""
    started = time.time()
    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    grader_fp, course_fp = fingerprint.grader(), fingerprint.course()
    run_fp = fingerprint.run(grader_fp, course_fp)
    info = RunInfo(started=datetime.datetime.now().isoformat(timespec="seconds"),
                   grader_fingerprint=grader_fp, course_fingerprint=course_fp, sandbox=sandbox)
    course, fresh = gradebook.prepare(out, run_fp, db_url)
    secret = read_secret(out)
    settings = executor.Settings(secret, cell_timeout, sandbox, grader_fp, course_fp)
    cache_references(course, secret, grader_fp)
    (course / "work").mkdir(exist_ok=True)
    earlier = read_state(out, run_fp)
    if fresh:  # a new course folder has an empty gradebook: everyone is graded into it
        earlier = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = pathlib.Path(submissions)
        if source.is_file():
            source = collect.extract(source, pathlib.Path(tmp) / "x")
        students = collect.collect(source, roster, unpack=pathlib.Path(tmp) / "handed-in")
        todo, staged, results = [], {}, {}
        for sid, student in students.items():
            status, notes, digest = staging.stage(student, course)
            staged[sid] = (status, notes, digest)
            if reusable(earlier, sid, digest):
                results[sid] = earlier[sid]
                results[sid].name = dict(student.name)  # a roster may name them now
                results[sid].notes = notes              # files beside the notebooks may differ
                gradebook.record_student(course, sid, db_url, student.name)
            else:
                todo.append(sid)
        info.graded, info.reused = len(todo), len(students) - len(todo)
        log(f"студентов: {len(students)}, проверяется заново: {len(todo)}")
        if todo:
            with (local or executor.open_executor(dask, jobs, dask_wait)) as grading, \
                    interruption.watch() as interrupted:
                for done, (sid, found) in enumerate(grading.grade(course, todo, settings), 1):
                    record = outcome.write(found, course, out / "logs")
                    scores = gradebook.merge_scores(course, sid, db_url, students[sid].name)
                    results[sid] = build_result(sid, students[sid], *staged[sid], record, scores)
                    record_progress(out, run_fp, results[sid])
                    if results[sid].error:
                        log(f"{sid}: ошибка проверки: {results[sid].error} (журнал: {out / 'logs' / (sid + '.log')})")
                    where = f", {found.worker} за {found.seconds:.1f} с" if found.worker else ""
                    log(f"[{done}/{len(todo)}] {sid}: {results[sid].total:g}/{TOTAL_POINTS} "
                        f"({time.time() - started:.0f} с{where})")
                    if interrupted():  # an interrupt a library swallowed (interruption.py)
                        raise KeyboardInterrupt
                info.executor = grading.description
    results = {sid: results[sid] for sid in students}
    for sid, result in results.items():
        result.feedback = copy_feedback(course, out, sid)
    write_state(out, run_fp, results)
    write_csv(out / "grades.csv", results.values())
    gradebook.copy_database(course, out)
    info.wall_seconds = round(time.time() - started, 1)
    return results, info


def copy_feedback(course, out, sid):
    """OUT/feedback/<student>/: that student's pages; {notebook: page path relative to OUT}."""
    src = course / "feedback" / sid / ASSIGNMENT
    dst = out / "feedback" / sid
    shutil.rmtree(dst, ignore_errors=True)
    if src.is_dir():
        shutil.copytree(src, dst)
    return {name: f"feedback/{sid}/{name}.html" for name in NOTEBOOKS if (dst / f"{name}.html").is_file()}


def rows(results):
    """grades.csv rows (strings) from the result records."""
    table = []
    for result in results:
        points = result.points
        row = {"student_id": result.student_id, **{k: f"{points[k]:g}" for k in TASK_KEYS}}
        row["total"] = f"{result.total:g}"
        row["status"] = result.status
        table.append(row)
    return table


def write_csv(path, results):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows(results))


def print_table(results):
    table = rows(results)
    widths = {c: max(len(c), *(len(r[c]) for r in table)) if table else len(c) for c in CSV_COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in CSV_COLUMNS))
    for row in table:
        print("  ".join(row[c].ljust(widths[c]) for c in CSV_COLUMNS))
