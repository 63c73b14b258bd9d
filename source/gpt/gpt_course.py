"""Helpers shared by the course notebooks.

* ``find_data`` finds ``data/input.txt`` wherever the notebook is run from.
* ``import_notebook`` reuses the code of an earlier step: it runs the cells of
  that notebook tagged ``export`` (and its solution cells) in a fresh
  namespace and returns the names asked for. So the model trained in
  ``06_training`` is built from the classes you wrote in steps 01-05.
"""
import json
import os
from pathlib import Path

_CACHE = {}


def find_data(name="input.txt"):
    """Path of the course corpus: $GPT_COURSE_DATA, or data/ here or above."""
    if os.environ.get("GPT_COURSE_DATA"):
        return Path(os.environ["GPT_COURSE_DATA"])
    here = Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / "data" / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Не найден файл data/{name}: запустите ноутбук из папки курса "
        f"или укажите путь в переменной окружения GPT_COURSE_DATA."
    )


def _exported_cells(notebook):
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        if "export" in meta.get("tags", []) or meta.get("nbgrader", {}).get("solution"):
            source = cell.get("source", "")
            yield "".join(source) if isinstance(source, list) else source


def _to_python(source):
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return source
    return TransformerManager().transform_cell(source)


def import_notebook(path, *names):
    """Run the exported cells of notebook ``path``; return the given names."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Не найден ноутбук {path.name}: он должен лежать рядом с этим ноутбуком."
        )
    key = (path.resolve(), path.stat().st_mtime_ns)
    if key not in _CACHE:
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
        namespace = {"__name__": f"notebook_{path.stem}"}
        for number, source in enumerate(_exported_cells(notebook)):
            code = compile(_to_python(source), f"{path.name}[{number}]", "exec")
            exec(code, namespace)
        _CACHE[key] = namespace
    namespace = _CACHE[key]
    missing = [name for name in names if name not in namespace]
    if missing:
        raise ImportError(f"В ноутбуке {path.name} не определено: {', '.join(missing)}")
    values = tuple(namespace[name] for name in names)
    return values[0] if len(values) == 1 else values
