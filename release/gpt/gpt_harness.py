"""Как самопроверка (и проверка преподавателя) запускает ваш класс.

Здесь только общие инструменты, без ответов: известное состояние torch на время
проверки, генератор случайных чисел, простые заменители других классов курса
(чтобы ошибка в одном задании не мешала проверить другое) и сборка класса с
этими заменителями. Только torch и стандартная библиотека: проверка преподавателя
передаёт этот файл как текст в ядро, где выполнялся ваш ноутбук.
"""
import contextlib

import torch
import torch.nn as nn


@contextlib.contextmanager
def isolated_torch(seed_value=0):
    """Known global torch state inside (grad on, float32, CPU, no deterministic or anomaly
    mode, no inference mode, seeded); the caller's state is restored after.

    Nothing a student left behind in the kernel (``torch.set_grad_enabled(False)``, a
    float64 default, a default device, deterministic mode, the RNG) changes what is measured.
    """
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
            seed(seed_value)
            yield
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
        torch.random.set_rng_state(rng)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=warn_only)
        if anomaly:
            torch.autograd.set_detect_anomaly(True)
        if moved:
            torch.set_default_device(device)


def seed(value):
    """Seed the CPU generator (``torch.manual_seed`` also queues lazy CUDA/XPU/MTIA
    seeding with a stack trace each time: milliseconds per call)."""
    torch.default_generator.manual_seed(int(value))


def unwritten(error):
    """True for the stub's ``raise NotImplementedError()``, which says nothing. PyTorch's own
    NotImplementedError always says what is missing (an ``nn.ModuleList`` called as a module,
    an operation a dtype lacks): that is a crash like any other, not an unwritten forward."""
    return isinstance(error, NotImplementedError) and not str(error)


def swapped_pair(first, second):
    """True for GPTModel's pair returned as (loss, logits): a scalar or None first, a tensor of
    two or more axes second."""
    return (torch.is_tensor(second) and second.dim() >= 2
            and (first is None or (torch.is_tensor(first) and first.dim() == 0)))


class Configured(nn.Module):
    """Sets the config attributes (``n_embd``, ``head_size``, ...) the way the course classes do."""

    def __init__(self, **kwargs):
        super().__init__()
        for key, value in kwargs.items():
            setattr(self, key, value)


def causal_mean(x):
    """Mean over positions <= t, for each t: (B, T, C) -> (B, T, C)."""
    counts = torch.arange(1, x.shape[1] + 1, dtype=x.dtype, device=x.device)
    return x.cumsum(dim=1) / counts[None, :, None]


class StandInHead(Configured):
    """Has Head's parts (key, query, value, tril, dropout); forward is a simple causal mix, not attention."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.key = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.query = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.value = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(self.n_ctx, self.n_ctx)))
        self.dropout = nn.Dropout(self.dropout)

    def forward(self, x):
        return causal_mean(torch.tanh(self.value(x))) + 0.5 * self.key(x)


class StandInMixer(Configured):
    """A causal, shape-preserving token mixer (stands in for MultiHeadAttention and FeedFoward)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mix = nn.Linear(self.n_embd, self.n_embd)

    def forward(self, x):
        return torch.tanh(self.mix(causal_mean(x)))


class StandInBlock(StandInMixer):
    """A residual stand-in for Block."""

    def forward(self, x):
        return x + torch.tanh(self.mix(causal_mean(x)))


STAND_INS = {"Head": StandInHead, "MultiHeadAttention": StandInMixer, "FeedFoward": StandInMixer,
             "Block": StandInBlock}


@contextlib.contextmanager
def swapped_globals(cls, replacements):
    """Temporarily rebind names in the namespace ``cls.__init__`` was defined in (the nearest
    ``__init__`` of ``cls`` or a base class, not torch's own)."""
    init = next((vars(base)["__init__"] for base in cls.__mro__
                 if "__init__" in vars(base) and not base.__module__.startswith("torch")), None)
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


