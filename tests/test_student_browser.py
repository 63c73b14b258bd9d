"""A student's mistakes in a real JupyterLab, in headless Chromium: what they see first is Russian.

The kit (make student-kit) is unpacked into an empty folder per scenario; the steps
before the one a scenario works on are solved and saved, as a student leaves them.
In the browser the student types the class cell (with a mistake), saves (Ctrl+S) and
runs all cells (Run → Run All Cells). For each mistake the first error on screen must
be Russian, name the step and the mistake, and show no English traceback. Scenarios
run side by side in tabs of one browser against one JupyterLab server. Screenshots go
to build/screenshots/student/ for a person to look at.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from autograder import course, notebooks
from kit import ROOT, kernel_env, paste, reference_body, unpack

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = ROOT / "build" / "screenshots" / "student"
TOKEN = "student-browser-test"

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (make setup)")
if not os.path.exists(CHROMIUM):
    pytest.skip("no Chromium: `make setup` installs Debian's chromium as root; none could be installed here",
                allow_module_level=True)

HEAD = reference_body("head")
GPT = reference_body("gpt_model")
# name: (notebook, task typed in the browser, its body, steps saved before (task: body), words the first
# message must hold). The steps before the notebook's own are solved on disk unless named.
SCENARIOS = {
    "01-scale": ("01_head", "head", HEAD.replace("self.head_size ** -0.5", "C ** -0.5"), {},
                 ["Шаг 01, Head", "неверный масштаб", "sqrt(head_size)"]),
    "01-mask-not-sliced": ("01_head", "head", HEAD.replace("self.tril[:T, :T]", "self.tril"), {},
                           ["Шаг 01, Head", "маска не обрезана до длины входа", "self.tril[:T, :T]"]),
    "01-no-dropout": ("01_head", "head", HEAD.replace("wei = self.dropout(wei)\n", ""), {},
                      ["Шаг 01, Head", "dropout не применяется в режиме обучения"]),
    "02-no-proj": ("02_multihead_attention", "multihead",
                   "out = torch.cat([h(x) for h in self.heads], dim=-1)\nout = self.dropout(out)\n", {},
                   ["Шаг 02, MultiHeadAttention", "нет проекции", "self.proj"]),
    "04-pre-norm": ("04_block", "block", "x = x + self.sa(self.ln1(x))\nx = x + self.ffwd(self.ln2(x))\n", {},
                    ["Шаг 04, Block", "pre-norm вместо требуемого post-norm"]),
    "05-no-ln_f": ("05_gpt_model", "gpt_model", GPT.replace("x = self.ln_f(x)\n", ""), {},
                   ["Шаг 05, GPTModel", "не применён финальный LayerNorm self.ln_f"]),
    "05-loss-item": ("05_gpt_model", "gpt_model",
                     GPT.replace("loss = F.cross_entropy(logits, targets)", "loss = F.cross_entropy(logits, targets).item()"),
                     {}, ["Шаг 05, GPTModel", "loss — число, а не тензор", "F.cross_entropy(logits, targets).item()"]),
    "05-positions-from-n_ctx": ("05_gpt_model", "gpt_model",
                                GPT.replace("torch.arange(T, device=idx.device)", "torch.arange(self.n_ctx)"), {},
                                ["Шаг 05, GPTModel", "при T < n_ctx", "arange(self.n_ctx)"]),
    "02-earlier-step-unsaved": ("02_multihead_attention", None, None, {"head": None},
                                ["Сначала сделайте шаг 01", "01_head.ipynb", "Ctrl+S"]),
    "05-earlier-step-broken": ("05_gpt_model", None, None,
                               {"head": HEAD.replace("wei = self.dropout(wei)\n", "")},
                               ["Сначала исправьте шаг 01 (Head)", "dropout не применяется", "01_head.ipynb, ячейка"]),
    # the cells above the class cell run, then the test cell alone: the class cell never ran
    "01-class-cell-not-run": ("01_head", None, None, {},
                              ["Класс Head не определён", "ячейку с class Head", "Shift+Enter"]),
}
NOT_RUN = "01-class-cell-not-run"
CORRECT = ("01-correct", "01_head", "head", HEAD)   # a correct step: no error, the heatmap shows
NEWS_OFF = {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
            "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"}}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One JupyterLab server over a folder of kits (its own config, settings and runtime dirs)."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    root.mkdir()
    settings = tmp / "settings"
    for plugin, values in NEWS_OFF.items():
        path = settings / (plugin + ".jupyterlab-settings")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    # only what a student's JupyterLab has: no grader's, language server's or classic notebook's extensions
    (tmp / "config").mkdir()
    off = {name: False for name in ("jupyter_lsp", "notebook", "nbgrader.server_extensions.assignment_list",
                                    "nbgrader.server_extensions.course_list", "nbgrader.server_extensions.formgrader",
                                    "nbgrader.server_extensions.validate_assignment")}
    (tmp / "config" / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": off}}))
    env = kernel_env(JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
                     JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"))
    env.pop("MPLBACKEND")   # the kernel's own inline backend: pictures show in the page
    port = free_port()
    log = open(tmp / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):   # up to 30 s
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError((tmp / "lab.log").read_text())
                time.sleep(0.2)
        else:
            raise RuntimeError("JupyterLab did not start: " + (tmp / "lab.log").read_text()[-3000:])
        yield base, root
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")   # a fresh user-data-dir
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1280, "height": 900}, locale="ru-RU")
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            ("http://127.0.0.1", "data:", "blob:", "about:")) else route.abort())
        yield context
        context.close()


def kit_for(root, name, own_task, earlier):
    """An unpacked kit whose steps before ``own_task``'s notebook are saved solved (or as ``earlier`` says)."""
    kit = unpack(root / name)
    own = course.TASK_KEYS.index(own_task) if own_task in course.TASK else len(course.TASK_KEYS)
    for task in course.TASK_KEYS[:own]:
        body = earlier.get(task, reference_body(task))
        if body is not None:
            paste(kit, task, body)
    return kit


