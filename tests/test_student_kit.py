"""The student kit (make student-kit) runs as downloaded, with nothing else from the repository.

The kit zip is unpacked into an empty folder; kernels start there with no
PYTHONPATH and no GPT_COURSE_DATA, so only the kit's own files can be found.
"""
import json
import os
import pathlib
import re
import subprocess
import sys
import zipfile

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import course, notebooks

NOTEBOOK_OF_TASK = {spec.key: spec.notebook for spec in course.TASKS}

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import student_kit  # noqa: E402

pytestmark = pytest.mark.slow  # kernels run the unpacked kit

KIT_FILES = {f"{name}.ipynb" for name in course.NOTEBOOKS} | {
    "attention_basics.ipynb", "gpt_course.py", "gpt_harness.py", "gpt_messages.py", "gpt_selfcheck.py",
    "gpt_submit.py", "gpt_tasks.py", "README.md", "block.png", "data/input.txt"}


def kernel_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPT_COURSE_DATA")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GPT_MAX_ITERS="30", MPLBACKEND="Agg")
    return env


def run(folder, name):
    """Execute notebook ``name`` in ``folder`` (saved back, as a student would) and return it."""
    path = folder / name
    nb = nbformat.read(str(path), as_version=4)
    # killed when done, as nbval does: a graceful exit tears torch down (~0.4 CPU-s a kernel)
    NotebookClient(nb, timeout=300, allow_errors=True, kernel_name="python3", shutdown_kernel="immediate",
                   resources={"metadata": {"path": str(folder)}}).execute(env=kernel_env())
    nbformat.write(nb, str(path))
    return nb


def errors(nb):
    """(cell number as Jupyter counts, from 1; ename; evalue) of each failed cell."""
    return [(number, out.ename, out.evalue) for number, cell in enumerate(nb.cells, start=1)
            for out in cell.get("outputs", []) if out.output_type == "error"]


def text(nb):
    return json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False)


def paste(folder, task, body):
    name = f"{NOTEBOOK_OF_TASK[task]}.ipynb"
    nb = notebooks.read(folder / name)
    notebooks.paste_body(nb, task, body)
    nbformat.write(nb, str(folder / name))


def reference_body(task):
    return notebooks.solution_body(notebooks.read(course.SOURCE / f"{NOTEBOOK_OF_TASK[task]}.ipynb"), task)


