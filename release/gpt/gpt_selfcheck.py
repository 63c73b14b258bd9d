"""Самопроверка заданий: что на самом деле делает ваш forward.

Запуск из последней ячейки ноутбука задания::

    from gpt_selfcheck import selfcheck
    selfcheck("head", globals())

или из терминала в папке с ноутбуками: ``python gpt_selfcheck.py [папка]``.

Проверка не знает скрытых тестов и эталонных ответов. Она запускает ваш класс
на своих открытых входах и сверяет его поведение с описанием задания:
для Head — управляемые числовые пробы (какие веса внимания получились, какой
масштаб применён, куда смотрит маска, по какой оси softmax, что умножается на
веса); для MultiHeadAttention, Block и GPTModel — какие подмодули какие
тензоры получили (их зависимости заменены простыми заменителями, поэтому
ошибка в другом задании не мешает). Находит все отклонения сразу.
"""
import contextlib
import inspect
import io
import linecache
import pathlib
import sys
import traceback

import torch
import torch.nn as nn
from torch.nn import functional as F

# The course's tasks, as the grader's table (autograder/course.py) has them: this file
# ships to students without the grader (tests/test_course.py keeps the two equal).
TASKS = ("head", "multihead", "feedforward", "block", "gpt_model")
CLASS_OF_TASK = {"head": "Head", "multihead": "MultiHeadAttention", "feedforward": "FeedFoward",
                 "block": "Block", "gpt_model": "GPTModel"}
NOTEBOOK_OF_TASK = {"head": "01_head", "multihead": "02_multihead_attention",
                    "feedforward": "03_feedforward", "block": "04_block", "gpt_model": "05_gpt_model"}
DEPENDENCIES = {"head": (), "multihead": ("Head",), "feedforward": (),
                "block": ("MultiHeadAttention", "FeedFoward"), "gpt_model": ("Block",)}

# The notebook's config (00_data; vocab_size of the course corpus) and another one.
NOTEBOOK_CONFIG = dict(n_ctx=32, n_embd=64, n_head=4, head_size=16, n_layer=4, dropout=0.0,
                       vocab_size=65)
OTHER_CONFIG = dict(n_ctx=10, n_embd=36, n_head=3, head_size=12, n_layer=2, dropout=0.0,
                    vocab_size=17)
DROPOUT = 0.3
DROPOUT_REPEATS = 50  # the mean of a correct dropout is then within ~0.1 of eval (relative)

AT_NOTEBOOK = "на конфигурации ноутбука"
AT_T1 = "при T = 1"
AT_SHORT = "при T < n_ctx"
AT_TRAIN = "в режиме обучения с dropout"
AT_EVAL_DROPOUT = "в режиме eval с dropout > 0"
AT_OTHER = "на других размерах"
AT_GENERATE = "в generate"
AT_RUN = "при выполнении ноутбука"

# ------------------------------------------------------------------ messages

