"""Compare a student's results with the reference, score them, name the mistakes.

``grade(task, cases, got, want)`` takes what the probe returned for the secret
cases (``got``) and the reference's outputs (``want``) and returns a
``TaskResult``: points, the named mistakes (key, Russian message) and the
checks passed. Pure: tensors in, a record out.
"""
import torch

from .. import kit
from ..course import TASK
from ..diagnosis import MESSAGES, message as message_of, russian_text
from ..results import TaskResult
from . import mistakes, reference
from .cases import where

harness = kit.load("gpt_harness")  # dropout's signature: the same test as the students' self-check

RTOL, ATOL = 1e-4, 1e-5

def mistake(key, detail=""):
    """[key, Russian message] of a generic mistake, with an optional detail."""
    text = message_of(key)
    return [key, f"{text}: {detail}" if detail else text]


def message(result):
    """The Russian verdict text of a TaskResult, as the feedback shows it."""
    cls = TASK[result.task].cls
    if not result.mistakes:
        return f"{cls}: все скрытые проверки пройдены."
    lines = [f"{cls}: {result.points:g} из {result.max_points}."]
    lines += [f"- {text}" for _, text in result.mistakes]
    return "\n".join(lines)


def main_key(task):
    return "logits" if TASK[task].language_model else "output"


def close(a, b, flat_ok=False):
    """Numerically equal tensors; ``flat_ok``: (B, T, V) may come as (B*T, V)."""
    if a is None or b is None or not torch.is_tensor(a) or not torch.is_tensor(b):
        return False
    if a.shape != b.shape:
        if flat_ok and a.numel() == b.numel() and {a.dim(), b.dim()} == {2, 3}:
            a, b = a.reshape(-1), b.reshape(-1)
        else:
            return False
    if not (a.is_floating_point() and b.is_floating_point()):
        return bool(torch.equal(a, b))
    # NaN matches NaN: a mistake can give NaN where the reference does too (T = 1).
    return bool(torch.allclose(a.double(), b.double(), rtol=RTOL, atol=ATOL, equal_nan=True))


def _flat_ok(task, case, key):
    """Only GPTModel's logits may be flat, (B*T, V): their values are compared either way,
    and without targets the (B, T, V) shape is the separate ``no_targets`` check."""
    return TASK[task].language_model and key == "logits" and case["kind"] != "no_targets"


def _matches(task, case, got, want, keys=None):
    """True when every key of ``want`` (or ``keys``) is close in ``got``."""
    if "error" in got or "error" in want:
        return "error" in got and "error" in want and got["error"] == want["error"]
    for key in keys or want:
        if key not in got or not close(got[key], want[key], _flat_ok(task, case, key)):
            return False
    return True


def _indices(cases, *kinds):
    return [i for i, c in enumerate(cases) if c["kind"] in kinds]


def _error_mistake(result):
    error = result.get("error")
    if error == "not_implemented":
        return mistake("not_implemented")
    if error == "returns_none":
        return mistake("no_return")
    if error == "returns_not_pair":
        return mistake("not_pair")
    if error == "returns_swapped":
        return mistake("pair_swapped")
    if error == "class_missing":
        return mistake("class_missing")
    if error == "exception":
        detail = russian_text(str(result.get("exception", "")))
        if result.get("line"):
            detail += f" ({result['line']})"
        if result.get("failed_in") == "generate":
            return mistake("generate_exception", detail)
        return mistake("exception", detail)
    return None


def _shape_mistake(task, case, got, want):
    key = main_key(task)
    if key in got and key in want and got[key].shape != want[key].shape:
        if not (_flat_ok(task, case, key) and got[key].numel() == want[key].numel()):
            return mistake("wrong_shape", f"ожидалась {tuple(want[key].shape)}, "
                                          f"получена {tuple(got[key].shape)} ({where(case)})")
    return None


def _first_mismatch(task, cases, got, want, indices):
    key = main_key(task)
    for i in indices:
        if not _matches(task, cases[i], got[i], want[i], [key]):
            return cases[i]
    return None


_VARIANTS = {}


