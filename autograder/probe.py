"""Kernel side of the hidden checks: run a student's class on given inputs.

This file is sent, as source, into the (sandboxed) kernel that executed the
student's notebook. It holds no reference solution and no expected value: it
builds the student's class with *stand-ins* for the other course classes,
loads the weights it is given, runs ``forward`` and returns what came out.
Comparison with the reference happens in the grader, outside the kernel.
"""
import contextlib

import torch
import torch.nn as nn

# Names of the course classes each task's __init__ builds, by task.
DEPENDENCIES = {
    "head": (),
    "multihead": ("Head",),
    "feedforward": (),
    "block": ("MultiHeadAttention", "FeedFoward"),
    "gpt_model": ("Block",),
}
CLASS_OF_TASK = {
    "head": "Head",
    "multihead": "MultiHeadAttention",
    "feedforward": "FeedFoward",
    "block": "Block",
    "gpt_model": "GPTModel",
}


class _Configured(nn.Module):
    """Sets the config attributes the way the course classes do."""

    def __init__(self, **kwargs):
        super().__init__()
        for key, value in kwargs.items():
            setattr(self, key, value)


class StandInHead(_Configured):
    """Has Head's parameters; forward is a simple causal mix, not attention."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.key = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.query = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.value = nn.Linear(self.n_embd, self.head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(self.n_ctx, self.n_ctx)))
        self.dropout = nn.Dropout(self.dropout)

    def forward(self, x):
        return causal_mean(torch.tanh(self.value(x))) + self.key(x) * 0.5


class StandInMixer(_Configured):
    """A causal token mixer with a LayerNorm-free shape-preserving map."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mix = nn.Linear(self.n_embd, self.n_embd)

    def forward(self, x):
        return torch.tanh(self.mix(causal_mean(x)))


class StandInBlock(StandInMixer):
    """A residual stand-in for Block."""

    def forward(self, x):
        return x + torch.tanh(self.mix(causal_mean(x)))


STAND_INS = {
    "Head": StandInHead,
    "MultiHeadAttention": StandInMixer,
    "FeedFoward": StandInMixer,
    "Block": StandInBlock,
}


def causal_mean(x):
    """Mean over positions <= t, for each t (B, T, C) -> (B, T, C)."""
    counts = torch.arange(1, x.shape[1] + 1, dtype=x.dtype, device=x.device)
    return x.cumsum(dim=1) / counts[None, :, None]


@contextlib.contextmanager
def swapped_globals(cls, replacements):
    """Temporarily rebind names in the module namespace ``cls`` was defined in."""
    namespace = cls.__init__.__globals__
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


def build(task, cls, config, state_dict=None, stand_ins=True):
    """Instantiate ``cls`` for ``task`` with stand-ins for its dependencies.

    ``stand_ins=False`` keeps the classes ``cls`` finds itself (the student's own,
    in the kernel): for a forward that uses its parts' insides, not only their
    forward (e.g. the heads' key/query/value in MultiHeadAttention).
    """
    replacements = {name: STAND_INS[name] for name in DEPENDENCIES[task]} if stand_ins else {}
    with swapped_globals(cls, replacements):
        module = cls(**config)
    if state_dict is not None:
        module.load_state_dict(state_dict, strict=False)
    return module


def run_case(task, cls, case):
    """Run one case; return a dict of plain tensors (never raises)."""
    result = {}
    try:
        module = build(task, cls, case["config"], case["state_dict"], not case.get("own_deps"))
        module.train(case["train"])
        torch.manual_seed(case["seed"])
        inputs = case["input"].clone()
        if inputs.is_floating_point():
            inputs.requires_grad_(True)
        if task == "gpt_model":
            if "targets" in case:
                out = module(inputs, case["targets"])
            else:
                out = module(inputs)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                result["error"] = "returns_not_pair"
                return result
            logits, loss = out
            result["logits"] = _plain(logits)
            result["loss_is_none"] = torch.tensor(loss is None)
            if loss is not None:
                result["loss"] = _plain(loss)
                if (case.get("backward") and torch.is_tensor(loss) and loss.requires_grad
                        and loss.numel() == 1):  # a non-scalar loss is graded, not a crash
                    loss.backward()
            if case.get("generate"):
                torch.manual_seed(case["seed"])
                module.eval()
                with torch.no_grad():
                    result["generated"] = _plain(module.generate(inputs, case["generate"]))
        elif case.get("repeat"):
            with torch.no_grad():
                outs = []
                for i in range(case["repeat"]):
                    torch.manual_seed(case["seed"] + i)
                    outs.append(_plain(module(inputs)))
            result["output"] = torch.stack(outs)
        else:
            out = module(inputs)
            if out is None:
                result["error"] = "returns_none"
                return result
            result["output"] = _plain(out)
            if case.get("backward") and torch.is_tensor(out) and out.requires_grad:
                weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(case["seed"]))
                (out * weight.to(out.dtype)).sum().backward()
        if case.get("backward"):
            for name, param in module.named_parameters():
                if param.grad is not None:
                    result["grad." + name] = param.grad.detach().clone()
            if inputs.is_floating_point() and inputs.grad is not None:
                result["grad.input"] = inputs.grad.detach().clone()
    except NotImplementedError:
        result["error"] = "not_implemented"
    except Exception as exc:  # the student's code may raise anything
        result["error"] = "exception"
        result["exception"] = f"{type(exc).__name__}: {exc}"[:300]
    return result


def _plain(value):
    if not torch.is_tensor(value):
        raise TypeError(f"ожидался тензор, получено {type(value).__name__}")
    return value.detach().clone().contiguous()


def run_cases(task, namespace, cases):
    """Run every case of ``task`` against the class found in ``namespace``."""
    cls = namespace.get(CLASS_OF_TASK[task])
    if cls is None:
        return [{"error": "class_missing"} for _ in cases]
    return [run_case(task, cls, case) for case in cases]
