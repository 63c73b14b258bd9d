"""What grading one student gives back, as data: the outcome.

``read_work`` (where the student was graded: a local pool's main process or a
Dask worker) reads a graded private course: the worker's result record, the
notebooks nbgrader autograded (the gradebook rows are made from them with
nbgrader's ``SaveAutoGrades``, and formgrader shows them), the feedback pages
and the log. ``write`` (main process) puts them into ``OUT/course`` and
``OUT/logs``, the same for every executor. ``to_wire``/``from_wire`` carry an
outcome between machines as plain types, checked on arrival.
"""
import dataclasses
import json
import os
import shutil

from ..course import ASSIGNMENT, NOTEBOOKS
from ..results import StudentResult
from ..worker import kernel_folders
from ..worker.student import LOG_FILE, RESULT_FILE

KINDS = {"autograded": ".ipynb", "feedback": ".html"}
MAX_FILE_BYTES = 64 * 2**20  # nbgrader writes these; a kernel's output is capped at 2 MiB a notebook


@dataclasses.dataclass
class Outcome:
    """One student's grading: record, autograded notebooks and pages by notebook name, log."""

    student_id: str
    record: StudentResult = None  # None: the worker wrote none
    autograded: dict = dataclasses.field(default_factory=dict)  # notebook -> bytes
    feedback: dict = dataclasses.field(default_factory=dict)    # notebook -> bytes
    log: str = None
    worker: str = ""        # where it was graded (a Dask worker's address), for people
    seconds: float = 0.0    # the grading's own wall time there


def read_regular_file(path, limit=MAX_FILE_BYTES):
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes; None otherwise.
    No link is followed at any step of the path (kernel_folders)."""
    try:
        with kernel_folders.folder(os.path.dirname(path)) as parent:
            f = kernel_folders.open_regular(parent, os.path.basename(path), limit)
    except OSError:
        return None
    if f is None:
        return None
    with f:
        data = f.read(limit + 1)
    return data if len(data) <= limit else None


def read_work(work, student_id, remove=True):
    """The outcome of a graded private course ``work``; the folder is removed afterwards.

    Only what nbgrader and the worker wrote is read, each file opened without following
    a link (the kernel could write in the course's folders): nothing the student planted.
    """
    outcome = Outcome(student_id)
    for kind, suffix in KINDS.items():
        found = getattr(outcome, kind)
        for name in NOTEBOOKS:
            data = read_regular_file(os.path.join(work, kind, student_id, ASSIGNMENT, name + suffix))
            if data is not None:
                found[name] = data
    record = read_regular_file(os.path.join(work, RESULT_FILE))
    if record is not None:
        outcome.record = StudentResult.from_json(json.loads(record.decode("utf-8")))
    log = read_regular_file(os.path.join(work, LOG_FILE))
    if log is not None:
        outcome.log = log.decode("utf-8", "replace")
    if remove:  # holds the kernel's folder: whatever it nested there, no link followed
        kernel_folders.remove(work, settled=True)
    return outcome


def write(outcome, course, logs):
    """Put ``outcome`` into the course (autograded/, feedback/) and ``logs``; return its record."""
    sid = outcome.student_id
    for kind, suffix in KINDS.items():
        folder = course / kind / sid / ASSIGNMENT
        shutil.rmtree(folder.parent, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in getattr(outcome, kind).items():
            (folder / f"{name}{suffix}").write_bytes(data)
    if outcome.log is not None:
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{sid}.log").write_text(outcome.log, encoding="utf-8")
    return outcome.record


def to_wire(outcome):
    """``outcome`` as plain types (str, bytes, float, dicts), for another machine."""
    data = dataclasses.asdict(outcome)
    data["record"] = outcome.record.to_json() if outcome.record is not None else None
    return data


class BadOutcome(ValueError):
    """What came back is not an outcome of the student asked for."""


def from_wire(data, student_id):
    """The ``Outcome`` of ``student_id`` in ``data`` (from ``to_wire``), checked: notebook names of
    the course, bytes within the limit, a record of this student."""
    if not isinstance(data, dict) or data.get("student_id") != student_id:
        raise BadOutcome(f"not an outcome of {student_id!r}")
    outcome = Outcome(student_id, log=data.get("log"), worker=str(data.get("worker", ""))[:200],
                      seconds=float(data.get("seconds") or 0.0))
    if outcome.log is not None and not isinstance(outcome.log, str):
        raise BadOutcome("log is not text")
    for kind in KINDS:
        files = data.get(kind) or {}
        if not isinstance(files, dict):
            raise BadOutcome(f"{kind} is not a dict")
        for name, content in files.items():
            if name not in NOTEBOOKS or not isinstance(content, bytes) or len(content) > MAX_FILE_BYTES:
                raise BadOutcome(f"{kind}: unexpected entry {str(name)[:60]!r}")
            getattr(outcome, kind)[name] = content
    if data.get("record") is not None:
        try:
            outcome.record = StudentResult.from_json(data["record"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise BadOutcome(f"record: {exc}") from None
        if outcome.record.student_id != student_id:
            raise BadOutcome(f"record of {outcome.record.student_id!r}")
    return outcome
