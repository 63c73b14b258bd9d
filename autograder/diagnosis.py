"""The student-side diagnosis (``source/gpt/gpt_selfcheck.py``), loaded for the grader.

One file is both the students' self-check and the grader's explanation of
mistakes: ``MESSAGES`` holds the Russian text of every mistake key and
``diagnose(task, namespace)`` observes a class's forward. ``SOURCE_TEXT`` is the
file's text, to run it inside a student's kernel.
"""
import importlib.util

from .course import SOURCE

PATH = SOURCE / "gpt_selfcheck.py"
SOURCE_TEXT = PATH.read_text(encoding="utf-8")

_spec = importlib.util.spec_from_file_location("gpt_selfcheck", PATH)
module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(module)

MESSAGES = module.MESSAGES
diagnose = module.diagnose


def message(key, task=None):
    """The Russian text of ``key`` (for ``task``, or of the first task that has it)."""
    if task is not None:
        return MESSAGES[task][key]
    return next(table[key] for table in MESSAGES.values() if key in table)
