"""The student kit (make student-kit) runs as downloaded, with nothing else from the repository.

The kit zip is unpacked into an empty folder; kernels start with no PYTHONPATH and
no GPT_COURSE_DATA, so only the kit's own files can be found. The whole kit runs
under nbval in a simulated Google Colab (a stand-in ``google.colab`` and a Drive-like
folder, kernels in an empty /content), leaving no stray output; a notebook alone in a
folder says in Russian what to do; an earlier step's mistake stops the later step on import, in Russian,
naming the step, the mistake and the line.
"""
import json
import pathlib
import re
import subprocess
import sys
import zipfile

import nbformat
import pytest

from autograder import course, notebooks
from kit import (ROOT, append_cell, colab, errors, kernel_env, paste, reference_body, run, solved_kit,
                 student_kit, text, unpack)

pytestmark = pytest.mark.slow  # kernels run the unpacked kit

KIT_FILES = {f"{name}.ipynb" for name in course.NOTEBOOKS} | {
    "attention_basics.ipynb", "gpt_course.py", "gpt_errors.py", "gpt_harness.py", "gpt_messages.py",
    "gpt_plots.py", "gpt_selfcheck.py", "gpt_submit.py", "gpt_tasks.py", "README.md", "block.png", "data/input.txt"}
CYRILLIC = re.compile("[а-яА-ЯёЁ]")


def test_zip_holds_exactly_the_release_under_gpt(tmp_path):
    zip_path = student_kit.build(tmp_path / "kit.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
    assert all(n.startswith("gpt/") for n in names)
    assert {n[len("gpt/"):] for n in names} == KIT_FILES
    assert names == [f"gpt/{p.as_posix()}" for p in student_kit.kit_files()]
    assert student_kit.build(tmp_path / "again.zip").read_bytes() == zip_path.read_bytes()


# Appended to 00_data: the setup cell found the kit on the Drive and went there; nothing of this
# checkout on the path (but its root, which `make setup` puts in the venv so that `python -m
# autograder` works from any folder), no course variables, the kit's own gpt_course.py and corpus,
# and the notebook never imported the grader.
ISOLATION = """import os, pathlib, sys
import google.colab.drive
import gpt_course
from gpt_course import find_data
root = pathlib.Path({root!r})
kit = pathlib.Path({kit!r})
venv = pathlib.Path(sys.prefix).resolve()
assert google.colab.drive.MOUNTS == [{drive!r}], google.colab.drive.MOUNTS
assert pathlib.Path.cwd().resolve() == kit.resolve()
assert not [p for p in sys.path if p and pathlib.Path(p).resolve() != root
            and pathlib.Path(p).resolve().is_relative_to(root)
            and not pathlib.Path(p).resolve().is_relative_to(venv)], sys.path
assert pathlib.Path(gpt_course.__file__).resolve().parent == kit.resolve()
assert not os.environ.get('PYTHONPATH') and not os.environ.get('GPT_COURSE_DATA')
assert find_data().resolve() == (kit / 'data' / 'input.txt').resolve()
assert 'autograder' not in sys.modules, 'the notebook imported the grader'"""

# Appended to each graded notebook: its self-check finds nothing in the reference body.
SELF_CHECK_SILENT = """import contextlib, io
said = io.StringIO()
with contextlib.redirect_stdout(said):
    selfcheck({task!r}, globals())
assert said.getvalue().strip() == {cls!r} + ": ошибок не найдено", said.getvalue()"""


def test_the_kit_runs_in_a_simulated_colab_under_nbval(tmp_path):
    """Colab: the kernel starts in an empty /content; the setup cell mounts the Drive, finds the
    unpacked kit in a folder of My Drive, goes there, and every notebook runs (nbval)."""
    env, my_drive, content = colab(tmp_path)
    kit = solved_kit(my_drive / "Курс")
    for name in (f"{n}.ipynb" for n in course.NOTEBOOKS):
        nb = nbformat.read(str(kit / name), as_version=4)
        nbformat.write(nb, str(content / name))
    append_cell(content, "00_data.ipynb", ISOLATION.format(root=str(ROOT), kit=str(kit),
                                                          drive=str(my_drive.parent)))
    for spec in course.TASKS:
        append_cell(content, f"{spec.notebook}.ipynb", SELF_CHECK_SILENT.format(task=spec.key, cls=spec.cls))
    append_cell(content, "06_training.ipynb",
                "assert history[-1][0] == 29, history  # GPT_MAX_ITERS=30: 30 steps\n"
                "assert len(curves) == 4 and all(len(c) > 1 for c in curves.values()), curves")
    for name in course.NOTEBOOKS:   # no stray outputs: only 00's first window is shown on purpose
        expected = ["Tensor"] if name == "00_data" else []
        append_cell(content, f"{name}.ipynb", f"assert [type(v).__name__ for v in Out.values()] == {expected!r}, Out")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-current-env", "--nbval-cell-timeout=300", "-c", str(tmp_path / "pytest.ini"),
                           "--rootdir", str(tmp_path), *sorted(p.name for p in content.glob("*.ipynb"))],
                          cwd=content, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", done.stdout) and "failed" not in done.stdout, done.stdout[-2000:]