_GENERIC = {
    "not_implemented": "forward не реализован: удалите raise NotImplementedError() и напишите решение",
    "no_return": "forward ничего не возвращает: не забудьте return",
    "class_missing": "класс не найден: не переименовывайте его и выполните ячейку с ним",
    "syntax_error": "ошибка в коде ячейки с классом (SyntaxError или NameError): исправьте указанную строку "
                    "и выполните ячейку заново",
    "exception": "ошибка при выполнении forward",
    "wrong_shape": "неверная форма выхода",
    "no_grad": "градиент не доходит до входа или параметров: не используйте detach(), "
               "torch.no_grad() и .data в forward",
    "wrong_grad": "градиенты не совпадают с тем, что вычисляет forward: не изменяйте тензоры на месте "
                  "и не отрывайте их от графа вычислений (detach)",
    "future_leak": "будущие токены влияют на выход для прошлых позиций: проверьте маску",
    "wrong_output": "результат не соответствует описанию задания: сверьте каждый шаг forward с описанием",
    "no_dropout": "dropout не применяется в режиме обучения: примените self.dropout",
    "dropout_in_eval": "в режиме eval выход с dropout > 0 должен совпадать с выходом без dropout "
                       "(используйте модуль self.dropout, а не F.dropout без training=self.training)",
    "dropout_wrong": "dropout применён не там: ожидание выхода в режиме обучения должно "
                     "совпадать с выходом в режиме eval",
    "dropout_error": "forward падает или меняет форму в режиме обучения (train) при dropout > 0",
    # said only by the grader
    "generate_exception": "generate падает с вашим forward: generate берёт logits[:, -1, :], "
                          "поэтому без targets логиты должны иметь форму (B, T, vocab_size)",
    "probe_failed": "скрытые проверки не смогли выполниться: ядро упало, превышено время или память, "
                    "или код меняет окружение",
    "kernel_died": "ядро упало до скрытых проверок",
    "timeout": "время на ноутбук исчерпано до скрытых проверок: ускорьте код",
    "grader_error": "ошибка проверяющей программы при сравнении результатов (не ваша): "
                    "преподаватель видит её в отчёте и проверит работу заново",
}
_SPECIFIC = {
    "head": {
        "dropout_on_output": "dropout применён к выходу, а не к весам внимания wei",
        "no_mask": "маска не применена: каждый токен видит будущие токены",
        "inverted_mask": "маска перевёрнута: закрыто прошлое, а не будущее (используйте tril == 0)",
        "mask_with_zero": "маскирование нулём вместо -inf: после softmax будущие токены всё равно получают вес",
        "mask_after_softmax": "маска применена после softmax: веса строк больше не суммируются в 1",
        "mask_not_sliced": "маска не обрезана до длины входа: используйте self.tril[:T, :T], "
                           "иначе forward падает при T < n_ctx",
        "no_scale": "нет масштабирования: оценки внимания нужно умножить на head_size ** -0.5",
        "scale_n_embd": "неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd) "
                        "(C = x.shape[-1] — это n_embd, а не head_size)",
        "scale_multiplied": "масштаб применён наоборот: нужно делить на sqrt(head_size), а не умножать",
        "softmax_wrong_dim": "softmax по неверной оси: нормируйте по последней оси (dim=-1)",
        "q_k_swapped": "перепутаны запросы и ключи: оценки внимания — это q @ k.transpose(-2, -1)",
        "value_is_key": "взвешиваются ключи вместо значений: умножайте веса на v = self.value(x)",
        "value_is_query": "взвешиваются запросы вместо значений: умножайте веса на v = self.value(x)",
        "no_value_projection": "веса умножаются на x, а не на v = self.value(x)",
        "weights_not_applied": "веса внимания не применены: выход должен быть wei @ v",
    },
    "multihead": {
        "no_projection": "нет проекции: после конкатенации пропустите результат через self.proj",
        "proj_on_input": "self.proj применён ко входу x, а не к конкатенации выходов голов",
        "proj_twice": "self.proj применён дважды: проекция нужна один раз, после конкатенации",
        "summed_heads": "головы сложены, а не сконкатенированы по последней оси",
        "concat_wrong_dim": "конкатенация по неверной оси: объединяйте головы по последней оси (dim=-1)",
        "interleaved_heads": "головы объединены в неверном порядке: используйте torch.cat(..., dim=-1)",
        "one_head_repeated": "используется только одна голова: пропустите x через каждую из self.heads",
        "extra_residual": "лишнее residual-соединение: x + ... делается в Block, а не в MultiHeadAttention",
    },
    "feedforward": {
        "no_relu": "пропущена ReLU: используйте self.net целиком",
        "gelu_instead_of_relu": "GELU вместо ReLU: в задании функция активации — ReLU (self.net[1])",
        "extra_residual": "лишнее residual-соединение: x + ... делается в Block, а не в FeedFoward",
        "no_second_linear": "пропущен второй линейный слой",
        "relu_at_end": "лишняя ReLU на выходе",
        "identity": "forward возвращает вход без изменений",
    },
    "block": {
        "pre_norm": "pre-norm вместо требуемого post-norm: нужно x = ln1(x + sa(x)), затем ln2(x + ffwd(x))",
        "norm_before_residual": "LayerNorm применён до residual-сложения (x = ln1(x); x = x + sa(x)): "
                                "нормализуйте сумму, x = ln1(x + sa(x))",
        "no_residual": "нет residual-соединений: прибавляйте вход к выходу sa и ffwd",
        "no_sa_residual": "нет residual-соединения вокруг self.sa",
        "no_ffwd_residual": "нет residual-соединения вокруг self.ffwd",
        "same_layernorm": "один и тот же LayerNorm использован дважды: после ffwd нужен self.ln2",
        "no_layernorm": "LayerNorm не применён: нужно x = ln1(x + sa(x)), затем ln2(x + ffwd(x))",
        "residual_from_input": "второе residual-соединение берёт исходный вход, а не результат после внимания",
        "ffwd_first": "перепутан порядок: сначала внимание (sa), потом ffwd",
        "parallel_branches": "ffwd применён к исходному входу, а не к результату внимания",
    },
    "gpt_model": {
        "not_pair": "forward должен возвращать пару (logits, loss)",
        "no_positional": "нет позиционных эмбеддингов: прибавьте position_embedding_table(torch.arange(T))",
        "positions_wrong": "позиционные эмбеддинги взяты не для позиций 0..T-1",
        "no_final_layernorm": "не применён финальный LayerNorm self.ln_f",
        "blocks_not_applied": "блоки трансформера не применены: пропустите x через self.blocks",
        "logits_last_only": "логиты посчитаны только для последней позиции (x[:, -1, :]): нужны логиты "
                            "для всех T позиций, формы (B, T, vocab_size); последнюю позицию выбирает generate",
        "softmax_before_loss": "softmax перед cross_entropy: F.cross_entropy сам применяет log_softmax к логитам",
        "sum_reduction": "loss суммируется, а не усредняется (reduction='sum')",
        "nll_on_logits": "nll_loss на сырых логитах: нужен F.cross_entropy (или log_softmax перед nll_loss)",
        "shifted_targets": "цели сдвинуты ещё раз: targets уже сдвинуты в get_batch",
        "mse_loss": "неверная функция потерь: нужна кросс-энтропия",
        "loss_without_targets": "без targets loss должен быть None: не считайте loss, если targets не переданы",
        "flat_logits_without_targets": "без targets логиты должны иметь форму (B, T, vocab_size): "
                                       "иначе generate не работает",
        "generate_broken": "generate не работает с вашим forward",
        "no_loss": "loss не вычислен, хотя targets переданы",
        "loss_not_scalar": "loss должен быть скаляром (среднее по всем токенам)",
        "wrong_loss": "значение loss не совпадает с кросс-энтропией F.cross_entropy по всем токенам",
    },
}
# {task: {mistake key: Russian message with the fix}}: the one place for this text.
MESSAGES = {task: {**_GENERIC, **_SPECIFIC.get(task, {})} for task in TASKS}
for _key in ("dropout_on_output", "not_pair", "loss_without_targets", "flat_logits_without_targets", "generate_broken",
             "no_loss", "loss_not_scalar", "wrong_loss"):
    for _task in TASKS:
        MESSAGES[_task].setdefault(_key, {**_SPECIFIC["head"], **_SPECIFIC["gpt_model"]}[_key])