def variant_outputs(task, name, subset):
    """Outputs of the catalogued mistake ``name`` on ``subset``, computed once per process."""
    key = (task, name, tuple(case["id"] for case in subset))
    if key not in _VARIANTS:
        _VARIANTS[key] = reference.run_reference(task, subset, mistakes.MISTAKES[task][name][1])
    return _VARIANTS[key]


def _diagnose(task, cases, got, want, kinds=("eval", "causal")):
    """Name the mistake behind a mismatch on the cases of ``kinds`` (a part's: its eval-like
    cases, then its causality pair)."""
    evals = _indices(cases, *[k for k in kinds if not k.startswith("causal")])
    # the forward's own failures first; then shapes; then what only generate hit
    ordered = ([i for i in evals if got[i].get("failed_in") != "generate"]
               + [i for i in evals if got[i].get("failed_in") == "generate"])
    for i in ordered:
        found = _error_mistake(got[i]) or _shape_mistake(task, cases[i], got[i], want[i])
        if found:
            return [found]
    key = main_key(task)
    subset = [cases[i] for i in evals]
    for name, (text, _) in mistakes.MISTAKES[task].items():
        variant = variant_outputs(task, name, subset)
        if all(_matches(task, cases[i], got[i], v, [key]) for i, v in zip(evals, variant)):
            return [[name, text]]
    causal = [k for k in kinds if k.startswith("causal")]
    if TASK[task].causal and causal and not _causal(task, cases, got, causal[0]):
        return [mistake("future_leak")]
    first = _first_mismatch(task, cases, got, want, evals + _indices(cases, *causal))
    return [mistake("wrong_output", where(first) if first else "")]


def _causal(task, cases, got, kind="causal"):
    """The outputs of each pair of ``kind`` cases agree on the positions before the change."""
    key = main_key(task)
    indices = _indices(cases, kind)
    for a, b in zip(indices[::2], indices[1::2]):
        ra, rb = got[a], got[b]
        if key not in ra or key not in rb or ra[key].shape != rb[key].shape:
            return False
        B, T = cases[a]["input"].shape[:2]
        x, y = ra[key].double(), rb[key].double()
        if x.dim() == 2 and x.shape[0] == B * T:  # logits with targets may come flat
            x, y = x.reshape(B, T, -1), y.reshape(B, T, -1)
        if x.dim() < 2 or x.shape[:2] != (B, T):
            return False
        half = cases[a]["config"]["n_ctx"] // 2
        if not torch.allclose(x[:, :half], y[:, :half], rtol=RTOL, atol=ATOL):
            return False
    return True


def _grad_mistake(cases, got, want):
    for case, g, w in zip(cases, got, want):
        if case["kind"] not in ("eval", "train") or "error" in g:
            continue
        for key in w:
            if key.startswith("grad.") and key not in g:
                name = "входа x" if key == "grad.input" else key[5:]
                if case["train"]:
                    name += ", в режиме обучения, model.train()"
                return mistake("no_grad", name)
            if key.startswith("grad.") and not close(g[key], w[key]):
                return mistake("wrong_grad")
    return None


def _no_randomness(stack):
    return stack.dim() > 0 and stack.shape[0] > 1 and bool(torch.equal(stack[0], stack[1]))


def _true(flag):
    """A one-element tensor that is true (the probe's flags); False for anything else."""
    return torch.is_tensor(flag) and flag.numel() == 1 and bool(flag)