def first_error(nb):
    found = errors(nb)
    assert found, "expected the notebook to stop with an error"
    return found[0]


def assert_russian_only(traceback):
    """What the student sees first: Russian, no English traceback."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", traceback)
    assert CYRILLIC.search(plain.split("\n")[0]), plain
    for english in ("Traceback", "most recent call", "ModuleNotFoundError", "File \"", "site-packages"):
        assert english not in plain, plain
    return plain


def test_a_notebook_alone_says_what_to_do_in_russian(tmp_path):
    """Opened alone (no kit beside it), a notebook stops at its first cell with what to unpack and where."""
    alone = tmp_path / "alone"
    alone.mkdir()
    nb = nbformat.read(str(course.RELEASE / "02_multihead_attention.ipynb"), as_version=4)
    nbformat.write(nb, str(alone / "02_multihead_attention.ipynb"))
    nb = run(alone, "02_multihead_attention.ipynb", allow_errors=False)
    number, ename, _, traceback = first_error(nb)
    assert ename == "CourseSetupError" and number == 3
    plain = assert_russian_only(traceback)
    assert "gpt_course.py" in plain and "student-kit.zip" in plain and "папки gpt" in plain


def test_colab_without_the_kit_on_the_drive_says_what_to_upload(tmp_path):
    env, my_drive, content = colab(tmp_path)
    (my_drive / "Заметки").mkdir()
    nb = nbformat.read(str(course.RELEASE / "01_head.ipynb"), as_version=4)
    nbformat.write(nb, str(content / "01_head.ipynb"))
    nb = run(content, "01_head.ipynb", env=env, allow_errors=False)
    number, ename, _, traceback = first_error(nb)
    assert ename == "CourseSetupError"
    plain = assert_russian_only(traceback)
    assert "Google Диске" in plain and "MyDrive/gpt" in plain and "data" in plain
    assert f"Mounted at {my_drive.parent}" in text(nb)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A solved kit whose classes the tests below break one at a time (and put back)."""
    return solved_kit(tmp_path_factory.mktemp("kit") / "broken")


def test_n_embd_scale_fails_the_visible_test_in_russian_and_the_self_check_names_it(broken):
    body = reference_body("head")
    assert "self.head_size ** -0.5" in body
    paste(broken, "head", body.replace("self.head_size ** -0.5", "C ** -0.5"))
    try:
        nb = run(broken, "01_head.ipynb")
        (_, ename, evalue, traceback), *later = errors(nb)
        assert ename == "AssertionError"   # the visible test still fails: nbgrader and nbval see it
        assert evalue.startswith("Шаг 01, Head: неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd)")
        plain = assert_russian_only(traceback)
        assert "Ваш код: ячейка [" in plain and "строка" in plain and "C ** -0.5" in plain
        assert "неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd)" in text(nb)  # the self-check
        cli = subprocess.run([sys.executable, "gpt_selfcheck.py"], cwd=broken, env=kernel_env(),
                             capture_output=True, text=True, timeout=300)
        assert "неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd)" in cli.stdout, \
            cli.stdout + cli.stderr
        assert cli.returncode == 1
    finally:
        paste(broken, "head", body)


def _class_cell(nb, task):
    return next(i for i, c in enumerate(nb.cells, start=1) if notebooks.grade_id(c) == f"{task}_solution")