class _Crash(Exception):
    """A probe could not run the student's code: carries the original error."""


class _Findings:
    def __init__(self, task, cls=None):
        self.task, self.cls, self.items = task, cls, []
        self.own_deps = False  # the last probe passed with the class's own dependencies

    def keys(self):
        return [f["key"] for f in self.items]

    def add(self, key, where, detail=""):
        if key in self.keys():
            return
        message = MESSAGES[self.task][key] + (f" ({detail})" if detail else "")
        self.items.append({"key": key, "message": message, "where": where})

    def crash(self, exc, where, what="forward"):
        if isinstance(exc, NotImplementedError):
            self.add("not_implemented", where)
            return
        text = f"{type(exc).__name__}: {exc}".split("\n")[0][:200]
        line = _student_line(exc, self.cls)
        if what != "forward":
            text = f"в {what}: {text}"
        self.add("exception", where, text + (f"; {line}" if line else ""))


def _student_line(exc, cls):
    """'строка N: text' of the deepest traceback frame in the student's class, or ''."""
    if cls is None:
        return ""
    files = set()
    for value in vars(cls).values():
        code = getattr(value, "__code__", None)
        if code is not None:
            files.add(code.co_filename)
    found = ""
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename in files:
            text = linecache.getline(frame.f_code.co_filename, lineno).strip()
            found = f"строка {lineno}" + (f": {text}" if text else "")
    return found


# --------------------------------------------------------------- torch state


@contextlib.contextmanager
def isolated_torch(seed=0):
    """Known global torch state inside; the caller's state restored after."""
    grad = torch.is_grad_enabled()
    dtype = torch.get_default_dtype()
    rng = torch.random.get_rng_state()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    anomaly = torch.is_anomaly_enabled()
    device = torch.get_default_device() if hasattr(torch, "get_default_device") else None
    moved = device is not None and device.type != "cpu"
    try:
        with torch.inference_mode(False):
            torch.set_grad_enabled(True)
            torch.set_default_dtype(torch.float32)
            if deterministic:  # only when changed: the call imports much of torch (seconds)
                torch.use_deterministic_algorithms(False)
            if anomaly:
                torch.autograd.set_detect_anomaly(False)
            if moved:  # a default-device mode slows every operation: set only when needed
                torch.set_default_device("cpu")
            _seed(seed)
            yield
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
        torch.random.set_rng_state(rng)
        if deterministic:
            torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        if anomaly:
            torch.autograd.set_detect_anomaly(anomaly)
        if moved:
            torch.set_default_device(device)


def _seed(value):
    """Seed the CPU generator (``torch.manual_seed`` also queues lazy CUDA/XPU/MTIA
    seeding with a stack trace each time: milliseconds per call)."""
    torch.default_generator.manual_seed(int(value))


# ---------------------------------------------------------- stand-ins, build


def _running_mean(x):
    counts = torch.arange(1, x.shape[1] + 1, dtype=x.dtype, device=x.device)
    return x.cumsum(dim=1) / counts[None, :, None]


class _Configured(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        for key, value in kwargs.items():
            setattr(self, key, value)


class SimpleHead(_Configured):
    """Has Head's parts; forward is a simple causal mix, not attention."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.key = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.query = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.value = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(self.n_ctx, self.n_ctx)))
        self.dropout = nn.Dropout(self.dropout)

    def forward(self, x):
        return _running_mean(torch.tanh(self.value(x))) + 0.5 * self.key(x)


class SimpleMixer(_Configured):
    """A causal, shape-preserving token mixer (for MultiHeadAttention, FeedFoward)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mix = nn.Linear(self.n_embd, self.n_embd)

    def forward(self, x):
        return torch.tanh(self.mix(_running_mean(x)))


class SimpleBlock(SimpleMixer):
    def forward(self, x):
        return x + torch.tanh(self.mix(_running_mean(x)))


STAND_INS = {"Head": SimpleHead, "MultiHeadAttention": SimpleMixer, "FeedFoward": SimpleMixer,
             "Block": SimpleBlock}


@contextlib.contextmanager
def _swapped_globals(cls, replacements):
    init = vars(cls).get("__init__")
    namespace = getattr(init, "__globals__", None)
    if namespace is None or not replacements:
        yield
        return
    missing = object()
    saved = {name: namespace.get(name, missing) for name in replacements}
    namespace.update(replacements)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def _build(task, cls, config, stand_ins=True, seed=1):
    """The student's class with stand-ins for its dependencies and random weights."""
    replacements = {n: STAND_INS[n] for n in DEPENDENCIES[task]} if stand_ins else {}
    with _swapped_globals(cls, replacements):
        module = cls(**config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if param.dim() == 1 and "ln" in name:
                param.copy_(1.0 + 0.3 * torch.randn(param.shape, generator=gen))
            else:
                param.copy_(0.3 * torch.randn(param.shape, generator=gen))
    module.eval()
    return module


def _call(module, *args):
    try:
        return module(*args)
    except Exception as exc:
        raise _Crash() from exc


def _close(a, b, tol=1e-4):
    if not (torch.is_tensor(a) and torch.is_tensor(b)) or a.shape != b.shape or a.is_complex():
        return False
    a, b = a.detach().double(), b.detach().double()
    scale = max(1.0, b.abs().max().item() if b.numel() and torch.isfinite(b).all() else 1.0)
    return bool(torch.allclose(a, b, rtol=tol, atol=tol * scale, equal_nan=True))


def _first(hypotheses, out):
    """The matching hypothesis with the fewest deviations: (keys) or None (values may be thunks)."""
    for keys, value in sorted(hypotheses, key=lambda h: len(h[0])):
        if _close(out, value() if callable(value) else value):
            return keys
    return None


def _randn(gen, *shape):
    return torch.randn(*shape, generator=gen)


# ---------------------------------------------------------------------- Head


def _attention(S, mask, dim, scale):
    T = S.shape[-1]
    lower = torch.tril(torch.ones(T, T, dtype=torch.bool))
    w = S * scale
    if mask == "ok":
        w = w.masked_fill(~lower, float("-inf"))
    elif mask == "zero":
        w = w.masked_fill(~lower, 0.0)
    elif mask == "inverted":
        w = w.masked_fill(lower, float("-inf"))
    elif mask == "next":
        w = w.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool), diagonal=1), float("-inf"))
    w = F.softmax(w, dim=dim)
    if mask == "after":
        w = w.masked_fill(~lower, 0.0)
    return w.nan_to_num(0.0)


