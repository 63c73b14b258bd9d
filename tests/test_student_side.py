"""The student-side code, in process: its minimum Python, its packages, its first cell, its Russian errors.

* ``vermin`` checks the kit's ``.py`` files and every notebook's code against the
  minimum Python the kit's README states (``gpt_course.PYTHON_MIN``);
* every package the kit's code imports is in the README's ``pip install`` line;
* every notebook starts with the setup cell of ``tools/setup_cell.py``;
* ``gpt_errors.explain`` turns a crash in a forward, a failed visible test, a broken
  earlier step and plain Python errors into Russian lines naming the mistake and the line.
"""
import ast
import linecache
import pathlib
import re
import subprocess
import sys
import warnings

import nbformat
import pytest
import torch
from torch.nn import functional as F

from autograder import course, notebooks

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE, RELEASE, LESSONS = ROOT / "source" / "gpt", ROOT / "release" / "gpt", ROOT / "notebooks"
sys.path.insert(0, str(SOURCE))
sys.path.insert(0, str(ROOT / "tools"))
import gpt_course  # noqa: E402
import gpt_errors  # noqa: E402
import setup_cell  # noqa: E402

KIT_MODULES = sorted(p.name for p in SOURCE.glob("*.py"))
STUDENT_NOTEBOOKS = sorted(SOURCE.glob("*.ipynb")) + sorted(LESSONS.glob("attention_basics.ipynb"))
MIN = "%d.%d" % gpt_course.PYTHON_MIN


def notebook_code(path):
    """A notebook's code cells as plain Python (IPython's magics turned into calls)."""
    from IPython.core.inputtransformer2 import TransformerManager
    nb = nbformat.read(str(path), as_version=4)
    return "\n\n".join(TransformerManager().transform_cell(c.source) for c in nb.cells if c.cell_type == "code")


# ---- the minimum Python

@pytest.fixture(scope="module")
def vermin_violations(tmp_path_factory):
    """{file name: vermin's words} of every student-side file that needs more than the minimum Python."""
    folder = tmp_path_factory.mktemp("vermin")
    files = [SOURCE / name for name in KIT_MODULES]
    for path in STUDENT_NOTEBOOKS:
        target = folder / f"{path.stem}.ipynb.py"
        target.write_text(notebook_code(path), encoding="utf-8")
        files.append(target)
    canary = folder / "canary.py"   # vermin must see what needs 3.11: else this check could not fail
    canary.write_text("import tomllib\n")
    vermin = pathlib.Path(sys.executable).parent / "vermin"
    done = subprocess.run([str(vermin), f"--target={MIN}-", "--violations", "--no-tips",
                           "--processes=1", *map(str, files + [canary])], capture_output=True, text=True)
    violations, current = {}, None
    for line in done.stdout.splitlines():
        match = re.match(r"^\S.*?\s(/\S+\.py)$", line)
        if match:
            current = pathlib.Path(match.group(1)).name.removesuffix(".ipynb.py").removesuffix(".py")
            violations[current] = line
        elif current and line.startswith("  "):
            violations[current] += "\n" + line
    assert "canary" in violations, done.stdout + done.stderr
    return violations


@pytest.mark.parametrize("name", [n[:-3] for n in KIT_MODULES] + [p.stem for p in STUDENT_NOTEBOOKS])
def test_student_side_code_needs_no_newer_python_than_the_readme_states(vermin_violations, name):
    assert name not in vermin_violations, vermin_violations.get(name)


def test_the_minimum_python_is_one_fact():
    readme = (SOURCE / "README.md").read_text(encoding="utf-8")
    assert f"Python {MIN} или новее" in readme
    assert f"sys.version_info < {gpt_course.PYTHON_MIN}" in setup_cell.SETUP_CELL
    assert f"нужен Python {MIN} или новее" in setup_cell.SETUP_CELL


# ---- packages

def imported_modules(source):
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_every_package_the_kit_imports_is_in_the_readmes_pip_line():
    readme = (RELEASE / "README.md").read_text(encoding="utf-8")
    pip_line = re.search(r"^\s*pip install (.+)$", readme, re.M).group(1).split()
    used = set()
    for path in RELEASE.glob("*.py"):
        used |= imported_modules(path.read_text(encoding="utf-8"))
    for path in RELEASE.glob("*.ipynb"):
        used |= imported_modules(notebook_code(path))
    local = {p.stem for p in RELEASE.glob("*.py")}
    bundled = {"IPython": "jupyterlab", "google": None}   # IPython comes with Jupyter; google.colab with Colab
    third_party = {m for m in used - local - set(sys.stdlib_module_names)}
    assert third_party >= {"torch", "matplotlib", "tqdm", "ipywidgets"}, third_party
    for module in third_party:
        package = bundled.get(module, module)
        assert package is None or package in pip_line, (module, pip_line)
    assert "autograder" not in used


# ---- the setup cell

@pytest.mark.parametrize("folder", [SOURCE, RELEASE], ids=["source", "release"])
def test_every_notebook_starts_with_the_setup_cell(folder):
    for name in course.NOTEBOOKS:
        nb = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        assert first.source == setup_cell.SETUP_CELL, name
        assert not first.metadata.get("tags") and "nbgrader" not in first.metadata, name