def class_cell_source(notebook, task, body):
    nb = notebooks.read(course.RELEASE / f"{notebook}.ipynb")
    notebooks.paste_body(nb, task, body)
    return notebooks.find_cell(nb, f"{task}_solution").source


def open_lab(context, base):
    page = context.new_page()
    page.goto(f"{base}/lab?reset&token={TOKEN}")
    page.wait_for_selector(".jp-LauncherCard", timeout=60000)
    return page


def open_notebook(page, path):
    """File → Open from Path…: the notebook opens in a new tab; returns its panel's CSS selector."""
    before = page.locator(".jp-NotebookPanel").count()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^File$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Open from Path")).click()
    field = page.locator(".jp-Dialog input")
    field.fill(path)
    field.press("Enter")
    page.wait_for_function(f"() => document.querySelectorAll('.jp-NotebookPanel').length > {before}", timeout=30000)
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    panel.locator(".jp-Cell").first.wait_for(timeout=30000)
    return "#" + panel.get_attribute("id")


def wait_kernel(page, selector):
    """Until the notebook's kernel has started and is idle (Run All before that asks which kernel to start)."""
    page.wait_for_function(f"""() => {{
        const name = document.querySelector('{selector} [data-jp-item-name=kernelName]');
        const status = document.querySelector('{selector} [data-jp-item-name=executionProgress] [data-status]');
        return name && name.textContent.includes('Python 3') && status && status.dataset.status === 'idle';
    }}""", timeout=60000, polling=200)


def show(page, path):
    """Bring the tab of notebook ``path`` to the front."""
    page.locator(".lm-TabBar-tab", has=page.locator(f"xpath=self::*[contains(@title, 'Path: {path}')]")).click()


def type_cell(page, panel, index, source):
    """Replace the text of cell ``index`` (0-based) of the notebook in ``panel`` by typing ``source``."""
    editor = page.locator(f"{panel} .jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(source)
    page.keyboard.press("Escape")


def save(page):
    page.keyboard.press("Control+S")
    page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')",
                           timeout=30000)


def run_all(page):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def run_above_then(page, panel, index, then):
    """Run → Run All Above Selected Cell with cell ``index`` selected, then cell ``then`` alone
    (Shift+Enter): cell ``index`` never runs."""
    cells = page.locator(f"{panel} .jp-Notebook .jp-Cell")
    cells.nth(index).locator(".jp-InputPrompt").click()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Above Selected Cell$")).click()
    wait_done(page, panel)
    cells.nth(then).locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")


PROMPTS = "[...document.querySelectorAll('{panel} .jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"


def wait_done(page, panel, timeout=180):
    """Until a cell has run and none is running or waiting (Run All clears the queue at an error)."""
    page.wait_for_function(f"""() => {{
        const prompts = {PROMPTS.format(panel=panel)};
        return prompts.some(p => /\[\d+\]/.test(p)) && !prompts.some(p => p.includes('*'));
    }}""", timeout=timeout * 1000, polling=300)