_MASK_KEYS = {"ok": (), "none": ("no_mask",), "zero": ("mask_with_zero",), "after": ("mask_after_softmax",),
              "inverted": ("inverted_mask",), "next": ("future_leak",)}


def _head_probe(cls, config, T):
    """Keys of the deviations of Head on a controlled input of length T (< head_size)."""
    C, hs, B = config["n_embd"], config["head_size"], 2
    module = _build("head", cls, config)
    gen = torch.Generator().manual_seed(7)
    a = (1.5 / (C - T)) ** 0.5
    wk, wq, wv = torch.zeros(hs, C), torch.zeros(hs, C), torch.zeros(hs, C)
    wk[:, T:], wq[:, T:] = a * _randn(gen, hs, C - T), a * _randn(gen, hs, C - T)
    wv[torch.arange(T), torch.arange(T)] = 1.0
    with torch.no_grad():
        for name, weight in (("key", wk), ("query", wq), ("value", wv)):
            layer = getattr(module, name)
            layer.weight.copy_(weight)
            if getattr(layer, "bias", None) is not None:
                layer.bias.zero_()
    x = torch.zeros(B, T, C)
    x[:, torch.arange(T), torch.arange(T)] = 1.0
    x[:, :, T:] = _randn(gen, B, T, C - T)
    out = _call(module, x)
    if out is None:
        return ["no_return"]
    if not torch.is_tensor(out):
        return ["wrong_output"]
    xd = x.double()
    q, k, v = xd @ wq.double().T, xd @ wk.double().T, xd @ wv.double().T
    o = torch.nan_to_num(out.detach().double(), nan=0.0, posinf=0.0, neginf=0.0)
    keys = []
    if tuple(o.shape) == (B, T, C):
        keys, sources = ["wrong_shape"], {"no_value_projection": xd}
    elif tuple(o.shape) != (B, T, hs):
        return ["wrong_shape"]
    else:
        sources = {None: v, "value_is_key": k, "value_is_query": q}
    fits = []
    for name, src in sources.items():
        weights = o @ torch.linalg.pinv(src)
        residual = (o - weights @ src).norm() / max(o.norm().item(), 1e-12)
        fits.append((residual.item(), name, weights))
    residual, source, weights = min(fits, key=lambda f: f[0])
    if residual > 1e-3:
        return keys + ["wrong_output"]
    if source:
        keys.append(source)
    if _close(weights, torch.eye(T, dtype=weights.dtype).expand(B, T, T)):
        return keys + ["weights_not_applied"]
    S = q @ k.transpose(-2, -1)
    scales = {(): hs ** -0.5, ("no_scale",): 1.0, ("scale_n_embd",): C ** -0.5,
              ("scale_multiplied",): hs ** 0.5}
    hypotheses = []
    for mask, mask_keys in _MASK_KEYS.items():
        for dim, dim_keys in ((-1, ()), (-2, ("softmax_wrong_dim",))):
            for swapped, swap_keys in ((S, ()), (S.transpose(-2, -1), ("q_k_swapped",))):
                for scale_keys, scale in scales.items():
                    hypotheses.append((mask_keys + dim_keys + swap_keys + scale_keys,
                                       _attention(swapped, mask, dim, scale)))
    found = _first(hypotheses, weights)
    if found is None:
        leak = weights.triu(1).abs().max().item() > 1e-6
        return keys + ["future_leak" if leak else "wrong_output"]
    return keys + list(found)


def _check_head(cls, namespace, config, findings):
    hs, n_ctx = config["head_size"], config["n_ctx"]
    T = max(2, min(hs - 2, n_ctx - 1, 12))
    try:
        keys = _head_probe(cls, config, T)
    except _Crash as crash:
        exc = crash.__cause__
        try:
            keys = _head_probe(cls, dict(config, n_ctx=T), T) if T < n_ctx else None
        except _Crash:
            keys = None
        if keys is None:
            findings.crash(exc, AT_NOTEBOOK)
            return
        findings.add("mask_not_sliced", AT_SHORT, _student_line(exc, cls))
    for key in keys:
        findings.add(key, AT_NOTEBOOK)
    if not findings.items:
        _later_scenarios("head", cls, config, findings)
    _dropout_check("head", cls, config, findings)
    _grad_check("head", cls, config, findings)


