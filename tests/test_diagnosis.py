"""The diagnosis (``source/gpt/gpt_selfcheck.py``) on every mutation, in process.

Each body of ``tests/mutations.py`` is pasted into the release notebook's
solution cell and the cell is run in a namespace where the other course classes
are the reference ones; ``diagnose`` must name every bug by its key(s) with the
message of ``MESSAGES`` and find nothing in a correct alternative (each body is
diagnosed once per run: ``tests/diagnosed.py``). The kit must not be a solution:
no kit function gives a task's output, and the diagnosis calls no sub-module
itself. Seconds, not minutes; the end-to-end ``python -m autograder check`` test
is the slow one.
"""
import re
import shutil
import subprocess
import sys
import time
import warnings

import nbformat
import pytest
import torch
import torch.nn as nn

from autograder import course, diagnosis, notebooks
from autograder.checks import mistakes

from diagnosed import GROUP, findings  # tests/ is on sys.path
from mutations import ALTERNATIVES, BUGS, expected_keys
from students import class_namespace

torch.set_num_threads(1)
pytestmark = GROUP

GENERIC = {"not_implemented", "no_return", "not_pair", "class_missing", "exception", "wrong_shape",
           "no_grad", "wrong_grad", "future_leak", "wrong_output", "no_dropout", "dropout_on_output",
           "dropout_in_eval", "dropout_wrong", "dropout_error", "loss_without_targets",
           "flat_logits_without_targets", "generate_broken", "no_loss", "loss_not_scalar", "loss_not_tensor", "wrong_loss",
           "wrong_input", "unused_parameter", "wrong_role", "selfcheck_error"}
NEW = {"head": {"mask_not_sliced", "scale_wrong"}, "multihead": {"proj_on_input", "proj_twice"},
       "feedforward": {"gelu_instead_of_relu"}, "block": {"norm_before_residual", "layernorms_swapped"},
       "gpt_model": {"blocks_not_applied", "logits_last_only", "positions_n_ctx"}}
WHERE = {"на конфигурации ноутбука", "при T = 1", "при T < n_ctx", "в режиме обучения с dropout",
         "в режиме обучения, model.train()",
         "на других размерах", "в generate", "в режиме eval с dropout > 0", "без targets"}


def run(task, body):
    """The findings of ``body`` (diagnosed once per run)."""
    return findings(task, body)


def run_fresh(task, body):
    """A diagnosis run now (for tests of what one run does to the process)."""
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