def build(cls, depends_on, config, state_dict=None, stand_ins=True):
    """``cls(**config)`` with stand-ins for the course classes it builds (``depends_on``).

    ``stand_ins=False`` keeps the classes ``cls`` finds itself (the student's own):
    for a forward that uses its parts' insides, not only their forward (e.g. the
    heads' key/query/value in MultiHeadAttention). ``state_dict``: weights to load.
    """
    replacements = {name: STAND_INS[name] for name in depends_on} if stand_ins else {}
    with swapped_globals(cls, replacements):
        module = cls(**config)
    if state_dict is not None:
        module.load_state_dict(state_dict, strict=False)
    return module


def dropout_pattern(train, kept, p, exact=True):
    """What train-mode results ``train`` (repeats, ...) are, against the eval result ``kept``
    (...), with dropout ``p``: "none" (the same every time), "dropout" (its signature: every
    entry is 0 or its eval value / (1 - p), zeros at rate p among the entries not 0 in
    eval), or "other" (random, but not dropout: noise, or dropout somewhere before).

    ``exact=False`` (a class run with its own parts, which may drop too): zeros at rate p,
    and the mean over the repeats near the eval result.
    """
    train, kept = train.double(), kept.double()
    if train.shape[0] > 1 and bool((train[1:] == train[:1]).all()):
        return "none"
    scale = max(kept.abs().max().item(), 1e-12)
    live = (kept.abs() > 1e-6 * scale).expand_as(train)
    count = int(live.sum())
    if not count:
        return "other"
    zeros = (train == 0) & live
    rate = zeros.sum().item() / count
    rate_ok = abs(rate - p) <= 5 * (p * (1 - p) / count) ** 0.5 + 0.01
    if not exact:
        error = (train.mean(0) - kept).norm() / max(kept.norm().item(), 1e-12)
        return "dropout" if rate_ok and error < 0.16 else "other"
    survivors = live & ~zeros
    expected = (kept / (1 - p)).expand_as(train)
    scaled = bool(torch.allclose(train[survivors], expected[survivors], rtol=1e-3, atol=1e-6 * scale))
    dead = bool((train[~live].abs() <= 1e-5 * scale).all())
    return "dropout" if rate_ok and scaled and dead else "other"


F = nn.functional
# The loss the task asks for and its known wrong forms, as functions of the logits a forward
# returned, flattened to (B*T, V), and the targets (B, T).
LOSSES = {
    "": lambda lg, t: F.cross_entropy(lg, t.reshape(-1)),
    "softmax_before_loss": lambda lg, t: F.cross_entropy(F.softmax(lg, -1), t.reshape(-1)),
    "sum_reduction": lambda lg, t: F.cross_entropy(lg, t.reshape(-1), reduction="sum"),
    "nll_on_logits": lambda lg, t: F.nll_loss(lg, t.reshape(-1)),
    "shifted_targets": lambda lg, t: F.cross_entropy(lg.reshape(*t.shape, -1)[:, :-1].reshape(-1, lg.shape[-1]),
                                                     t[:, 1:].reshape(-1)),
    "mse_loss": lambda lg, t: F.mse_loss(lg, F.one_hot(t.reshape(-1), lg.shape[-1]).to(lg.dtype)),
}


def loss_form(loss, logits, targets, tol=1e-4):
    """Which of LOSSES ``loss`` is, of the ``logits`` the same forward returned: "" (the task's
    cross-entropy), a mistake's key, or None (none of them, or not a scalar of such logits)."""
    if not (torch.is_tensor(loss) and torch.is_tensor(logits)) or loss.numel() != 1 \
            or not logits.is_floating_point() or logits.numel() % max(targets.numel(), 1):
        return None
    flat = logits.detach().double().reshape(targets.numel(), -1)
    value = loss.detach().double().reshape(())
    for name, form in LOSSES.items():
        try:
            expected = form(flat, targets)
        except (IndexError, RuntimeError):  # targets beyond these logits' classes: not this form
            continue
        if torch.allclose(value, expected, rtol=tol, atol=tol, equal_nan=True):
            return name
    return None
