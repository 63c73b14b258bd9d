"""Fingerprints: results are valid only for the grader and course they came from.

``grader()`` covers the grader's code (checks, reference, probe, worker),
``course()`` the source notebooks, course files and the nbgrader config;
``run()`` both, the key of a run's results. A re-run after any of them changed
re-grades everyone, and says so. ``grader_files()`` and ``course_files()`` list
what each covers, file by file, to name what differs between two machines.
"""
import hashlib
import pathlib

import torch

from ..course import NBGRADER_CONFIG, ROOT, SOURCE

PACKAGE = pathlib.Path(__file__).resolve().parents[1]


def _files(paths):
    return sorted(p for p in paths if p.is_file() and "__pycache__" not in p.parts)


def _digest(paths, extra=""):
    digest = hashlib.sha256(extra.encode())
    for path in _files(paths):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


SERVICE = PACKAGE / "service"  # the submission service's web code grades nothing


def _manifest(paths):
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in _files(paths)}


def _grader_paths():
    return [p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".j2", ".json")
            and SERVICE not in p.parents]


def _course_paths():
    return [*SOURCE.rglob("*"), NBGRADER_CONFIG]


def grader():
    """The grading code, its page templates, and the torch version it runs with."""
    return _digest(_grader_paths(), f"torch {torch.__version__}")


def course():
    """The assignment as authored, and its nbgrader configuration."""
    return _digest(_course_paths())


def grader_files():
    """What ``grader()`` covers: {path: sha256} of each file, and the torch version."""
    return {**_manifest(_grader_paths()), "torch": torch.__version__}


def course_files():
    """What ``course()`` covers: {path: sha256} of each file."""
    return _manifest(_course_paths())


def run(grader_fingerprint, course_fingerprint):
    """The key of a grading run's results: its grader and its course."""
    return hashlib.sha256(f"{grader_fingerprint}:{course_fingerprint}".encode()).hexdigest()
