"""Вспомогательный код курса: папка курса, данные, ваши классы из предыдущих шагов.

* ``start()`` — первая ячейка каждого ноутбука: проверяет, что рядом лежат
  файлы курса и установлены пакеты, и включает русские сообщения об ошибках
  (``gpt_errors``).
* ``find_data()`` находит корпус ``data/input.txt``.
* ``import_notebook(path, *names)`` берёт код предыдущего шага: выполняет
  ячейки сохранённого ноутбука с тегом ``export`` (и ячейки с решением) и
  возвращает нужные имена. Каждый класс задания, который она возвращает,
  проходит ту же самопроверку, что и в конце его ноутбука (``gpt_selfcheck``):
  другие размеры, T < n_ctx, T = 1, dropout в режиме обучения, масштаб, маска.
  Ошибка останавливает ноутбук сразу, с русским сообщением: какой шаг
  исправить, что не так, как исправить, ячейка и строка.
* ``selfcheck(task, globals())`` — самопроверка в конце ноутбука; если
  сломан предыдущий шаг, она говорит об этом.
* ``progress(iterable)`` — полоска прогресса (виджет, если есть ipywidgets).

Runs in the student's kernel (Python 3.10+); torch is imported only when needed.
"""
import json
import os
import re
import sys
from pathlib import Path

import gpt_errors
from gpt_errors import CourseError

HERE = Path(__file__).resolve().parent
PYTHON_MIN = (3, 10)
PACKAGES = ("torch", "matplotlib", "tqdm")   # the notebooks need these; ipywidgets is optional
_CACHE = {}
_STUB = "raise NotImplementedError()"
# Check the course classes import_notebook returns (the terminal self-check turns this off:
# it diagnoses each class itself). The grader's kernels (GPT_COURSE_MODE=grading) skip it:
# the grader checks every task on its own, with stand-ins for the other steps.
CHECK_EARLIER_STEPS = True


# Errors in Russian from the first use on, even where the setup cell was skipped (a no-op outside IPython).
gpt_errors.install()


class EarlierStepError(CourseError, ImportError):
    """An earlier step cannot be used: its message says which one to fix, and how."""


class MissingFileError(CourseError, FileNotFoundError):
    """A file of the course is not where it should be: the message says what to do."""


# ------------------------------------------------------------------ start

def start():
    """Check the course folder and the packages; explain the notebook's errors in Russian."""
    gpt_errors.install()
    if sys.version_info < PYTHON_MIN:
        raise CourseError(f"Нужен Python {PYTHON_MIN[0]}.{PYTHON_MIN[1]} или новее, а ядро запущено на Python "
                          f"{sys.version_info[0]}.{sys.version_info[1]}: выберите другое ядро (Kernel → Change Kernel) "
                          "или установите новый Python.")
    missing = [name for name in ("gpt_selfcheck.py", "gpt_errors.py", "gpt_plots.py") if not (HERE / name).is_file()]
    if missing:
        raise MissingFileError(f"В папке курса {HERE} нет файлов: {', '.join(missing)}. Распакуйте архив "
                               "student-kit.zip целиком и открывайте ноутбуки из папки gpt.")
    import importlib.util
    absent = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if absent:
        raise CourseError(f"Не установлены пакеты: {', '.join(absent)}. Установите их "
                          f"(pip install {' '.join(absent)} ipywidgets) и перезапустите ядро (Kernel → Restart).")
    find_data()


def find_data(name="input.txt"):
    """Path of the course corpus: $GPT_COURSE_DATA if it exists, else data/ here or above."""
    if os.environ.get("GPT_COURSE_DATA") and Path(os.environ["GPT_COURSE_DATA"]).is_file():
        return Path(os.environ["GPT_COURSE_DATA"])
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / "data" / name
        if candidate.is_file():
            return candidate
    raise MissingFileError(
        f"Не найден файл data/{name} (корпус Шекспира). Он лежит в архиве student-kit.zip в папке gpt/data: "
        f"распакуйте архив целиком и откройте ноутбук из папки gpt. В Google Colab загрузите на Google Диск "
        f"всю папку gpt вместе с папкой data и выполните первую ячейку ноутбука снова."
    )


def progress(iterable, desc=None, total=None):
    """A progress bar: a widget where ipywidgets is installed, else text (never an English warning)."""
    try:
        import ipywidgets  # noqa: F401  (tqdm.notebook needs it)
        from tqdm.notebook import tqdm
        return tqdm(iterable, desc=desc, total=total)
    except ImportError:
        from tqdm import tqdm
        return tqdm(iterable, desc=desc, total=total, file=sys.stdout)


# ------------------------------------------------------- import_notebook

def _exported_cells(notebook):
    """(number as Jupyter counts cells, from 1; source) of each exported cell."""
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        if "export" in meta.get("tags", []) or meta.get("nbgrader", {}).get("solution"):
            source = cell.get("source", "")
            yield number, "".join(source) if isinstance(source, list) else source


