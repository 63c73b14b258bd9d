"""The diagnosis (``source/gpt/gpt_selfcheck.py``) on every mutation, in process.

Each body of ``tests/mutations.py`` is pasted into the release notebook's
solution cell and the cell is run in a namespace where the other course classes
are the reference ones; ``diagnose`` must name every bug by its key(s) with the
message of ``MESSAGES`` and find nothing in a correct alternative. Seconds, not
minutes; the end-to-end ``python -m autograder check`` test is the slow one.
"""
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest
import torch

from autograder import course, diagnosis, notebooks
from autograder.checks import mistakes

from mutations import ALTERNATIVES, BUGS, expected_keys  # tests/ is on sys.path
from students import class_namespace

torch.set_num_threads(1)

GENERIC = {"not_implemented", "no_return", "not_pair", "class_missing", "exception", "wrong_shape",
           "no_grad", "wrong_grad", "future_leak", "wrong_output", "no_dropout", "dropout_on_output",
           "dropout_in_eval", "dropout_wrong", "dropout_error", "loss_without_targets",
           "flat_logits_without_targets", "generate_broken", "no_loss", "loss_not_scalar", "wrong_loss"}
NEW = {"head": {"mask_not_sliced"}, "multihead": {"proj_on_input", "proj_twice"},
       "feedforward": {"gelu_instead_of_relu"}, "block": {"norm_before_residual"},
       "gpt_model": {"blocks_not_applied", "logits_last_only"}}
WHERE = {"на конфигурации ноутбука", "при T = 1", "при T < n_ctx", "в режиме обучения с dropout",
         "на других размерах", "в generate", "в режиме eval с dropout > 0"}


def run(task, body):
    return diagnosis.diagnose(task, class_namespace(task, body))


@pytest.fixture(scope="module")
def bug_findings():
    started = time.time()
    found = {key: run(task, body) for key, (task, body, _) in BUGS.items()}
    named = sum(all(k in [f["key"] for f in found[key]] for k in expected_keys(m))
                for key, (_, _, m) in BUGS.items())
    print(f"\ndiagnosis named {named}/{len(BUGS)} bugs in {time.time() - started:.1f} s")
    return found


def test_messages_cover_every_key():
    for task in course.TASK_KEYS:
        keys = set(diagnosis.MESSAGES[task])
        assert GENERIC <= keys, GENERIC - keys
        assert set(mistakes.MISTAKES[task]) <= keys
        assert NEW[task] <= keys
        assert all(isinstance(text, str) and re.search("[а-я]", text) for text in diagnosis.MESSAGES[task].values())
    # the grader's catalogue takes its words from MESSAGES, never its own
    for task, table in mistakes.MISTAKES.items():
        for key, (text, _) in table.items():
            assert text is diagnosis.MESSAGES[task][key]


def test_mutations_use_known_keys():
    for key, (task, _, mistake) in BUGS.items():
        assert set(expected_keys(mistake)) <= set(diagnosis.MESSAGES[task]), key
    compound = [key for key, (_, _, m) in BUGS.items() if len(expected_keys(m)) > 1]
    assert len(compound) >= 3
    named = {k for _, _, m in BUGS.values() for k in expected_keys(m)}
    assert set().union(*NEW.values()) <= named


@pytest.mark.parametrize("key", sorted(BUGS))
def test_bug_is_named(bug_findings, key):
    task, _, mistake = BUGS[key]
    found = {f["key"]: f for f in bug_findings[key]}
    for expected in expected_keys(mistake):
        assert expected in found, f"{key}: expected {expected!r}, diagnosis named {list(found)}"
        assert found[expected]["message"].startswith(diagnosis.MESSAGES[task][expected])
        assert found[expected]["where"] in WHERE


@pytest.mark.parametrize("key", sorted(ALTERNATIVES))
def test_alternative_has_no_finding(key):
    task, body = ALTERNATIVES[key]
    assert run(task, body) == []


@pytest.mark.parametrize("task", course.TASK_KEYS)
def test_reference_has_no_finding(task):
    body = notebooks.solution_body(notebooks.read(course.SOURCE / f"{course.TASK[task].notebook}.ipynb"), task)
    assert run(task, body) == []


def test_findings_show_no_tensor_values(bug_findings):
    for key, found in bug_findings.items():
        for finding in found:
            assert set(finding) == {"key", "message", "where"}
            assert "tensor(" not in finding["message"] and not re.search(r"\d\.\d{3}", finding["message"]), \
                (key, finding)