def _head_t1(cls, config):
    module = _build("head", cls, config)
    x = _randn(torch.Generator().manual_seed(3), 2, 1, config["n_embd"])
    out = _call(module, x)
    return [] if _close(out, module.value(x)) else ["wrong_output"]


# ------------------------------------------------------- MultiHeadAttention


def _multihead_probe(cls, config, T, stand_ins=True):
    module = _build("multihead", cls, config, stand_ins)
    B, C = 2, config["n_embd"]
    x = _randn(torch.Generator().manual_seed(5), B, T, C)
    proj_inputs = []
    handle = module.proj.register_forward_hook(lambda m, args, out: proj_inputs.append(args[0].detach()))
    try:
        out = _call(module, x)
    finally:
        handle.remove()
    if out is None:
        return ["no_return"]
    heads = [h(x) for h in module.heads]
    cat = torch.cat(heads, dim=-1)
    if not torch.is_tensor(out) or out.shape != x.shape:
        if torch.is_tensor(out) and _close(out, cat):
            return ["wrong_shape", "no_projection"]
        return ["wrong_shape"]
    proj = module.proj
    if _close(out, proj(cat)):
        return []
    n = len(heads)
    inputs = {(): cat, ("proj_on_input",): x,
              ("summed_heads",): sum(heads).repeat(1, 1, n) if heads[0].shape[-1] * n == C else None,
              ("concat_wrong_dim",): torch.cat(heads, dim=1).reshape(B, T, -1),
              ("interleaved_heads",): torch.stack(heads, dim=-1).reshape(B, T, -1),
              ("one_head_repeated",): torch.cat([heads[0]] * n, dim=-1)}
    hypotheses = []
    for in_keys, value in inputs.items():
        if value is None or value.shape != x.shape:
            continue
        once = proj(value)
        for post_keys, result in (((), once), (("proj_twice",), proj(once)), (("no_projection",), value)):
            hypotheses.append((in_keys + post_keys, result))
            hypotheses.append((in_keys + post_keys + ("extra_residual",), x + result))
    found = _first(hypotheses, out)
    if found is not None:
        return list(found)
    keys = []
    if len(proj_inputs) > 1:
        keys.append("proj_twice")
    if proj_inputs and _close(proj_inputs[0], x):
        keys.append("proj_on_input")
    return keys + ["wrong_output"]


# ---------------------------------------------------------------- FeedFoward


def _feedforward_probe(cls, config, T):
    module = _build("feedforward", cls, config)
    x = _randn(torch.Generator().manual_seed(5), 2, T, config["n_embd"])
    out = _call(module, x)
    if out is None:
        return ["no_return"]
    if not torch.is_tensor(out):
        return ["wrong_output"]
    lin1, _, lin2, _ = list(module.net)
    hidden = lin1(x)
    if out.shape != x.shape:
        return ["wrong_shape"] + (["no_second_linear"] if _close(out, F.relu(hidden)) else [])
    if _close(out, module.net(x)):
        return []
    hypotheses = [(("identity",), x), (("no_second_linear",), F.relu(hidden)[..., :x.shape[-1]])]
    activations = {(): F.relu, ("no_relu",): lambda h: h, ("gelu_instead_of_relu",): F.gelu,
                   ("gelu_instead_of_relu", ""): lambda h: F.gelu(h, approximate="tanh")}
    for act_keys, act in activations.items():
        y = lin2(act(hidden))
        act_keys = tuple(k for k in act_keys if k)
        hypotheses += [(act_keys, y), (act_keys + ("relu_at_end",), F.relu(y)),
                       (act_keys + ("extra_residual",), x + y),
                       (act_keys + ("relu_at_end", "extra_residual"), x + F.relu(y))]
    found = _first(hypotheses, out)
    return list(found) if found is not None else ["wrong_output"]


# --------------------------------------------------------------------- Block


_NORM_KEYS = {"post": (), "pre": ("pre_norm",), "before": ("norm_before_residual",), "none": ("no_layernorm",)}


def _block_programs(m, x):
    """(keys, thunk of the output) for post-norm and its known deviations, composed.

    Each sub-layer (sa, then ffwd) has its own norm placement and residual, so
    a block that mixes two placements is named too."""
    for order_keys, (A, Bf) in (((), (m.sa, m.ffwd)), (("ffwd_first",), (m.ffwd, m.sa))):
        for norm1 in _NORM_KEYS:
            for norm2 in _NORM_KEYS:
                for r1 in (True, False):
                    for r2 in (True, False):
                        for same in (False, True):
                            if norm2 == "none" and same:
                                continue
                            for flow in ("ok", "parallel", "residual_from_input"):
                                if flow != "ok" and (norm1 != "post" or norm2 != "post"
                                                     or (flow == "residual_from_input" and not r2)):
                                    continue
                                keys = order_keys + _NORM_KEYS[norm1] + tuple(
                                    k for k in _NORM_KEYS[norm2] if k not in _NORM_KEYS[norm1])
                                if not r1 and not r2:
                                    keys += ("no_residual",)
                                elif not r1:
                                    keys += ("no_sa_residual",)
                                elif not r2:
                                    keys += ("no_ffwd_residual",)
                                if same:
                                    keys += ("same_layernorm",)
                                if flow != "ok":
                                    keys += ("parallel_branches" if flow == "parallel" else flow,)
                                args = (A, Bf, norm1, norm2, r1, r2, same, flow)
                                yield keys, (lambda args=args: _block_program(m, x, *args))