def test_a_head_returning_x_stops_step_02_first_naming_step_01(broken):
    paste(broken, "head", "out = x")
    try:
        nb = run(broken, "02_multihead_attention.ipynb", allow_errors=False)
        number, ename, evalue, traceback = first_error(nb)
        assert ename == "EarlierStepError"
        # named by the diagnosis (the weights multiply x, not v), with the wrong shape it gave
        assert evalue.startswith("Сначала исправьте шаг 01 (Head): веса умножаются на x"), evalue
        assert "(2, 12, 64) вместо (2, 12, 16)" in evalue, evalue
        assert number < _class_cell(nb, "multihead"), "the earlier step is named before the task's cells"
        assert_russian_only(traceback)
        assert "mat1 and mat2" not in text(nb)
    finally:
        paste(broken, "head", reference_body("head"))


# Each earlier step's mistake, as the later step's import reports it: (task, body, wanted words).
EARLIER_MISTAKES = {
    "head_no_dropout": ("head", lambda b: b.replace("wei = self.dropout(wei)\n", ""),
                        "Сначала исправьте шаг 01 (Head): dropout не применяется в режиме обучения"),
    "head_mask_not_sliced": ("head", lambda b: b.replace("self.tril[:T, :T]", "self.tril"),
                             "Сначала исправьте шаг 01 (Head): маска не обрезана до длины входа"),
    "head_scale_by_C": ("head", lambda b: b.replace("self.head_size ** -0.5", "C ** -0.5"),
                        "Сначала исправьте шаг 01 (Head): неверный масштаб"),
    "head_sees_the_future": ("head", lambda b: b.replace(
        "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))", "pass"),
        "Сначала исправьте шаг 01 (Head): маска не применена"),
    "mha_no_projection": ("multihead", lambda b: b.replace("self.proj(out)", "out"),
                          "Сначала исправьте шаг 02 (MultiHeadAttention): нет проекции"),
    "ffwd_no_dropout": ("feedforward", lambda b: "return self.net[2](self.net[1](self.net[0](x)))\n",
                        "Сначала исправьте шаг 03 (FeedFoward): dropout не применяется в режиме обучения"),
    "block_pre_norm": ("block", lambda b: "x = x + self.sa(self.ln1(x))\nx = x + self.ffwd(self.ln2(x))\n",
                       "Сначала исправьте шаг 04 (Block): pre-norm вместо требуемого post-norm"),
}

# What a later step's import says, for each broken kit, from one plain Python process.
IMPORT_GPT = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from gpt_course import import_notebook, EarlierStepError
said = {}
for folder in sys.argv[1:]:
    os.chdir(folder)
    try:
        import_notebook('05_gpt_model.ipynb', 'GPTModel')
        said[folder] = None
    except EarlierStepError as error:
        said[folder] = str(error)
print(json.dumps(said, ensure_ascii=False))
"""


def test_every_earlier_mistake_stops_a_later_step_on_import_naming_step_mistake_and_line(tmp_path):
    """05 imports 04, which imports 02 and 03, which import 01: the first broken step is named, with the
    diagnosis' words and its own cell and line, though every other step is correct."""
    folders = {}
    for name, (task, change, _) in EARLIER_MISTAKES.items():
        kit = unpack(tmp_path / name)
        for other in course.TASK_KEYS:
            body = reference_body(other)
            paste(kit, other, change(body) if other == task else body)
        folders[name] = kit
    done = subprocess.run([sys.executable, "-c", IMPORT_GPT, *map(str, folders.values())], cwd=tmp_path,
                          env=kernel_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout)
    for name, (task, _, wanted) in EARLIER_MISTAKES.items():
        message = said[str(folders[name])]
        assert message and message.startswith(wanted), (name, message)
        notebook = course.TASK[task].notebook
        assert re.search(rf"\nГде: {notebook}\.ipynb, ячейка \d+, строка \d+: ", message), (name, message)
        assert message.endswith(f"Исправьте {notebook}.ipynb, сохраните его (Ctrl+S) и выполните эту ячейку снова.")
    assert "(строка" not in said[str(folders["head_mask_not_sliced"])].split("\n")[0]


def test_a_self_check_that_depends_on_a_broken_step_says_so(broken):
    paste(broken, "head", reference_body("head").replace("self.tril[:T, :T]", "self.tril"))
    try:
        nb = run(broken, "02_multihead_attention.ipynb")
        check = next(c for c in nb.cells if c.source.startswith("from gpt_course import selfcheck"))
        said = "".join(o.get("text", "") for o in check.outputs)
        assert "ошибок не найдено" not in said
        assert said.startswith("MultiHeadAttention: проверить до конца нельзя"), said
        assert "Сначала исправьте шаг 01 (Head): маска не обрезана до длины входа" in said
        assert not [o for o in check.outputs if o.output_type == "execute_result"], "no True/False left"
    finally:
        paste(broken, "head", reference_body("head"))


