"""The first code cell of every course notebook: it finds the course folder.

    python tools/setup_cell.py            # put SETUP_CELL first in every notebook of source/gpt

The cell is the one place this code lives; ``tests/test_student_kit.py`` checks that every
notebook of ``source/gpt`` starts with it. In Jupyter it checks that the course files lie
beside the notebook (or where VS Code's ``__vsc_ipynb_file__`` or Jupyter's ``JPY_SESSION_NAME``
says the notebook is, or in ``gpt/`` below the kernel's folder); in Google Colab it mounts Google Drive and looks for the kit folder
there (``$GPT_COLAB_DRIVE`` names another mount point). Where it finds nothing it says in
Russian what to upload where, without a traceback, and stops Run All. It parses on any
Python 3 and says so when the Python is older than the course's minimum.
"""
import pathlib
import sys

import nbformat

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = ROOT / "source" / "gpt"
TITLE = "#@title Настройка: папка курса (выполните эту ячейку первой)"

SETUP_CELL = TITLE + r'''
# Находит папку курса (с файлом gpt_course.py): рядом с ноутбуком, а в Google Colab — на вашем
# Google Диске. Затем включает русские сообщения об ошибках.
import os
import sys
from pathlib import Path


class CourseSetupError(Exception):
    def _render_traceback_(self):  # Jupyter покажет только это сообщение, без traceback
        return ["\x1b[1;31m" + str(self) + "\x1b[0m"]


def find_course_folder():
    if sys.version_info < (3, 10):
        raise CourseSetupError("Курсу нужен Python 3.10 или новее, а это ядро — Python %d.%d: выберите другое "
                               "ядро (Kernel → Change Kernel) или установите новый Python." % sys.version_info[:2])
    if Path("gpt_course.py").is_file():
        return Path.cwd()
    import importlib.util
    if importlib.util.find_spec("gpt_course") is not None:   # on PYTHONPATH: the notebooks stay here
        return Path.cwd()
    # VS Code and Jupyter name the notebook's file when the kernel starts elsewhere
    for hint in (globals().get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME")):
        if hint and os.path.isabs(hint) and (Path(hint).parent / "gpt_course.py").is_file():
            return Path(hint).parent
    if Path("gpt", "gpt_course.py").is_file():   # the folder above the kit's was opened
        return Path.cwd() / "gpt"
    if "google.colab" not in sys.modules:
        raise CourseSetupError(
            "Рядом с этим ноутбуком нет файлов курса (gpt_course.py и других). Распакуйте архив "
            "student-kit.zip целиком и откройте ноутбук из папки gpt: в ней лежат все семь ноутбуков, "
            "файлы .py и папка data.")
    from google.colab import drive
    mount_point = Path(os.environ.get("GPT_COLAB_DRIVE", "/content/drive"))
    drive.mount(str(mount_point))
    found = {p.parent for depth in range(4)
             for p in (mount_point / "MyDrive").glob("*/" * depth + "gpt_course.py")
             if (p.parent / "00_data.ipynb").is_file()}
    if not found:
        raise CourseSetupError(
            "На Google Диске не найдена папка курса. Загрузите всю папку gpt из архива student-kit.zip "
            "в «Мой диск» (например, в MyDrive/gpt) вместе с папкой data и файлами .py, откройте "
            "ноутбуки оттуда и выполните эту ячейку снова.")
    # several copies: the one whose notebooks were saved last
    folder = max(found, key=lambda f: max(p.stat().st_mtime for p in f.glob("*.ipynb")))
    print("Папка курса на Google Диске:", folder)
    return folder


COURSE_FOLDER = find_course_folder()
os.chdir(COURSE_FOLDER)
if str(COURSE_FOLDER) not in sys.path:
    sys.path.insert(0, str(COURSE_FOLDER))
import gpt_course

gpt_course.start()'''

METADATA = {"cellView": "form"}   # Colab shows the title and hides the code


def is_setup_cell(cell):
    return cell.cell_type == "code" and cell.source.startswith(TITLE)


def apply(nb):
    """Make SETUP_CELL the first code cell of ``nb`` (replacing an older copy); return ``nb``."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if is_setup_cell(cell):
            cell.source = SETUP_CELL
            cell.metadata = dict(METADATA)
        else:
            new = nbformat.v4.new_code_cell(SETUP_CELL, metadata=dict(METADATA))
            new.id = "course-setup"
            nb.cells.insert(index, new)
        return nb
    return nb


def main(paths):
    for path in paths or sorted(SOURCE.glob("0*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        nbformat.write(apply(nb), str(path))
        print(path)


if __name__ == "__main__":
    main([pathlib.Path(p) for p in sys.argv[1:]])
