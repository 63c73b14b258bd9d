"""Scoring in-process, over every mutation and alternative (tests/mutations.py).

The same path as the grade command takes, without kernels: the probe
(``kernel/probe.py``) runs each body's class on the secret cases, and
``checks.scoring`` compares, scores and names (with the diagnosis of each body,
computed once per run: ``tests/diagnosed.py``). Seconds, not minutes: the
end-to-end suite (test_grader_mutations.py) keeps what only it can prove.
"""
import pytest
import torch

from autograder import kit
from autograder.checks import cases, mistakes, scoring
from autograder.course import TASK, TASK_KEYS, TASKS
from autograder.kernel import probe
from autograder.worker.cell_outputs import verdict_outputs
from autograder.worker.probe_exchange import valid_result

from diagnosed import GROUP, findings  # tests/ is on sys.path
from mutations import ALTERNATIVES, BUGS, WRONG_IN_ONE_PART, expected_keys
from students import class_namespace, reference_bodies

pytestmark = GROUP
SEED = 12345
_CASES = {}
_SNAPSHOTS = {}  # a copy of each reference output as made: grading must not change them


def _cases(task, own_deps):
    if (task, own_deps) not in _CASES:
        made = cases.make_cases(task, SEED, own_deps)
        _CASES[task, own_deps] = made, scoring.reference.run_reference(task, made)
        _SNAPSHOTS[task, own_deps] = _copy(_CASES[task, own_deps][1])
    return _CASES[task, own_deps]


def _copy(outputs):
    return [{k: v.clone() if torch.is_tensor(v) else v for k, v in w.items()} for w in outputs]


def grade(task, body):
    """The verdict the grader gives ``body``: the second probe and the diagnosis, as in the kernel."""
    namespace = class_namespace(task, body)
    spec = TASK[task]

    def verdict_for(own_deps):
        made, want = _cases(task, own_deps)
        got = probe.run_cases(spec.cls, spec.depends_on, namespace, made)
        assert all(valid_result(g) for g in got), got  # what the exchange lets through
        return scoring.grade(task, made, got, want)

    verdict = scoring.best_verdict(task, verdict_for)
    if verdict.points < verdict.max_points:
        verdict = scoring.with_diagnosis(verdict, findings(task, body))
    return verdict


def test_mutations_are_well_formed():
    assert len(ALTERNATIVES) >= 15 and len(BUGS) >= 40
    assert {task for task, _ in ALTERNATIVES.values()} == set(TASK_KEYS)
    assert {entry[0] for entry in BUGS.values()} == set(TASK_KEYS)


@pytest.mark.parametrize("task", TASK_KEYS)
def test_reference_gets_full_points(task):
    verdict = grade(task, reference_bodies()[task])
    assert verdict.points == TASK[task].points and not verdict.mistakes, verdict


@pytest.mark.parametrize("key", sorted(ALTERNATIVES))
def test_alternative_gets_full_points(key):
    task, body = ALTERNATIVES[key]
    verdict = grade(task, body)
    assert verdict.points == TASK[task].points and not verdict.mistakes, (key, verdict)


@pytest.mark.parametrize("key", sorted(BUGS))
def test_bug_loses_points_and_is_named(key):
    task, body = BUGS[key][:2]
    verdict = grade(task, body)
    assert verdict.points < TASK[task].points, (key, verdict)
    assert TASK[task].parts or verdict.points == 0, (key, verdict)  # no parts: all or nothing
    for expected in expected_keys(BUGS[key][2]):
        assert expected in verdict.mistake_keys, f"{key}: expected {expected!r}, grader named {verdict.mistake_keys}"
    shown = "\n".join(o.get("text", "") + o.get("evalue", "") for o in verdict_outputs(verdict, []))
    for _, text in verdict.mistakes:
        assert text in shown  # the cell nbgrader scores carries every message


def test_every_part_has_a_body_wrong_in_it_alone():
    parts = {(spec.key, part.name) for spec in TASKS for part in spec.parts}
    assert set(WRONG_IN_ONE_PART) == parts


