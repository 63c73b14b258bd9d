"""Grade one student in an nbgrader course folder of its own (nbgrader #174).

RUNS IN A GRADING WORKER PROCESS. nbgrader's own ``autograde`` (with
``ProbingExecute``) and ``generate_feedback``; the verdicts and events it
recorded become ``result.json`` in the student's work folder, read by the main
process. An error is recorded there too (its traceback in ``grading.log``),
never swallowed.
"""
import logging
import os
import pathlib
import re
import signal
import traceback

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, GetGrades,
                                    IgnorePattern, LimitOutput, SaveAutoGrades)
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from ..course import ASSIGNMENT, GRADED_GLOB
from .. import results
from ..nbconfig import course_config
from .execute import ProbingExecute
from .feedback import FeedbackExporter, StripHiddenTests
from .kernel_session import KernelSession
from .record import Record
from .sandbox import zygote

RESULT_FILE = "result.json"
LOG_FILE = "grading.log"
_grading = False  # this process is grading a student now (grade_student), for ``_interrupted``
_stopping = False  # Ctrl+C came (``_interrupted``): students already queued here are not started


def grading_config(course, student, secret, cell_timeout, sandbox, reference_dir="",
                   fingerprint="", data_file="", step=ProbingExecute):
    """nbgrader's configuration for one student's autograde and feedback; ``step`` is the Execute
    step (``ProbingExecute.for_student``: bound to the student's record and kernel session)."""
    c = course_config(course)  # the course's own configuration, then grading settings
    c.CourseDirectory.notebook_id = GRADED_GLOB
    c.Autograde.autograde_preprocessors = [
        step, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.OverwriteCells.add_missing_cells = True
    c.ProbingExecute.reuse_kernel = True
    c.ProbingExecute.timeout = cell_timeout
    c.ProbingExecute.notebook_timeout = cell_timeout * 3
    c.ProbingExecute.probe_timeout = max(cell_timeout, 60)
    c.ProbingExecute.secret = secret
    c.ProbingExecute.fingerprint = fingerprint
    c.ProbingExecute.student = student
    c.ProbingExecute.siblings = os.path.join(course, "submitted", student, ASSIGNMENT)
    c.ProbingExecute.reference_dir = reference_dir
    c.ProbingExecute.kernel_dir = os.path.join(course, "kernel")
    if sandbox:
        c.ProbingExecute.sandbox = True
        c.SandboxedKernelManager.readonly_paths = [data_file] if data_file else []
    c.LimitOutput.max_lines = 300
    c.LimitOutput.max_traceback = 60
    c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, StripHiddenTests]
    c.GenerateFeedback.exporter_class = FeedbackExporter
    return c


def grade_student(course, student, secret, cell_timeout=60, sandbox=False, reference_dir="",
                  fingerprint="", data_file=""):
    """Autograde and write feedback for one student; return its result record.

    The record (``results.StudentResult`` with the tasks, events and error filled
    in) is also written to ``COURSE/result.json``; the main process adds what it
    knows (the submission's problems, repairs, digest, name).
    """
    global _grading
    if _stopping:
        raise KeyboardInterrupt
    _grading = True
    try:
        return _grade_student(course, student, secret, cell_timeout, sandbox, reference_dir, fingerprint, data_file)
    finally:
        _grading = False


def _grade_student(course, student, secret, cell_timeout, sandbox, reference_dir, fingerprint, data_file):
    course = os.path.abspath(course)
    record = Record()
    session = KernelSession(record, reuse=True)
    errors = []
    try:
        config = grading_config(course, student, secret, cell_timeout, sandbox, reference_dir,
                                fingerprint, data_file, ProbingExecute.for_student(record, session))
        api = NbGraderAPI(CourseDirectory(config=config), config=config)
        try:
            result = api.autograde(ASSIGNMENT, student, force=True, create=True)
        finally:
            session.shut_down()
        if not result.get("success"):
            errors.append(("nbgrader autograde: " + _reason(result),
                           f"{result.get('error')}\n{result.get('log', '')}"))
        feedback = api.generate_feedback(ASSIGNMENT, student, force=True)
        if not feedback.get("success"):
            errors.append(("nbgrader generate_feedback: " + _reason(feedback),
                           f"{feedback.get('error')}\n{feedback.get('log', '')}"))
    except Exception as exc:  # recorded, with its traceback: the row says why
        errors.append((f"{type(exc).__name__}: {exc}"[:300], traceback.format_exc()))
    errors += [(text, text) for text in record.errors]
    if errors:
        with open(os.path.join(course, LOG_FILE), "w", encoding="utf-8") as f:
            f.write("\n\n".join(detail for _, detail in errors))
    result = results.StudentResult(student, tasks=dict(record.verdicts), events=list(record.events),
                                   error="; ".join(line for line, _ in errors))
    results.write(result, pathlib.Path(course, RESULT_FILE))
    return result


EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Exit)\b.*")


def _reason(api_result):
    """The exception nbgrader's log ends with (its error text only says 'see the traceback')."""
    for text in (api_result.get("log"), api_result.get("error")):
        lines = [line.strip() for line in str(text or "").splitlines()]
        found = [line for line in lines if EXCEPTION_LINE.match(line)]
        if found:
            return found[-1][:300]
    lines = [line for line in str(api_result.get("error") or "").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "failed"


def _interrupted(signum, frame):
    """Ctrl+C at the grader's terminal reaches its workers too; the main process stops the run.

    A worker grading a student unwinds (its kernel is shut down on the way), quietly: the
    tasks asyncio is left with are not reported, and a student already queued for it (the
    pool queues one ahead) is not started. A worker waiting for a student has nothing to
    finish and leaves, without the traceback of a queue read cut short."""
    global _stopping
    if not _grading:
        os._exit(0)
    _stopping = True
    logging.getLogger("asyncio").disabled = True
    raise KeyboardInterrupt


def init_pool(environment, shared_zygote=None):
    """Pool initializer: kernels inherit ``environment``; one torch thread; kernels are forked
    from the main process's zygote, given as (its environment, its socket, its pid); Ctrl+C as
    ``_interrupted`` says."""
    import torch
    signal.signal(signal.SIGINT, _interrupted)
    os.environ.clear()
    os.environ.update(environment)
    torch.set_num_threads(1)
    if shared_zygote:
        zygote.use(*shared_zygote)
