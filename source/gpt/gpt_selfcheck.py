"""Самопроверка заданий: что на самом деле делает ваш forward.

Запуск из последней ячейки ноутбука задания::

    from gpt_selfcheck import selfcheck
    selfcheck("head", globals())

или из терминала в папке с ноутбуками: ``python gpt_selfcheck.py [папка]``.

Проверка не знает скрытых тестов и не умеет сама вычислять правильный ответ. Она
запускает ваш класс на своих открытых входах и записывает, что произошло: какой
подмодуль (self.sa, self.ln1, self.proj, ...) какой тензор получил и какой вернул.
Потом сверяет запись с описанием задания, записанным здесь как данные («ln1
получает x + sa(x)», «выход — это выход ln2»), и с известными ошибками. Для Head
веса внимания читаются прямо с выхода на специально подобранных входах: суммы
строк, треугольник маски, масштаб оценок, на что умножены веса. Зависимости класса
(например, MultiHeadAttention внутри Block) заменены простыми заменителями, поэтому
ошибка в другом задании не мешает. Находит все отклонения сразу и называет первую
причину, а не её последствия.

Что где в этом файле: ``diagnose`` и ``selfcheck``; затем по заданию — что должен
делать класс (``HEAD_FORM``, ``MULTIHEAD_JOIN``, ``FEEDFORWARD_HIDDEN``,
``BLOCK_PROGRAMS``, ``GPT_STAGES``) и как это проверяется; dropout и градиенты; в
конце — как записывается вызов forward. Тексты ошибок — в ``gpt_messages.py``.
"""
import contextlib
import inspect
import io
import itertools
import linecache
import os
import pathlib
import re
import sys
import traceback

import torch
import torch.nn as nn
from torch.nn import functional as F

import gpt_harness as harness  # the kit's own files, beside this one
from gpt_messages import MESSAGES
from gpt_tasks import TASKS as TASK_TABLE

TASKS = tuple(TASK_TABLE)
CLASS_OF_TASK = {task: facts["cls"] for task, facts in TASK_TABLE.items()}
NOTEBOOK_OF_TASK = {task: facts["notebook"] for task, facts in TASK_TABLE.items()}
DEPENDENCIES = {task: tuple(facts["depends_on"]) for task, facts in TASK_TABLE.items()}

# The notebook's config (00_data; vocab_size of the course corpus) and another one.
NOTEBOOK_CONFIG = dict(n_ctx=32, n_embd=64, n_head=4, head_size=16, n_layer=4, dropout=0.0,
                       vocab_size=65)
OTHER_CONFIG = dict(n_ctx=10, n_embd=36, n_head=3, head_size=12, n_layer=2, dropout=0.0,
                    vocab_size=17)
DROPOUT = 0.3
DROPOUT_REPEATS = 50

AT_NOTEBOOK = "на конфигурации ноутбука"
AT_T1 = "при T = 1"
AT_SHORT = "при T < n_ctx"
AT_TRAIN = "в режиме обучения с dropout"
AT_TRAIN_MODE = "в режиме обучения, model.train()"
AT_EVAL_DROPOUT = "в режиме eval с dropout > 0"
AT_OTHER = "на других размерах"
AT_NO_TARGETS = "без targets"
AT_GENERATE = "в generate"
AT_RUN = "при выполнении ноутбука"

# Keys that say only *that* something is wrong: a scenario adds them when nothing else is known.
GENERIC_KEYS = {"exception", "wrong_output", "wrong_input", "wrong_shape", "future_leak"}


# -------------------------------------------------------------------- public

def _config(config):
    cfg = dict(NOTEBOOK_CONFIG)
    for key in ("n_ctx", "n_embd", "n_head", "head_size", "n_layer", "vocab_size"):
        if config and isinstance(config.get(key), int) and config[key] > 0:
            cfg[key] = config[key]
    if not (config and "head_size" in config):
        cfg["head_size"] = cfg["n_embd"] // cfg["n_head"]
    cfg["dropout"] = 0.0
    return cfg


def diagnose(task, namespace, config=None):
    """Every deviation of the student's class from the task: [{key, message, where}].

    ``namespace``: where the class is (the notebook's ``globals()``); ``config``:
    the notebook's config (sizes only; defaults to the course's). Never raises.
    """
    cls = namespace.get(CLASS_OF_TASK[task]) if hasattr(namespace, "get") else None
    findings = _Findings(task, cls if inspect.isclass(cls) else None)
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        findings.add("class_missing", AT_NOTEBOOK)
        return findings.items
    # A forward that prints would flood the output: it runs a hundred times here.
    with harness.isolated_torch(), contextlib.redirect_stdout(io.StringIO()):
        try:
            CHECKS[task](cls, _config(config), findings)
        except Exception as exc:
            if _student_line(exc, findings.cls):  # the class's own code failed outside forward
                findings.crash(exc, AT_NOTEBOOK)
            else:  # the self-check's own failure: said as such, never blamed on the class
                findings.add("selfcheck_error", AT_NOTEBOOK, f"{type(exc).__name__}: {exc}"[:200])
    return findings.items


def report(task, findings):
    """The findings as Russian text for a student."""
    name = CLASS_OF_TASK[task]
    if not findings:
        return f"{name}: ошибок не найдено"
    lines = [f"{name}: найдено ошибок — {len(findings)}"]
    lines += [f"- {f['message']} [{f['where']}]" for f in findings]
    return "\n".join(lines)


def selfcheck(task, namespace):
    """Print the diagnosis of ``task`` for the class in ``namespace``; True if none found."""
    findings = diagnose(task, namespace, namespace.get("config") if hasattr(namespace, "get") else None)
    print(report(task, findings))
    return not findings


# ---------------------------------------------------------------------- Head
#
# The probe's weights make the attention weights readable off the output: the value
# projection is the identity on the first T coordinates and each input's first T
# coordinates are one-hot, so out[..., :T] = wei; keys and queries see only the
# other coordinates. What the weights show is compared with the task, as data:

HEAD_FORM = {  # property: {what was observed: mistake keys}; the first entry is the task's
    "multiplies": {"v": (), "k": ("value_is_key",), "q": ("value_is_query",), "x": ("no_value_projection",)},
    "mask": {"causal": (), "none": ("no_mask",), "zero": ("mask_with_zero",),
             "after_softmax": ("mask_after_softmax",), "inverted": ("inverted_mask",), "next": ("future_leak",),
             "diagonal": ("mask_diagonal",), "finite": ("mask_finite",)},
    "softmax": {"rows": (), "columns": ("softmax_wrong_dim",), "batch": ("softmax_wrong_dim",),
                "none": ("no_softmax",), **{name: ("softmax_replaced",) for name in ("log_softmax", "sigmoid",
                                                                                      "exp", "relu", "tanh")}},
    "scores": {"q @ k^T": (), "k @ q^T": ("q_k_swapped",), "k @ k^T": ("wrong_role",), "q @ q^T": ("wrong_role",),
               "q @ v^T": ("wrong_role",), "v @ k^T": ("wrong_role",), "x @ x^T": ("scores_from_x",)},
    "scale": {"head_size ** -0.5": (), "1": ("no_scale",), "n_embd ** -0.5": ("scale_n_embd",),
              "head_size ** 0.5": ("scale_multiplied",)},
    "weights_times": {"1": (), "head_size ** -0.5": ("scale_after_softmax",),  # a factor after softmax
                      "n_embd ** -0.5": ("scale_after_softmax",), "head_size ** 0.5": ("scale_after_softmax",)},
}
ROLE_DETAIL = {"k @ k^T": "оценки внимания посчитаны из self.key(x) дважды: запросы — это self.query(x)",
               "q @ q^T": "оценки внимания посчитаны из self.query(x) дважды: ключи — это self.key(x)",
               "q @ v^T": "ключи посчитаны через self.value(x): k = self.key(x)",
               "v @ k^T": "запросы посчитаны через self.value(x): q = self.query(x)",
               "batch": "softmax посчитан по оси пакета (dim=0): так делает F.softmax(wei) без dim "
                        "у трёхмерного тензора",
               "log_softmax": "F.log_softmax: это логарифмы весов, а не сами веса",
               "sigmoid": "torch.sigmoid: он не нормирует строку",
               "exp": "torch.exp без деления на сумму строки",
               "relu": "F.relu",
               "tanh": "torch.tanh"}


def _head_setup(config, T, B=2, seed=7):
    """(weights {key, query, value}, x) that make the attention weights readable off the output."""
    C, hs = config["n_embd"], config["head_size"]
    gen = torch.Generator().manual_seed(seed)
    a = (1.5 / (C - T)) ** 0.5
    weights = {name: torch.zeros(hs, C) for name in ("key", "query", "value")}
    weights["key"][:, T:] = a * _randn(gen, hs, C - T)
    weights["query"][:, T:] = a * _randn(gen, hs, C - T)
    weights["value"][torch.arange(T), torch.arange(T)] = 1.0
    weights["value"][T:, T:] = a * _randn(gen, hs - T, C - T)
    x = torch.zeros(B, T, C)
    x[:, torch.arange(T), torch.arange(T)] = 1.0
    x[:, :, T:] = _randn(gen, B, T, C - T)
    return weights, x


def _head_module(cls, config, T, dropout=0.0):
    module = _build("head", cls, dict(config, dropout=dropout))
    weights, x = _head_setup(config, T)
    with torch.no_grad():
        for name, weight in weights.items():
            layer = getattr(module, name)
            layer.weight.copy_(weight)
            if getattr(layer, "bias", None) is not None:
                layer.bias.zero_()
    return module, weights, x