def _block_program(m, x, A, Bf, norm1, norm2, r1, r2, same, flow):
    L2 = m.ln1 if same else m.ln2

    def sub(inp, base, layer, norm_layer, residual, norm):
        if norm == "post":
            y = layer(inp)
            return norm_layer(base + y if residual else y)
        if norm == "pre":
            y = layer(norm_layer(inp))
            return base + y if residual else y
        if norm == "before":
            inp = norm_layer(inp)
            return inp + layer(inp) if residual else layer(inp)
        y = layer(inp)
        return base + y if residual else y

    h = sub(x, x, A, m.ln1, r1, norm1)
    inp = x if flow == "parallel" else h
    base = x if flow == "residual_from_input" else h
    return sub(inp, base, Bf, L2, r2, norm2)


def _block_probe(cls, config, T, stand_ins=True):
    module = _build("block", cls, config, stand_ins)
    x = _randn(torch.Generator().manual_seed(5), 2, T, config["n_embd"])
    calls = {name: 0 for name in ("ln1", "ln2", "sa", "ffwd")}
    handles = [getattr(module, name).register_forward_hook(
        lambda m, a, o, name=name: calls.__setitem__(name, calls[name] + 1)) for name in calls]
    try:
        out = _call(module, x)
    finally:
        for handle in handles:
            handle.remove()
    if out is None:
        return ["no_return"]
    if not torch.is_tensor(out) or out.shape != x.shape:
        return ["wrong_shape"]
    with torch.no_grad():
        found = _first(_block_programs(module, x), out)
    if found is not None:
        return list(found)
    keys = []
    if not calls["ln1"] and not calls["ln2"] and abs(out.mean(-1)).max() > 1e-3:
        keys.append("no_layernorm")
    return keys + ["wrong_output"]


# ------------------------------------------------------------------ GPTModel


def _gpt_probe(cls, config, T, stand_ins=True, full=False):
    """Keys for GPTModel's logits (and, when ``full``, its loss and generate)."""
    module = _build("gpt_model", cls, config, stand_ins)
    gen = torch.Generator().manual_seed(5)
    B, V = 2, config["vocab_size"]
    idx = torch.randint(V, (B, T), generator=gen)
    targets = torch.randint(V, (B, T), generator=gen)
    positions = []
    handle = module.position_embedding_table.register_forward_hook(
        lambda m, a, o: positions.append((a[0].detach(), o.detach())))
    try:
        result = _call(module, idx)
    finally:
        handle.remove()
    if result is None:
        return ["no_return"]
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return ["not_pair"]
    logits, loss = result
    if not torch.is_tensor(logits):
        return ["wrong_output"]
    keys = []
    if loss is not None:
        keys.append("loss_without_targets")
    with torch.no_grad():
        tok = module.token_embedding_table(idx)
        pos_options = [((), module.position_embedding_table(torch.arange(T))), (("no_positional",), 0.0)]
        for got_in, got_out in positions:
            if not _is_arange(got_in, T):
                pos_options.append((("positions_wrong",), got_out))
        hypotheses = []
        for pos_keys, pos in pos_options:
            x0 = tok + pos
            for block_keys, x1 in (((), module.blocks(x0)), (("blocks_not_applied",), x0)):
                for ln_keys, x2 in (((), module.ln_f(x1)), (("no_final_layernorm",), x1)):
                    lg = module.lm_head(x2)
                    base = pos_keys + block_keys + ln_keys
                    hypotheses += [(base, lg), (base + ("flat_logits_without_targets",), lg.reshape(B * T, V)),
                                   (base + ("logits_last_only",), lg[:, -1, :])]
    found = _first(hypotheses, logits)
    if found is None:
        shape_ok = tuple(logits.shape) in ((B, T, V), (B * T, V))
        keys += ["wrong_output" if shape_ok else "wrong_shape"]
    else:
        keys += list(found)
    if full:
        keys += _gpt_loss_keys(module, idx, targets)
    return keys


def _is_arange(positions, T):
    if positions.dim() == 0 or positions.shape[-1] != T:
        return False
    return bool((positions.reshape(-1, T) == torch.arange(T)).all())


def _gpt_loss_keys(module, idx, targets):
    B, T = idx.shape
    result = _call(module, idx, targets)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return ["not_pair"]
    logits, loss = result
    if loss is None:
        return ["no_loss"]
    if not torch.is_tensor(loss) or not torch.is_tensor(logits) or logits.numel() % (B * T):
        return ["wrong_loss"]
    keys = []
    if tuple(logits.shape) not in ((B, T, logits.shape[-1]), (B * T, logits.shape[-1])):
        keys.append("wrong_shape")
    lg = logits.reshape(B * T, -1)
    t = targets.reshape(-1)
    V = lg.shape[-1]
    with torch.no_grad():
        lgd = lg.detach()
        hypotheses = [((), F.cross_entropy(lgd, t)),
                      (("softmax_before_loss",), F.cross_entropy(F.softmax(lgd, -1), t)),
                      (("sum_reduction",), F.cross_entropy(lgd, t, reduction="sum")),
                      (("nll_on_logits",), F.nll_loss(lgd, t)),
                      (("shifted_targets",), F.cross_entropy(lgd.reshape(B, T, V)[:, :-1].reshape(-1, V),
                                                             targets[:, 1:].reshape(-1))),
                      (("mse_loss",), F.mse_loss(lgd, F.one_hot(t, V).to(lgd.dtype)))]
    if loss.numel() != 1:
        return keys + ["loss_not_scalar"]
    found = _first(hypotheses, loss.detach().reshape(()))
    if found is None:
        return keys + ["wrong_loss"]
    keys += list(found)
    if not found:
        if not loss.requires_grad:
            keys.append("no_grad")
        else:
            loss.backward()
            if any(p.grad is None for p in (module.lm_head.weight, module.token_embedding_table.weight)):
                keys.append("no_grad")
    return keys