def _dropout_mistake(task, cases, got, want, forward_ok):
    """(mistake or None, whether dropout passed), scored on the dropout cases alone.

    Eval mode with dropout > 0 must give the reference's output; then train mode must
    give the reference's own random draws, or dropout's signature
    (``gpt_harness.dropout_pattern``): every dropped entry is 0 or its eval value /
    (1 - p), zeros at rate p; for Head on the attention weights its case shows on the
    output, the rest of the output being those same weights times v (so dropout on
    the output or on v is misplaced). When the eval case differs because the forward
    is wrong, dropout cannot be judged: only train mode being random at all is checked.
    """
    (i_eval,), (i_train,) = _indices(cases, "dropout_eval"), _indices(cases, "dropout_train")
    stack = got[i_train].get("output")
    if not _matches(task, cases[i_eval], got[i_eval], want[i_eval], ["output"]):
        if forward_ok:
            return mistake("dropout_in_eval"), False
        if stack is not None and "error" not in got[i_train] and _no_randomness(stack):
            return mistake("no_dropout"), False
        return None, False
    if _matches(task, cases[i_train], got[i_train], want[i_train], ["output"]):
        return None, True
    if stack is None or stack.shape != want[i_train]["output"].shape:
        return mistake("dropout_error"), False
    verdict = _dropout_verdict(cases[i_train], stack.double(), want[i_eval]["output"].double())
    key = {"none": "no_dropout", "on_output": "dropout_on_output", "elsewhere": "dropout_wrong",
           "other": "dropout_wrong"}.get(verdict)
    return (mistake(key), False) if key else (None, True)


def _dropout_verdict(case, stack, kept):
    """"dropout", "none", "on_output" (Head), "elsewhere" (Head: on v, say) or "other"."""
    p = case["config"]["dropout"]
    if not case.get("reveals_weights"):
        return harness.dropout_pattern(stack, kept, p, exact=not case.get("own_deps"))
    T = case["input"].shape[1]
    verdict = harness.dropout_pattern(stack[..., :T], kept[..., :T], p)
    if verdict != "dropout":
        return verdict
    values = case["input"][..., T:case["config"]["head_size"]].double()  # v's other coordinates
    if torch.allclose(stack[..., T:], stack[..., :T] @ values, rtol=1e-3, atol=1e-5):
        return "dropout"
    return "on_output" if harness.dropout_pattern(stack[..., T:], kept[..., T:], p) == "dropout" else "elsewhere"


def grade(task, cases, got, want=None):
    """Compare the kernel's results ``got`` with the reference; return a TaskResult.

    A task with parts (course.py) scores each part on its own cases only."""
    want = want if want is not None else reference.run_reference(task, cases)
    spec = TASK[task]
    if spec.language_model:
        return _grade_language_model(task, cases, got, want)
    key = main_key(task)
    found, passed = [], []
    main = _indices(cases, "eval", "causal")
    forward_ok = all(_matches(task, cases[i], got[i], want[i], [key]) for i in main)
    if not forward_ok:
        found += _diagnose(task, cases, got, want)
    else:
        grad = _grad_mistake(cases, got, want)
        if grad:
            found.append(grad)
    if not found:
        passed.append("forward")
    if spec.dropout:
        drop, scored = _dropout_mistake(task, cases, got, want, "forward" in passed)
        if drop:
            found.append(drop)
        elif scored:
            passed.append("dropout")
    return TaskResult(task, _points(spec, found, passed), found, passed)


def _points(spec, found, passed):
    if spec.parts:
        return float(sum(part.points for part in spec.parts if part.name in passed))
    return float(spec.points) if not found else 0.0


def _grade_language_model(task, cases, got, want):
    """Logits with targets, the loss, and the no-targets contract, each on its own cases."""
    parts = {part.name: part for part in TASK[task].parts}
    found, passed = [], []
    forward_cases = _indices(cases, *parts["forward"].cases)
    logits_ok = all(_matches(task, cases[i], got[i], want[i], ["logits"]) for i in forward_cases) \
        and _causal(task, cases, got, "causal")
    if logits_ok:
        passed.append("forward")
    else:
        found += _diagnose(task, cases, got, want, parts["forward"].cases)
    with_targets = _indices(cases, *parts["loss"].cases)
    if all(_matches(task, cases[i], got[i], want[i], ["loss"]) for i in with_targets):
        grad = _grad_mistake(cases, got, want)
        if grad:
            found.append(grad)
        else:
            passed.append("loss")
    elif logits_ok and _only_train_mode_differs(task, cases, got, want, with_targets):
        found.append(mistake("train_differs"))
    elif logits_ok:
        found += _diagnose_loss(task, cases, got, with_targets)
    elif not all(_loss_of_own_logits(cases[i], got[i]) for i in with_targets):
        named = _diagnose_loss(task, cases, got, with_targets)  # only a mistake of the loss's own:
        found += [m for m in named if m[0] != "wrong_loss"]      # else the logits' mistake explains it
    no_targets = _no_targets_mistake(task, cases, got, want, parts["no_targets"].cases, logits_ok)
    if no_targets is None:
        passed.append("no_targets")
    elif no_targets:
        found.append(no_targets)
    unique = []
    for item in found:
        if item[0] not in [k for k, _ in unique]:
            unique.append(item)
    return TaskResult(task, _points(TASK[task], unique, passed), unique, passed)


