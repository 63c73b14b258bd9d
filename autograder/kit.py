"""The student kit's Python modules (``source/gpt``), loaded for the grader and sent to kernels.

The kit ships without the grader, so what its self-check needs is in its own files:

* ``gpt_harness.py``: torch-only helpers (isolated torch state, seeding, stand-ins,
  building a class with them), shared by the students' diagnosis and the probe;
* ``gpt_messages.py``: every mistake's Russian text, data only (the one place);
* ``gpt_tasks.py``: the course table's facts the kit needs, GENERATED from ``course.py``
  (``python -m autograder.kit``, which ``make release`` runs; tests/test_course.py
  checks it is current);
* ``gpt_selfcheck.py``: the diagnosis;
* ``gpt_errors.py``: Python's and torch's messages in Russian (``russian_text``), which the
  grader applies to the errors its checks quote, as the kit does in the notebook.

In the grader's processes they are imported by path and registered under their own
names (the kit imports them by name, as in a student's folder); into a kernel they go
as source (``sources``), never read from the student's writable folder.
"""
import importlib.util
import pathlib
import sys

from .course import SOURCE, TASKS

MODULES = ("gpt_harness", "gpt_messages", "gpt_tasks", "gpt_selfcheck", "gpt_errors")
TASKS_FILE = SOURCE / "gpt_tasks.py"


def path(name):
    return SOURCE / f"{name}.py"


def source(name):
    return path(name).read_text(encoding="utf-8")


def sources(*names):
    """((name, source text), ...) of kit modules, in the order given (dependencies first)."""
    return tuple((name, source(name)) for name in names)


def load(name):
    """The kit module ``name`` from source/gpt, imported once and registered in ``sys.modules``
    (after the kit modules before it in MODULES, which it may import)."""
    for before in MODULES[:MODULES.index(name)]:
        _load(before)
    return _load(name)


def _load(name):
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if module is not None and file and pathlib.Path(file).resolve() == path(name).resolve():
        return module
    spec = importlib.util.spec_from_file_location(name, path(name))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def tasks_source():
    """The text of ``gpt_tasks.py``: the facts of course.py the kit needs."""
    table = {spec.key: {"cls": spec.cls, "notebook": spec.notebook, "depends_on": tuple(spec.depends_on),
                        "dropout": spec.dropout, "causal": spec.causal, "language_model": spec.language_model}
             for spec in TASKS}
    return ('"""Задания курса: класс, ноутбук, от каких классов курса он зависит, что проверяется.\n\n'
            "Создан из autograder/course.py командой `python -m autograder.kit` (её запускает\n"
            '`make release`): не редактируйте вручную.\n"""\n\n'
            "TASKS = {\n" + "".join(f"    {key!r}: {facts!r},\n" for key, facts in table.items()) + "}\n")


def write_tasks():
    """Write ``gpt_tasks.py`` from the course table; True if it changed."""
    text = tasks_source()
    if TASKS_FILE.is_file() and TASKS_FILE.read_text(encoding="utf-8") == text:
        return False
    TASKS_FILE.write_text(text, encoding="utf-8")
    return True


if __name__ == "__main__":
    print(f"{TASKS_FILE}: {'written' if write_tasks() else 'up to date'}")
