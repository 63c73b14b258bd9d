"""The course's diagnosis, for the grader: the kit's mistake texts and its self-check.

``MESSAGES`` (the Russian text of every mistake key) is the kit's data module
``gpt_messages.py``: reading it runs no student-kit code. ``diagnose(task,
namespace)`` is the students' self-check (``gpt_selfcheck.py``), loaded on first
use; in a student's kernel the worker runs it from source (``probe_exchange``).
"""
from . import kit

MESSAGES = kit.load("gpt_messages").MESSAGES
PATH = kit.path("gpt_selfcheck")


def message(key, task=None):
    """The Russian text of ``key`` (for ``task``, or of the first task that has it)."""
    if task is not None:
        return MESSAGES[task][key]
    return next(table[key] for table in MESSAGES.values() if key in table)


def selfcheck_module():
    """The kit's ``gpt_selfcheck`` module (imported once)."""
    return kit.load("gpt_selfcheck")


def russian_text(text):
    """``text`` with the Python and torch messages it quotes in Russian where the kit knows them
    (``gpt_errors.russian_text``, standard library only: what the notebook shows)."""
    return kit.load("gpt_errors").russian_text(text)


def diagnose(task, namespace, config=None):
    """``gpt_selfcheck.diagnose``: what the task's class in ``namespace`` does wrong."""
    return selfcheck_module().diagnose(task, namespace, config)


def __getattr__(name):
    """The names this module had before the kit was split: ``module`` (the loaded
    gpt_selfcheck) and ``SOURCE_TEXT`` (its source), loaded on first use."""
    if name == "module":
        return selfcheck_module()
    if name == "SOURCE_TEXT":
        return kit.source("gpt_selfcheck")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
