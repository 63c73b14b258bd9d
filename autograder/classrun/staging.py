"""Staging (main process): a student's notebooks into the course, and back.

``stage`` puts a student's notebooks, read and repaired, into
``OUT/course/submitted``; ``stage_work`` makes the private course a worker
grades in; ``collect_work`` brings its notebooks, pages and result record back.
"""
import hashlib
import os
import pathlib
import shutil
import stat
import tempfile

import nbformat

from ..course import ASSIGNMENT, NOTEBOOKS
from ..worker import kernel_folders
from ..worker.student import LOG_FILE, RESULT_FILE
from .. import results
from . import repair


def normalize(path):
    """(notebook, problem): a v4 notebook without outputs, or the reason it is unusable."""
    try:
        if path.stat().st_size > repair.MAX_BYTES:
            return None, "over 100 MB"
        return repair.load(path.read_bytes()), None
    except repair.InvalidNotebook as exc:
        return None, exc.reason
    except OSError as exc:
        return None, f"unreadable: {exc.strerror}"


def stage(student, course):
    """Copy a student's notebooks into submitted/; return (status words, notes, digest of the input)."""
    folder = course / "submitted" / student.student_id / ASSIGNMENT
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    notes = list(student.notes)
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
        (folder / f"{name}.ipynb").write_text(nbformat.writes(nb), encoding="utf-8")
    for extra in release.iterdir():  # course files; the corpus reaches kernels read-only
        if extra.is_file() and extra.suffix != ".ipynb":
            shutil.copy(extra, folder / extra.name)
    return status, notes, digest.hexdigest()


def stage_work(course, student_id, gradebook):
    """A private nbgrader course for one student (nbgrader #174), from SQLite ``gradebook``."""
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"grade-{student_id}-", dir=course / "work"))
    shutil.copy(gradebook, work / "gradebook.db")
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


def collect_work(course, work, student_id, logs):
    """Bring notebooks, pages and the result record back from a private course.

    Returns the worker's record (a ``StudentResult``), or None if it wrote none; its log, if
    any, goes to ``logs/<student_id>.log``.
    """
    for kind, suffix in (("autograded", ".ipynb"), ("feedback", ".html")):
        dst = course / kind / student_id / ASSIGNMENT
        shutil.rmtree(dst.parent, ignore_errors=True)
        dst.mkdir(parents=True)
        for name in NOTEBOOKS:
            copy_regular_file(work / kind / student_id / ASSIGNMENT / f"{name}{suffix}", dst)
    record = None
    if (work / RESULT_FILE).is_file():
        record = results.read(work / RESULT_FILE)
    if (work / LOG_FILE).is_file():
        logs.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / LOG_FILE, logs / f"{student_id}.log")
    kernel_folders.remove(work)  # holds the kernel's folder: whatever it nested there, no link followed
    return record