def test_messages_are_data_and_the_grader_reads_them_without_running_the_kit():
    """gpt_messages.py holds data only; the grader's checks read it without importing gpt_selfcheck."""
    import ast
    tree = ast.parse(diagnosis.kit.path("gpt_messages").read_text(encoding="utf-8"))
    code = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef,
                                                         ast.Lambda, ast.Attribute)) or isinstance(n, ast.Call)]
    # literals, and one comprehension that merges GENERIC into each task's SPECIFIC
    assert all(isinstance(n, ast.Call) and n.func.attr == "items" or isinstance(n, ast.Attribute) and n.attr == "items"
               for n in code), [ast.dump(n)[:80] for n in code]
    code = ("import sys; import autograder.checks.scoring, autograder.checks.mistakes; "
            "print('gpt_selfcheck' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=course.ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


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


# Bugs whose own mistake hides what a check after it judges: that check says nothing (a residual
# inside the sub-module moves dropout's signature; the net applied twice drops twice; weights
# times k or q hide the weights; the loss of the logits that probabilities came from is right;
# sublayers swapped with their own LayerNorms have only their order wrong).
NO_SECOND_CLAIM = {"mha_residual_inside": "dropout_wrong", "ff_residual": "dropout_wrong",
                   "ff_net_twice": "dropout_wrong", "ff_layer_norm_after": "dropout_wrong",
                   "ff_output_doubled": "dropout_wrong", "head_log_softmax": "dropout_wrong",
                   "head_weights_times_k": "dropout_wrong", "head_weights_times_q": "dropout_wrong",
                   "gpt_probabilities_with_targets": "wrong_loss",
                   "block_ffwd_first_norms_kept": "layernorms_swapped"}


@pytest.mark.parametrize("key", sorted(NO_SECOND_CLAIM))
def test_a_mistake_is_not_followed_by_a_claim_it_caused(bug_findings, key):
    found = [f["key"] for f in bug_findings[key]]
    assert set(expected_keys(BUGS[key][2])) <= set(found), found
    assert NO_SECOND_CLAIM[key] not in found, found


def test_a_loss_detached_in_training_alone_is_named_in_train_mode(bug_findings):
    found = {f["key"]: f for f in bug_findings["gpt_loss_detached_in_training"]}
    assert list(found) == ["no_grad"] and found["no_grad"]["where"] == "в режиме обучения, model.train()"
    assert "loss не передаёт градиент" in found["no_grad"]["message"]


@pytest.mark.parametrize("key", sorted(ALTERNATIVES))
def test_alternative_has_no_finding(key):
    task, body = ALTERNATIVES[key]
    assert run(task, body) == []


@pytest.mark.parametrize("task", course.TASK_KEYS)
def test_reference_has_no_finding(task):
    body = notebooks.solution_body(notebooks.read(course.SOURCE / f"{course.TASK[task].notebook}.ipynb"), task)
    assert run(task, body) == []


@pytest.mark.parametrize("key", sorted(k for k, (task, _, _) in BUGS.items() if course.TASK[task].depends_on))
def test_bug_is_named_when_the_earlier_steps_did_not_import(key):
    """In a kernel whose earlier step failed to import (``Block`` undefined), the class is still
    diagnosed with stand-ins, and its own failure with its missing classes hides nothing."""
    task, body, mistake = BUGS[key]
    namespace = class_namespace(task, body)
    for name in course.TASK[task].depends_on:
        namespace.pop(name)
    found = [f["key"] for f in diagnosis.diagnose(task, namespace)]
    assert set(expected_keys(mistake)) <= set(found), (key, found)


def test_findings_show_no_tensor_values(bug_findings):
    for key, found in bug_findings.items():
        for finding in found:
            assert set(finding) == {"key", "message", "where"}
            assert "tensor(" not in finding["message"] and not re.search(r"\d\.\d{3}", finding["message"]), \
                (key, finding)


def test_no_finding_is_the_self_checks_own_failure(bug_findings):
    for key, found in bug_findings.items():
        assert "selfcheck_error" not in [f["key"] for f in found], (key, found)


def test_a_crash_is_named_by_its_cause_and_quotes_the_students_line():
    task, body, _ = BUGS["mha_summed_heads_natural"]
    (finding,) = run(task, body)
    assert finding["key"] == "summed_heads"  # what self.proj got, not just that it failed
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
    before = [run_fresh(task, body) for task, body in cases]
    torch.set_grad_enabled(False)
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(123)
    try:
        after = [run_fresh(task, body) for task, body in cases]
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
    run_fresh("head", BUGS["head_no_dropout"][1])
    assert torch.equal(torch.rand(3), expected)


def test_a_printing_forward_prints_nothing(capsys):
    body = notebooks.solution_body(notebooks.read(course.SOURCE / "03_feedforward.ipynb"), "feedforward")
    assert run_fresh("feedforward", "print('shape', x.shape)\n" + body) == []
    assert capsys.readouterr().out == ""


def test_missing_class_and_crash_never_raise():
    assert [f["key"] for f in diagnosis.diagnose("head", {})] == ["class_missing"]
    assert [f["key"] for f in diagnosis.diagnose("block", {"Block": 42})] == ["class_missing"]
    found = run("feedforward", "return undefined_name(x)\n")
    assert [f["key"] for f in found] == ["exception"] and "NameError" in found[0]["message"]


def test_selfcheck_prints_russian_verdict(capsys):
    selfcheck = diagnosis.selfcheck_module().selfcheck
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
    assert diagnosis.selfcheck_module().main([str(folder)]) == 1
    out = capsys.readouterr().out
    assert "FeedFoward: найдено ошибок — 1" in out
    assert re.search(r"03_feedforward\.ipynb, ячейка \d+, строка \d+", out), out
    assert diagnosis.MESSAGES["feedforward"]["syntax_error"] in out
    assert "Head: ошибок не найдено" in out and "MultiHeadAttention: ошибок не найдено" in out


def test_main_quotes_the_students_line_from_the_saved_notebook(tmp_path, capsys):
    """``python gpt_selfcheck.py`` registers each exported cell under the name gpt_course runs it
    with, so a failure in forward quotes the student's own line."""
    folder = tmp_path / "gpt"
    _release_copy(folder, {"multihead": "out = undefined_name(x)\n"})
    assert diagnosis.selfcheck_module().main([str(folder)]) == 1
    out = capsys.readouterr().out
    assert "NameError" in out and re.search(r"строка \d+: out = undefined_name\(x\)", out), out


def test_main_outside_the_kit_folder_says_where_to_run_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert diagnosis.selfcheck_module().main([]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "Запустите самопроверку в папке с ноутбуками" in out[0], out
    assert f"cd {course.SOURCE}" in out[0] and "нет ноутбука" not in out[0]


def test_check_command_names_what_it_cannot_check_before_running_anything(tmp_path, capsys):
    """A missing notebook, a file that is no notebook, a folder without the course's notebooks,
    notebooks of two folders: exit 2 and one Russian line (a missing notebook once ran pytest on
    the whole current folder)."""
    from autograder.__main__ import main
    (tmp_path / "notes.txt").write_text("{}", encoding="utf-8")
    for folder, name in (("a", "01_head.ipynb"), ("b", "01_head.ipynb"), ("mine", "my_head.ipynb")):
        (tmp_path / folder).mkdir()
        shutil.copy(course.RELEASE / "01_head.ipynb", tmp_path / folder / name)
    for args, words in [([tmp_path / "01_hed.ipynb"], "нет такого файла или папки"),
                        ([tmp_path / "notes.txt"], "не ноутбук Jupyter (.ipynb)"),
                        ([tmp_path / "mine"], "нет ноутбуков курса"),
                        ([tmp_path / "a" / "01_head.ipynb", tmp_path / "b" / "01_head.ipynb"], "из одной папки")]:
        assert main(["check", *map(str, args)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("ошибка: ") and words in err, err


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


# ------------------------------------------------------ the kit is no solution

PROBED = ["mha_summed_heads_natural", "gpt_positions_n_ctx", "head_tril_not_sliced", "block_pre_norm"]


@pytest.mark.parametrize("case", list(course.TASK_KEYS) + PROBED + ["block_calls_ffwd_net",
                                                                    "mha_batched_from_head_weights"])
def test_the_diagnosis_calls_no_sub_module_itself(case, monkeypatch):
    """Every sub-module call during a diagnosis comes from the student's own code (its forward
    or generate, or the class called as a whole): the diagnosis only records and relates what
    the forward did, it never computes a result with the class's parts."""
    from autograder.checks import reference
    if case in course.TASK_KEYS:
        task, body = case, notebooks.solution_body(
            notebooks.read(course.SOURCE / f"{course.TASK[case].notebook}.ipynb"), case)
    else:
        task, body = (BUGS.get(case) or ALTERNATIVES[case])[:2]
    namespace = class_namespace(task, body)
    cls, cell = namespace[course.TASK[task].cls], f"<{task} solution cell>"
    reference_files = {reference.__file__}
    outside, original = [], nn.Module.__call__

    def guarded(module, *args, **kwargs):
        frame = sys._getframe(1)
        mine = isinstance(module, cls)
        while frame is not None and not mine:
            # the student's cell, or the reference classes standing for the student's own parts
            mine = frame.f_code.co_filename == cell or frame.f_code.co_filename in reference_files
            frame = frame.f_back
        if not mine:
            outside.append((type(module).__name__, sys._getframe(1).f_code.co_name))
        return original(module, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "__call__", guarded)
    diagnosis.diagnose(task, namespace)
    assert not outside, f"the diagnosis called sub-modules itself: {sorted(set(outside))[:5]}"


def _tensors(value, depth=0):
    if torch.is_tensor(value):
        yield value
    elif depth < 3 and isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item, depth + 1)
    elif depth < 3 and hasattr(value, "__dict__") and not isinstance(value, (nn.Module, type)):
        yield from _tensors(vars(value), depth + 1)


@pytest.mark.parametrize("task", course.TASK_KEYS)
def test_no_kit_function_computes_a_task_output(task, capsys):
    """A cheater's forward has the class's parts, its input and the kit. Called with any of
    those (the stub's own module, x, the task, the config, the class, a length), no function or
    class of gpt_selfcheck.py or gpt_harness.py returns a tensor equal to the task's output."""
    import itertools
    from autograder.checks import reference
    spec = course.TASK[task]
    namespace = class_namespace(task, "raise NotImplementedError()\n")
    cls = namespace[spec.cls]
    config = dict(n_ctx=8, n_embd=16, n_head=2, head_size=8, n_layer=2, dropout=0.0, vocab_size=11)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(11, (2, 8), generator=gen) if spec.language_model else torch.randn(2, 8, 16, generator=gen)

    def fresh():
        module = cls(**config).eval()
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.3 + 0.1)
        return module

    solved = reference.CLASSES[spec.cls](**config).eval()
    solved.load_state_dict(fresh().state_dict())
    with torch.no_grad():
        want = solved(x)[0] if spec.language_model else solved(x)
    wants = [want, want.reshape(-1, want.shape[-1])]
    kit_modules = [diagnosis.selfcheck_module(), diagnosis.kit.load("gpt_harness")]
    callables = [(m.__name__, name, f) for m in kit_modules for name, f in vars(m).items()
                 if callable(f) and getattr(f, "__module__", None) == m.__name__ and name != "main"]
    assert len(callables) > 40
    module, calls, found = fresh(), 0, []
    warnings.simplefilter("ignore")  # (odd arguments make torch warn; pytest restores the filters)
    for (_, name, function), size in itertools.product(callables, range(4)):
        for args in itertools.permutations([module, x, task, config, cls, 8], size):
            calls += 1
            try:
                result = function(*args)
            except Exception:
                continue
            finally:
                touched = any(m._forward_hooks or m._forward_pre_hooks or "forward" in vars(m)
                              for m in module.modules())
                if touched:
                    module = fresh()
            for tensor in _tensors(result):
                if any(tensor.shape == w.shape and torch.allclose(tensor.double(), w.double(), atol=1e-5)
                       for w in wants):
                    found.append(name)
    capsys.readouterr()
    assert calls > 5000 and not found, found