def _to_python(source):
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return source
    return TransformerManager().transform_cell(source)


def _step(path):
    """'01' for 01_head.ipynb."""
    return gpt_errors.step_of(Path(path).stem)


def _cell_name(path, number):
    return f"{path.name}, ячейка {number}"


def _after_fix(path):
    return f"Исправьте {path.name}, сохраните его (Ctrl+S) и выполните эту ячейку снова."


def _run_cells(path, notebook):
    import linecache
    namespace = {"__name__": f"notebook_{path.stem}"}
    names = set()
    for number, source in _exported_cells(notebook):
        name = _cell_name(path, number)
        names.add(name)
        code = _to_python(source)
        # the cell's lines, for messages that quote the student's line
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        try:
            exec(compile(code, name, "exec"), namespace)
        except EarlierStepError as error:   # a step before that one: already named
            raise error.with_traceback(None) from None
        except Exception as error:
            raise _broken_cells(path, error) from error
    return namespace, names


def _broken_cells(path, error):
    """EarlierStepError for a cell of ``path`` that failed to run (SyntaxError, NameError...)."""
    step = _step(path)
    if isinstance(error, SyntaxError) and error.filename and ".ipynb, ячейка " in error.filename:
        where = f"{error.filename}, строка {error.lineno}"
        code = (error.text or "").strip()
        text = f"синтаксическая ошибка ({where}" + (f": {code}" if code else "") + f"): {gpt_errors.in_russian(error)}"
    else:
        frames = gpt_errors.student_frames(error.__traceback__)
        earlier = [f for f in frames if f[0].startswith(path.name)]
        place = ""
        if earlier:
            label, lineno, filename, _ = earlier[-1]
            place = f" ({gpt_errors.where_text(label, lineno, filename)})"
        text = f"{gpt_errors.in_russian(error)}{place}"
    return EarlierStepError(f"Сначала исправьте шаг {step}: {text}.\n{_after_fix(path)}")


def import_notebook(path, *names):
    """Run the exported cells of notebook ``path``; return the given names (checked, for course classes)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            f"Не найден ноутбук {path.name}: он должен лежать в одной папке с этим ноутбуком "
            f"(папка gpt из архива student-kit.zip). Если шаг {_step(path)} ещё не сделан, начните с него."
        )
    key = (path.resolve(), path.stat().st_mtime_ns)
    if key not in _CACHE:
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
        namespace, cells = _run_cells(path, notebook)
        _CACHE[key] = {"notebook": notebook, "namespace": namespace, "cells": cells, "checked": {}}
    entry = _CACHE[key]
    namespace = entry["namespace"]
    missing = [name for name in names if name not in namespace]
    if missing:
        raise EarlierStepError(
            f"В сохранённом файле {path.name} не определено: {', '.join(missing)}. "
            f"Выполните шаг {_step(path)} и сохраните ноутбук (Ctrl+S), затем выполните эту ячейку снова."
        )
    if CHECK_EARLIER_STEPS and not gpt_errors.GRADING:
        for name in names:
            _check_step(path, entry, name)
    values = tuple(namespace[name] for name in names)
    return values[0] if len(values) == 1 else values


# -------------------------------------------------------- earlier steps

def _check_step(path, entry, name):
    """Raise EarlierStepError when the course class ``name`` of ``path`` has a mistake."""
    if name not in entry["checked"]:
        entry["checked"][name] = _step_problem(path, entry, name)
    problem = entry["checked"][name]
    if problem is not None:
        raise EarlierStepError(problem)


def own_file(cls, notebook):
    """The warning for a course class imported from a .py file of the student's own rather than
    written in ``notebook`` (the grader runs the notebooks alone: the class would get 0), or None."""
    if getattr(cls, "__module__", "__main__") == "__main__":   # the notebook's own (or a script's)
        return None
    module = sys.modules.get(cls.__module__, None)
    source = getattr(module, "__file__", None) or ""
    if not source.endswith(".py") or Path(source).name.startswith("gpt_"):
        return None
    return (f"Класс {cls.__name__} взят из файла {Path(source).name}, а не написан в ноутбуке {notebook}: "
            f"при проверке сдаются и выполняются только ноутбуки, и без файла класса не будет (0 баллов за "
            f"задачу). Перенесите класс в ячейку решения {notebook} и сохраните ноутбук (Ctrl+S)")


def _step_problem(path, entry, name):
    """The Russian message for the first mistake of class ``name`` of notebook ``path``, or None."""
    cls = entry["namespace"].get(name)
    if not isinstance(cls, type):
        return None
    imported = own_file(cls, path.name)
    if imported is not None:
        return f"Сначала исправьте шаг {_step(path)}: {imported}, затем выполните эту ячейку снова."
    try:
        import gpt_selfcheck as kit
    except ImportError:
        return None
    task = {c: t for t, c in kit.CLASS_OF_TASK.items()}.get(name)
    if task is None:
        return None
    findings = kit.diagnose(task, entry["namespace"], entry["namespace"].get("config"))
    if not findings:
        return None
    step = _step(path)
    first = findings[0]
    if first["key"] == "not_implemented" and _STUB in _class_source(entry["notebook"], name):
        return (f"Сначала сделайте шаг {step}: в сохранённом файле {path.name} класс {name} ещё не реализован "
                f"(в нём по-прежнему {_STUB}).\nЕсли решение уже написано, сохраните {path.name} (Ctrl+S) "
                f"и выполните эту ячейку снова.")
    place = _place(cls, first)
    text = gpt_errors.russian_text(first["message"])
    if first["key"] == "wrong_shape":
        text += _shapes(task, cls, entry["namespace"].get("config"))
    text = gpt_errors.without_line(text) if place else text
    if first.get("where") and first["where"] not in text:
        text += f" [{first['where']}]"
    lines = [f"Сначала исправьте шаг {step} ({name}): {text}."]
    if place:
        lines.append(f"Где: {place}")
    cause = gpt_errors.n_ctx_line(cls, first)
    if cause is not None:
        lines.append(f"Скорее всего, причина — {gpt_errors.where_text(*cause)}: {gpt_errors.N_CTX_HINT}.")
    more = len(findings) - 1
    if more:
        lines.append(f"Ещё найдено ошибок: {more} — их перечислит самопроверка в {path.name}.")
    lines.append(_after_fix(path))
    return "\n".join(lines)


def _shapes(task, cls, config):
    """': (2, 32, 64) вместо (2, 32, 16)' — what the class returns on the notebook's sizes, or ''."""
    try:
        import torch
        config = dict(config, dropout=0.0)
        B, T = 2, config["n_ctx"]
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            module = cls(**config).eval()
            if task == "gpt_model":
                out, expected = module(torch.randint(config["vocab_size"], (B, T)))[0], (B, T, config["vocab_size"])
            else:
                out = module(torch.randn(B, T, config["n_embd"]))
                expected = (B, T, config["head_size"] if task == "head" else config["n_embd"])
        return f": {tuple(out.shape)} вместо {expected}"
    except Exception:
        return ""


