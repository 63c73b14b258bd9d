"""Grader side of the hidden checks: make cases, compare, score, name mistakes.

``make_cases`` builds secret inputs and weights; the kernel runs them through
``probe.run_cases``; ``grade`` compares what came back with the reference and
the known mistakes (``mistakes.MISTAKES``) and returns points and messages.
"""
import dataclasses
import hashlib

import torch

from . import mistakes, probe, reference
from .diagnosis import message

POINTS = {"head": 2, "multihead": 1, "feedforward": 1, "block": 2, "gpt_model": 4}
TASKS = tuple(POINTS)
TASK_NAMES = {
    "head": "Head", "multihead": "MultiHeadAttention", "feedforward": "FeedFoward",
    "block": "Block", "gpt_model": "GPTModel",
}
# Configs other than the notebook's, so hard-coded sizes show up.
CONFIGS = [
    dict(n_embd=48, n_head=3, head_size=16, n_ctx=16, vocab_size=29, n_layer=2, dropout=0.0),
    dict(n_embd=32, n_head=4, head_size=8, n_ctx=8, vocab_size=11, n_layer=3, dropout=0.0),
]
SHAPES = [[(3, 16), (1, 1), (2, 7)], [(2, 8), (1, 5)]]
DROPOUT = 0.3
DROPOUT_REPEATS = 200
RTOL, ATOL = 1e-4, 1e-5


@dataclasses.dataclass
class Verdict:
    task: str
    points: float
    max_points: int
    mistakes: list  # (key, Russian message)
    passed: list    # names of the checks passed

    @property
    def message(self):
        if not self.mistakes:
            return f"{TASK_NAMES[self.task]}: все скрытые проверки пройдены."
        lines = [f"{TASK_NAMES[self.task]}: {self.points:g} из {self.max_points}."]
        lines += [f"- {text}" for _, text in self.mistakes]
        return "\n".join(lines)


def _generator(seed, salt):
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def _state_dict(task, config, gen, own_deps=False):
    module = probe.build(task, reference.CLASSES[probe.CLASS_OF_TASK[task]], config,
                         stand_ins=not own_deps)
    state = {}
    for name, tensor in module.state_dict().items():
        if name.endswith("tril"):
            state[name] = tensor
        elif tensor.dim() >= 1 and "ln" in name.split(".")[-2 if "." in name else 0]:
            state[name] = 1.0 + 0.3 * torch.randn(tensor.shape, generator=gen)
        else:
            state[name] = 0.3 * torch.randn(tensor.shape, generator=gen)
    return state


def _input(task, config, shape, gen):
    B, T = shape
    if task == "gpt_model":
        return torch.randint(config["vocab_size"], (B, T), generator=gen)
    return torch.randn(B, T, config["n_embd"], generator=gen)


def make_cases(task, seed=0, own_deps=False):
    """The secret cases for ``task``: a list of plain dicts of tensors.

    ``own_deps``: the task's class is built with the real classes it depends on
    (the student's own in the kernel, the reference ones here) instead of stand-ins.
    """
    gen = _generator(seed, task + (":own" if own_deps else ""))
    cases = _make_cases(task, gen, own_deps)
    for case in cases:
        case["own_deps"] = own_deps
    return cases


def _make_cases(task, gen, own_deps):
    cases = []
    for config, shapes in zip(CONFIGS, SHAPES):
        state = _state_dict(task, config, gen, own_deps)
        for shape in shapes:
            x = _input(task, config, shape, gen)
            case = dict(kind="eval", config=config, state_dict=state, input=x, seed=1,
                        train=False, backward=True)
            if task == "gpt_model":
                cases.append(dict(case, kind="no_targets", backward=False, generate=3))
                case["targets"] = torch.randint(config["vocab_size"], shape, generator=gen)
            cases.append(case)
        # Causality: the same input with the second half replaced.
        x = _input(task, config, (2, config["n_ctx"]), gen)
        y = _input(task, config, (2, config["n_ctx"]), gen)
        half = config["n_ctx"] // 2
        y[:, :half] = x[:, :half]
        for inp in (x, y):
            cases.append(dict(kind="causal", config=config, state_dict=state, input=inp,
                              seed=1, train=False, backward=False))
    # Dropout in train and eval mode (tasks whose own forward applies dropout).
    if task in ("head", "multihead", "feedforward"):
        config = dict(CONFIGS[0], dropout=DROPOUT)
        state = _state_dict(task, config, gen, own_deps)
        x = _input(task, config, (2, 10), gen)
        cases.append(dict(kind="dropout_eval", config=config, state_dict=state, input=x,
                          seed=3, train=False, backward=False))
        cases.append(dict(kind="dropout_train", config=config, state_dict=state, input=x,
                          seed=100, train=True, backward=False, repeat=DROPOUT_REPEATS))
    return cases


DEPENDENT_TASKS = ("multihead", "block", "gpt_model")