def _loss_of_own_logits(case, result):
    """True when the loss is the cross-entropy of the logits this forward returned."""
    return harness.loss_form(result.get("loss"), result.get("logits"), case["targets"], RTOL) == ""


def _no_targets_mistake(task, cases, got, want, kinds, logits_ok):
    """None when the no-targets contract holds on its cases: (B, T, V) logits equal to the
    reference's, loss None, generate, causality. Else the mistake ([key, text]), or [] when the
    mismatch only repeats the logits' (the same logits as with targets)."""
    indices = _indices(cases, *[k for k in kinds if not k.startswith("causal")])
    if not logits_ok and _same_as_with_targets(cases, got, indices):
        return []  # wrong the same way as with targets (generate too): the forward part's mistake says it
    failed = next((got[i] for i in indices if got[i].get("error")), None)
    if failed is not None:
        return _error_mistake(failed) or mistake("generate_broken")
    if not all(_true(got[i].get("loss_is_none")) for i in indices):
        return mistake("loss_without_targets")
    for i in indices:
        logits, expected = got[i].get("logits"), want[i].get("logits")
        if logits is None or expected is None or tuple(logits.shape) != tuple(expected.shape):
            if logits is not None and expected is not None and logits.numel() == expected.numel():
                return mistake("flat_logits_without_targets")
            shape = tuple(logits.shape) if logits is not None else None
            return mistake("wrong_shape", f"ожидалась {tuple(expected.shape)}, получена {shape} ({where(cases[i])})")
    values_ok = all(_matches(task, cases[i], got[i], want[i], ["logits"]) for i in indices)
    causal_ok = _causal(task, cases, got, "causal_no_targets")
    generate_ok = all(_matches(task, cases[i], got[i], want[i], ["generated"]) for i in indices)
    if values_ok and causal_ok and generate_ok:
        return None
    if not causal_ok:
        return mistake("future_leak", "без targets")
    if not values_ok:
        first = _first_mismatch(task, cases, got, want, indices)
        return mistake("wrong_output", where(first) if first else "без targets")
    return mistake("generate_broken")


def _same_as_with_targets(cases, got, indices):
    """The logits without targets equal those with targets on the same input."""
    for i in indices:
        pair = next((j for j, c in enumerate(cases) if c["kind"] == "eval" and c["config"] is cases[i]["config"]
                     and torch.equal(c["input"], cases[i]["input"])), None)
        if pair is None or "logits" not in got[pair] or "logits" not in got[i]:
            return False
        if not close(got[i]["logits"], got[pair]["logits"], flat_ok=True):
            return False
    return True


def _only_train_mode_differs(task, cases, got, want, indices):
    """The loss is right in eval mode and, in train mode (dropout 0, so the same values), the
    cross-entropy of other logits than eval mode's: the forward is random or branches in training."""
    train = [i for i in indices if cases[i]["train"]]
    return bool(train) and all(_matches(task, cases[i], got[i], want[i], ["loss"])
                               for i in indices if not cases[i]["train"]) \
        and all(_loss_of_own_logits(cases[i], got[i]) for i in train)