def unpack(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    zip_path = student_kit.build(tmp_path / f"{name}.zip")
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return folder / "gpt"


def solved_kit(tmp_path_factory, name):
    """The kit, unpacked, with every reference body pasted in."""
    kit = unpack(tmp_path_factory.mktemp("kit"), name)
    for task in course.TASK_KEYS:
        paste(kit, task, reference_body(task))
    return kit


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    return solved_kit(tmp_path_factory, "solved")


def test_zip_holds_exactly_the_release_under_gpt(tmp_path):
    zip_path = student_kit.build(tmp_path / "kit.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = sorted(archive.namelist())
    assert all(n.startswith("gpt/") for n in names)
    assert {n[len("gpt/"):] for n in names} == KIT_FILES
    assert names == [f"gpt/{p.as_posix()}" for p in student_kit.kit_files()]
    assert student_kit.build(tmp_path / "again.zip").read_bytes() == zip_path.read_bytes()


# Appended to 00_data in the kit: nothing of this checkout on the path (but its root, which
# `make setup` puts in the venv so that `python -m autograder` works from any folder), no course
# variables, the kit's own gpt_course.py and corpus, and the notebook never imported the grader.
ISOLATION = f"""import os, pathlib, sys
import gpt_course
from gpt_course import find_data
root = pathlib.Path({str(ROOT)!r})
venv = pathlib.Path(sys.prefix).resolve()
assert not [p for p in sys.path if p and pathlib.Path(p).resolve() != root
            and pathlib.Path(p).resolve().is_relative_to(root)
            and not pathlib.Path(p).resolve().is_relative_to(venv)], sys.path
assert pathlib.Path(gpt_course.__file__).resolve().parent == pathlib.Path.cwd().resolve()
assert not os.environ.get('PYTHONPATH') and not os.environ.get('GPT_COURSE_DATA')
assert find_data().resolve() == (pathlib.Path.cwd() / 'data' / 'input.txt').resolve()
assert 'autograder' not in sys.modules, 'the notebook imported the grader'"""


@pytest.mark.parametrize("name", [f"{n}.ipynb" for n in course.NOTEBOOKS])
def test_every_notebook_runs_in_the_unpacked_kit(solved, name):
    if name == "00_data.ipynb":   # the kernel sees the kit's files only
        nb = nbformat.read(str(solved / name), as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(ISOLATION))
        nbformat.write(nb, str(solved / name))
    nb = run(solved, name)
    assert errors(nb) == [], name
    if name[:-len(".ipynb")] in course.GRADED_NOTEBOOKS:
        assert "ошибок не найдено" in text(nb), "the self-check cell should find nothing in a reference body"
    if name == "06_training.ipynb":
        assert "шаг 29:" in text(nb), "GPT_MAX_ITERS=30 should train 30 steps"


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """A second solved kit, whose Head the tests below break (the other steps stay correct)."""
    return solved_kit(tmp_path_factory, "broken")


def test_n_embd_scale_fails_the_visible_assert_and_the_self_check_names_it(broken):
    body = reference_body("head")
    assert "self.head_size ** -0.5" in body
    paste_over(broken, "head", body.replace("self.head_size ** -0.5", "C ** -0.5"))
    nb = run(broken, "01_head.ipynb")
    (_, ename, evalue), = [e for e in errors(nb)]
    assert ename == "AssertionError" and "1/sqrt(n_embd)" in evalue and "1/sqrt(head_size)" in evalue
    assert "неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd)" in text(nb)
    cli = subprocess.run([sys.executable, "gpt_selfcheck.py"], cwd=broken, env=kernel_env(),
                         capture_output=True, text=True, timeout=300)
    assert "неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd)" in cli.stdout, cli.stdout + cli.stderr
    assert cli.returncode == 1


def _class_cell(nb, task):
    return next(i for i, c in enumerate(nb.cells, start=1) if notebooks.grade_id(c) == f"{task}_solution")


def test_a_head_returning_x_stops_step_02_first_naming_step_01(broken):
    paste_over(broken, "head", "out = x")
    nb = run(broken, "02_multihead_attention.ipynb")
    found = errors(nb)
    first_number, ename, evalue = found[0]
    assert ename == "EarlierStepError"
    assert "ваш Head из шага 01 возвращает форму (2, 32, 64) вместо (2, 32, 16): сначала исправьте шаг 01" in evalue
    assert first_number < _class_cell(nb, "multihead"), "the earlier step is named before the task's cells"
    assert "mat1 and mat2" not in text(nb)


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
    kit = unpack(tmp_path, "stub")
    assert import_head(kit) == ("EarlierStepError в сохранённом файле 01_head.ipynb Head ещё не реализован: "
                                "сохраните ноутбук (Ctrl+S) и перезапустите эту ячейку "
                                "(если шаг 01 ещё не сделан, начните с него)")
    nb01 = notebooks.read(kit / "01_head.ipynb")
    cell = notebooks.find_cell(nb01, "head_solution")
    line = cell.source.split("\n").index("    def forward(self, x):") + 1
    cell.source = cell.source.replace("    def forward(self, x):", "    def forward(self x):")
    nbformat.write(nb01, str(kit / "01_head.ipynb"))
    number = _class_cell(nb01, "head")
    assert number == 6 and line > 1   # counted as Jupyter shows cells, not as exported ones
    said = import_head(kit)
    assert said.startswith(f"EarlierStepError ошибка в шаге 01 (01_head.ipynb, ячейка {number}, строка {line}): "
                           "SyntaxError"), said
    assert said.endswith("сначала исправьте шаг 01 и сохраните 01_head.ipynb (Ctrl+S)")


def paste_over(folder, task, body):
    """Put the release stub back, then paste ``body`` (a fresh copy of the class cell)."""
    name = f"{NOTEBOOK_OF_TASK[task]}.ipynb"
    release = notebooks.read(course.RELEASE / name)
    nb = notebooks.read(folder / name)
    notebooks.find_cell(nb, f"{task}_solution").source = notebooks.find_cell(release, f"{task}_solution").source
    notebooks.paste_body(nb, task, body)
    nbformat.write(nb, str(folder / name))


def test_06_has_a_plain_step_count_threads_the_seed_and_a_leak_warning():
    nb = notebooks.read(course.SOURCE / "06_training.ipynb")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any(re.match(r"max_iters = 5000\b", s) for s in code)
    assert any('os.environ.get("GPT_MAX_ITERS", max_iters)' in s for s in code)
    joined = "\n".join(code)
    assert "torch.manual_seed(1)\n" in joined + "\n" and "1337" not in joined
    assert "torch.set_num_threads(" in joined
    assert "if val_losses[-1] < 1.0:" in joined and "будущее просачивается через маску" in joined.lower()


def test_06_warns_when_the_validation_loss_is_implausibly_low(capsys):
    nb = notebooks.read(course.SOURCE / "06_training.ipynb")
    cell = next(c.source for c in nb.cells if "if val_losses[-1] < 1.0:" in c.source)
    exec(cell, {"val_losses": [4.2, 0.15]})
    assert "проверьте Head" in capsys.readouterr().out
    exec(cell, {"val_losses": [4.2, 1.8]})
    assert capsys.readouterr().out == ""


def test_a_head_that_sees_the_future_is_named_on_import(tmp_path):
    kit = unpack(tmp_path, "leak")
    body = reference_body("head")
    mask = "wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))"
    assert mask in body
    paste(kit, "head", body.replace(mask, "pass"))
    said = import_head(kit)
    assert said.startswith("EarlierStepError ваш Head из шага 01 пропускает будущее"), said
    assert said.endswith("сначала исправьте шаг 01 и сохраните 01_head.ipynb (Ctrl+S)")


def test_find_data_ignores_a_stale_variable(tmp_path):
    kit = unpack(tmp_path, "stale")
    env = {**kernel_env(), "GPT_COURSE_DATA": str(tmp_path / "missing.txt")}
    done = subprocess.run([sys.executable, "-c", "from gpt_course import find_data; print(find_data())"],
                          cwd=kit, env=env, capture_output=True, text=True, timeout=60)
    assert pathlib.Path(done.stdout.strip()) == kit / "data" / "input.txt", done.stderr