def best_verdict(task, verdict_for):
    """``verdict_for(False)`` (stand-ins), or ``verdict_for(True)`` if that scores more.

    With stand-ins a forward that reaches into its parts (the heads' key/query/
    value, ``self.ffwd.net``) fails although it is right; graded again with the
    student's own classes it may earn its points (never fewer: the better verdict
    counts). ``verdict_for(True)`` may return None (no second probe possible).
    """
    verdict = verdict_for(False)
    if (task not in DEPENDENT_TASKS or "forward" in verdict.passed
            or {k for k, _ in verdict.mistakes} & {"not_implemented", "class_missing"}):
        return verdict
    second = verdict_for(True)
    return second if second is not None and second.points > verdict.points else verdict


def run_reference(task, cases, forward=None):
    """Outputs of the reference (or of a mistake's ``forward``) on ``cases``."""
    cls = reference.CLASSES[probe.CLASS_OF_TASK[task]]
    if forward is not None:
        cls = type(cls.__name__, (cls,), {"forward": forward})
    return probe.run_cases(task, {probe.CLASS_OF_TASK[task]: cls}, cases)


def _close(a, b):
    if a is None or b is None or not torch.is_tensor(a) or not torch.is_tensor(b):
        return False
    if a.shape != b.shape:
        if a.numel() == b.numel() and a.dim() + b.dim() in (5,):  # (B,T,V) vs (B*T,V)
            a, b = a.reshape(-1), b.reshape(-1)
        else:
            return False
    if not (a.is_floating_point() and b.is_floating_point()):
        return bool(torch.equal(a, b))
    # NaN matches NaN: a mistake can give NaN where the reference does too (T = 1).
    return bool(torch.allclose(a.double(), b.double(), rtol=RTOL, atol=ATOL, equal_nan=True))


def _main_key(task):
    return "logits" if task == "gpt_model" else "output"


def _matches(task, got, want, keys=None):
    """True when every key of ``want`` (or ``keys``) is close in ``got``."""
    if "error" in got or "error" in want:
        return "error" in got and "error" in want and got["error"] == want["error"]
    for key in keys or want:
        if key not in got or not _close(got[key], want[key]):
            return False
    return True


def _cases_of(cases, results, *kinds):
    return [(c, r) for c, r in zip(cases, results) if c["kind"] in kinds]


def _error_mistake(result):
    error = result.get("error")
    if error == "not_implemented":
        return ("not_implemented", message("not_implemented"))
    if error == "returns_none":
        return ("no_return", message("no_return"))
    if error == "returns_not_pair":
        return ("not_pair", message("not_pair"))
    if error == "class_missing":
        return ("class_missing", message("class_missing"))
    if error == "exception":
        return ("exception", message("exception") + ": " + result.get("exception", ""))
    return None


def _shape_mistake(task, got, want):
    key = _main_key(task)
    if key in got and key in want and got[key].shape != want[key].shape:
        if not (task == "gpt_model" and got[key].numel() == want[key].numel()):
            return ("wrong_shape", message("wrong_shape") + f": ожидалась {tuple(want[key].shape)}, "
                                   f"получена {tuple(got[key].shape)}")
    return None


def _diagnose(task, cases, got, want):
    """Name the mistake behind a mismatch on the eval cases."""
    eval_pairs = [i for i, c in enumerate(cases) if c["kind"] in ("eval", "no_targets")]
    for i in eval_pairs:
        found = _error_mistake(got[i]) or _shape_mistake(task, got[i], want[i])
        if found:
            return [found]
    key = _main_key(task)
    subset = [cases[i] for i in eval_pairs]
    for name, (text, forward) in mistakes.MISTAKES[task].items():
        variant = run_reference(task, subset, forward)
        if all(_matches(task, got[i], v, [key]) for i, v in zip(eval_pairs, variant)):
            return [(name, text)]
    causal = [i for i, c in enumerate(cases) if c["kind"] == "causal"]
    if task in ("head", "multihead", "block", "gpt_model") and not _causal(task, cases, got, causal):
        return [("future_leak", message("future_leak"))]
    return [("wrong_output", message("wrong_output"))]


def _causal(task, cases, got, indices):
    key = _main_key(task)
    for a, b in zip(indices[::2], indices[1::2]):
        ra, rb = got[a], got[b]
        if key not in ra or key not in rb:
            return False
        half = cases[a]["config"]["n_ctx"] // 2
        x, y = ra[key], rb[key]
        if x.dim() == 3:
            x, y = x[:, :half], y[:, :half]
        if not torch.allclose(x, y, rtol=RTOL, atol=ATOL):
            return False
    return True


def _grad_mistake(task, cases, got, want):
    for case, g, w in zip(cases, got, want):
        if case["kind"] != "eval" or "error" in g:
            continue
        for key in w:
            if key.startswith("grad.") and key not in g:
                name = key[5:]
                return ("no_grad", message("no_grad") + f" ({name})")
            if key.startswith("grad.") and not _close(g[key], w[key]):
                return ("wrong_grad", message("wrong_grad"))
    return None