def _diagnose_loss(task, cases, got, indices):
    """Name a wrong loss: a known loss mistake of the logits this forward returned
    (``gpt_harness.loss_form``: named whether or not the logits are right), else the
    catalogue's, else generic."""
    forms = {harness.loss_form(got[i].get("loss"), got[i].get("logits"), cases[i]["targets"], RTOL)
             for i in indices}
    if len(forms) == 1 and forms != {None} and forms != {""}:
        name = forms.pop()
        return [[name, message_of(name, task)]]
    subset = [cases[i] for i in indices]
    for name, (text, _) in mistakes.MISTAKES[task].items():
        variant = variant_outputs(task, name, subset)
        if all(_matches(task, cases[i], got[i], v, ["loss"]) for i, v in zip(indices, variant)):
            return [[name, text]]
    for i in indices:
        if _true(got[i].get("loss_not_tensor")):
            return [mistake("loss_not_tensor")]
        if _true(got[i].get("loss_is_none")):
            return [mistake("no_loss")]
        if "loss" in got[i] and got[i]["loss"].numel() != 1:
            return [mistake("loss_not_scalar")]
    return [mistake("wrong_loss")]


def best_verdict(task, verdict_for):
    """``verdict_for(False)`` (stand-ins), or ``verdict_for(True)`` if that scores more.

    With stand-ins a forward that reaches into its parts (the heads' key/query/
    value, ``self.ffwd.net``) fails although it is right; graded again with the
    student's own classes it may earn its points (never fewer: the better verdict
    counts). ``verdict_for(True)`` may return None (no second probe possible).
    """
    verdict = verdict_for(False)
    if (not TASK[task].depends_on or "forward" in verdict.passed
            or {"not_implemented", "class_missing"} & set(verdict.mistake_keys)):
        return verdict
    second = verdict_for(True)
    return second if second is not None and second.points > verdict.points else verdict


# Mistake keys that say *that* something is wrong, not *what*: observations of the
# forward (the diagnosis) replace them.
VAGUE = {"wrong_output", "exception", "future_leak", "wrong_shape", "generate_exception",
         "generate_broken", "wrong_grad"}
# A mistake the grader names by its effect, and the diagnosis's words for its cause: a weight with
# no gradient because its sub-module is never called (logits from the embedding's weight).
SAID_BETTER = {"no_grad": {"unused_parameter"}}
# Verdicts about the submission as a whole: nothing to add to them.
FINAL = {"not_implemented", "class_missing", "solution_failed", "no_return", "not_pair", "pair_swapped", "probe_failed", "probe_timeout",
         "probe_memory", "probe_disk", "probe_kernel_died", "probe_exit", "probe_no_results", "probe_tampered",
         "kernel_died", "timeout", "grader_error"}


def with_diagnosis(verdict, findings):
    """``verdict`` with the mistakes the diagnosis observed (its points unchanged).

    ``findings``: [{"key", "message", "where"}] from ``gpt_selfcheck.diagnose``
    (they may come from a student's kernel: only known keys are taken, and each
    message must be the course's own, optionally with a detail). Vague mistakes
    give way to observed ones. A specific mistake the catalogue matched exactly
    stands; the diagnosis adds to it only when it names it too (a compound
    mistake), never contradicts it.
    """
    if verdict.points >= verdict.max_points or FINAL & set(verdict.mistake_keys):
        return verdict
    known = MESSAGES[verdict.task]
    observed = {}
    for finding in findings or []:
        key, text = str(finding.get("key", "")), str(finding.get("message", ""))[:600]
        if key in known and key not in observed and text.startswith(known[key]):
            where = str(finding.get("where", ""))[:80]
            text = known[key] + russian_text(text[len(known[key]):])   # the quoted error, as the kit shows it
            observed[key] = text + (f" ({where})" if where and where not in text else "")
    specific = [m for m in verdict.mistakes if m[0] not in VAGUE and not SAID_BETTER.get(m[0], set()) & set(observed)]
    if not observed or (specific and not {k for k, _ in specific} <= set(observed)):
        return verdict
    mistakes = [[key, text] for key, text in observed.items()]
    mistakes += [m for m in specific if m[0] not in observed]
    return TaskResult(verdict.task, verdict.points, mistakes, verdict.passed)


def failed(task, key, detail=""):
    """0 points with one generic mistake (the probe could not run, the kernel died)."""
    return TaskResult(task, 0.0, [mistake(key, detail)], [])
