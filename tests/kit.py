"""The student kit as a student gets it: unpacked, solved (or not), run by a kernel, in Colab.

Helpers of tests/test_student_kit.py and tests/test_student_browser.py. Kernels
start with no PYTHONPATH and no GPT_COURSE_DATA, so only the kit's own files can
be found; ``colab`` builds a stand-in ``google.colab`` and a Drive-like folder.
"""
import json
import os
import pathlib
import sys
import textwrap
import zipfile

import nbformat
from nbclient import NotebookClient

from autograder import course, notebooks

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import student_kit  # noqa: E402

NOTEBOOK_OF_TASK = {spec.key: spec.notebook for spec in course.TASKS}


def kernel_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GPT_COURSE_DATA")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", GPT_MAX_ITERS="30", MPLBACKEND="Agg")
    env.update(extra)
    return env


def run(folder, name, env=None, allow_errors=True):
    """Execute notebook ``name`` in ``folder`` (saved back, as a student would) and return it.

    ``allow_errors=False`` stops at the first failing cell, as Run All does."""
    path = folder / name
    nb = nbformat.read(str(path), as_version=4)
    # killed when done, as nbval does: a graceful exit tears torch down (~0.4 CPU-s a kernel)
    client = NotebookClient(nb, timeout=300, allow_errors=allow_errors, kernel_name="python3",
                            shutdown_kernel="immediate", resources={"metadata": {"path": str(folder)}})
    try:
        client.execute(env=env or kernel_env())
    except Exception as error:   # CellExecutionError: the notebook holds what ran
        if allow_errors or type(error).__name__ != "CellExecutionError":
            raise
    nbformat.write(nb, str(path))
    return nb


def errors(nb):
    """(cell number as Jupyter counts, from 1; ename; evalue; traceback text) of each failed cell."""
    return [(number, out.ename, out.evalue, "\n".join(out.traceback)) for number, cell in enumerate(nb.cells, start=1)
            for out in cell.get("outputs", []) if out.output_type == "error"]


def text(nb):
    return json.dumps([c.get("outputs", []) for c in nb.cells], ensure_ascii=False)


def reference_body(task):
    return notebooks.solution_body(notebooks.read(course.SOURCE / f"{NOTEBOOK_OF_TASK[task]}.ipynb"), task)


def paste(folder, task, body):
    """Put the release stub back into the task's class cell, then paste ``body`` (as a student types it)."""
    name = f"{NOTEBOOK_OF_TASK[task]}.ipynb"
    release = notebooks.read(course.RELEASE / name)
    nb = notebooks.read(folder / name)
    notebooks.find_cell(nb, f"{task}_solution").source = notebooks.find_cell(release, f"{task}_solution").source
    notebooks.paste_body(nb, task, body)
    nbformat.write(nb, str(folder / name))


def unpack(folder):
    """The kit zip (make student-kit) unpacked into the empty ``folder``: returns ``folder/gpt``."""
    folder.mkdir(parents=True, exist_ok=True)
    zip_path = student_kit.build(folder.parent / f"{folder.name}.zip")
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return folder / "gpt"


def solved_kit(folder):
    """The kit, unpacked into ``folder``, with every reference body pasted in."""
    kit = unpack(folder)
    for task in course.TASK_KEYS:
        paste(kit, task, reference_body(task))
    return kit


def append_cell(folder, name, source):
    nb = nbformat.read(str(folder / name), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, str(folder / name))


# ---- Google Colab, simulated

STAND_IN_DRIVE = '''\
"""Stand-in for google.colab.drive: "mounts" the Drive-like folder the test made."""
import pathlib

MOUNTS = []


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
    path = pathlib.Path(mountpoint)
    if not (path / "MyDrive").is_dir():
        raise ValueError(f"no Drive-like folder at {mountpoint}")
    MOUNTS.append(str(path))
    print(f"Mounted at {mountpoint}")
'''


def colab(tmp):
    """A simulated Colab under ``tmp``: (environment for its kernels, My Drive folder, empty /content).

    Kernels import a stand-in ``google.colab`` at start (an IPython startup file), as Colab's
    kernels have it loaded; ``$GPT_COLAB_DRIVE`` points the setup cell at ``tmp/drive``.
    """
    stand_in = tmp / "stand-in"
    (stand_in / "google" / "colab").mkdir(parents=True)
    (stand_in / "google" / "__init__.py").write_text("")
    (stand_in / "google" / "colab" / "__init__.py").write_text("from . import drive  # noqa: F401\n")
    (stand_in / "google" / "colab" / "drive.py").write_text(STAND_IN_DRIVE)
    startup = tmp / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text(textwrap.dedent(f"""\
        import sys
        sys.path.append({str(stand_in)!r})
        import google.colab
        """))
    my_drive = tmp / "drive" / "MyDrive"
    my_drive.mkdir(parents=True)
    content = tmp / "content"
    content.mkdir()
    return kernel_env(IPYTHONDIR=str(tmp / "ipython"), GPT_COLAB_DRIVE=str(tmp / "drive")), my_drive, content