IMPORT_HEAD = """
from gpt_course import import_notebook
try:
    import_notebook('01_head.ipynb', 'Head')
except ImportError as error:
    print(type(error).__name__, error)
"""


def import_head(folder):
    """What a later step's import of Head says, from a plain Python process in ``folder``."""
    done = subprocess.run([sys.executable, "-c", IMPORT_HEAD], cwd=folder, env=kernel_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_syntax_error_in_01_is_reported_with_its_own_cell_number_and_a_stub_asks_to_save(tmp_path):
    kit = unpack(tmp_path / "stub")
    assert import_head(kit) == (
        "EarlierStepError Сначала сделайте шаг 01: в сохранённом файле 01_head.ipynb класс Head ещё не "
        "реализован (в нём по-прежнему raise NotImplementedError()).\n"
        "Если решение уже написано, сохраните 01_head.ipynb (Ctrl+S) и выполните эту ячейку снова.")
    nb01 = notebooks.read(kit / "01_head.ipynb")
    cell = notebooks.find_cell(nb01, "head_solution")
    line = cell.source.split("\n").index("    def forward(self, x):") + 1
    cell.source = cell.source.replace("    def forward(self, x):", "    def forward(self x):")
    nbformat.write(nb01, str(kit / "01_head.ipynb"))
    number = _class_cell(nb01, "head")
    assert number == 7 and line > 1   # counted as Jupyter shows cells, not as exported ones
    said = import_head(kit)
    assert said.startswith(f"EarlierStepError Сначала исправьте шаг 01: синтаксическая ошибка "
                           f"(01_head.ipynb, ячейка {number}, строка {line}: def forward(self x):)"), said
    assert said.endswith("Исправьте 01_head.ipynb, сохраните его (Ctrl+S) и выполните эту ячейку снова.")


def test_06_has_a_plain_step_count_threads_the_seed_and_a_leak_warning():
    nb = notebooks.read(course.SOURCE / "06_training.ipynb")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any(re.match(r"max_iters = 5000\b", s) for s in code)
    assert any('os.environ.get("GPT_MAX_ITERS", max_iters)' in s for s in code)
    joined = "\n".join(code)
    assert "torch.manual_seed(1)" in joined and "1337" not in joined
    assert "torch.set_num_threads(" in joined
    assert "if val_losses[-1] < 1.0:" in joined and "будущее просачивается через маску" in joined.lower()
    # the experiments obey the step count too, so that tests (GPT_MAX_ITERS=30) stay short
    assert "exp_iters = min(400, max_iters)" in joined


def test_06_warns_when_the_validation_loss_is_implausibly_low(capsys):
    nb = notebooks.read(course.SOURCE / "06_training.ipynb")
    cell = next(c.source for c in nb.cells if "if val_losses[-1] < 1.0:" in c.source)
    exec(cell, {"val_losses": [4.2, 0.15]})
    assert "проверьте Head" in capsys.readouterr().out
    exec(cell, {"val_losses": [4.2, 1.8]})
    assert capsys.readouterr().out == ""


def test_find_data_ignores_a_stale_variable_and_names_the_kit_when_missing(tmp_path):
    kit = unpack(tmp_path / "stale")
    env = {**kernel_env(), "GPT_COURSE_DATA": str(tmp_path / "missing.txt")}
    done = subprocess.run([sys.executable, "-c", "from gpt_course import find_data; print(find_data())"],
                          cwd=kit, env=env, capture_output=True, text=True, timeout=60)
    assert pathlib.Path(done.stdout.strip()) == kit / "data" / "input.txt", done.stderr
    (kit / "data" / "input.txt").unlink()
    done = subprocess.run([sys.executable, "-c", "import gpt_course\ntry:\n    gpt_course.find_data()\n"
                           "except FileNotFoundError as error:\n    print(error)"],
                          cwd=kit, env=env, capture_output=True, text=True, timeout=60)
    assert "Не найден файл data/input.txt" in done.stdout and "Google Диск" in done.stdout, done.stdout + done.stderr