@pytest.mark.parametrize("task_part", sorted(WRONG_IN_ONE_PART), ids="-".join)
def test_a_part_is_scored_on_its_own_cases_only(task_part):
    """A body wrong in one part alone loses that part's points and no others (issue 20):
    e.g. a GPTModel right with targets and wrong only without them gets 3 of 4."""
    task, part = task_part
    verdict = grade(task, BUGS[WRONG_IN_ONE_PART[task_part]][1])
    spec = TASK[task]
    lost = next(p for p in spec.parts if p.name == part)
    assert set(verdict.passed) == {p.name for p in spec.parts} - {part}, verdict
    assert verdict.points == spec.points - lost.points, verdict


def test_a_loss_detached_in_training_alone_loses_the_loss_part_named_in_train_mode():
    """The loss's gradient is checked in train mode too, as the training loop takes it: a
    forward that detaches it only when ``self.training`` passes every eval-mode case."""
    verdict = grade("gpt_model", BUGS["gpt_loss_detached_in_training"][1])
    assert set(verdict.passed) == {"forward", "no_targets"} and verdict.points == 3.0, verdict
    assert verdict.mistake_keys == ["no_grad"] and "model.train()" in verdict.mistakes[0][1], verdict
    made = cases.make_cases("gpt_model", 0)
    assert [c["train"] for c in made if c["kind"] == "train"] == [True] * len(cases.CONFIGS)


def test_strict_shapes_flat_output_is_wrong_except_for_logits_with_targets():
    body = "out = self.dropout(self.proj(torch.cat([h(x) for h in self.heads], dim=-1))).reshape(-1, x.shape[-1])"
    verdict = grade("multihead", body)
    assert verdict.points == 0 and "wrong_shape" in verdict.mistake_keys, verdict


def test_leftover_torch_state_changes_no_verdict():
    body = reference_bodies()["feedforward"]
    for own_deps in (False, True):  # made outside the leftover state, as the grader makes them:
        _cases("feedforward", own_deps)  # made here, they were cached for later tests of this process
    torch.set_grad_enabled(False)
    torch.set_default_dtype(torch.float64)
    try:
        verdict = grade("feedforward", body)
    finally:
        torch.set_grad_enabled(True)
        torch.set_default_dtype(torch.float32)
    assert verdict.points == TASK["feedforward"].points, verdict


def test_the_probe_isolates_every_global_torch_setting():
    """One isolation helper for the probe and the self-check (gpt_harness.isolated_torch): a
    kernel left in inference mode, with another default device, dtype, grad mode or
    deterministic warn-only mode changes no verdict, and gets its settings back."""
    harness = kit.load("gpt_harness")
    body = reference_bodies()["head"]
    _cases("head", False)  # the cases and reference outputs made outside, as the grader makes them
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.inference_mode(), torch.device("meta"):
            with harness.isolated_torch():
                assert torch.empty(1).device.type == "cpu" and torch.is_grad_enabled()
                assert not torch.is_inference_mode_enabled()
            assert torch.empty(1).device.type == "meta" and torch.is_inference_mode_enabled()
        with torch.inference_mode():
            verdict = grade("head", body)
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)
    assert verdict.points == TASK["head"].points and not verdict.mistakes, verdict


def test_catalogue_messages_are_russian_and_distinct():
    for task, table in mistakes.MISTAKES.items():
        texts = [text for text, _ in table.values()]
        assert len(set(texts)) == len(texts), task
        assert all(any("а" <= ch <= "я" for ch in text.lower()) for text in texts), task


@pytest.mark.parametrize("task, body, russian, english", [
    ("gpt_model", "B, T = idx.shape\nx = self.token_embedding_table(idx) + self.position_embedding_table("
                  "torch.arange(T))\nlogits = self.lm_head(self.ln_f(self.blocks(x)))\n"
                  "loss = None if targets is None else F.cross_entropy(logits, targets)\n",
     "логиты с тремя осями: тогда F.cross_entropy ждёт цели формы", "Expected target size"),
    ("gpt_model", "B, T = idx.shape\nx = self.token_embedding_table(idx) + self.position_embedding_table("
                  "torch.arange(T))\nB, T, C = x.shape\nlogits = self.lm_head(self.ln_f(self.blocks(x)))\n"
                  "if targets is None:\n    loss = None\nelse:\n    logits = logits.view(B * T, C)\n"
                  "    loss = F.cross_entropy(logits, targets.view(B * T))\n",
     "нельзя придать форму [64, 64] тензору из", "is invalid for input of size"),
    ("multihead", BUGS["mha_module_list_called"][1], "ModuleList нельзя вызвать: у него нет метода forward",
     "missing the required"),
    ("gpt_model", BUGS["gpt_lm_head_before_final_layernorm"][1], "LayerNorm ждёт последнюю ось размера 64",
     "normalized_shape"),
    ("gpt_model", BUGS["gpt_targets_not_flattened"][1], "разверните цели так же, как логиты", "batch_size"),
    ("gpt_model", BUGS["gpt_loss_only_with_targets"][1], "переменной «loss» не присвоено значение",
     "local variable"),
], ids=["cross_entropy_of_3d_logits", "view_with_n_embd", "module_list_called", "lm_head_before_ln_f",
        "targets_not_flattened", "loss_only_with_targets"])