def first_message(page, panel):
    """The text of the first error (or stderr) output of the notebook, and its element."""
    output = page.locator(f"{panel} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").first
    output.scroll_into_view_if_needed()
    return output.inner_text(), output


def index_of(notebook, task, cell="solution"):
    nb = notebooks.read(course.RELEASE / f"{notebook}.ipynb")
    return next(i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == f"{task}_{cell}")


@pytest.fixture(scope="module")
def scenarios(lab, browser):
    """Every scenario typed, saved and started in its own tab of one JupyterLab page: {name: panel}."""
    base, root = lab
    page = open_lab(browser, base)
    opened = {}
    for name, (notebook, task, body, earlier, _) in {**SCENARIOS, CORRECT[0]: CORRECT[1:] + ({}, [])}.items():
        kit = kit_for(root, name, task or course.TASK_OF_NOTEBOOK[notebook].key, earlier)
        if name == "02-earlier-step-unsaved":   # step 01 typed in its tab, never saved
            first = open_notebook(page, f"{name}/gpt/01_head.ipynb")
            wait_kernel(page, first)
            type_cell(page, first, index_of("01_head", "head"), class_cell_source("01_head", "head", HEAD))
        opened[name] = (open_notebook(page, f"{name}/gpt/{notebook}.ipynb"), kit)   # kernels start side by side
    for name, (notebook, task, body, earlier, _) in {**SCENARIOS, CORRECT[0]: CORRECT[1:] + ({}, [])}.items():
        panel, kit = opened[name]
        show(page, f"{name}/gpt/{notebook}.ipynb")
        wait_kernel(page, panel)
        if task is not None:
            typed = class_cell_source(notebook, task, body)
            type_cell(page, panel, index_of(notebook, task), typed)
            save(page)
            saved = notebooks.find_cell(notebooks.read(kit / f"{notebook}.ipynb"), f"{task}_solution").source
            assert saved == typed, "what was typed is what was saved"
        if name == NOT_RUN:
            run_above_then(page, panel, index_of(notebook, "head"), index_of(notebook, "head", "tests"))
        else:
            run_all(page)   # the scenarios run side by side, each in its own kernel
    SHOTS.mkdir(parents=True, exist_ok=True)
    return page, {name: panel for name, (panel, _) in opened.items()}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_students_mistake_is_shown_first_in_russian_in_jupyterlab(scenarios, name):
    page, panels = scenarios
    notebook, task, body, earlier, words = SCENARIOS[name]
    panel = panels[name]
    show(page, f"{name}/gpt/{notebook}.ipynb")
    wait_done(page, panel)
    said, output = first_message(page, panel)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    first_line = said.strip().split("\n")[0]
    assert re.search("[а-яА-Я]", first_line), said
    for word in words:
        assert word in said, (word, said)
    for english in ("Traceback", "most recent call", "Error:", "File \"", "site-packages", "torch/nn"):
        assert english not in said, (english, said)
    prompts = page.evaluate(f"() => {PROMPTS.format(panel=panel)}")
    numbered = [bool(re.search(r"\[\d+\]", p)) for p in prompts]
    if name == NOT_RUN:   # the class cell did not run, the test cell did
        code = [i for i, c in enumerate(notebooks.read(course.RELEASE / f"{notebook}.ipynb").cells)
                if c.cell_type == "code"]
        assert not numbered[code.index(index_of(notebook, "head"))], prompts
        assert numbered[code.index(index_of(notebook, "head", "tests"))], prompts
        return
    # Run All stopped at this error: the cells after it did not run
    ran = sum(numbered)
    assert prompts[ran:] and not any(numbered[ran:]) and all(numbered[:ran]), prompts


def test_a_correct_step_runs_clean_and_draws_its_attention(scenarios):
    page, panels = scenarios
    name, notebook, task, body = CORRECT
    panel = panels[name]
    show(page, f"{name}/gpt/{notebook}.ipynb")
    wait_done(page, panel)
    assert page.locator(f"{panel} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    check = page.locator(f"{panel} .jp-CodeCell", has_text='selfcheck("head"').locator(".jp-OutputArea-output").first
    assert check.inner_text().strip() == "Head: ошибок не найдено"
    image = page.locator(f"{panel} .jp-OutputArea-output img").first
    image.scroll_into_view_if_needed()
    assert image.evaluate("i => i.naturalWidth") > 300
    page.screenshot(path=str(SHOTS / f"{name}.png"))
