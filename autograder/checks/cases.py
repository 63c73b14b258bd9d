"""Secret cases: inputs and weights the student's class is probed with.

Other configs than the notebook's (so hard-coded sizes show up), batch 1,
T = 1, T < n_ctx, perturbed future tokens (causality), dropout > 0 in train and
eval mode. Deterministic for a course secret, unknown without it. Head's dropout
cases show its attention weights on the output (``reveal_weights``), so scoring
can check dropout's signature on the weights themselves.
"""
import hashlib

import torch

from ..course import TASK

CONFIGS = [
    dict(n_embd=48, n_head=3, head_size=16, n_ctx=16, vocab_size=29, n_layer=2, dropout=0.0),
    dict(n_embd=32, n_head=4, head_size=8, n_ctx=8, vocab_size=11, n_layer=3, dropout=0.0),
]
SHAPES = [[(3, 16), (1, 1), (2, 7)], [(2, 8), (1, 5)]]
DROPOUT = 0.3
DROPOUT_REPEATS = 200


def case_seed(secret):
    """Deterministic for a course, unknown without the instructor's secret."""
    return int(hashlib.sha256(f"gpt-course:{secret}".encode()).hexdigest()[:12], 16)


def _generator(seed, salt):
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def _state_dict(task, config, gen, own_deps=False):
    from .reference import build_reference
    module = build_reference(task, config, own_deps)
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
    if TASK[task].language_model:
        return torch.randint(config["vocab_size"], (B, T), generator=gen)
    return torch.randn(B, T, config["n_embd"], generator=gen)


def reveal_weights(state, x, config):
    """Head's weights and input made so that out[..., :T] = wei and out[..., T:] = wei @ x[..., T:head_size]:
    the value projection keeps x's first head_size coordinates, whose first T are one-hot."""
    B, T, C = x.shape
    size = config["head_size"]
    value = torch.zeros(size, C)
    value[torch.arange(size), torch.arange(size)] = 1.0
    x = x.clone()
    x[..., :T] = 0.0
    x[:, torch.arange(T), torch.arange(T)] = 1.0
    return dict(state, **{"value.weight": value}), x


def where(case):
    """Russian words for where a case probes (for messages; nothing secret)."""
    config, shape = case["config"], tuple(case["input"].shape)
    if case["kind"] == "dropout_train":
        return "в режиме обучения (train) с dropout > 0"
    if case["kind"] == "dropout_eval":
        return "в режиме eval с dropout > 0"
    if case["kind"] in ("causal", "causal_no_targets"):
        return "при изменении будущих токенов" + (" (без targets)" if case["kind"] == "causal_no_targets" else "")
    if case["kind"] == "no_targets":
        return "без targets"
    if case["kind"] == "train":
        return "в режиме обучения, model.train()"
    T = shape[1]
    if T == 1:
        return "при T = 1"
    if T < config["n_ctx"]:
        return "при T < n_ctx"
    if shape[0] == 1:
        return "при размере батча 1"
    return "на других размерах модели (n_embd, n_head, n_ctx, vocab_size)"


def make_cases(task, seed=0, own_deps=False):
    """The secret cases for ``task``: a list of plain dicts of tensors.

    ``own_deps``: the task's class is built with the real classes it depends on
    (the student's own in the kernel, the reference ones here) instead of stand-ins.
    """
    gen = _generator(seed, task + (":own" if own_deps else ""))
    cases = []
    for config, shapes in zip(CONFIGS, SHAPES):
        state = _state_dict(task, config, gen, own_deps)
        evals = []
        for shape in shapes:
            x = _input(task, config, shape, gen)
            case = dict(kind="eval", config=config, state_dict=state, input=x, seed=1,
                        train=False, backward=True)
            if TASK[task].language_model:
                cases.append(dict(case, kind="no_targets", backward=False, generate=3))
                case["targets"] = torch.randint(config["vocab_size"], shape, generator=gen)
            cases.append(case)
            evals.append(case)
        if TASK[task].language_model:  # the loss's gradient in train mode too, as training runs it
            cases.append(dict(evals[0], kind="train", train=True))
        # Causality: the same input with the second half replaced (a language model: with
        # targets for its logits, and again without, for what generate gets).
        x = _input(task, config, (2, config["n_ctx"]), gen)
        y = _input(task, config, (2, config["n_ctx"]), gen)
        half = config["n_ctx"] // 2
        y[:, :half] = x[:, :half]
        causal = dict(kind="causal", config=config, state_dict=state, seed=1, train=False, backward=False)
        if TASK[task].language_model:
            targets = torch.randint(config["vocab_size"], x.shape, generator=gen)
            cases += [dict(causal, kind="causal_no_targets", input=inp) for inp in (x, y)]
            causal["targets"] = targets
        cases += [dict(causal, input=inp) for inp in (x, y)]
    if TASK[task].dropout:  # dropout in train and eval mode
        config = dict(CONFIGS[0], dropout=DROPOUT)
        state = _state_dict(task, config, gen, own_deps)
        x = _input(task, config, (2, 10), gen)
        revealed = task == "head"
        if revealed:
            state, x = reveal_weights(state, x, config)
        cases.append(dict(kind="dropout_eval", config=config, state_dict=state, input=x,
                          seed=3, train=False, backward=False))
        cases.append(dict(kind="dropout_train", config=config, state_dict=state, input=x,
                          seed=100, train=True, backward=False, repeat=DROPOUT_REPEATS,
                          reveals_weights=revealed))
    for index, case in enumerate(cases):
        case["id"] = f"{task}:{seed}:{int(own_deps)}:{index}"
        case["own_deps"] = own_deps
        case["language_model"] = TASK[task].language_model
    return cases