def test_a_crash_is_quoted_in_russian_where_the_kit_knows_the_message(task, body, russian, english):
    """The student's feedback quotes a crash as the notebook does (gpt_errors.russian_text), with the line."""
    verdict = grade(task, body)
    (key, text), = verdict.mistakes
    assert key == "exception" and russian in text and "строка" in text, text
    assert english not in text and "RuntimeError" not in text, text


@pytest.mark.parametrize("body", [
    "return self.net(x).to_sparse()",
    "return self.net(x).to(torch.complex64)",
    "return (self.net(x), None)",
    "return self.net(x).sum()",
])
def test_odd_return_values_are_the_students_mistake(body):
    """Whatever a forward returns, the probe's results pass the exchange and scoring names a mistake."""
    verdict = grade("feedforward", body)
    assert verdict.points == 0 and verdict.mistakes, verdict


def _odd_variants(t):
    """Tensors a probe result may hold in place of ``t`` (all pass the exchange)."""
    yield t.bool()
    yield t.long()
    yield t.half()
    yield t.double()
    yield t.reshape(-1)[:1].reshape(()) if t.numel() else torch.zeros(())
    yield t.reshape(-1)[:0]
    yield t.reshape(-1)
    yield t.unsqueeze(0)
    yield torch.full_like(t.double(), float("nan"))
    if t.dim() >= 2:
        yield t.transpose(0, 1).contiguous()


@pytest.mark.parametrize("task", TASK_KEYS)
def test_scoring_is_total_over_what_the_exchange_lets_through(task):
    """Any result of the probe's shape (odd dtypes and shapes, missing keys, unknown errors, mixed per
    case) gets a verdict within the task's points; scoring never raises."""
    generator = torch.Generator().manual_seed(7)
    for own_deps in (False, True) if TASK[task].depends_on else (False,):
        made, want = _cases(task, own_deps)
        keys = sorted({k for w in want for k in w})
        for key in keys:
            for n in range(12):
                got = []
                for w in want:
                    g = dict(w)
                    pick = int(torch.randint(0, 14, (1,), generator=generator))
                    if pick == 12:
                        g.pop(key, None)
                    elif pick == 13:
                        g = {"error": "неизвестно"}
                    elif key in g:
                        odd = list(_odd_variants(g[key]))
                        g[key] = odd[(pick + n) % len(odd)]
                    got.append(g)
                assert all(valid_result(g) for g in got)
                verdict = scoring.grade(task, made, got, want)
                assert 0 <= verdict.points <= verdict.max_points, (key, verdict)
                assert verdict.points < verdict.max_points or not verdict.mistakes


def test_grading_leaves_the_reference_outputs_as_they_were():
    """A worker reads each reference output file once and grades every student against the same
    outputs (checks/reference.py). Every verdict of this file was given against the shared outputs
    of ``_cases``; after them (and two wrong bodies of each task here) they hold what they held."""
    for task in TASK_KEYS:
        for body in [entry[1] for entry in BUGS.values() if entry[0] == task][:2]:
            grade(task, body)
    assert len(_CASES) >= len(TASKS)
    for (task, own_deps), (made, want) in _CASES.items():
        for old, now in zip(_SNAPSHOTS[task, own_deps], want, strict=True):
            assert old.keys() == now.keys(), (task, own_deps)
            for k, v in old.items():
                assert torch.equal(v, now[k]) if torch.is_tensor(v) else v == now[k], (task, own_deps, k)