def run_setup_cell(tmp_path, monkeypatch, colab=None, namespace=()):
    """The setup cell executed here, in ``tmp_path``, with no gpt_course on the path (and the
    ``namespace`` a tool gives the notebook); returns its error or None."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "gpt_course", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if pathlib.Path(p or ".").resolve() != SOURCE])
    if colab is not None:
        monkeypatch.setitem(sys.modules, "google", type(sys)("google"))
        monkeypatch.setitem(sys.modules, "google.colab", colab)
        sys.modules["google"].colab = colab
    try:
        exec(compile(setup_cell.SETUP_CELL, "setup", "exec"), {"__name__": "__main__", **dict(namespace)})
    except Exception as error:
        return error
    return None


def test_the_setup_cell_alone_in_a_folder_says_what_to_do(tmp_path, monkeypatch):
    error = run_setup_cell(tmp_path, monkeypatch)
    assert type(error).__name__ == "CourseSetupError"
    assert "gpt_course.py" in str(error) and "student-kit.zip" in str(error)
    assert error._render_traceback_() == ["\x1b[1;31m" + str(error) + "\x1b[0m"]


@pytest.mark.parametrize("tool", ["vscode", "jupyter", "parent folder"])
def test_the_setup_cell_finds_the_kit_where_the_tool_says_the_notebook_is(tmp_path, monkeypatch, tool):
    """VS Code (its notebook root set to the workspace) and PyCharm start the kernel in the folder
    opened, not the notebook's: VS Code names the notebook in ``__vsc_ipynb_file__``, Jupyter in
    ``JPY_SESSION_NAME``; a workspace one level above the kit holds gpt/. It said «нет файлов курса»."""
    kit = tmp_path / "gpt"
    kit.mkdir()
    (kit / "gpt_course.py").write_text("FOUND = True\ndef start():\n    pass\n")
    elsewhere = tmp_path if tool == "parent folder" else tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    namespace = {"__vsc_ipynb_file__": str(kit / "01_head.ipynb")} if tool == "vscode" else {}
    if tool == "jupyter":
        monkeypatch.setenv("JPY_SESSION_NAME", str(kit / "01_head.ipynb"))
    else:
        monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert run_setup_cell(elsewhere, monkeypatch, namespace=namespace) is None
    assert pathlib.Path.cwd() == kit and str(kit) in sys.path and sys.modules["gpt_course"].FOUND


def test_the_setup_cell_keeps_the_folder_when_gpt_course_is_on_the_path(tmp_path, monkeypatch):
    """`python -m autograder check` puts the kit on PYTHONPATH for notebooks saved elsewhere."""
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "gpt_course.py").write_text("def start():\n    pass\n")
    (tmp_path / "work").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "kit"))
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delitem(sys.modules, "gpt_course", raising=False)
    exec(compile(setup_cell.SETUP_CELL, "setup", "exec"), {"__name__": "__main__"})
    assert pathlib.Path.cwd() == tmp_path / "work"


def test_the_setup_cell_in_colab_picks_the_kit_saved_last_on_the_drive(tmp_path, monkeypatch):
    drive = tmp_path / "drive"
    mounted = []
    colab = type(sys)("google.colab")
    colab.drive = type(sys)("google.colab.drive")
    colab.drive.mount = mounted.append
    kits = []
    for index, folder in enumerate(["gpt", "Курс/старое/gpt"]):
        kit = drive / "MyDrive" / folder
        kit.mkdir(parents=True)
        (kit / "00_data.ipynb").write_text("")
        (kit / "gpt_course.py").write_text(f"FOLDER = {index}\ndef start():\n    pass\n")
        kits.append(kit)
    (drive / "MyDrive" / "a" / "b" / "c" / "d").mkdir(parents=True)   # deeper than the search
    (drive / "MyDrive" / "a" / "b" / "c" / "d" / "gpt_course.py").write_text("")
    import os
    os.utime(kits[0] / "00_data.ipynb", (1, 1))
    monkeypatch.setenv("GPT_COLAB_DRIVE", str(drive))
    content = tmp_path / "content"
    content.mkdir()
    assert run_setup_cell(content, monkeypatch, colab) is None
    assert mounted == [str(drive)]
    assert pathlib.Path.cwd() == kits[1] and str(kits[1]) in sys.path
    assert sys.modules["gpt_course"].FOLDER == 1


def test_the_setup_cell_in_colab_without_the_kit_says_what_to_upload(tmp_path, monkeypatch):
    (tmp_path / "drive" / "MyDrive").mkdir(parents=True)
    colab = type(sys)("google.colab")
    colab.drive = type(sys)("google.colab.drive")
    colab.drive.mount = lambda path: None
    monkeypatch.setenv("GPT_COLAB_DRIVE", str(tmp_path / "drive"))
    error = run_setup_cell(tmp_path, monkeypatch, colab)
    assert type(error).__name__ == "CourseSetupError" and "MyDrive/gpt" in str(error)


# ---- errors in Russian

HEAD = notebooks.solution_body(notebooks.read(SOURCE / "01_head.ipynb"), "head")
GPT = notebooks.solution_body(notebooks.read(SOURCE / "05_gpt_model.ipynb"), "gpt_model")
# Step 04's class as a stand-in that returns its input, for GPTModel's cells run in-process
IDENTITY_BLOCK = ("class Block(nn.Module):\n    def __init__(self, **kw):\n        super().__init__()\n"
                  "    def forward(self, x):\n        return x\n")
CONFIG = dict(n_ctx=32, n_embd=64, n_head=4, head_size=16, n_layer=4, dropout=0.0, vocab_size=65)
_cells = iter(range(100, 10**6))


def cell(source, namespace):
    """Run ``source`` as the next notebook cell (a file name like ipykernel's, its lines in linecache)."""
    filename = f"/tmp/ipykernel_4242/{next(_cells)}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def task_notebook(task, body):
    """A namespace as in the task's notebook, whose class cell holds ``body``."""
    nb = notebooks.read(course.RELEASE / f"{course.TASK[task].notebook}.ipynb")
    notebooks.paste_body(nb, task, body)
    namespace = {"__name__": "__main__", "config": dict(CONFIG)}
    cell("import torch\nimport torch.nn as nn\nfrom torch.nn import functional as F\n", namespace)
    cell(notebooks.find_cell(nb, f"{task}_solution").source, namespace)
    return namespace


def failure(source, namespace):
    try:
        cell(source, namespace)
    except Exception as error:
        return error
    raise AssertionError("the cell did not fail")


def plain(lines):
    return [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]


def test_a_crash_in_forward_names_the_mistake_the_step_and_the_students_line():
    namespace = task_notebook("head", HEAD.replace("self.tril[:T, :T]", "self.tril"))
    error = failure("head = Head(**config)\nassert head(torch.randn(2, 5, 64)).shape == (2, 5, 16)\n", namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("Шаг 01, Head: маска не обрезана до длины входа: используйте self.tril[:T, :T]")
    assert "(строка" not in lines[0]     # the line is shown once, on its own
    assert re.match(r"Ваш код: ячейка, строка \d+: wei = wei\.masked_fill\(self\.tril == 0, float\('-inf'\)\)$",
                    lines[1]), lines
    assert "%tb" in lines[-1] and not [line for line in lines if "Traceback" in line]


def test_a_failed_visible_assert_is_named_by_the_diagnosis_with_the_line_it_concerns():
    namespace = task_notebook("head", HEAD.replace("self.head_size ** -0.5", "C ** -0.5"))
    error = failure('assert False, "неверный масштаб: 1/sqrt(n_embd) не подходит"\n', namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("Шаг 01, Head: неверный масштаб: делите на sqrt(head_size), а не на sqrt(n_embd)")
    assert lines[1].startswith("Ваш код: ячейка, строка") and lines[1].endswith("wei = q @ k.transpose(-2, -1) * C ** -0.5")


@pytest.mark.parametrize("body, line", [
    ("out = self.net(x)\nreturn F.layer_norm(out, out.shape[-1:])\n", "return F.layer_norm(out, out.shape[-1:])"),
    ("return 2 * self.net(x)\n", "return 2 * self.net(x)")])
def test_a_feedforward_that_changes_the_nets_output_is_named_at_its_return(body, line):
    namespace = task_notebook("feedforward", body)
    error = failure("ffwd = FeedFoward(**config)\nx = torch.randn(2, 5, 64)\n"
                    "assert torch.allclose(ffwd(x), ffwd.net(x)), 'выход должен быть результатом self.net(x)'\n",
                    namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("Шаг 03, FeedFoward: выход self.net изменён после него"), lines
    assert lines[1].startswith("Ваш код: ячейка, строка") and lines[1].endswith(line), lines


def test_a_residual_around_the_blocks_is_named_at_its_line_not_at_the_embeddings_sum():
    """``x = x + block(x)``: the line shown is the block's, though the embeddings' sum comes first."""
    body = GPT.replace("x = self.blocks(x)", "for block in self.blocks:\n    x = x + block(x)")
    assert body != GPT
    namespace = task_notebook("gpt_model", body)
    error = failure('assert False, "проверьте forward"\n', namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("Шаг 05, GPTModel: лишнее residual-соединение вокруг блоков"), lines
    assert lines[1].startswith("Ваш код: ячейка, строка") and lines[1].endswith("x = x + block(x)"), lines


def test_a_mask_sliced_by_a_length_taken_from_the_configuration_names_that_line_as_the_cause():
    """``T = config['n_ctx']``: the mask is sliced, by n_ctx; the line that took T is the cause."""
    body = HEAD.replace("B, T, C = x.shape", "B, _, C = x.shape\nT = config['n_ctx']")
    assert body != HEAD
    namespace = task_notebook("head", body)
    error = failure("head = Head(**config)\nassert head(torch.randn(2, 5, 64)).shape == (2, 5, 16)\n", namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("Шаг 01, Head: маска не обрезана до длины входа"), lines
    assert re.match(r"Скорее всего, причина — ячейка, строка \d+: T = config\['n_ctx'\]: здесь используется n_ctx",
                    lines[2]), lines


def test_a_loss_returned_as_a_number_is_named_at_the_line_that_computes_it():
    """``.item()`` on the loss: the visible test's ``loss.dim()`` fails on a float; the message names
    the number and the line is the cross-entropy's, not the first line that mentions loss."""
    body = GPT.replace("loss = F.cross_entropy(logits, targets)", "loss = F.cross_entropy(logits, targets).item()")
    assert body != GPT and "loss = None" in body
    namespace = task_notebook("gpt_model", body)
    cell(IDENTITY_BLOCK, namespace)
    error = failure("model = GPTModel(**config)\nidx = torch.zeros(2, 8, dtype=torch.long)\n"
                    "logits, loss = model(idx, idx)\nassert loss.dim() == 0\n", namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("Шаг 05, GPTModel: loss — число, а не тензор (например, после .item())"), lines
    assert lines[1].startswith("Ваш код: ячейка, строка") and lines[1].endswith(
        "loss = F.cross_entropy(logits, targets).item()"), lines


def test_a_crash_on_short_inputs_points_at_the_line_using_n_ctx():
    body = reference = notebooks.solution_body(notebooks.read(SOURCE / "05_gpt_model.ipynb"), "gpt_model")
    body = reference.replace("torch.arange(T, device=idx.device)", "torch.arange(self.n_ctx)")
    namespace = task_notebook("gpt_model", body)
    cell(IDENTITY_BLOCK, namespace)
    error = failure("model = GPTModel(**config)\nmodel(torch.zeros(2, 5, dtype=torch.long))\n", namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    # the cause by name (the diagnosis), the symptom translated, the line that uses n_ctx shown
    assert lines[0].startswith("Шаг 05, GPTModel: позиции взяты для всех n_ctx"), lines
    assert "размеры тензоров не совпадают" in lines[0] and "The size of tensor" not in "\n".join(lines)
    assert any(line.startswith("Скорее всего, причина — ячейка, строка") and "arange(self.n_ctx)" in line
               and gpt_errors.N_CTX_HINT in line for line in lines), lines


def test_an_error_elsewhere_is_not_blamed_on_the_class():
    namespace = task_notebook("head", HEAD.replace("self.tril[:T, :T]", "self.tril"))
    error = failure("print(undefined_name)\n", namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("имя «undefined_name» не определено"), lines
    assert not [line for line in lines if "маска" in line]
    assert lines[1] == "Сообщение Python: NameError: name 'undefined_name' is not defined"


def test_a_course_class_an_earlier_import_did_not_define_is_named():
    error = failure("Head(**config)\n", {"__name__": "__main__", "config": CONFIG})
    later_step = {"__session__": "/home/student/gpt/02_multihead_attention.ipynb"}   # as JupyterLab sets it
    lines = plain(gpt_errors.explain(error, error.__traceback__, later_step))
    assert lines[0].startswith("Класс Head не загружен из шага 01: выполните ячейку с import_notebook")


@pytest.mark.parametrize("namespace", [{"__session__": "gpt/01_head.ipynb"},
                                       {"__session__": "/home/s/Загрузки/01_head (1).ipynb"},
                                       {"__vsc_ipynb_file__": "c:\\Users\\s\\gpt\\01_head.ipynb"}])
def test_a_class_whose_own_cell_was_not_run_is_named(namespace):
    """In the class's own notebook (the test cell run before the class cell) the fix is that
    cell, not an import."""
    error = failure("Head(**config)\n", {"__name__": "__main__", "config": CONFIG})
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0] == "Класс Head не определён: выполните выше ячейку с class Head (Shift+Enter), затем эту ячейку снова."


def test_a_missing_class_in_an_unknown_notebook_names_both_ways_it_comes():
    error = failure("Head(**config)\n", {"__name__": "__main__", "config": CONFIG})
    for namespace in ({}, {"__session__": "/content/Копия блокнота.ipynb"}):
        lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
        assert lines[0].startswith("Класс Head не определён: выполните выше ячейку с class Head (в ноутбуке шага 01) "
                                   "или с import_notebook"), lines


def test_a_stopped_cell_says_so_where_it_stopped_and_that_nothing_is_lost():
    """■ (Kernel → Interrupt) in the middle of training: KeyboardInterrupt, in Russian, at the cell's line."""
    def stopper():
        raise KeyboardInterrupt
    namespace = {"__name__": "__main__", "stop": stopper}
    try:
        cell("history = []\nfor step in range(3):\n    history.append(step)\n    stop()\n", namespace)
    except KeyboardInterrupt as error:
        lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("Выполнение ячейки остановлено (ячейка, строка 4: stop())"), lines
    assert "сохранилось" in lines[1] and not [line for line in lines if "KeyboardInterrupt" in line]
    assert namespace["history"] == [0]


def test_course_errors_and_syntax_errors_are_shown_without_a_traceback():
    error = gpt_course.EarlierStepError("Сначала исправьте шаг 01 (Head): ...\nИсправьте 01_head.ipynb.")
    assert plain(gpt_errors.explain(error)) == ["Сначала исправьте шаг 01 (Head): ...", "Исправьте 01_head.ipynb."]
    assert error._render_traceback_() == gpt_errors.explain(error)
    try:
        compile("def forward(self x):\n    pass\n", "/tmp/ipykernel_4242/7.py", "exec")
    except SyntaxError as syntax:
        lines = plain(gpt_errors.explain(syntax))
    assert lines[0].startswith("Синтаксическая ошибка (ячейка, строка 1): неверный синтаксис"), lines
    assert lines[1] == "Строка: def forward(self x):"


def test_in_grading_the_diagnosis_is_not_run(monkeypatch):
    namespace = task_notebook("head", HEAD.replace("self.tril[:T, :T]", "self.tril"))
    error = failure("Head(**config)(torch.randn(2, 5, 64))\n", namespace)
    monkeypatch.setattr(gpt_errors, "GRADING", True)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    assert lines[0].startswith("размеры тензоров не совпадают: 32 и 5"), lines


@pytest.mark.parametrize("error, russian", [
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x16 and 64x64)"),
     "матрицы форм 64x16 и 64x64 нельзя перемножить"),
    (TypeError("cannot unpack non-iterable NoneType object"), "получено None вместо пары значений: не забыт ли return?"),
    (AttributeError("'Head' object has no attribute 'tril2'"), "у объекта Head нет атрибута «tril2»"),
    (ModuleNotFoundError("No module named 'matplotlib'"),
     "не установлен пакет «matplotlib»: установите его (pip install matplotlib) и перезапустите ядро"),
    (ModuleNotFoundError("No module named 'torch.nn.functionl'"),
     "в пакете «torch» нет модуля «torch.nn.functionl»: проверьте, как пишется его имя"),
    (ModuleNotFoundError("No module named 'my_model'"),    # the student's own file, not handed in or not graded
     "нет модуля «my_model»: если это ваш файл my_model.py, перенесите его код в ноутбук (сдаются и проверяются "
     "только ноутбуки); если это пакет, установите его (pip install my_model) и перезапустите ядро"),
    (NotImplementedError(), "решение ещё не написано: удалите raise NotImplementedError() и напишите его"),
    (KeyError("n_embd"), "нет ключа 'n_embd'"),
    (ValueError("something new"), "неверное значение"),
])
def test_python_errors_are_put_in_russian(error, russian):
    assert gpt_errors.in_russian(error) == russian


# Errors the course's mistakes make PyTorch raise, raised for real (its wording is what is matched):
# (the failing call, words of the Russian text, English words that must be gone)
TORCH_ERRORS = {
    "module_list_called": (lambda: torch.nn.ModuleList([torch.nn.Linear(2, 2)])(torch.ones(2)),
                           "ModuleList нельзя вызвать: у него нет метода forward", "missing the required"),
    "targets_not_flattened": (lambda: F.cross_entropy(torch.ones(64, 5), torch.zeros(2, 32, dtype=torch.long)),
                              "у логитов 64 строк, а у целей 2", "batch_size"),
    "targets_2d": (lambda: F.cross_entropy(torch.ones(64, 5), torch.zeros(64, 1, dtype=torch.long)),
                   "цели для F.cross_entropy должны быть одномерными", "multi-target"),
    "layernorm_size": (lambda: torch.nn.LayerNorm(64)(torch.ones(2, 3, 65)),
                       "LayerNorm ждёт последнюю ось размера 64, а получил тензор формы [2, 3, 65]", "normalized_shape"),
    "cat_of_modules": (lambda: torch.cat([torch.nn.Linear(2, 2)], dim=-1),
                       "элемент номер 0 — не тензор, а Linear", "expected Tensor"),
    "dot_of_matrices": (lambda: torch.dot(torch.ones(2, 3, 4), torch.ones(2, 3, 4)),
                        "torch.dot умножает только одномерные векторы", "1D tensors"),
    "mm_of_batches": (lambda: torch.mm(torch.ones(2, 3, 4), torch.ones(2, 4, 3)),
                      "torch.mm умножает только матрицы", "must be a matrix"),
    "size_unpacked_uncalled": (lambda: [None for B, T, C in [torch.ones(2, 3, 4).size]],
                               "вызовите его со скобками (x.size())", "non-iterable"),
    "too_many_to_unpack": (lambda: [None for B, T in [torch.ones(2, 3, 4).shape]],
                           "значений больше, чем переменных слева от = (их 2)", "expected"),
    "too_few_to_unpack": (lambda: [None for B, T, C in [torch.ones(2, 3).shape]],
                          "значений меньше, чем переменных слева от =: 2 вместо 3", "expected"),
    "tensor_of_tensors": (lambda: torch.tensor([torch.ones(2, 3)]),
                          "превращается только тензор из одного элемента", "one element"),
    "cat_dim_tuple": (lambda: torch.cat([torch.ones(2)], dim=(0,)),
                      "cat(): аргумент dim должен быть типа int, а не tuple", "must be"),
    "module_list_by_name": (lambda: torch.nn.Sequential(torch.nn.Linear(2, 2))["0"],
                            "значение типа str нельзя использовать как целое число", "interpreted"),
    "module_list_past_end": (lambda: torch.nn.ModuleList([torch.nn.Linear(2, 2)])[1],
                             "индекс 1 за пределами списка", "out of range"),
    "view_size_float": (lambda: torch.ones(2, 3, 4).view(2, 3, 8 / 2),
                        "3-й из них — float (деление / даёт float", "failed to unpack"),
    "layer_norm_shape_int": (lambda: F.layer_norm(torch.ones(2, 3), 3),
                             "аргумент normalized_shape должен быть кортежем целых чисел", "tuple of ints"),
    "dropout_probability": (lambda: torch.nn.Dropout(2), "вероятность dropout должна быть от 0 до 1, а получено 2",
                            "has to be"),
    "too_many_indices": (lambda: torch.ones(3, 3)[:, :, :], "индексов больше, чем осей у тензора (у него осей: 2)",
                         "too many"),
    "multinomial_of_zeros": (lambda: torch.multinomial(torch.zeros(2), 1), "сумма вероятностей не больше нуля",
                             "invalid multinomial"),
    "expand_fewer_sizes": (lambda: torch.ones(2, 3, 3).expand(2, 3), "expand: задано размеров 2, а осей у тензора 3",
                           "number of sizes"),
    "mean_of_integers": (lambda: torch.ones(2, 3, dtype=torch.long).mean(), "mean() считается только для вещественных",
                         "infer output dtype"),
    "cat_dimensions": (lambda: torch.cat([torch.ones(2, 3), torch.ones(2, 3, 4)], dim=-1),
                       "разное число осей: 2 и 3", "same number"),
    "cat_sizes": (lambda: torch.cat([torch.ones(2, 3, 4), torch.ones(2, 5, 4)], dim=-1),
                  "кроме оси 2, а у тензора номер 1 размер 5 вместо 3", "Sizes of tensors"),
    "cat_generator": (lambda: torch.cat(h for h in [torch.ones(2)]), "аргумент tensors должен быть списком тензоров",
                      "must be tuple"),
    "linear_of_list": (lambda: torch.nn.Linear(2, 2)([torch.ones(2)]), "аргумент input должен быть тензором, а передан list",
                       "must be Tensor"),
    "embedding_of_floats": (lambda: torch.nn.Embedding(10, 4)(torch.arange(3.0)), "nn.Embedding ждёт целые номера",
                            "scalar types"),
    "embedding_index": (lambda: torch.nn.Embedding(10, 4)(torch.tensor([12])), "за пределами таблицы nn.Embedding",
                        "out of range"),
    "float_mask": (lambda: torch.ones(3, 3).masked_fill(torch.tril(torch.ones(3, 3)), 0.0),
                   "маска для masked_fill должна быть логической", "boolean masks"),
    "tensor_as_condition": (lambda: bool(torch.ones(3) > 0), "нельзя проверять в if", "ambiguous"),
    "view_after_transpose": (lambda: torch.ones(2, 3, 4).transpose(1, 2).view(2, 12), "используйте .reshape(...)",
                             "stride"),
    "softmax_of_integers": (lambda: F.softmax(torch.ones(3, dtype=torch.long), dim=-1),
                            "не определена для тензоров типа Long", "not implemented"),
    "dtypes_of_matmul": (lambda: torch.ones(2, 3) @ torch.ones(3, 2, dtype=torch.float64), "разные типы данных",
                         "same dtype"),
    "in_place_before_backward": (lambda: torch.ones(3, requires_grad=True).sigmoid().exp_().sum().backward(),
                                 "изменён на месте", "inplace"),
    "loss_without_graph": (lambda: torch.ones(3).sum().backward(), "у потерь нет градиента", "grad_fn"),
    "axis_number": (lambda: torch.ones(2, 3).transpose(-2, 2), "оси с номером 2 у тензора нет", "out of range"),
    "tensor_called": (lambda: torch.ones(2)(3), "объект типа Tensor нельзя вызвать", "not callable"),
    "loss_unassigned": (lambda: _loss_without_else(None), "переменной «loss» не присвоено значение", "local variable"),
    "shape_called": (lambda: torch.ones(2).shape(), "объект типа torch.Size нельзя вызвать", "not callable"),
    "size_indexed": (lambda: torch.ones(2).size[0], "сначала вызовите его", "subscriptable"),
    "list_indexed_as_tensor": (lambda: [torch.ones(2)][_pair()], "список не тензор", "list indices"),
    "argument_twice": (lambda: F.softmax(torch.ones(2), -1, dim=-1), "аргумент dim передан дважды", "multiple values"),
    "tensor_plus_none": (lambda: torch.ones(2) + None, "операцию + нельзя применить к Tensor и NoneType",
                         "unsupported operand"),
    "forward_calls_itself": (lambda: _calls_itself(torch.ones(2)), "бесконечная рекурсия", "recursion depth"),
    "linear_on_token_ids": (lambda: torch.nn.Linear(3, 2)(torch.ones(2, 3, dtype=torch.long)),
                            "разные типы данных: Long и Float", "same dtype"),
    "float_targets": (lambda: F.cross_entropy(torch.randn(4, 5), torch.randn(4)), "номера токенов типа torch.long",
                      "expected target dtype"),
    "target_outside_vocabulary": (lambda: F.cross_entropy(torch.randn(4, 5), torch.tensor([0, 1, 2, 7])),
                                  "цель 7 вне словаря", "out of bounds"),
    "stack_of_different_shapes": (lambda: torch.stack([torch.ones(2, 3), torch.ones(2, 4)]),
                                  "тензоры должны быть одной формы", "stack expects"),
    "tril_of_a_vector": (lambda: torch.tril(torch.ones(3)), "хотя бы с двумя осями", "at least 2"),
    "matmul_with_a_number": (lambda: torch.tensor(1.0) @ torch.ones(2, 2), "число вместо тензора", "at least 1D"),
    "backward_twice": (lambda: _backward_twice(), "backward вызван второй раз", "second time"),
    "numpy_of_a_parameter": (lambda: torch.ones(2, requires_grad=True).numpy(), "numpy() нельзя вызвать",
                             "requires grad"),
    "parameter_changed_in_place": (lambda: torch.ones(2, requires_grad=True).add_(1), "изменён на месте",
                                   "leaf Variable"),
    "nan_probabilities": (lambda: torch.multinomial(torch.tensor([float("nan"), 1.0]), 1),
                          "содержат inf, NaN", "probability tensor"),
    "in_place_cast": (lambda: torch.ones(2, dtype=torch.long).mul_(0.5), "нельзя записать на месте", "can't be cast"),
    "two_inferred_axes": (lambda: torch.ones(6).view(-1, -1), "-1 можно указать только для одной оси",
                          "inferred"),
    "dim_as_a_string": (lambda: F.softmax(torch.ones(2), dim="x"), "аргумент dim должен быть типа int", "must be"),
    "shape_times_a_float": (lambda: torch.ones(2, 3).shape * 0.5, "кортеж или список нельзя умножить на float",
                            "multiply sequence"),
    "misspelt_keyword": (lambda: torch.nn.Linear(3, 2, bias_=False), "не принимает аргумент bias_",
                         "unexpected keyword"),
    "item_of_many": (lambda: torch.ones(3).item(), ".item() работает только у тензора из одного элемента",
                     "converted to Scalar"),
    "len_of_a_number_tensor": (lambda: len(torch.tensor(1.0)), "у тензора без осей", "0-d tensor"),
    "view_of_none": (lambda: torch.ones(2).view(None), "view(): такие аргументы не подходят", "invalid combination"),
    "function_in_a_module_list": (lambda: torch.nn.ModuleList([F.relu]), "не слой nn.Module", "Module subclass"),
    "cat_of_nothing": (lambda: torch.cat([]), "torch.cat получил пустой список", "non-empty"),
    "permute_of_too_few_axes": (lambda: torch.ones(2, 3, 4).permute(0, 1), "у тензора осей 3, а в новом порядке осей "
                                "названо 2", "number of dimensions"),
    "missing_file": (lambda: open("no-such-file.txt"), "файл «no-such-file.txt» не найден", "No such file"),
}
if not torch.cuda.is_available():   # where there is a GPU, .cuda() works
    TORCH_ERRORS["cuda_without_gpu"] = (lambda: torch.ones(2).cuda(), "GPU (CUDA) здесь нет", "not compiled")


def _backward_twice():
    loss = (torch.ones(2, requires_grad=True) * 2).sum()
    loss.backward()
    loss.backward()


def _calls_itself(x):
    return _calls_itself(x)


def _pair():
    return 0, 1


def _loss_without_else(targets):
    if targets is not None:
        loss = targets.sum()
    return loss  # noqa: F821 (the student's mistake: no loss = None when targets is None)


@pytest.mark.parametrize("name", TORCH_ERRORS)
def test_pytorchs_errors_of_the_course_mistakes_are_put_in_russian(name):
    """In the notebook (``in_russian``) and in the grader's feedback (``russian_text`` of the quoted crash)."""
    call, russian, english = TORCH_ERRORS[name]
    with pytest.raises(Exception) as caught:
        call()
    said = gpt_errors.in_russian(caught.value)
    quoted = gpt_errors.russian_text(f"{type(caught.value).__name__}: {caught.value}; строка 3: x = f(x)")
    for text in (said, quoted):
        assert russian in text and english not in text, text
    assert "Error" not in quoted and quoted.endswith("; строка 3: x = f(x)"), quoted


def test_self_dropout_called_where_it_is_the_configurations_number_is_named_so():
    """GPTModel's attributes are the configuration's values: nanoGPT's dropout on the embeddings,
    ``self.dropout(tok_emb + pos_emb)``, calls the number 0.1. Another number called keeps the plain words."""
    namespace = task_notebook("gpt_model", GPT.replace("x = tok_emb + pos_emb", "x = self.dropout(tok_emb + pos_emb)"))
    cell(IDENTITY_BLOCK, namespace)
    error = failure("model = GPTModel(**config)\nlogits, loss = model(torch.zeros(2, 5, dtype=torch.long))\n", namespace)
    lines = plain(gpt_errors.explain(error, error.__traceback__, namespace))
    number = "self.dropout здесь — число из конфигурации (вероятность dropout), а не слой nn.Dropout"
    assert lines[0].startswith("Шаг 05, GPTModel: ошибка при выполнении forward (" + number), lines
    assert lines[1].endswith("x = self.dropout(tok_emb + pos_emb)"), lines
    quoted = gpt_errors.russian_text("TypeError: 'float' object is not callable; строка 51: x = self.dropout(x)")
    assert quoted.startswith(number) and quoted.endswith("; строка 51: x = self.dropout(x)"), quoted
    other = gpt_errors.russian_text("TypeError: 'int' object is not callable; строка 51: x = self.n_embd(x)")
    assert other.startswith("объект типа int нельзя вызвать как функцию"), other


def test_only_the_stubs_not_implemented_error_says_the_solution_is_unwritten():
    assert gpt_errors.in_russian(NotImplementedError()).startswith("решение ещё не написано")
    with pytest.raises(NotImplementedError) as caught:
        torch.nn.ModuleList()(torch.ones(1))
    assert "не написано" not in gpt_errors.in_russian(caught.value)


class FakeShell:
    """What the handler uses of IPython's shell."""

    def __init__(self):
        self.user_ns, self.shown, self.fallback = {}, [], []
        self.compile = type("Compile", (), {"_filename_map": {}})()

    def _showtraceback(self, etype, evalue, stb):
        self.shown.append((etype.__name__, str(evalue), stb, evalue.__cause__))

    def showtraceback(self, exc_tuple=None, tb_offset=None):
        self.fallback.append(exc_tuple)

    def set_custom_exc(self, exc_tuple, handler):
        self.custom = (exc_tuple, handler)


def test_the_handler_shows_russian_lines_keeps_the_original_and_falls_back_when_it_fails(monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)   # install sets it
    shell = FakeShell()
    assert gpt_errors.install(shell) and shell.custom[0] == (Exception, KeyboardInterrupt)
    error = ValueError("bad")
    gpt_errors._handler(shell, ValueError, error, None)
    (ename, evalue, stb, cause), = shell.shown
    assert ename == "ValueError" and evalue == "неверное значение." and cause is error
    assert sys.last_value is error          # %tb shows the original
    monkeypatch.setattr(gpt_errors, "explain", lambda *a: 1 / 0)
    gpt_errors._handler(shell, ValueError, error, None)
    assert shell.fallback == [(ValueError, error, None)] and len(shell.shown) == 1


def test_a_warning_a_course_mistake_gives_is_russian_at_the_students_line(monkeypatch, capsys):
    """F.softmax(wei) without dim: PyTorch's English deprecation warning becomes one Russian line
    naming the fix and the cell's line; a warning the course does not know is shown as Python shows it."""
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(gpt_errors, "GRADING", False)
    passed_on = []   # what goes to Python's own showwarning (under pytest it records, not prints)
    monkeypatch.setattr(gpt_errors, "_SHOWWARNING", lambda message, *rest: passed_on.append(str(message)))
    assert gpt_errors.install(FakeShell()) and warnings.showwarning is gpt_errors._show_warning
    namespace = task_notebook("head", HEAD.replace("F.softmax(wei, dim=-1)", "F.softmax(wei)"))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = gpt_errors._show_warning   # catch_warnings restores what it found
        cell("head = Head(**config)\nout = head(torch.randn(2, 5, 64))\n", namespace)
        cell("import warnings\nwarnings.warn('something else entirely')\n", namespace)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert re.match(r"Предупреждение \(ячейка, строка \d+: wei = F\.softmax\(wei\)\): F\.softmax вызван без dim: .*"
                    r"F\.softmax\(wei, dim=-1\)$", lines[0]), lines
    assert "Implicit dimension" not in err and len(lines) == 1
    assert passed_on == ["something else entirely"]


def test_in_grading_warnings_stay_pythons(monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(gpt_errors, "GRADING", True)
    before = warnings.showwarning
    assert gpt_errors.install(FakeShell()) and warnings.showwarning is before


@pytest.mark.parametrize("make", [
    lambda: torch.tensor(torch.ones(2)),
    lambda: torch.nn.functional.mse_loss(torch.ones(3, 1), torch.ones(3)),
    lambda: (torch.ones(2, requires_grad=True) * 2).grad,
    lambda: torch.ones(2, 3, 4).T,
], ids=["tensor_copy", "target_size", "non_leaf_grad", "transpose_of_3d"])
def test_each_known_warning_is_one_that_pytorch_gives(make):
    """The Russian table matches PyTorch's own words (a newer torch that rewords one shows it in English)."""
    was = torch.is_warn_always_enabled()
    torch.set_warn_always(True)   # a warning torch gives once per process, given again here
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make()
    finally:
        torch.set_warn_always(was)
    assert caught and all(gpt_errors.russian_warning(w.message) for w in caught), [str(w.message) for w in caught]


def test_attention_weights_are_the_students_own(monkeypatch):
    import gpt_plots
    namespace = task_notebook("head", HEAD)
    torch.manual_seed(0)
    head = namespace["Head"](**CONFIG)
    weights = gpt_plots.attention_weights(head, torch.randn(1, 6, 64))["head"][0]
    assert weights.shape == (6, 6) and torch.allclose(weights.sum(-1), torch.ones(6))
    assert torch.equal(weights, torch.tril(weights))
    no_dropout = task_notebook("head", HEAD.replace("wei = self.dropout(wei)\n", ""))
    with pytest.raises(ValueError, match="self.dropout должен применяться"):
        gpt_plots.attention_weights(no_dropout["Head"](**CONFIG), torch.randn(1, 6, 64))


def test_a_class_imported_from_the_students_own_file_is_named_before_it_costs_the_task(tmp_path, monkeypatch, capsys):
    """Head kept in my_model.py and imported in 01_head's solution cell works on the student's
    computer, and gets 0 when graded (only notebooks are handed in and run): the self-check says so,
    and step 02 stops on import, as for any broken earlier step."""
    import shutil
    kit = tmp_path / "gpt"
    shutil.copytree(RELEASE, kit)
    source = notebooks.read(SOURCE / "01_head.ipynb")
    cell = notebooks.find_cell(source, "head_solution")
    (kit / "my_model.py").write_text("import torch\nimport torch.nn as nn\nfrom torch.nn import functional as F\n\n"
                                     + cell.source, encoding="utf-8")
    student = notebooks.read(kit / "01_head.ipynb")
    notebooks.find_cell(student, "head_solution").source = "from my_model import Head"
    nbformat.write(student, str(kit / "01_head.ipynb"))
    monkeypatch.chdir(kit)
    monkeypatch.syspath_prepend(str(kit))
    monkeypatch.delitem(sys.modules, "my_model", raising=False)
    monkeypatch.setattr(gpt_course, "_CACHE", {})
    monkeypatch.setattr(gpt_course, "CHECK_EARLIER_STEPS", True)   # as in a student's kernel (the grader's diagnosis turns it off)
    with pytest.raises(gpt_course.EarlierStepError) as stopped:
        gpt_course.import_notebook("01_head.ipynb", "Head")
    assert str(stopped.value).startswith("Сначала исправьте шаг 01: Класс Head взят из файла my_model.py, а не "
                                         "написан в ноутбуке 01_head.ipynb: при проверке сдаются и выполняются "
                                         "только ноутбуки"), str(stopped.value)
    from my_model import Head
    gpt_course.selfcheck("head", {"Head": Head, "config": gpt_course.import_notebook("00_data.ipynb", "config")})
    assert capsys.readouterr().out.startswith("Класс Head взят из файла my_model.py")
