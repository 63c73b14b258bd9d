"""Staging (main process): a student's notebooks into the course, and back.

``stage`` puts a student's notebooks, read and repaired, into
``OUT/course/submitted``; ``stage_work`` makes the private course a worker
grades in (``submission_files`` and ``stage_work_from`` the same on a machine
without OUT); what it gives back is ``outcome.read_work``'s.
"""
import hashlib
import pathlib
import shutil
import tempfile

import nbformat

from ..course import ASSIGNMENT, NOTEBOOKS
from ..results import Note
from . import repair


def normalize(path):
    """(notebook, problem, repairs): a v4 notebook without outputs, or why it is unusable
    (``InvalidNotebook``); what reading it repaired, [(kind, fields)] (``repair.read``)."""
    try:
        if path.stat().st_size > repair.MAX_BYTES:
            return None, repair.too_large(), []
        nb, repairs = repair.read(path.read_bytes())
        return nb, None, repairs
    except repair.InvalidNotebook as exc:
        return None, exc, []
    except OSError as exc:
        return None, repair.InvalidNotebook(f"unreadable: {exc.strerror}", f"файл не читается ({exc.strerror})"), []


def stage(student, course):
    """Copy a student's notebooks into submitted/; return (``results.Note`` of each archive not
    opened and each missing, unusable or repaired notebook, the file notes, the digest of the input)."""
    folder = course / "submitted" / student.student_id / ASSIGNMENT
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    notes = list(student.notes)
    found = [Note(archive, "unopened_archive", {"reason": reason, "reason_words": words})
             for archive, reason, words in student.unopened]
    digest = hashlib.sha256()
    release = course / "release" / ASSIGNMENT
    for name in NOTEBOOKS:
        path = student.notebooks.get(name)
        nb, problem, repairs = (None, None, []) if path is None else normalize(path)
        if path is None and name in student.other_formats:
            found.append(Note(name, "other_format", {"file": student.other_formats[name]}))
        elif path is None:
            found.append(Note(name, "missing"))
        elif problem:
            found.append(Note(name, "invalid", {"reason": problem.reason, "reason_words": problem.words}))
        found += [Note(name, kind, fields) for kind, fields in repairs]
        if nb is None:
            nb = nbformat.read(str(release / f"{name}.ipynb"), as_version=4)
        else:
            repaired = repair.restore(nb, nbformat.read(str(release / f"{name}.ipynb"), as_version=4))
            found += [Note(name, kind, fields) for kind, fields in repaired]
        digest.update(name.encode() + (path.read_bytes() if path and not problem else b"release"))
        (folder / f"{name}.ipynb").write_text(nbformat.writes(nb), encoding="utf-8")
    for extra in release.iterdir():  # course files; the corpus reaches kernels read-only
        if extra.is_file() and extra.suffix != ".ipynb":
            shutil.copy(extra, folder / extra.name)
    return found, notes, digest.hexdigest()


def stage_work(course, student_id, gradebook):
    """A private nbgrader course for one student (nbgrader #174), from SQLite ``gradebook``."""
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"grade-{student_id}-", dir=course / "work"))
    shutil.copy(gradebook, work / "gradebook.db")
    shutil.copytree(course / "source", work / "source")
    shutil.copytree(course / "submitted" / student_id, work / "submitted" / student_id)
    return work


def submission_files(course, student_id):
    """The staged submission of ``student_id`` (notebooks and course files) as {relative path: bytes}."""
    folder = course / "submitted" / student_id
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def stage_work_from(parent, student_id, gradebook, source, files):
    """A private course in ``parent`` made from data (on a machine without OUT): the gradebook
    template's bytes, a course ``source`` folder of this machine and ``submission_files``."""
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"grade-{student_id}-", dir=parent))
    (work / "gradebook.db").write_bytes(gradebook)
    shutil.copytree(source, work / "source")
    root = (work / "submitted" / student_id).resolve()
    for rel, data in files.items():
        path = (root / rel).resolve()
        if root not in path.parents:
            raise ValueError(f"submission path outside the student's folder: {rel!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return work