def _check_gpt(cls, namespace, config, findings):
    keys = _dependent_probe("gpt_model", cls, config, config["n_ctx"], findings, full=True)
    if keys is None:
        return
    for key in keys:
        findings.add(key, AT_NOTEBOOK)
    if not findings.items:
        _later_scenarios("gpt_model", cls, config, findings)
    module = _build("gpt_model", cls, config, not findings.own_deps)
    idx = torch.randint(config["vocab_size"], (1, 2), generator=torch.Generator().manual_seed(2))
    try:
        with torch.no_grad():
            generated = module.generate(idx, 3)
        if not torch.is_tensor(generated) or tuple(generated.shape) != (1, 5):
            findings.add("generate_broken", AT_GENERATE)
    except Exception as exc:
        if {"exception", "not_pair", "no_return", "not_implemented"} & set(findings.keys()):
            return
        line = _student_line(exc, cls)
        detail = f"generate падает: {type(exc).__name__}: {exc}".split("\n")[0][:200]
        detail += f"; {line}" if line else ""
        explained = [f for f in findings.items if f["key"] in ("logits_last_only", "flat_logits_without_targets")]
        if explained:
            explained[0]["message"] += f" ({detail})"
        else:
            findings.add("generate_broken", AT_GENERATE, detail)


# ------------------------------------------------------ scenarios and checks

PROBES = {"head": _head_probe, "multihead": _multihead_probe, "feedforward": _feedforward_probe,
          "block": _block_probe, "gpt_model": _gpt_probe}


def _run_probe(task, cls, config, T, stand_ins=True, **kw):
    if task in ("head", "feedforward"):
        return PROBES[task](cls, config, T)
    return PROBES[task](cls, config, T, stand_ins, **kw)


def _dependent_probe(task, cls, config, T, findings, **kw):
    """Keys with stand-ins; or [] when those fail but the class's own dependencies pass.

    A forward that reaches into its parts (the heads' key/query/value,
    ``self.ffwd.net``) cannot work with stand-ins. Returns None after a crash
    (already reported)."""
    findings.own_deps = False
    try:
        keys, crash = _run_probe(task, cls, config, T, True, **kw), None
    except _Crash as exc:
        keys, crash = None, exc.__cause__
    if keys != []:
        try:
            own = _run_probe(task, cls, config, T, False, **kw)
        except Exception as exc:
            own = None
            cause = exc.__cause__ if isinstance(exc, _Crash) else None
            if crash is not None and cause is not None and not isinstance(cause, NameError):
                crash = cause  # with their own classes it fails too: show that error
        if own == []:
            findings.own_deps = True
            return own
    if crash is not None:
        findings.crash(crash, AT_NOTEBOOK)
        return None
    return keys