def _head_probe(cls, config, T, stand_ins=True):
    module, weights, x = _head_module(cls, config, T)
    C, hs = config["n_embd"], config["head_size"]
    with _traced(module, _parts("head", module)) as trace:
        out, crash = _forward(module, x)
    crash = crash or trace.error()
    if crash is not None or out is None or not torch.is_tensor(out):
        return _output_result(out, crash, [])
    xd = x.double()
    q, k, v = (xd @ weights[name].double().T for name in ("query", "key", "value"))
    if _masked_after_softmax_with_inf(out, F.softmax(q @ k.transpose(-2, -1) * hs ** -0.5, dim=-1)):
        return _Result([("mask_after_softmax", "-inf в весах после softmax: выход — NaN во всех позициях, "
                                               "кроме последней")])
    o = torch.nan_to_num(out.detach().double(), nan=0.0, posinf=0.0, neginf=0.0)
    if tuple(o.shape) == tuple(x.shape):
        sources = {"x": xd}
    elif tuple(o.shape) == (x.shape[0], T, hs):
        sources = {"v": v, "k": k, "q": q}
    else:
        if tuple(o.shape) == (x.shape[0], T, T) and bool(((o.sum(-1) - 1).abs() < 1e-4).all()):
            return _Result([("weights_returned", "")])   # the attention weights, not wei @ v
        return _Result([("wrong_shape", f"ожидалась {(x.shape[0], T, hs)}, получена {tuple(o.shape)}")])
    fits = []
    for name, src in sources.items():
        wei = o @ torch.linalg.pinv(src)
        fits.append(((o - wei @ src).norm().item() / max(o.norm().item(), 1e-12), name, wei))
    residual, source, wei = min(fits, key=lambda f: f[0])
    scores = {"q @ k^T": q @ k.transpose(-2, -1), "k @ q^T": k @ q.transpose(-2, -1),
              "k @ k^T": k @ k.transpose(-2, -1), "q @ q^T": q @ q.transpose(-2, -1),
              "q @ v^T": q @ v.transpose(-2, -1), "v @ k^T": v @ k.transpose(-2, -1),
              "x @ x^T": xd @ xd.transpose(-2, -1)}
    scales = {"head_size ** -0.5": hs ** -0.5, "1": 1.0, "n_embd ** -0.5": C ** -0.5, "head_size ** 0.5": hs ** 0.5}
    if residual > 1e-3:
        form = _without_softmax(out, scores["q @ k^T"], v, scales)
        return _Result(_form_keys(form) if form else [("wrong_output", "")])
    found = [(key, "") for key in HEAD_FORM["multiplies"][source]]
    if source == "x":
        found = [(key, f"выход формы {tuple(o.shape)} вместо {(x.shape[0], T, hs)}") for key, _ in found]
    direct = source == "v"
    if direct:
        wei = o[..., :T]  # read off exactly (v's first T coordinates are one-hot)
    if _close(wei, torch.eye(T, dtype=wei.dtype).expand_as(wei)):
        return _Result(found + [("weights_not_applied", "")])
    form = _attention_form(wei, scores, scales, precise=direct)
    if form is None and direct:
        form = _without_softmax(out, scores["q @ k^T"], v, scales)
    if form is None:
        leak = wei.triu(1).abs().max().item() > 1e-6
        return _Result(found + [("future_leak" if leak else "wrong_output", "")])
    return _Result(found + _form_keys(form))


def _masked_after_softmax_with_inf(out, weights):
    """True for the output of the task's ``weights`` masked with -inf after softmax: every row
    but the last has a -inf weight, so its whole output row is NaN (or infinite); the last row,
    masked nowhere, is finite and shows the task's weights (``_head_setup``: out[..., :T] = wei)."""
    B, T, _ = weights.shape
    if out.dim() != 3 or tuple(out.shape[:2]) != (B, T) or out.shape[2] < T or T < 2:
        return False
    finite_rows = torch.isfinite(out.detach()).all(-1)
    return not bool(finite_rows[:, :-1].any()) and bool(finite_rows[:, -1].all()) \
        and _close(out.detach()[:, -1, :T].double(), weights[:, -1])


def _form_keys(form):
    """[(mistake key, detail)] for what ``_attention_form`` observed. A scale put after softmax
    (the weights times head_size ** -0.5) is that one mistake, not also a missing scale."""
    found = []
    for prop, observed in form.items():
        if prop == "scale" and observed == "1" and form.get("weights_times", "1") != "1":
            continue
        for key in HEAD_FORM[prop].get(observed, ("scale_wrong",) if prop == "scale" else ()):
            found.append((key, ROLE_DETAIL.get(observed, "")))
    return found


# What a forward may put where softmax belongs, applied to the masked scores (rows of -inf
# become NaN or inf in the output as they do in the student's).
NOT_SOFTMAX = {"none": lambda s: s, "log_softmax": lambda s: F.log_softmax(s, dim=-1), "sigmoid": torch.sigmoid,
               "exp": torch.exp, "relu": F.relu, "tanh": torch.tanh}


def _without_softmax(out, scores, v, scales):
    """The form of ``out`` if it is the masked, scaled scores times v with no softmax but
    another function of them, or none at all (``NOT_SOFTMAX``; the mask filling -inf, or 0
    when there is no function), else None."""
    T = scores.shape[-1]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    got = out.detach().double()
    for name, function in NOT_SOFTMAX.items():
        for label, scale in scales.items():
            for fill in (float("-inf"), 0.0) if name == "none" else (float("-inf"),):
                if _close(got, function((scores * scale).masked_fill(future, fill)) @ v):
                    return {"mask": "causal", "softmax": name, "scores": "q @ k^T", "scale": label}
    return None


def _attention_form(wei, scores, scales, precise=True):
    """How attention weights ``wei`` (B, T, T) were made: {property: observed} (HEAD_FORM's
    properties but "multiplies"), or None when no softmax of scaled scores explains them.

    Relations only: which entries are exactly 0 (the mask), which sums are 1 (the
    softmax axis), and the slope of log(wei) against each candidate score matrix
    (the scale, and which projections make the scores). ``precise``: ``wei`` was read
    off exactly (else solved for, with errors about 1e-6: tiny weights say nothing)."""
    T = wei.shape[-1]
    lower = torch.ones(T, T, dtype=torch.bool).tril()
    nearly = torch.ones(T, T, dtype=torch.bool).tril(1)
    zero = wei.abs() <= (1e-12 if precise else 1e-5)
    smallest = 1e-30 if precise else 1e-2

    def all_zero(where):
        return bool(zero[..., where].all())

    def sums_to_one(dim):
        total = wei.sum(dim)
        live = ~zero.all(dim)
        return bool(live.any()) and bool(((total - 1).abs()[live] < 1e-4).all())

    softmax = "rows" if sums_to_one(-1) else "columns" if sums_to_one(-2) else None
    if softmax is None and wei.shape[0] > 1 and sums_to_one(0):
        return {"softmax": "batch"}  # F.softmax(wei) without dim: a 3-d tensor's implicit dim is 0
    times = "1"
    if softmax is None:  # rows that sum to a known factor: softmax, then multiplied by it
        total, live = wei.sum(-1), ~zero.all(-1)
        for label, value in scales.items():
            if value != 1.0 and bool(live.any()) and bool(((total - value).abs()[live] < 1e-4 * value).all()):
                wei, softmax, times = wei / value, "rows", label
                break
    strict = torch.ones(T, T, dtype=torch.bool).tril(-1)
    if all_zero(~strict) and not all_zero(strict):
        mask, allowed = "diagonal", strict   # the token does not see itself either
    elif all_zero(~lower) and not all_zero(lower):
        mask, allowed = "causal", lower
    elif all_zero(~nearly) and not all_zero(~lower):
        mask, allowed = "next", nearly
    elif all_zero(lower):
        mask, allowed = "inverted", ~lower
    elif not zero.any():
        mask, allowed = "none", torch.ones(T, T, dtype=torch.bool)
    else:
        return None
    group = -1 if softmax != "columns" else -2
    y = torch.log(wei.clamp_min(1e-300))
    usable = (wei > smallest) & allowed
    best = None
    for name, S in scores.items():
        fit = _log_fit(y, S, usable, group)
        if fit is not None and (best is None or fit[1] < best[2]):
            best = (name, fit[0], fit[1], fit[2])
    if softmax is None and mask == "causal" and best is not None and best[2] < 1e-3:
        # rows sum to less than 1: masked after softmax if the full rows of exp(a*S + c) sum to 1
        name, a, _, c = best
        if bool(((torch.exp(a * scores[name] + c).sum(-1) - 1).abs() < 1e-3).all()):
            mask, softmax = "after_softmax", "rows"
    if softmax is None:
        return None
    if mask == "none" and (best is None or best[2] > 1e-3):
        # a mask that fills with a number, not -inf: the past fits, the future's logit is that
        # number (0 or another: -1, -1e-9 for -1e9), the same in every row
        best, fill = None, None
        for name, S in scores.items():
            fit = _log_fit(y, S, usable & lower, group)
            if fit is not None and fit[1] < 1e-3 and (best is None or fit[1] < best[2]):
                future = (y - fit[2])[..., ~lower]
                if future.numel() and float(future.max() - future.min()) < 1e-3:
                    best, fill = (name, fit[0], fit[1], fit[2]), float(future.mean())
        mask = "zero" if fill is not None and abs(fill) < 1e-3 else "finite"
        if mask == "finite" and float(wei[..., ~lower].max()) < 1e-6:
            mask = "causal"   # a fill like -20: the future's weights are too small to matter
    if best is None or best[2] > 1e-3:
        return None
    name, a = best[0], best[1]
    scale = next((label for label, value in scales.items() if abs(a - value) < 1e-3 * abs(value)), "?")
    return {"mask": mask, "softmax": softmax, "scores": name, "scale": scale, "weights_times": times}


def _log_fit(y, S, usable, group):
    """Least squares y = a * S + c (c per row, or per column) over ``usable``: (a, residual, c)."""
    n = usable.sum(group, keepdim=True)
    if int(n.max()) < 2:
        return None
    m = usable.double()
    y_mean = (y * m).sum(group, keepdim=True) / n.clamp_min(1)
    s_mean = (S * m).sum(group, keepdim=True) / n.clamp_min(1)
    yc, sc = (y - y_mean) * m, (S - s_mean) * m
    spread = (sc * sc).sum()
    if spread < 1e-12:
        return None
    a = ((yc * sc).sum() / spread).item()
    residual = (yc - a * sc).abs()[usable].max().item()
    return a, residual, y_mean - a * s_mean


