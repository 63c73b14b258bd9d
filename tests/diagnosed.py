"""The diagnosis of a forward body, computed once per test process.

tests/test_scoring.py (the grader's verdict with the diagnosis) and
tests/test_diagnosis.py (the diagnosis alone) read the same findings for every
mutation: one run of ``gpt_selfcheck.diagnose`` per body, not one per file. Both
files are one xdist group (``GROUP``), so under ``make test`` they share a process.
"""
import functools

import pytest

from autograder import diagnosis

from students import class_namespace

GROUP = pytest.mark.xdist_group("diagnosed-mutations")


@functools.lru_cache(maxsize=None)
def _findings(task, body):
    return tuple(tuple(sorted(f.items())) for f in diagnosis.diagnose(task, class_namespace(task, body)))


def findings(task, body):
    """``diagnose(task, namespace)`` of ``body`` pasted into the release's class cell (a fresh list)."""
    return [dict(f) for f in _findings(task, body)]