def _later_scenarios(task, cls, config, findings):
    """T < n_ctx, T = 1 and other sizes: consulted when the notebook's config shows nothing."""
    stand_ins = not findings.own_deps
    short = max(2, config["n_ctx"] // 2 - 1)
    other_T = OTHER_CONFIG["n_ctx"] - 3 if task == "head" else OTHER_CONFIG["n_ctx"]
    scenarios = [(AT_OTHER, OTHER_CONFIG, other_T), (AT_T1, config, 1)]
    if task != "head":
        scenarios.insert(0, (AT_SHORT, config, short))
    for where, cfg, T in scenarios:
        try:
            if task == "head" and T == 1:
                keys = _head_t1(cls, cfg)
            else:
                keys = _run_probe(task, cls, cfg, T, stand_ins)
        except _Crash as crash:
            findings.crash(crash.__cause__, where)
            return
        except Exception as exc:
            findings.crash(exc, where)
            return
        for key in keys:
            findings.add(key, where)
        if keys:
            return


def _dropout_check(task, cls, config, findings):
    """Dropout by its effect: none in eval; random and unbiased in train."""
    stand_ins = not findings.own_deps
    cfg = dict(config, dropout=DROPOUT)
    T = config["n_ctx"]
    try:
        base = _build(task, cls, dict(config, dropout=0.0), stand_ins)
        module = _build(task, cls, cfg, stand_ins)
        module.load_state_dict(base.state_dict(), strict=False)
        x = _randn(torch.Generator().manual_seed(11), 2, T, config["n_embd"])
        with torch.no_grad():
            want = base(x)
            if not torch.is_tensor(want):
                return
            if not _close(module(x), want):
                findings.add("dropout_in_eval", AT_EVAL_DROPOUT)
                return
            module.train()
            outs = []
            for i in range(DROPOUT_REPEATS):
                _seed(1000 + i)
                outs.append(module(x))
    except Exception:
        findings.add("dropout_error", AT_TRAIN)
        return
    if not all(torch.is_tensor(o) and o.shape == want.shape for o in outs):
        findings.add("dropout_error", AT_TRAIN)
        return
    stack = torch.stack(outs).double()
    if all(_close(o, want) for o in outs[:3]):
        findings.add("no_dropout", AT_TRAIN)
        return
    zeroed = ((stack == 0) & (want != 0)).double().mean().item()
    if task == "head" and zeroed > DROPOUT / 2:
        findings.add("dropout_on_output", AT_TRAIN)
        return
    error = (stack.mean(0) - want.double()).norm() / max(want.double().norm().item(), 1e-12)
    if error > 0.16:
        findings.add("dropout_wrong", AT_TRAIN)


def _grad_check(task, cls, config, findings):
    """The input's gradient exists and agrees with finite differences of forward."""
    if findings.items:
        return
    stand_ins = not findings.own_deps
    gen = torch.Generator().manual_seed(13)
    try:
        module = _build(task, cls, config, stand_ins)
        x = _randn(gen, 2, config["n_ctx"], config["n_embd"]).requires_grad_(True)
        out = module(x)
        if not out.requires_grad:
            findings.add("no_grad", AT_NOTEBOOK)
            return
        w = _randn(gen, *out.shape)
        (out * w).sum().backward()
        own = [p for name, p in module.named_parameters()
               if p.requires_grad and name.split(".")[0] not in ("heads", "sa", "ffwd", "blocks")]
        if x.grad is None or any(p.grad is None for p in own):
            findings.add("no_grad", AT_NOTEBOOK)
            return
        d = _randn(gen, *x.shape).double()
        xd, eps = x.detach().double(), 1e-6
        module.double()
        with torch.no_grad():
            plus, minus = module(xd + eps * d), module(xd - eps * d)
        if plus.dtype != torch.float64:
            return  # forward casts to float32: no precise finite differences
        numeric = ((plus - minus) * w.double()).sum() / (2 * eps)
        analytic = (x.grad.double() * d).sum()
        if abs(numeric - analytic) > 1e-3 * max(abs(numeric), abs(analytic)) + 1e-4:
            findings.add("wrong_grad", AT_NOTEBOOK)
    except Exception:
        return


def _check_simple(task):
    def check(cls, namespace, config, findings):
        if task == "feedforward":
            findings.own_deps = False
            try:
                keys = _feedforward_probe(cls, config, config["n_ctx"])
            except _Crash as crash:
                findings.crash(crash.__cause__, AT_NOTEBOOK)
                return
        else:
            keys = _dependent_probe(task, cls, config, config["n_ctx"], findings)
            if keys is None:
                return
        for key in keys:
            findings.add(key, AT_NOTEBOOK)
        if not findings.items:
            _later_scenarios(task, cls, config, findings)
        if task != "block":
            _dropout_check(task, cls, config, findings)
        _grad_check(task, cls, config, findings)
    return check


CHECKS = {"head": _check_head, "multihead": _check_simple("multihead"),
          "feedforward": _check_simple("feedforward"), "block": _check_simple("block"),
          "gpt_model": _check_gpt}


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
    with isolated_torch(), contextlib.redirect_stdout(io.StringIO()):
        try:
            CHECKS[task](cls, namespace, _config(config), findings)
        except Exception as exc:  # a probe's own failure on odd code: still a finding
            findings.crash(exc, AT_NOTEBOOK)
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


def _register_cells(gpt_course, path):
    """Put the notebook's exported cells into linecache, so findings can quote the student's line."""
    try:
        import json
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
        for number, source in enumerate(gpt_course._exported_cells(notebook)):
            text = gpt_course._to_python(source)
            name = f"{pathlib.Path(path).name}[{number}]"
            linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    except Exception:
        return


def main(argv=None):
    """``python gpt_selfcheck.py [folder]``: diagnose every task notebook of the folder."""
    argv = sys.argv[1:] if argv is None else argv
    folder = pathlib.Path(argv[0] if argv else ".").resolve()
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import gpt_course
    gpt_course.CHECK_EARLIER_STEPS = False  # each class is diagnosed here, not probed on import
    failed = 0
    for task in TASKS:
        path = folder / f"{NOTEBOOK_OF_TASK[task]}.ipynb"
        findings = None
        try:
            if not path.is_file():
                raise LookupError
            _register_cells(gpt_course, path)
            with contextlib.chdir(folder):  # the notebooks import each other by relative path
                cls = gpt_course.import_notebook(path, CLASS_OF_TASK[task])
            namespace = dict(cls.__init__.__globals__) if "__init__" in vars(cls) else {}
            namespace[CLASS_OF_TASK[task]] = cls
        except LookupError:
            findings = [{"key": "class_missing", "message": f"нет ноутбука {path.name}", "where": AT_RUN}]
        except SyntaxError as exc:
            where = (exc.filename or path.name).split("[")[0]
            findings = [{"key": "syntax_error", "where": AT_RUN,
                         "message": MESSAGES[task]["syntax_error"] + f" ({exc.msg}; {where}, строка {exc.lineno})"}]
        except NotImplementedError:
            findings = [{"key": "not_implemented", "where": AT_RUN, "message": MESSAGES[task]["not_implemented"]}]
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}".split("\n")[0][:200]
            findings = [{"key": "syntax_error", "where": AT_RUN,
                         "message": MESSAGES[task]["syntax_error"] + f" ({detail})"}]
        if findings is None:
            findings = diagnose(task, namespace, namespace.get("config"))
        print(report(task, findings))
        failed += bool(findings)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