def _head_short(cls, config):
    """T = 1: the only weight is 1, so the output is v = self.value(x) (as recorded)."""
    module = _build("head", cls, config)
    x = _randn(torch.Generator().manual_seed(3), 2, 1, config["n_embd"])
    with _traced(module, {"value": "value"}) as trace:
        out, crash = _forward(module, x)
    value = trace.of("value")
    found = [] if crash is not None or value is None or _close(out, value.output) else [("wrong_output", "")]
    return _output_result(out, crash, found)


# ------------------------------------------------------- MultiHeadAttention

MULTIHEAD_JOIN = {  # what self.proj receives: {how the heads' outputs are joined: keys}
    "torch.cat(heads, dim=-1)": (), "x": ("proj_on_input",), "sum(heads)": ("summed_heads",),
    "sum(heads).repeat": ("summed_heads",), "torch.cat(heads, dim=1).reshape": ("concat_wrong_dim",),
    "torch.cat(heads)": ("concat_wrong_dim",), "torch.cat(heads, dim=1)": ("concat_wrong_dim",),
    "torch.stack(heads, dim=-1).reshape": ("interleaved_heads",),
    "torch.cat(heads[::-1], dim=-1)": ("interleaved_heads",),
    "torch.cat([one head] * n_head, dim=-1)": ("one_head_repeated",),
}
MULTIHEAD_OUTPUT = {  # what forward returns: {expression: keys}
    "proj": (), "x + proj": ("extra_residual",), "join": ("no_projection",), "x + join": ("no_projection", "extra_residual"),
    "relu(proj)": ("extra_activation",), "gelu(proj)": ("extra_activation",), "tanh(proj)": ("extra_activation",),
}


def _joins(heads, x):
    """The ways of joining the heads' recorded outputs that MULTIHEAD_JOIN names."""
    B, T, C = x.shape
    n = len(heads)
    out = {"x": x}
    called = [h for h in heads if h is not None]
    if called:  # the only head called (any of them), else the first
        one = called[0] if len(called) == 1 or heads[0] is None else heads[0]
        out["torch.cat([one head] * n_head, dim=-1)"] = torch.cat([one] * n, -1)
    if not heads or any(h is None for h in heads):
        return out
    out.update({"torch.cat(heads, dim=-1)": torch.cat(heads, -1), "torch.cat(heads[::-1], dim=-1)": torch.cat(heads[::-1], -1),
                "sum(heads)": sum(heads),
                "torch.cat(heads)": torch.cat(heads, 0), "torch.cat(heads, dim=1)": torch.cat(heads, 1)})
    if heads[0].shape[-1] * n == C:
        out["sum(heads).repeat"] = sum(heads).repeat(1, 1, n)
        out["torch.cat(heads, dim=1).reshape"] = torch.cat(heads, 1).reshape(B, T, -1)
        out["torch.stack(heads, dim=-1).reshape"] = torch.stack(heads, -1).reshape(B, T, -1)
    return out


def _multihead_probe(cls, config, T, stand_ins=True):
    module = _build("multihead", cls, config, stand_ins)
    x = _randn(torch.Generator().manual_seed(5), 2, T, config["n_embd"])
    n = len(getattr(module, "heads", ()))
    with _traced(module, _parts("multihead", module)) as trace:
        out, crash = _forward(module, x)
    head_calls = [trace.of(f"head{i}") for i in range(n)]
    inside = any(c.role.startswith("inside") for c in trace.calls) and not any(head_calls)
    joins = _joins([c.output if c is not None else None for c in head_calls], x)
    found = []
    for i, call in enumerate(head_calls):
        if call is not None and not _close(call.input, x):
            found.append(("wrong_input", f"self.heads[{i}] получает не x"))
    projs = [c for c in trace.calls if c.role == "proj"]
    if projs:
        name, keys = _first_match(projs[0].input, MULTIHEAD_JOIN, joins)
        if keys is not None:
            found += [(key, "") for key in keys]
            joins["join"] = joins[name]
        elif not inside:
            found.append(("wrong_input", "self.proj получает не конкатенацию выходов голов"))
        if len(projs) > 1 and _close(projs[1].input, projs[0].output):
            found.append(("proj_twice", ""))
    error = trace.error()
    if error is not None:
        return _Result(found, error, inside)
    if crash is not None or not torch.is_tensor(out):
        return _Result(found, crash, inside) if crash is not None or found else _output_result(out, crash, [])
    candidates = {"proj": projs[-1].output if projs else None}
    if not projs:  # self.proj applied as F.linear(..., self.proj.weight, self.proj.bias)?
        name, keys = _first_match(_preimage(out, module.proj), MULTIHEAD_JOIN, joins)
        if keys is not None:
            return _Result(found + [(key, "") for key in keys], None, inside)
    if "join" not in joins:
        joins["join"] = joins.get("torch.cat(heads, dim=-1)")
    candidates["join"] = joins["join"]
    for name in ("proj", "join"):
        if candidates[name] is not None and candidates[name].shape == x.shape:
            candidates["x + " + name] = x + candidates[name]
    if candidates["proj"] is not None:
        for name, activation in (("relu", F.relu), ("gelu", F.gelu), ("tanh", torch.tanh)):
            candidates[f"{name}(proj)"] = activation(candidates["proj"])
    name, keys = _first_match(out, MULTIHEAD_OUTPUT, candidates)
    if keys is not None:
        found += [(key, "") for key in keys if key not in [k for k, _ in found]]
    elif not inside and not found:
        found.append(("wrong_output", ""))
    return _output_result(out, None, found, x.shape) if not inside else _Result(found, None, True)


# ---------------------------------------------------------------- FeedFoward

FEEDFORWARD_HIDDEN = {  # what the second linear layer receives: {expression: keys}
    "relu(lin1)": (), "lin1": ("no_relu",), "gelu(lin1)": ("gelu_instead_of_relu",),
    "gelu_tanh(lin1)": ("gelu_instead_of_relu",), "tanh(lin1)": ("activation_not_relu",),
    "sigmoid(lin1)": ("activation_not_relu",), "silu(lin1)": ("activation_not_relu",),
    "leaky_relu(lin1)": ("activation_not_relu",), "elu(lin1)": ("activation_not_relu",),
}
FEEDFORWARD_OUTPUT = {  # what forward returns: {expression: keys}
    "lin2": (), "relu(lin2)": ("relu_at_end",), "x + lin2": ("extra_residual",),
    "x + relu(lin2)": ("relu_at_end", "extra_residual"), "x": ("identity",),
    "relu(lin1)": ("no_second_linear",), "relu(lin1)[..., :n_embd]": ("no_second_linear",),
}


def _feedforward_probe(cls, config, T, stand_ins=True):
    module = _build("feedforward", cls, config)
    x = _randn(torch.Generator().manual_seed(5), 2, T, config["n_embd"])
    with _traced(module, _parts("feedforward", module)) as trace:
        out, crash = _forward(module, x)
    lin1, lin2 = trace.of("lin1"), trace.of("lin2")
    found = []
    if lin1 is not None and not _close(lin1.input, x):
        found.append(("wrong_input", "self.net[0] получает не x"))
    lin1s = [c for c in trace.calls if c.role == "lin1"]
    if len(lin1s) > 1 and lin2 is not None and _close(lin1s[1].input, lin2.output):
        found.append(("net_twice", ""))   # self.net(self.net(x))
    values = {"x": x}
    if lin1 is not None and lin1.output is not None:
        h = lin1.output
        values.update({"lin1": h, "relu(lin1)": F.relu(h), "gelu(lin1)": F.gelu(h),
                       "gelu_tanh(lin1)": F.gelu(h, approximate="tanh"), "tanh(lin1)": torch.tanh(h),
                       "sigmoid(lin1)": torch.sigmoid(h), "silu(lin1)": F.silu(h),
                       "leaky_relu(lin1)": F.leaky_relu(h), "elu(lin1)": F.elu(h)})
        values["relu(lin1)[..., :n_embd]"] = F.relu(h)[..., :x.shape[-1]]
    if lin2 is not None:
        _, keys = _first_match(lin2.input, FEEDFORWARD_HIDDEN, values)
        if keys is None:
            found.append(("wrong_input", "второй линейный слой self.net[2] получает не ReLU от первого"))
        found += [(key, "") for key in keys or ()]
        if lin2.output is not None:
            y = lin2.output
            values.update({"lin2": y, "relu(lin2)": F.relu(y), "x + lin2": x + y, "x + relu(lin2)": x + F.relu(y)})
    if trace.error() is not None or crash is not None or not torch.is_tensor(out):
        return _Result(found, trace.error() or crash) if found or crash or trace.error() else \
            _output_result(out, crash, [])
    _, keys = _first_match(out, FEEDFORWARD_OUTPUT, values)
    if keys is not None:
        found += [(key, f"выход формы {tuple(out.shape)}" if out.shape != x.shape else "") for key in keys]
    elif not found and "lin2" in values:
        # self.net ran as the task says, and what forward returns is something made of its output
        found.append(("output_changed", _changed_output(out, values["lin2"])))
    elif not found and (lin1 or lin2):  # (self.net's layers applied functionally: nothing to follow)
        found.append(("wrong_output", ""))
    elif not found and isinstance(getattr(module, "net", None), nn.Module) \
            and not _close(out, _forward(module.net, x)[0]):   # no layer of self.net ran, and it shows
        found.append(("net_not_applied", ""))
    return _output_result(out, None, found, x.shape)


def _changed_output(out, y):
    """What was done to ``y`` to make ``out``, in words a student recognises, or ""."""
    if out.shape != y.shape:
        return f"выход формы {tuple(out.shape)} вместо {tuple(y.shape)}"
    if _close(out, F.layer_norm(y, y.shape[-1:])):
        return "к нему применён LayerNorm"
    factor = (out * y).sum() / (y * y).sum().clamp_min(1e-12)
    if _close(out, factor * y):
        return f"он умножен на {factor.item():.3g}"
    return ""