def _dropout_mistake(task, cases, got, want):
    """None when dropout behaves: exact match, or unbiased and random."""
    evals = _cases_of(cases, got, "dropout_eval")
    trains = _cases_of(cases, got, "dropout_train")
    ref_eval = [r for c, r in zip(cases, want) if c["kind"] == "dropout_eval"][0]
    if not _matches(task, evals[0][1], ref_eval, ["output"]):
        return ("dropout_in_eval", message("dropout_in_eval"))
    ref_train = [r for c, r in zip(cases, want) if c["kind"] == "dropout_train"][0]
    got_train = trains[0][1]
    if _matches(task, got_train, ref_train, ["output"]):
        return None
    stack = got_train.get("output")
    if stack is None or stack.shape != ref_train["output"].shape:
        return ("dropout_error", message("dropout_error"))
    stack = stack.double()
    target = ref_eval["output"].double()
    if torch.allclose(stack[0], target, rtol=RTOL, atol=ATOL) and torch.allclose(stack[1], target, rtol=RTOL, atol=ATOL):
        return ("no_dropout", message("no_dropout"))
    zero_share = (stack == 0).double().mean().item()
    if task == "head" and zero_share > DROPOUT / 2:
        return ("dropout_on_output", message("dropout_on_output"))
    error = (stack.mean(0) - target).norm() / target.norm()
    if error > 0.12:
        return ("dropout_wrong", message("dropout_wrong"))
    return None


def grade(task, cases, got, want=None):
    """Compare the kernel's results ``got`` with the reference; return a Verdict."""
    want = want if want is not None else run_reference(task, cases)
    main = [i for i, c in enumerate(cases) if c["kind"] in ("eval", "causal")]
    found = []
    core_ok = all(_matches(task, got[i], want[i], [_main_key(task)]) for i in main)
    if not core_ok:
        found += _diagnose(task, cases, got, want)
    elif task != "gpt_model":
        grad = _grad_mistake(task, cases, got, want)
        if grad:
            found.append(grad)
    passed, points = [], 0.0
    if not found:
        passed.append("forward")
    if task == "gpt_model":
        return _grade_gpt(cases, got, want, found, passed)
    if task in ("head", "multihead", "feedforward") and not found:
        drop = _dropout_mistake(task, cases, got, want)
        if drop:
            found.append(drop)
        else:
            passed.append("dropout")
    if task == "head":
        points = (1.5 if "forward" in passed else 0.0) + (0.5 if "dropout" in passed else 0.0)
    else:
        points = float(POINTS[task]) if not found else 0.0
    return Verdict(task, points, POINTS[task], found, passed)


def _grade_gpt(cases, got, want, found, passed):
    points = 2.0 if "forward" in passed else 0.0
    with_targets = [i for i, c in enumerate(cases) if c["kind"] == "eval"]
    no_targets = [i for i, c in enumerate(cases) if c["kind"] == "no_targets"]
    if "forward" in passed:
        loss_ok = all(_matches("gpt_model", got[i], want[i], ["loss"]) for i in with_targets)
        if loss_ok:
            grad = _grad_mistake("gpt_model", cases, got, want)
            if grad:
                found.append(grad)
            else:
                passed.append("loss")
                points += 1.0
        elif not any(f[0] in mistakes.MISTAKES["gpt_model"] for f in found):
            found += [m for m in _diagnose_loss(cases, got, with_targets)]
    none_ok = all(bool(got[i].get("loss_is_none", torch.tensor(False))) for i in no_targets)
    generate_ok = all(_matches("gpt_model", got[i], want[i], ["generated"]) for i in no_targets)
    shape_ok = all("logits" in got[i] and got[i]["logits"].dim() == 3 for i in no_targets)
    if none_ok and generate_ok and shape_ok and "forward" in passed:
        passed.append("no_targets")
        points += 1.0
    elif "forward" in passed:
        if not none_ok:
            found.append(("loss_without_targets", message("loss_without_targets")))
        elif not shape_ok:
            found.append(("flat_logits_without_targets", message("flat_logits_without_targets")))
        else:
            found.append(("generate_broken", message("generate_broken")))
    return Verdict("gpt_model", points, POINTS["gpt_model"], found, passed)


def _diagnose_loss(cases, got, indices):
    subset = [cases[i] for i in indices]
    for name, (text, forward) in mistakes.MISTAKES["gpt_model"].items():
        variant = run_reference("gpt_model", subset, forward)
        if all(_matches("gpt_model", got[i], v, ["loss"]) for i, v in zip(indices, variant)):
            return [(name, text)]
    for i in indices:
        if got[i].get("loss_is_none") is not None and bool(got[i]["loss_is_none"]):
            return [("no_loss", message("no_loss"))]
        if "loss" in got[i] and got[i]["loss"].numel() != 1:
            return [("loss_not_scalar", message("loss_not_scalar"))]
    return [("wrong_loss", message("wrong_loss"))]