def test_a_crash_quotes_the_students_line():
    task, body, _ = BUGS["mha_summed_heads_natural"]
    (finding,) = run(task, body)
    assert finding["key"] == "exception"
    assert "RuntimeError" in finding["message"] and "self.proj(out)" in finding["message"]
    (finding,) = run("head", BUGS["head_tril_not_sliced"][1])
    assert finding["key"] == "mask_not_sliced" and finding["where"] == "при T < n_ctx"
    assert "self.tril == 0" in finding["message"]
    # a forward that needs its parts' insides crashes with the stand-ins and with its own
    # classes: the error shown is the one with its own classes
    (finding,) = run("block", "x = self.ln1(x + self.sa(x))\nx = self.ln2(x + self.ffwd.net(x).foo)\n")
    assert "'Tensor' object has no attribute 'foo'" in finding["message"], finding


def test_logits_last_only_blames_generate():
    found = {f["key"]: f for f in run("gpt_model", BUGS["gpt_logits_last_only"][1])}
    assert "generate" in found["logits_last_only"]["message"]
    assert "logits[:, -1, :]" in found["logits_last_only"]["message"]
    assert "generate_broken" not in found


def test_leftover_torch_state_changes_nothing():
    correct = notebooks.solution_body(notebooks.read(course.SOURCE / "01_head.ipynb"), "head")
    cases = [("head", correct), ("head", BUGS["head_scale_by_C"][1]), ("block", BUGS["block_pre_norm"][1]),
             ("gpt_model", BUGS["gpt_sum_reduction"][1])]
    before = [run(task, body) for task, body in cases]
    torch.set_grad_enabled(False)
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(123)
    try:
        after = [run(task, body) for task, body in cases]
        assert not torch.is_grad_enabled() and torch.get_default_dtype() == torch.float64  # restored
    finally:
        torch.set_grad_enabled(True)
        torch.set_default_dtype(torch.float32)
    assert after == before
    assert before[0] == []


def test_rng_state_is_restored():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    run("head", BUGS["head_no_dropout"][1])
    assert torch.equal(torch.rand(3), expected)


def test_a_printing_forward_prints_nothing(capsys):
    body = notebooks.solution_body(notebooks.read(course.SOURCE / "03_feedforward.ipynb"), "feedforward")
    assert run("feedforward", "print('shape', x.shape)\n" + body) == []
    assert capsys.readouterr().out == ""


def test_missing_class_and_crash_never_raise():
    assert [f["key"] for f in diagnosis.diagnose("head", {})] == ["class_missing"]
    assert [f["key"] for f in diagnosis.diagnose("block", {"Block": 42})] == ["class_missing"]
    found = run("feedforward", "return undefined_name(x)\n")
    assert [f["key"] for f in found] == ["exception"] and "NameError" in found[0]["message"]


def test_selfcheck_prints_russian_verdict(capsys):
    selfcheck = diagnosis.module.selfcheck
    assert selfcheck("head", class_namespace("head", BUGS["head_scale_by_C"][1])) is False
    out = capsys.readouterr().out
    assert diagnosis.MESSAGES["head"]["scale_n_embd"] in out
    body = notebooks.solution_body(notebooks.read(course.SOURCE / "03_feedforward.ipynb"), "feedforward")
    assert selfcheck("feedforward", class_namespace("feedforward", body)) is True
    assert "FeedFoward: ошибок не найдено" in capsys.readouterr().out


def _release_copy(folder, bodies):
    shutil.copytree(course.RELEASE, folder)
    for task in course.TASK_KEYS:
        path = folder / f"{course.TASK[task].notebook}.ipynb"
        body = bodies.get(task) or notebooks.solution_body(notebooks.read(course.SOURCE / path.name), task)
        nb = notebooks.read(path)
        notebooks.paste_body(nb, task, body)
        nbformat.write(nb, str(path))


def test_main_names_a_syntax_error_with_its_notebook_and_line(tmp_path, capsys):
    folder = tmp_path / "gpt"
    _release_copy(folder, {"feedforward": "return self.net(x))\n",
                           "block": BUGS["block_norm_before_residual_then_post_norm"][1]})
    assert diagnosis.module.main([str(folder)]) == 1
    out = capsys.readouterr().out
    assert "FeedFoward: найдено ошибок — 1" in out
    assert re.search(r"03_feedforward\.ipynb, ячейка \d+, строка \d+", out), out
    assert diagnosis.MESSAGES["feedforward"]["syntax_error"] in out
    assert "Head: ошибок не найдено" in out and "MultiHeadAttention: ошибок не найдено" in out


@pytest.mark.slow
def test_check_command_names_the_n_embd_scale(tmp_path):
    """``python -m autograder check`` on a release copy whose Head scales by sqrt(n_embd)."""
    folder = tmp_path / "gpt"
    _release_copy(folder, {"head": BUGS["head_scale_by_C"][1]})
    proc = subprocess.run([sys.executable, "-m", "autograder", "check", str(folder / "01_head.ipynb")],
                          cwd=course.ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert diagnosis.MESSAGES["head"]["scale_n_embd"] in proc.stdout, proc.stdout + proc.stderr
    assert "Block: ошибок не найдено" in proc.stdout and "GPTModel: ошибок не найдено" in proc.stdout