# --------------------------------------------------------------------- Block
#
# A block's data flow is compared as data: which sub-module got which sum of earlier
# results. Names: "x", a sub-module's result ("sa", "ln1"), its second call ("ln1#2").


class _Program:
    """Builds the expected trace of a block: {call: the set of names its input adds up}."""

    def __init__(self):
        self.calls = {}

    def call(self, role, terms):
        count = sum(name.split("#")[0] == role for name in self.calls)
        name = role if not count else f"{role}#{count + 1}"
        self.calls[name] = frozenset(terms)
        return {name}

    def sublayer(self, inp, base, layer, norm, residual, placement):
        if placement == "post":      # norm(base + layer(inp))
            y = self.call(layer, inp)
            return self.call(norm, base | y if residual else y)
        if placement == "pre":       # base + layer(norm(inp))
            y = self.call(layer, self.call(norm, inp))
            return base | y if residual else y
        if placement == "before":    # h = norm(inp); h + layer(h)
            h = self.call(norm, inp)
            y = self.call(layer, h)
            return h | y if residual else y
        y = self.call(layer, inp)    # no norm
        return base | y if residual else y


_PLACEMENT_KEYS = {"post": (), "pre": ("pre_norm",), "before": ("norm_before_residual",), "none": ("no_layernorm",)}


def _block_programs():
    """Post-norm and each known deviation as (keys, {call: input}, output): the task as data."""
    programs = []
    # ``norms``: the LayerNorm after the first and after the second sublayer. They are swapped
    # when sa's is not ln1 or ffwd's not ln2, whichever comes first: ln2(x + ffwd(x)) then
    # ln1(x + sa(x)) has only its order wrong.
    for order_keys, (first, second), swapped in (((), ("sa", "ffwd"), "ln2 ln1"),
                                                 (("ffwd_first",), ("ffwd", "sa"), "ln1 ln2")):
        for norm1, norm2 in itertools.product(_PLACEMENT_KEYS, repeat=2):
            for r1, r2, norms, flow in itertools.product((True, False), (True, False),
                                                         ("ln1 ln2", "ln1 ln1", "ln2 ln1"),
                                                         ("ok", "parallel", "residual_from_input")):
                if ("none" in (norm1, norm2) and norms != "ln1 ln2") or (flow != "ok" and (norm1, norm2) != ("post", "post")) \
                        or (flow == "residual_from_input" and not r2):
                    continue
                n1, n2 = norms.split()
                keys = order_keys + _PLACEMENT_KEYS[norm1] + tuple(
                    k for k in _PLACEMENT_KEYS[norm2] if k not in _PLACEMENT_KEYS[norm1])
                keys += {(False, False): ("no_residual",), (False, True): ("no_sa_residual",),
                         (True, False): ("no_ffwd_residual",)}.get((r1, r2), ())
                keys += {"ln1 ln1": ("same_layernorm",), swapped: ("layernorms_swapped",)}.get(norms, ())
                keys += {"parallel": ("parallel_branches",), "residual_from_input": ("residual_from_input",)}.get(flow, ())
                program = _Program()
                h = program.sublayer({"x"}, {"x"}, first, n1, r1, norm1)
                inp = {"x"} if flow == "parallel" else h
                base = {"x"} if flow == "residual_from_input" else h
                out = program.sublayer(inp, base, second, n2, r2, norm2)
                programs.append((keys, program.calls, frozenset(out)))
    return sorted(programs, key=lambda p: len(p[0]))


BLOCK_PROGRAMS = _block_programs()  # BLOCK_PROGRAMS[0] is the task: ln1(x + sa(x)), then ln2(. + ffwd(.))


def _block_probe(cls, config, T, stand_ins=True):
    module = _build("block", cls, config, stand_ins)
    x = _randn(torch.Generator().manual_seed(5), 2, T, config["n_embd"])
    with _traced(module, _parts("block", module)) as trace:
        out, crash = _forward(module, x)
    error = trace.error()
    if crash is not None or error is not None or not torch.is_tensor(out):
        return _output_result(out, error or crash, [])
    if tuple(out.shape) != tuple(x.shape):
        return _output_result(out, None, [], x.shape)
    values, observed = {"x": x}, {}
    norms = {"ln1": module.ln1, "ln2": module.ln2}
    for call in trace.calls + [None]:
        tensor = out if call is None else call.input
        terms = _sum_of(tensor, values)
        if terms is None:  # a LayerNorm applied as F.layer_norm with its weight and bias?
            for role, norm in norms.items():
                source = next((s for s in _subsets(values) if _normalised_by(tensor, _add(values, s), norm)), None)
                if source is not None:
                    name = role if role not in {n.split("#")[0] for n in observed} else f"{role}#2"
                    observed[name] = source
                    values[name] = tensor
                    terms = frozenset({name})
                    break
        if call is None:
            observed_out = terms
        else:
            observed[call.name] = terms
            values[call.name] = call.output
    for keys, calls, expected_out in BLOCK_PROGRAMS:
        if calls == observed and expected_out == observed_out:
            return _Result([(key, "") for key in keys])
    with torch.no_grad():   # an unusual flow (a sub-module called twice for one value) with the task's result
        h = module.ln1(x + module.sa(x))
        if _close(out, module.ln2(h + module.ffwd(h))):
            return _Result([])
    return _Result([_block_first_wrong_step(observed, observed_out)])


def _subsets(values, max_terms=2):
    names = [n for n, v in values.items() if torch.is_tensor(v)]
    for size in range(1, max_terms + 1):
        yield from (frozenset(c) for c in itertools.combinations(names, size))


def _add(values, names):
    parts = [values[n] for n in sorted(names)]
    return sum(parts[1:], parts[0])


_BLOCK_CODE = {"sa": "self.sa", "ffwd": "self.ffwd", "ln1": "self.ln1", "ln2": "self.ln2"}


def _expression(terms, calls, depth=0):
    """Python-like text of a sum of named results, e.g. 'x + self.sa(x)'."""
    if terms is None:
        return "неизвестно что"
    parts = []
    for name in sorted(terms, key=lambda n: (n != "x", n)):
        if name == "x" or depth > 3:
            parts.append(name)
        else:
            parts.append(f"{_BLOCK_CODE[name.split('#')[0]]}({_expression(calls.get(name), calls, depth + 1)})")
    return " + ".join(parts)


def _block_first_wrong_step(observed, observed_out):
    """(key, detail) of the first step of the task's block whose input differs from what it gets."""
    _, expected, expected_out = BLOCK_PROGRAMS[0]
    for name, terms in list(expected.items()) + [("out", expected_out)]:
        got = observed_out if name == "out" else observed.get(name)
        if got == terms:
            continue
        want = _expression(terms, expected)
        if name == "out":
            if got is None:  # not a sum of what the block computed (2 * x, x * sa(x), ...)
                return "wrong_output", f"forward возвращает не {want}"
            return "wrong_output", f"forward возвращает {_expression(got, observed)}, а по заданию — {want}"
        if name not in observed:
            return "wrong_input", f"{_BLOCK_CODE[name]} не вызывается, а по заданию получает {want}"
        if got is None:
            return "wrong_input", f"{_BLOCK_CODE[name]} получает не {want}"
        return "wrong_input", f"{_BLOCK_CODE[name]} получает {_expression(got, observed)}, а по заданию — {want}"
    return "wrong_output", ""


# ------------------------------------------------------------------ GPTModel
#
# GPTModel's data flow as data: the stages from idx to lm_head's input, what each one's
# result is called, and the mistake when a stage is skipped.
GPT_STAGES = (
    ("tok", "эмбеддинги токенов self.token_embedding_table(idx)", None),
    ("pos", "tok_emb + pos_emb", "no_positional"),
    ("blocks", "выход self.blocks", "blocks_not_applied"),
    ("ln_f", "выход self.ln_f", "no_final_layernorm"),
)
GPT_SKIPPED = {"pos": "позиционные эмбеддинги", "blocks": "self.blocks", "ln_f": "self.ln_f"}
GPT_CONSUMER = {"ln_f": "self.lm_head", "blocks": "self.ln_f", "pos": "первый блок self.blocks"}


def _gpt_probe(cls, config, T, stand_ins=True):
    """Logits with and without targets, the loss, the positions: [(key, detail[, where])] for one T."""
    module = _build("gpt_model", cls, config, stand_ins)
    gen = torch.Generator().manual_seed(5)
    B, V = 2, config["vocab_size"]
    idx = torch.randint(V, (B, T), generator=gen)
    targets = torch.randint(V, (B, T), generator=gen)
    found, logits_of = [], {}
    for with_targets in (True, False):
        with _traced(module, _parts("gpt_model", module)) as trace:
            result, crash = _forward(module, idx, targets) if with_targets else _forward(module, idx)
        tok = trace.of("tok")
        if with_targets and tok is not None and torch.is_tensor(tok.input) and tok.input.shape == targets.shape \
                and bool((tok.input == targets).all()):
            found.append(("logits_depend_on_targets", "в self.token_embedding_table переданы targets, а нужны idx"))
        pos = trace.of("pos")
        for key, detail in _positions_keys(pos.input if pos is not None else None, idx, config["n_ctx"]):
            if key not in [f[0] for f in found]:
                found.append((key, detail))
        crash = crash or trace.error()
        if crash is not None:
            return _Result(found, crash)
        if result is None:
            return _Result(found + [("no_return", "")])
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            return _Result(found + [("not_pair", f"forward вернул {type(result).__name__}")])
        logits, loss = result
        if harness.swapped_pair(logits, loss):
            return _Result(found + [("pair_swapped", "")])
        logits_of[with_targets] = logits
        flow = _gpt_flow(trace, module, idx, logits, with_targets)
        if with_targets:
            flow_with_targets = flow
            found += flow
            keys = {key for key, _ in flow}
            if not {"logits_last_only", "wrong_output"} & keys:
                # probabilities returned: the loss is judged against the logits they come from
                # (log p and the logits give the same cross-entropy)
                judged = logits.log() if "probabilities_returned" in keys and torch.is_tensor(logits) else logits
                found += _loss_keys(module, judged, loss, targets)
            continue
        if loss is not None:
            found.append(("loss_without_targets", "", AT_NO_TARGETS))
        found += [(key, detail, AT_NO_TARGETS) for key, detail in flow if key not in [f[0] for f in found]]
    if "logits_depend_on_targets" not in [f[0] for f in found] and _differ(*logits_of.values()):
        again, _ = _forward(module, idx)  # the same call twice gives the same logits: not random
        if isinstance(again, (tuple, list)) and len(again) == 2 and not _differ(again[0], logits_of[False]):
            # what the data flow saw with targets only is this mistake's consequence
            clean = not [f for f in found if len(f) > 2 and f[2] == AT_NO_TARGETS and f[0] in FLOW_KEYS]
            found = [("logits_depend_on_targets", "")] + [
                f for f in found if not (clean and f in flow_with_targets and f[0] in FLOW_KEYS)]
    return _Result(found)


