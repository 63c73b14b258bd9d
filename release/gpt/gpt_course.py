"""Helpers shared by the course notebooks.

* ``find_data`` finds ``data/input.txt`` wherever the notebook is run from.
* ``import_notebook`` reuses the code of an earlier step: it runs the cells of
  that notebook tagged ``export`` (and its solution cells) in a fresh
  namespace and returns the names asked for. So the model trained in
  ``06_training`` is built from the classes you wrote in steps 01-05.
  It reads the SAVED file, and it checks each course class it returns with a
  tiny probe (shape, causality, a return value): a broken earlier step is
  named, in Russian, before the current step's tests run.
"""
import json
import os
import traceback
from pathlib import Path

_CACHE = {}
_STUB = "raise NotImplementedError()"
# Probe the course classes import_notebook returns (the self-check turns this off:
# it diagnoses each class itself).
CHECK_EARLIER_STEPS = True


class EarlierStepError(ImportError):
    """An earlier step cannot be used: its message says which one to fix."""


def find_data(name="input.txt"):
    """Path of the course corpus: $GPT_COURSE_DATA if it exists, else data/ here or above."""
    if os.environ.get("GPT_COURSE_DATA") and Path(os.environ["GPT_COURSE_DATA"]).is_file():
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
    prefix = path.stem.split("_")[0]
    return prefix if prefix.isdigit() else path.stem


def _cell_name(path, number):
    return f"{path.name}, ячейка {number}"


def _where(error, names):
    """'01_head.ipynb, ячейка 6, строка 3' of the innermost frame in a notebook cell."""
    if isinstance(error, SyntaxError) and error.filename in names:
        return f"{error.filename}, строка {error.lineno}"
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename in names:
            found = f"{frame.filename}, строка {frame.lineno}"
    return found


def _short(error):
    text = str(error).strip().split("\n")[0]
    if isinstance(error, SyntaxError):
        text = error.msg
        if error.text and error.text.strip():
            text += f" «{error.text.strip()}»"
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _fix(step, path):
    return f"сначала исправьте шаг {step} и сохраните {path.name} (Ctrl+S)"


def _run_cells(path, notebook):
    namespace = {"__name__": f"notebook_{path.stem}"}
    names = set()
    for number, source in _exported_cells(notebook):
        name = _cell_name(path, number)
        names.add(name)
        try:
            exec(compile(_to_python(source), name, "exec"), namespace)
        except EarlierStepError as error:   # a step before that one: already named
            raise error.with_traceback(None) from None
        except Exception as error:
            where = _where(error, names) or name
            raise EarlierStepError(
                f"ошибка в шаге {_step(path)} ({where}): {_short(error)}: {_fix(_step(path), path)}"
            ) from None
    return namespace, names


def import_notebook(path, *names):
    """Run the exported cells of notebook ``path``; return the given names."""
    __tracebackhide__ = True
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Не найден ноутбук {path.name}: он должен лежать рядом с этим ноутбуком."
        )
    key = (path.resolve(), path.stat().st_mtime_ns)
    if key not in _CACHE:
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
        namespace, cells = _run_cells(path, notebook)
        _CACHE[key] = {"notebook": notebook, "namespace": namespace, "cells": cells, "checked": set()}
    entry = _CACHE[key]
    namespace = entry["namespace"]
    missing = [name for name in names if name not in namespace]
    if missing:
        raise ImportError(
            f"В сохранённом файле {path.name} не определено: {', '.join(missing)}. "
            f"Выполните шаг {_step(path)} и сохраните ноутбук (Ctrl+S)."
        )
    for name in names:
        if CHECK_EARLIER_STEPS and name in _PROBES and name not in entry["checked"]:
            _check_contract(path, entry, name)
            entry["checked"].add(name)
    values = tuple(namespace[name] for name in names)
    return values[0] if len(values) == 1 else values


# A tiny probe per course class: (what goes in, what must come out).