def _place(cls, finding):
    """'01_head.ipynb, ячейка 6, строка 34: <code>' for a finding, or ''."""
    located = gpt_errors.forward_line(cls, finding["key"])
    if located is None:
        return ""
    label, lineno, filename = located
    if finding["key"] == "exception":
        match = re.search(r"строка (\d+)", finding["message"])
        if match:
            lineno = int(match.group(1))
    return gpt_errors.where_text(label, lineno, filename)


def _class_source(notebook, name):
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if f"class {name}" in source:
            return source
    return ""


def earlier_step_problem(task):
    """The message of the first broken earlier step the class of ``task`` builds on, or None."""
    if gpt_errors.GRADING:
        return None
    import gpt_selfcheck as kit
    task_of_class = {c: t for t, c in kit.CLASS_OF_TASK.items()}
    global CHECK_EARLIER_STEPS
    saved, CHECK_EARLIER_STEPS = CHECK_EARLIER_STEPS, True
    try:
        for dependency in kit.DEPENDENCIES[task]:
            notebook = kit.NOTEBOOK_OF_TASK[task_of_class[dependency]] + ".ipynb"
            try:
                import_notebook(notebook, dependency)
            except CourseError as error:
                return str(error)
    finally:
        CHECK_EARLIER_STEPS = saved
    return None


def selfcheck(task, namespace):
    """The self-check of the notebook's task; says so when an earlier step it builds on is broken."""
    import gpt_selfcheck as kit
    cls = namespace.get(kit.CLASS_OF_TASK[task])
    imported = own_file(cls, f"{kit.NOTEBOOK_OF_TASK[task]}.ipynb") if isinstance(cls, type) else None
    if imported is not None:
        print(imported + ".")
    broken = earlier_step_problem(task)
    if broken is None:
        kit.selfcheck(task, namespace)
        return None
    name = kit.CLASS_OF_TASK[task]
    print(f"{name}: проверить до конца нельзя — ваш класс использует сломанный предыдущий шаг.")
    print(broken)
    findings = kit.diagnose(task, namespace, namespace.get("config"))
    if findings:
        print(f"В самом {name} (проверен с заменами вместо классов других шагов) найдено ошибок — {len(findings)}:")
        for finding in findings:
            print(f"- {finding['message']} [{finding['where']}]")
    else:
        print(f"В самом {name} (проверен с заменами вместо классов других шагов) ошибок нет.")
    return None