FLOW_KEYS = {"wrong_input", "wrong_output"}  # what _gpt_flow says when it cannot name the step


def _differ(a, b):
    """Logits of one input that are not the same numbers (either may be flat)."""
    return torch.is_tensor(a) and torch.is_tensor(b) and a.numel() == b.numel() \
        and not _close(a.detach().reshape(-1), b.detach().reshape(-1))


def _positions_keys(positions, idx, n_ctx):
    """What self.position_embedding_table was given, against torch.arange(T)."""
    T = idx.shape[1]
    if positions is None or (positions.shape[-1:] == (T,) and bool((positions.reshape(-1, T) == torch.arange(T)).all())):
        return []
    if T < n_ctx and positions.shape[-1:] == (n_ctx,) and \
            bool((positions.reshape(-1, n_ctx) == torch.arange(n_ctx)).all()):
        return [("positions_n_ctx", "")]
    if positions.shape == idx.shape and bool((positions == idx).all()):
        return [("positions_wrong", "в self.position_embedding_table передан idx, а нужны позиции torch.arange(T)")]
    return [("positions_wrong", "")]


def _gpt_flow(trace, module, idx, logits, with_targets):
    """Follow the data flow back from the logits to the first wrong step: [(key, detail)].

    The logits must be lm_head's result; lm_head's input the end of GPT_STAGES, and
    each stage's input the stage before it. A link that skips one stage names that
    stage; one that skips several says what it gets instead (not each missing stage)."""
    if not torch.is_tensor(logits):
        return [("wrong_output", f"logits — это {type(logits).__name__}, а не тензор")]
    head = trace.of("lm_head")
    if head is None or head.output is None:  # lm_head applied as F.linear with its weights?
        head = _functional_call(logits, module.lm_head, idx.shape)
        if head is None:
            return []  # (lm_head's weights cannot be undone here: nothing to follow)
    L = head.output
    found = []
    last = L.dim() == 3 and L.shape[1] > 1 and (_close(logits, L[:, -1]) or _close(logits, L[:, -1:]))
    if _close(logits, L) or (with_targets and L.dim() == 3 and _close(logits, L.reshape(-1, L.shape[-1]))):
        pass
    elif last:
        found.append(("logits_last_only", ""))
    elif L.dim() == 3 and _close(logits, L.reshape(-1, L.shape[-1])):
        found.append(("flat_logits_without_targets", ""))
    elif _close(logits, F.softmax(L, -1)) or _close(logits, F.softmax(L, -1).reshape(-1, L.shape[-1])):
        found.append(("probabilities_returned", ""))
    else:
        return [("wrong_output", "logits — это не выход self.lm_head")]
    points = _gpt_points(trace, module, idx)
    blocks = [c for c in trace.calls if c.role.startswith("block")]
    ln_f = trace.of("ln_f")
    inputs = {"ln_f": head.input, "blocks": ln_f.input if ln_f is not None else None,
              "pos": blocks[0].input if blocks else None}
    order = [stage for stage, _, _ in GPT_STAGES]
    skip_key = {stage: key for stage, _, key in GPT_STAGES}
    expected = "ln_f"  # what lm_head should get; then what ln_f should get, ...
    got = inputs["ln_f"]
    while True:
        point, last_only = _which_point(got, points, order[:order.index(expected) + 1])
        if last_only and "logits_last_only" not in [k for k, _ in found]:
            found.append(("logits_last_only", ""))
        if point is None and expected in ("blocks", "ln_f") and _residual_around_blocks(got, blocks, len(module.blocks)):
            found += [("no_final_layernorm", "")] if expected == "ln_f" else []
            found.append(("residual_around_blocks", ""))
            expected, got = "pos", inputs["pos"]
            continue
        if point is None:
            return found + [("wrong_input", f"{GPT_CONSUMER[expected]} получает не {_stage_text(expected)}")]
        skipped = order[order.index(point) + 1:order.index(expected) + 1]
        if skipped == ["ln_f"] and ln_f is not None and blocks and _close(blocks[0].input, ln_f.output):
            found.append(("final_layernorm_misplaced", ""))   # ln_f before the blocks: follow its input
            inputs["pos"] = ln_f.input
        elif len(skipped) == 1:
            found.append((skip_key[skipped[0]], ""))
        elif skipped:
            found.append(("wrong_input", f"{GPT_CONSUMER[expected]} получает {_stage_text(point)}, а по заданию — "
                                         f"{_stage_text(expected)}: пропущены " + ", ".join(GPT_SKIPPED[s] for s in skipped)))
        if point in ("tok", "pos"):
            return found
        if point == "blocks" and (len(blocks) != len(module.blocks) or not _chained(blocks)
                                  or [c.role for c in blocks] != [f"block{i}" for i in range(len(module.blocks))]):
            found.append(("blocks_not_applied", "применены не все блоки self.blocks, по одному разу и по порядку"))
        expected = order[order.index(point) - 1]
        got = inputs[expected]


def _chained(blocks):
    """True when each recorded block got the output of the one before it."""
    return all(_close(after.input, before.output) for before, after in zip(blocks, blocks[1:]))


def _residual_around_blocks(got, blocks, n_blocks):
    """True when ``got`` (what ln_f gets) is the blocks' input plus their output: each block
    given x + block(x) of the one before (``x = x + block(x)`` in a loop), or
    ``x + self.blocks(x)`` once around them all."""
    def plus(a, b):
        return a + b if torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape else None

    if len(blocks) != n_blocks or not blocks:
        return False
    if _chained(blocks):
        return _close(got, plus(blocks[0].input, blocks[-1].output))
    return all(_close(after.input, plus(before.input, before.output)) for before, after in zip(blocks, blocks[1:])) \
        and _close(got, plus(blocks[-1].input, blocks[-1].output))


def _functional_call(logits, linear, shape):
    """A stand-in record of ``linear`` applied functionally, as the input that gives ``logits``
    (with its bias, or without: then unused_parameter names it), or None."""
    if not torch.is_tensor(logits) or logits.numel() != shape[0] * shape[1] * linear.out_features:
        return None
    L = logits.detach().reshape(*shape, linear.out_features)
    for bias in (True, False):
        before = _preimage(L, linear, bias)
        if before is None:
            return None
        if _close(L.double(), before @ linear.weight.detach().double().T
                  + (linear.bias.detach().double() if bias and linear.bias is not None else 0.0), 1e-3):
            call = _Call("lm_head", "lm_head", before.float())
            call.output = L
            return call
    return None


def _gpt_points(trace, module, idx):
    """{stage: [tensors its result may be]} from the recorded calls (and the tables' rows)."""
    T = idx.shape[1]
    tok, pos, ln_f = trace.of("tok"), trace.of("pos"), trace.of("ln_f")
    toks = [tok.output] if tok is not None and tok.output is not None else []
    table = module.position_embedding_table.weight.detach()
    positions = [pos.output] if pos is not None and pos.output is not None else []
    positions += [table[:T]] if T <= table.shape[0] else []
    sums = []
    for t in toks:
        sums += [t + p for p in positions if _broadcast_shape(t.shape, p.shape) == tuple(t.shape)]
    blocks = [c for c in trace.calls if c.role.startswith("block")]
    return {"tok": toks, "pos": sums, "blocks": [blocks[-1].output] if blocks else [],
            "ln_f": [ln_f.output] if ln_f is not None and ln_f.output is not None else []}


def _stage_text(stage):
    return next(text for name, text, _ in GPT_STAGES if name == stage)


def _which_point(t, points, allowed):
    """(the latest stage among ``allowed`` whose result is ``t``, whether only its last
    position), or (None, False)."""
    if not torch.is_tensor(t):
        return None, False
    for stage in reversed(allowed):
        for value in points.get(stage, []):
            if value is None:
                continue
            if _close(t, value):
                return stage, False
            if value.dim() == 3 and value.shape[1] > 1 and (_close(t, value[:, -1]) or _close(t, value[:, -1:])):
                return stage, True
    return None, False


def _loss_keys(module, logits, loss, targets):
    """The loss against the cross-entropy of the logits the same forward returned
    (``gpt_harness.loss_form``, which the grader uses too)."""
    if loss is None:
        return [("no_loss", "")]
    if not torch.is_tensor(loss):
        return [("loss_not_tensor", f"loss типа {type(loss).__name__}")]
    if loss.numel() != 1:
        return [("loss_not_scalar", f"loss формы {tuple(loss.shape)}")]
    form = harness.loss_form(loss, logits, targets)
    if form is None:
        return [("wrong_loss", "")]
    if form:
        return [(form, "")]
    if _loss_reaches_parameters(module, loss):
        return []
    if loss.requires_grad and module.token_embedding_table.weight.grad is not None:
        return [("unused_parameter", "self.lm_head не участвует в вычислении логитов")]  # the embedding's weight
    return [("no_grad", "")]


def _loss_reaches_parameters(module, loss):
    """True when ``loss.backward()`` reaches lm_head and the token embeddings of ``module``."""
    if not loss.requires_grad:
        return False
    loss.backward()
    return module.lm_head.weight.grad is not None and module.token_embedding_table.weight.grad is not None