def _probe_layer(cls, config, torch, out_dim):
    """Shape and causality of a (B, T, C) -> (B, T, out_dim) module."""
    module = cls(**{**config, "dropout": 0.0}).eval()
    B, T, C = 2, config["n_ctx"], config["n_embd"]
    x = torch.randn(B, T, C)
    out = module(x)
    expected = (B, T, config[out_dim])
    problem = _not_tensor(out, torch) or _shape(out, expected)
    if problem:
        return problem
    x2 = x.clone()
    x2[:, T // 2:] = torch.randn(B, T - T // 2, C)
    return _leak(module(x2), out, T, torch)


def _probe_feedforward(cls, config, torch):
    module = cls(**{**config, "dropout": 0.0}).eval()
    x = torch.randn(2, config["n_ctx"], config["n_embd"])
    out = module(x)
    return _not_tensor(out, torch) or _shape(out, tuple(x.shape))


def _probe_model(cls, config, torch):
    module = cls(**{**config, "dropout": 0.0}).eval()
    B, T, V = 2, config["n_ctx"], config["vocab_size"]
    idx = torch.randint(V, (B, T))
    result = module(idx)
    if not (isinstance(result, tuple) and len(result) == 2):
        return f"возвращает {type(result).__name__} вместо пары (logits, loss)"
    logits = result[0]
    problem = _not_tensor(logits, torch) or _shape(logits, (B, T, V), "логиты без targets имеют")
    if problem:
        return problem
    idx2 = idx.clone()
    idx2[:, T // 2:] = torch.randint(V, (B, T - T // 2))
    problem = _leak(module(idx2)[0], logits, T, torch)
    if problem:
        return problem
    loss = module(idx, torch.randint(V, (B, T)))[1]
    if not (isinstance(loss, torch.Tensor) and loss.dim() == 0):
        return "с targets возвращает loss, который не является скаляром (используйте F.cross_entropy)"
    return None


def _not_tensor(out, torch):
    if out is None:
        return "ничего не возвращает (None), не забыт ли return"
    if not isinstance(out, torch.Tensor):
        return f"возвращает {type(out).__name__} вместо тензора"
    return None


def _shape(out, expected, what="возвращает"):
    if tuple(out.shape) != tuple(expected):
        return f"{what} форму {tuple(out.shape)} вместо {tuple(expected)}"
    return None


def _leak(changed, out, T, torch):
    half = T // 2
    if not torch.allclose(changed[:, :half], out[:, :half], atol=1e-5):
        return "пропускает будущее: выход для ранних позиций меняется от следующих токенов (проверьте маску tril)"
    return None


_PROBES = {
    "Head": lambda cls, config, torch: _probe_layer(cls, config, torch, "head_size"),
    "MultiHeadAttention": lambda cls, config, torch: _probe_layer(cls, config, torch, "n_embd"),
    "FeedFoward": _probe_feedforward,
    "Block": lambda cls, config, torch: _probe_layer(cls, config, torch, "n_embd"),
    "GPTModel": _probe_model,
}


def _check_contract(path, entry, name):
    """Raise EarlierStepError when the class ``name`` breaks its contract."""
    config = entry["namespace"].get("config")
    if not isinstance(config, dict):
        return
    import torch

    step = _step(path)
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            problem = _PROBES[name](entry["namespace"][name], config, torch)
    except EarlierStepError as error:
        raise error.with_traceback(None) from None
    except NotImplementedError:
        if _STUB in _class_source(entry["notebook"], name):
            raise EarlierStepError(
                f"в сохранённом файле {path.name} {name} ещё не реализован: сохраните ноутбук (Ctrl+S) "
                f"и перезапустите эту ячейку (если шаг {step} ещё не сделан, начните с него)"
            ) from None
        problem = "вызывает NotImplementedError"
    except Exception as error:
        where = _where(error, entry["cells"])
        problem = f"падает с ошибкой {_short(error)}" + (f" ({where})" if where else "")
    if problem:
        raise EarlierStepError(f"ваш {name} из шага {step} {problem}: {_fix(step, path)}")


def _class_source(notebook, name):
    for cell in notebook.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if f"class {name}" in source:
            return source
    return ""