def _generate_check(cls, config, findings):
    module = _build("gpt_model", cls, config, not findings.own_deps)
    idx = torch.randint(config["vocab_size"], (1, 2), generator=torch.Generator().manual_seed(2))
    try:
        with torch.no_grad():
            generated = module.generate(idx, 3)
    except Exception as exc:
        if {"exception", "transpose_all_axes", *_WHOLE} & set(findings.keys()):
            return
        detail = findings.crash_text(exc, "generate")
        line = _student_line(exc, findings.cls)
        if line and any(line in f["message"] for f in findings.items):
            return  # the same failure as forward's, already named by its cause
        explained = [f for f in findings.items if f["key"] in ("logits_last_only", "flat_logits_without_targets")]
        if explained:
            explained[0]["message"] += f" ({detail})"
        else:
            findings.add("generate_broken", AT_GENERATE, detail)
        return
    if not torch.is_tensor(generated) or tuple(generated.shape) != (1, 5):
        findings.add("generate_broken", AT_GENERATE)


# ------------------------------------------------------ scenarios and checks

PROBES = {"head": _head_probe, "multihead": _multihead_probe, "feedforward": _feedforward_probe,
          "block": _block_probe, "gpt_model": _gpt_probe}


def _probe(task, cls, config, T, stand_ins):
    """The probe's result; a dependent class whose forward reaches into its parts, or that fails
    with stand-ins for no known reason, is probed with its own classes (the stand-ins lack
    those insides)."""
    result = PROBES[task](cls, config, T, stand_ins)
    known = [key for key in result.keys() if key not in GENERIC_KEYS]
    vague = not known and (result.crash is not None or result.found)
    if stand_ins and DEPENDENCIES[task] and (result.inside or vague):
        try:
            own = PROBES[task](cls, config, T, False)
        except Exception as exc:  # the class cannot be built with its own classes (e.g. not imported)
            own = _Result(crash=exc)
        if own.inside or not (own.found or own.crash is not None):
            return own, True
        if result.crash is not None and own.crash is not None and not isinstance(own.crash, NameError):
            return own, False  # with its own classes it fails too: show that error
    return result, False


def _scenario(task, cls, config, T, where, findings, first=False):
    """Probe one scenario and add what it finds; later scenarios add only specific mistakes."""
    if task == "head" and T == 1:
        result, own = _head_short(cls, config), False
    else:
        result, own = _probe(task, cls, config, T, not findings.own_deps)
    if first:
        findings.own_deps = own
    found = result.found
    if findings.items:  # generic words only while nothing specific is known
        found = [f for f in found if f[0] not in GENERIC_KEYS]
        if not found and (not first or result.crash is None):
            return
    findings.add_all(found, where, result.crash)


def _check_head(cls, config, findings):
    hs, n_ctx = config["head_size"], config["n_ctx"]
    T = max(2, min(hs - 2, n_ctx - 1, 12))
    result = _head_probe(cls, config, T)
    if result.crash is not None and T < n_ctx:
        # a mask of n_ctx x n_ctx fails for T < n_ctx: with n_ctx = T the rest can be checked
        retry = _head_probe(cls, dict(config, n_ctx=T), T)
        if retry.crash is None:
            findings.add("mask_not_sliced", AT_SHORT, _student_line(result.crash, cls))
            findings.sizes = {"n_ctx": T}
            result = retry
    findings.add_all(result.found, AT_NOTEBOOK, result.crash)
    _later_scenarios("head", cls, config, findings)


def _later_scenarios(task, cls, config, findings):
    """Other sizes, T < n_ctx and T = 1: specific mistakes they show are added; generic ones
    only while nothing is known."""
    short = max(2, config["n_ctx"] // 2 - 1)
    other_T = OTHER_CONFIG["n_ctx"] - 3 if task == "head" else OTHER_CONFIG["n_ctx"]
    scenarios = [(AT_OTHER, OTHER_CONFIG, other_T), (AT_T1, config, 1)]
    if task != "head":
        scenarios.insert(0, (AT_SHORT, config, short))
    for where, cfg, T in scenarios:
        if _WHOLE & set(findings.keys()):
            return
        _scenario(task, cls, cfg, T, where, findings)


def _random_in_eval(task, cls, config):
    """True when two forwards of the class in eval mode on one input give different outputs (a
    dropout made inside forward, or ``F.dropout`` without ``training=self.training``)."""
    module = _build(task, cls, config)
    x = _full_length_input(task, config, torch.Generator().manual_seed(23))
    outputs = []
    with torch.no_grad():
        for _ in range(2):
            out, crash = _forward(module, x)
            out = out[0] if isinstance(out, (tuple, list)) and out else out
            if crash is not None or not torch.is_tensor(out) or not out.is_floating_point():
                return False
            outputs.append(out)
    return not _close(*outputs)


# what the whole forward does wrong: nothing further is checked after it
_WHOLE = {"not_implemented", "no_return", "not_pair", "pair_swapped", "weights_returned"}


def _check(task):
    def check(cls, config, findings):
        _unused_parameters(task, cls, config, findings)
        if _random_in_eval(task, cls, config):   # every output differs: what it shows is chance
            findings.add("random_in_eval", AT_NOTEBOOK)
            if TASK_TABLE[task]["dropout"]:
                _dropout_check(task, cls, config, findings)
            return
        if task == "head":
            _check_head(cls, config, findings)
        else:
            _scenario(task, cls, config, config["n_ctx"], AT_NOTEBOOK, findings, first=True)
            _later_scenarios(task, cls, config, findings)
        if _WHOLE & set(findings.keys()):
            return
        if TASK_TABLE[task]["dropout"]:
            _dropout_check(task, cls, dict(config, **findings.sizes), findings)
        if TASK_TABLE[task]["language_model"]:
            _generate_check(cls, config, findings)
        _grad_check(task, cls, config, findings)
        if TASK_TABLE[task]["language_model"] and not findings.items:
            _train_loss_check(cls, config, findings)
    return check


CHECKS = {task: _check(task) for task in TASKS}


# ------------------------------------------------------------------- dropout


def _dropout_check(task, cls, config, findings):
    """Dropout by its signature: in train mode every entry of what is dropped (Head: the
    attention weights, read off the output; otherwise the output) is 0 or its eval value
    / (1 - p), zeros at rate p; none in eval mode. Head: the rest of the output must be
    those same dropped weights times v (else the dropout sits on the output or on v)."""
    stand_ins = not findings.own_deps
    try:
        if task == "head":
            T = max(2, min(config["head_size"] - 2, config["n_ctx"] - 1, 12))
            base, weights, x = _head_module(cls, config, T)
            module, _, _ = _head_module(cls, config, T, DROPOUT)
        else:
            base = _build(task, cls, config, stand_ins)
            module = _build(task, cls, dict(config, dropout=DROPOUT), stand_ins)
            module.load_state_dict(base.state_dict(), strict=False)
            x = _randn(torch.Generator().manual_seed(11), 2, config["n_ctx"], config["n_embd"])
        # a sub-module that fails (a mistake already named) is isolated, so dropout is still checked
        with torch.no_grad(), _traced(base, _parts(task, base), False), _traced(module, _parts(task, module), False):
            want = base(x)
            if not torch.is_tensor(want):
                return
            if not _close(module(x), want):
                findings.add("dropout_in_eval", AT_EVAL_DROPOUT)
                return
            module.train()
            outs = []
            for i in range(DROPOUT_REPEATS):
                harness.seed(1000 + i)
                outs.append(module(x))
    except Exception as exc:  # the student's forward fails in train mode: named, with its line
        line = _student_line(exc, findings.cls)
        if not (line and any(line in f["message"] for f in findings.items)):  # not a failure named already
            findings.add("dropout_error", AT_TRAIN, findings.crash_text(exc))
        return
    if not all(torch.is_tensor(o) and o.shape == want.shape for o in outs):
        findings.add("dropout_error", AT_TRAIN)
        return
    stack = torch.stack(outs).double()
    if "extra_residual" in findings.keys():  # x + dropout(...): its signature is on what is added to x
        stack, want = stack - x.double(), want - x
    if task == "head":
        undefined = ~torch.isfinite(want)  # NaN or inf in eval too: a mistake named already
        if bool(undefined.any()):
            if not bool((~torch.isfinite(stack) == undefined).all()):
                return  # they move with dropout (no softmax): nothing to say of the dropout
            stack, want = stack.masked_fill(undefined, 0.0), want.masked_fill(undefined, 0.0)
        T = x.shape[1]
        v_rest = (x @ weights["value"].T)[..., T:].double()
        verdict = harness.dropout_pattern(stack[..., :T], want[..., :T], DROPOUT)
        if {"value_is_key", "value_is_query", "no_value_projection"} & set(findings.keys()):
            # the weights times what is not v (named already): the output does not show them
            verdict = "none" if verdict == "none" else "dropout"
        elif verdict == "dropout" and not _close(stack[..., T:], stack[..., :T] @ v_rest, 1e-3):
            rest = harness.dropout_pattern(stack[..., T:], want[..., T:], DROPOUT)
            verdict = "on_output" if rest == "dropout" else "elsewhere"
    else:
        verdict = harness.dropout_pattern(stack, want, DROPOUT, exact=stand_ins)
        if verdict == "other" and findings.items:
            return  # the output is wrong already (named): where dropout sits inside it does not show
    key = {"none": "no_dropout", "on_output": "dropout_on_output", "elsewhere": "dropout_wrong",
           "other": "dropout_wrong"}.get(verdict)
    if key:
        findings.add(key, AT_TRAIN)


# ---------------------------------------------------------------- gradients


def _backward(task, module, config, gen):
    """(x, out, weights of out) after a backward pass of one forward, or None if it fails."""
    x = _full_length_input(task, config, gen)
    if x.is_floating_point():
        x.requires_grad_(True)
    out, crash = _forward(module, x)
    if isinstance(out, (tuple, list)) and out:
        out = out[0]
    if crash is not None or not torch.is_tensor(out) or not out.is_floating_point():
        return None
    w = _randn(gen, *out.shape)
    if out.requires_grad:
        (out * w).sum().backward()
    return x, out, w


def _full_length_input(task, config, gen):
    """A batch of two inputs of n_ctx positions: token ids for a language model, else vectors."""
    if TASK_TABLE[task]["language_model"]:
        return torch.randint(config["vocab_size"], (2, config["n_ctx"]), generator=gen)
    return _randn(gen, 2, config["n_ctx"], config["n_embd"])


def _own_parameters(module):
    """The parameters of the class's own sub-modules (not of the course classes it builds)."""
    return {name: p for name, p in module.named_parameters()
            if p.requires_grad and name.split(".")[0] not in ("heads", "sa", "ffwd", "blocks")}


def _unused_parameters(task, cls, config, findings):
    """A sub-module the forward uses only in part (``F.linear(x, self.lm_head.weight)``
    leaves the bias out): named first, since what follows from it is an effect."""
    try:
        module = _build(task, cls, config)
    except Exception as exc:
        if not _student_line(exc, findings.cls):
            raise  # not the class's own failure: the self-check's, said as such by diagnose
        return  # the class's __init__ fails: the scenarios name it
    done = _backward(task, module, config, torch.Generator().manual_seed(17))
    if done is None or not done[1].requires_grad:
        return
    own = _own_parameters(module)
    used = {name.rsplit(".", 1)[0] for name, p in own.items() if p.grad is not None}
    partly = [name for name, p in own.items() if p.grad is None and name.rsplit(".", 1)[0] in used]
    if partly:
        findings.add("unused_parameter", AT_NOTEBOOK, ", ".join("self." + name for name in partly))


def _grad_check(task, cls, config, findings):
    """Gradients reach the input and every parameter of the class's own sub-modules, and
    agree with finite differences of forward."""
    if findings.items:
        return
    gen = torch.Generator().manual_seed(13)
    module = _build(task, cls, config, not findings.own_deps)
    done = _backward(task, module, config, gen)
    if done is None:
        return
    x, out, w = done
    if not out.requires_grad:
        findings.add("no_grad", AT_NOTEBOOK)
        return
    if (x.is_floating_point() and x.grad is None) or any(p.grad is None for p in _own_parameters(module).values()):
        findings.add("no_grad", AT_NOTEBOOK)
        return
    if not x.is_floating_point():
        return
    d = _randn(gen, *x.shape).double()
    xd, eps = x.detach().double(), 1e-6
    module.double()
    with torch.no_grad():
        (plus, crash), (minus, _) = _forward(module, xd + eps * d), _forward(module, xd - eps * d)
    if crash is not None or not torch.is_tensor(plus) or plus.dtype != torch.float64:
        return  # forward casts to float32: no precise finite differences
    numeric = ((plus - minus) * w.double()).sum() / (2 * eps)
    analytic = (x.grad.double() * d).sum()
    if abs(numeric - analytic) > 1e-3 * max(abs(numeric), abs(analytic)) + 1e-4:
        findings.add("wrong_grad", AT_NOTEBOOK)


def _train_loss_check(cls, config, findings):
    """In train mode, as the training loop runs it, the loss too reaches lm_head and the
    embeddings (the checks before ran in eval mode: ``if self.training: loss = loss.detach()``),
    and, at dropout 0, the logits are eval mode's (not a dropout of its own, ``p=0.1``)."""
    module = _build("gpt_model", cls, config, not findings.own_deps).train()
    gen = torch.Generator().manual_seed(19)
    idx, targets = (torch.randint(config["vocab_size"], (2, config["n_ctx"]), generator=gen) for _ in range(2))
    result, crash = _forward(module, idx, targets)
    if crash is not None or not isinstance(result, (tuple, list)) or len(result) != 2:
        return  # what fails here fails in eval mode too, named there (or is beyond this check)
    logits, loss = result
    if config.get("dropout") == 0 and torch.is_tensor(logits):   # then train mode computes what eval mode does
        with torch.no_grad():
            evaluated, crash = _forward(module.eval(), idx, targets)
        module.train()
        if crash is None and isinstance(evaluated, (tuple, list)) and len(evaluated) == 2 \
                and torch.is_tensor(evaluated[0]) and not _close(logits, evaluated[0]):
            findings.add("train_differs", AT_TRAIN_MODE)
    if not (torch.is_tensor(loss) and loss.numel() == 1 and loss.is_floating_point()):
        return
    if not _loss_reaches_parameters(module, loss):
        findings.add("no_grad", AT_TRAIN_MODE, "loss не передаёт градиент")


# ----------------------------------------------------------------- findings


class _Findings:
    def __init__(self, task, cls=None):
        self.task, self.cls, self.items = task, cls, []
        self.own_deps = False  # the class is probed with its own dependencies, not stand-ins
        self.sizes = {}        # sizes that avoid a failure already named (Head: n_ctx = T)

    def keys(self):
        return [f["key"] for f in self.items]

    def add(self, key, where, detail=""):
        if key in self.keys():
            return
        message = MESSAGES[self.task][key] + (f" ({detail})" if detail else "")
        self.items.append({"key": key, "message": message, "where": where})

    def add_all(self, found, where, crash=None):
        """Add ``found`` [(key, detail[, where])]; a crash is named by the first of them, else by itself."""
        if crash is not None and harness.unwritten(crash):
            self.add("not_implemented", where)
            return
        if crash is not None and not [f for f in found if f[0] not in GENERIC_KEYS]:
            self.crash(crash, where)
            return
        if crash is not None:
            key, detail, *rest = found[0]
            found = [(key, "; ".join(filter(None, [detail, self.crash_text(crash)])), *rest)] + found[1:]
        for key, detail, *rest in found:
            self.add(key, rest[0] if rest else where, detail)

    def crash_text(self, exc, what="forward", line=None):
        """The error as Python says it (the kit and the grader put its known messages in Russian:
        ``gpt_errors.russian_text``) and the student's ``line`` (found if not given)."""
        text = f"{type(exc).__name__}: {exc}".split("\n")[0][:200]
        line = _student_line(exc, self.cls) if line is None else line
        if what != "forward":
            text = f"{what} падает: {text}"
        return text + (f"; {line}" if line else "")

    def crash(self, exc, where, what="forward"):
        if harness.unwritten(exc):
            self.add("not_implemented", where)
            return
        line = _student_line(exc, self.cls)
        transposed = isinstance(exc, RuntimeError) and re.search(r"\.T\b", line)   # k.T of a 3-d tensor
        self.add("transpose_all_axes" if transposed else "exception", where, self.crash_text(exc, what, line))


def _student_line(exc, cls):
    """'строка N: text' of the deepest frame in the student's class where ``exc`` passed, or ''.

    A failure isolated inside a sub-module (``_Trace``) carries the stack it was caught in."""
    if cls is None:
        return ""
    files = {value.__code__.co_filename for value in vars(cls).values() if hasattr(value, "__code__")}
    frames = getattr(exc, "selfcheck_stack", [])
    frames += [(frame.f_code.co_filename, lineno) for frame, lineno in traceback.walk_tb(exc.__traceback__)]
    found = ""
    for filename, lineno in frames:
        if filename in files:
            text = linecache.getline(filename, lineno).strip()
            found = f"строка {lineno}" + (f": {text}" if text else "")
    return found


# --------------------------------------------------------------------- build


def _build(task, cls, config, stand_ins=True, seed=1):
    """The student's class with stand-ins for its dependencies and random weights, in eval mode."""
    module = harness.build(cls, DEPENDENCIES[task], config, stand_ins=stand_ins)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() == 1 and "ln" in name:
                param.copy_(1.0 + 0.3 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.3 * torch.randn(param.shape, generator=gen))
    return module.eval()


def _randn(gen, *shape):
    return torch.randn(*shape, generator=gen)


class _Result:
    """What one probe of the class found: [(key, detail)], the student's crash, and whether
    its forward reaches into its parts' insides (then only its own classes can judge it)."""

    def __init__(self, found=(), crash=None, inside=False):
        self.found, self.crash, self.inside = list(found), crash, inside

    def keys(self):
        return [f[0] for f in self.found]


def _output_result(out, crash, found, expected_shape=None):
    """The usual ending: a crash, no return value, a non-tensor, or ``found``."""
    if crash is not None and not found:
        return _Result(crash=crash)
    if crash is None and out is None:
        return _Result([("no_return", "")])
    if crash is None and not torch.is_tensor(out):
        return _Result([("wrong_output", f"forward вернул {type(out).__name__}, а не тензор")])
    if expected_shape is not None and tuple(out.shape) != tuple(expected_shape) \
            and all(f[0] in GENERIC_KEYS for f in found):  # no cause known: the shape is all there is to say
        found = [("wrong_shape", f"ожидалась {tuple(expected_shape)}, получена {tuple(out.shape)}")]
    return _Result(found, crash)


# -------------------------------------------------------------------- trace


class _Call:
    """One call of a watched sub-module: what it got (``input``) and returned (``output``)."""

    def __init__(self, role, name, value):
        self.role, self.name, self.input, self.output, self.error = role, name, value, None, None


def _tensor(value):
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    return value.detach().clone() if torch.is_tensor(value) else None


class _Trace:
    """What one forward did to the watched sub-modules (``{role: attribute path}``), in order.

    A pre-hook records each call's input before it runs, so a call that fails is
    recorded too. A sub-module that fails is *isolated*: the failure is kept and a
    fixed random tensor of the shape it should return stands in for its result,
    so the rest of the forward still runs and can be checked (one mistake that
    crashes does not hide the others). A part's ``nn.Sequential`` body called on
    its own (``self.ffwd.net(x)``) counts as a call of the part.
    """

    def __init__(self, module, watched, record=True):
        self.calls, self._active, self._undo, self._count = [], [], [], {}
        for role, path in watched.items():
            sub = _submodule(module, path)
            if sub is None:
                continue
            self._watch(sub, role, body=False, record=record)
            for child in sub.children():
                if isinstance(child, nn.Sequential) and record:
                    self._watch(child, role, body=True, record=record)

    def _watch(self, sub, role, body, record):
        def enter(_, args):
            inside_part = body and self._active and getattr(self._active[-1][1], "role", None) == role
            call = None
            if not inside_part:  # the part's own body runs inside the part's call: not a call of its own
                count = self._count[role] = self._count.get(role, 0) + 1
                call = _Call(role, role if count == 1 else f"{role}#{count}", _tensor(args))
                self.calls.append(call)
            self._active.append((sub, call))

        def leave(_, args, out):
            while self._active:
                entered, call = self._active.pop()
                if entered is sub:
                    if call is not None and call.output is None:
                        call.output = _tensor(out)
                    return

        forward = sub.forward

        def isolated(*args, **kwargs):
            try:
                return forward(*args, **kwargs)
            except Exception as exc:  # the student's failure: kept, and the rest checked
                call = next((c for s, c in reversed(self._active) if s is sub), None)
                if call is None and record:
                    raise
                if call is not None:
                    call.error = exc
                    try:  # where the student's code called it (the traceback stops here)
                        exc.selfcheck_stack = [(f.filename, f.lineno) for f in traceback.extract_stack()]
                    except AttributeError:
                        pass
                return _stand_in_result(sub, args)

        if record:
            self._undo.append(sub.register_forward_pre_hook(enter).remove)
            self._undo.append(sub.register_forward_hook(leave).remove)
        if not body:
            sub.forward = isolated
            self._undo.append(lambda: sub.__dict__.pop("forward", None))

    def close(self):
        for undo in self._undo:
            undo()
        self._undo = []

    def of(self, role):
        """The first call of ``role`` (or None)."""
        return next((c for c in self.calls if c.role == role), None)

    def error(self):
        """The first failure inside a watched sub-module, or None."""
        return next((c.error for c in self.calls if c.error is not None), None)


def _submodule(module, path):
    for part in path.split("."):
        module = getattr(module, "_modules", {}).get(part)
        if module is None:
            return None
    return module


def _stand_in_result(sub, args):
    """A fixed random tensor of the shape ``sub`` returns, for a call that failed."""
    x = args[0] if args and torch.is_tensor(args[0]) else torch.zeros(1, 1, 1)
    if isinstance(sub, nn.Linear):
        shape = (*x.shape[:-1], sub.out_features)
    elif isinstance(sub, nn.Embedding):
        shape = (*x.shape, sub.embedding_dim)
    elif hasattr(sub, "query"):  # a Head
        shape = (*x.shape[:-1], sub.head_size)
    else:
        shape = (*x.shape[:-1], getattr(sub, "n_embd", x.shape[-1]))
    return torch.randn(shape, generator=torch.Generator().manual_seed(99))


def _parts(task, module):
    """The sub-modules of a task's class whose calls are recorded: {role: attribute path}."""
    if task == "head":
        return {"key": "key", "query": "query", "value": "value"}
    if task == "multihead":
        n = len(getattr(module, "heads", ()))
        parts = {f"head{i}": f"heads.{i}" for i in range(n)}
        parts.update({f"inside{i}.{p}": f"heads.{i}.{p}" for i in range(n) for p in ("key", "query", "value")})
        return {**parts, "proj": "proj"}
    if task == "feedforward":
        return {"lin1": "net.0", "lin2": "net.2"}
    if task == "block":
        return {name: name for name in ("sa", "ffwd", "ln1", "ln2")}
    parts = {"tok": "token_embedding_table", "pos": "position_embedding_table", "ln_f": "ln_f", "lm_head": "lm_head"}
    parts.update({f"block{i}": f"blocks.{i}" for i in range(len(getattr(module, "blocks", ())))})
    return parts


@contextlib.contextmanager
def _traced(module, watched, record=True):
    trace = _Trace(module, watched, record)
    try:
        yield trace
    finally:
        trace.close()


def _forward(module, *args):
    """(output, the student's exception or None)."""
    try:
        return module(*args), None
    except Exception as exc:
        return None, exc


# ---------------------------------------------------------------- relations


def _close(a, b, tol=1e-4):
    if not (torch.is_tensor(a) and torch.is_tensor(b)) or a.shape != b.shape or a.is_complex():
        return False
    a, b = a.detach().double(), b.detach().double()
    scale = max(1.0, b.abs().max().item() if b.numel() and torch.isfinite(b).all() else 1.0)
    return bool(torch.allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True))


def _broadcast_shape(*shapes):
    """The shape tensors of ``shapes`` add up to, or None (``torch.broadcast_shapes`` imports
    sympy on first use: half a second)."""
    result = []
    for dims in itertools.zip_longest(*(reversed(tuple(s)) for s in shapes), fillvalue=1):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        result.append(sizes.pop() if sizes else 1)
    return tuple(reversed(result))


def _sum_of(t, values, max_terms=3):
    """The fewest names of ``values`` whose tensors add up to ``t`` (a frozenset), or None."""
    if not torch.is_tensor(t):
        return None
    names = [n for n, v in values.items() if torch.is_tensor(v)]
    for size in range(1, max_terms + 1):
        for combo in itertools.combinations(names, size):
            parts = [values[n] for n in combo]
            if _broadcast_shape(*(p.shape for p in parts)) != tuple(t.shape):
                continue
            if _close(t, sum(parts[1:], parts[0])):
                return frozenset(combo)
    return None


def _normalised_by(t, s, norm):
    """True when ``t`` is ``s`` normalised over its last axis with ``norm``'s weight and bias.

    Read backwards: ``t`` with the bias taken off and divided by the weight must be
    ``s`` standardised (columns where the weight is about 0 say nothing and are skipped)."""
    if not (torch.is_tensor(t) and torch.is_tensor(s)) or t.shape != s.shape or not isinstance(norm, nn.LayerNorm):
        return False
    t, s = t.double(), s.double()
    weight = norm.weight.detach().double() if norm.weight is not None else torch.ones(t.shape[-1]).double()
    bias = norm.bias.detach().double() if norm.bias is not None else torch.zeros(t.shape[-1]).double()
    usable = weight.abs() > 0.05
    centred = s - s.mean(-1, keepdim=True)
    standard = centred / torch.sqrt(centred.pow(2).mean(-1, keepdim=True) + norm.eps)
    return _close(((t - bias) / torch.where(usable, weight, torch.ones_like(weight)))[..., usable],
                  standard[..., usable], 1e-3)


def _preimage(t, linear, bias=True):
    """The input ``linear`` would have needed to give ``t`` (least squares), or None."""
    if not (torch.is_tensor(t) and isinstance(linear, nn.Linear)) or t.shape[-1] != linear.out_features \
            or linear.out_features < linear.in_features:
        return None
    weight = linear.weight.detach().double()
    target = t.double() - (linear.bias.detach().double() if bias and linear.bias is not None else 0.0)
    flat = target.reshape(-1, weight.shape[0]).T
    return torch.linalg.lstsq(weight, flat).solution.T.reshape(*t.shape[:-1], weight.shape[1])


def _first_match(t, table, candidates):
    """The keys of the first entry of ``table`` ({name: keys}) whose candidate tensor is ``t``."""
    for name, keys in table.items():
        if _close(t, candidates.get(name)):
            return name, keys
    return None, None


# ------------------------------------------------------- python gpt_selfcheck.py


@contextlib.contextmanager
def _working_folder(folder):
    """``contextlib.chdir`` (Python 3.11) for Python 3.10."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def main(argv=None):
    """``python gpt_selfcheck.py [folder]``: diagnose every task notebook of the folder;
    ``python gpt_selfcheck.py --submit``: send them to the course's service (gpt_submit.py)."""
    argv = sys.argv[1:] if argv is None else argv
    if "--submit" in argv:  # send the saved notebooks to the course's service (gpt_submit.py)
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
        return __import__("gpt_submit").main([a for a in argv if a != "--submit"])
    folder = pathlib.Path(argv[0] if argv else ".").resolve()
    here = pathlib.Path(__file__).resolve().parent
    notebooks = [folder / f"{NOTEBOOK_OF_TASK[task]}.ipynb" for task in TASKS]
    if not any(path.is_file() for path in notebooks):
        hint = f"cd {here} && python gpt_selfcheck.py" if (here / notebooks[0].name).is_file() \
            else "python gpt_selfcheck.py ПАПКА_С_НОУТБУКАМИ"
        print(f"В папке {folder} нет ноутбуков задания ({notebooks[0].name} … {notebooks[-1].name}). "
              f"Запустите самопроверку в папке с ноутбуками: {hint}")
        return 2
    sys.path.insert(0, str(here))
    import gpt_course
    gpt_course.CHECK_EARLIER_STEPS = False  # each class is diagnosed here, not probed on import
    failed = 0
    for task, path in zip(TASKS, notebooks):
        if path.is_file():
            findings = _diagnose_notebook(task, path, folder, gpt_course)
        else:
            findings = [{"key": "class_missing", "message": f"нет ноутбука {path.name}", "where": AT_RUN}]
        print(report(task, findings))
        failed += bool(findings)
    return 1 if failed else 0


def _diagnose_notebook(task, path, folder, gpt_course):
    """The diagnosis of the task's class as the saved notebook ``path`` defines it."""
    name = CLASS_OF_TASK[task]
    try:
        with _working_folder(folder):  # the notebooks import each other by relative path
            cls = gpt_course.import_notebook(path, name)
    except (ImportError, OSError, ValueError) as exc:  # a cell fails (gpt_course says where), or no class
        detail = f"{exc}".split("\n")[0][:300]
        key = "syntax_error" if isinstance(exc, gpt_course.EarlierStepError) else "class_missing"
        return [{"key": key, "where": AT_RUN, "message": MESSAGES[task][key] + f" ({detail})"}]
    namespace = dict(cls.__init__.__globals__) if "__init__" in vars(cls) else {}
    namespace[name] = cls
    return diagnose(task, namespace, namespace.get("config"))


if __name__ == "__main__":
    sys.exit(main())
