"""``python -m autograder check``: a student's check before submitting.

Runs the notebooks under nbval (``pytest --nbval-lax``, as CI runs the source
notebooks), then the diagnosis of each task's class (``gpt_selfcheck.py``, the
file shipped beside the notebooks) and prints its Russian explanations. Needs
neither the hidden tests nor reference outputs.
"""
import os
import pathlib
import re
import subprocess
import sys

from . import course, diagnosis


def _environment(folder):
    env = dict(os.environ)
    # Kernels find gpt_course.py and the data even outside the course folder.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), str(course.RELEASE),
                                                      env.get("PYTHONPATH")]))
    if "GPT_COURSE_DATA" not in env and course.DATA.is_file():
        env["GPT_COURSE_DATA"] = str(course.DATA)
    return env


def run_nbval(folder, names, env):
    """(ok, [Russian lines]) of ``pytest --nbval-lax`` on the notebooks ``names`` in ``folder``."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider",
                           "-o", "addopts=", "-q", "-rf", "--tb=no", *names],
                          cwd=folder, env=env, capture_output=True, text=True)
    failed = re.findall(r"^FAILED (\S+?)::(.*?)(?: - (.*))?$", proc.stdout, re.M)
    lines = [f"{name}: ячейка {cell.replace('Cell ', '')} не выполнилась" + (f" — {why}" if why else "")
             for name, cell, why in failed]
    if proc.returncode not in (0, 1):
        lines.append("pytest --nbval-lax не запустился:\n" + (proc.stdout + proc.stderr)[-2000:])
    return proc.returncode == 0, lines


def run_diagnosis(folder, env):
    """(ok, text) of ``gpt_selfcheck.py`` on the notebooks of ``folder``, run in a fresh process."""
    script = folder / "gpt_selfcheck.py"
    script = script if script.is_file() else diagnosis.PATH
    proc = subprocess.run([sys.executable, str(script), str(folder)], cwd=folder, env=env,
                          capture_output=True, text=True)
    return proc.returncode == 0, (proc.stdout + proc.stderr[-2000:]).strip()


def notebooks_to_check(paths):
    """(folder, notebook names) that ``paths`` name, or (None, a Russian line saying why not):
    notebooks of one folder, or a folder of the course's notebooks."""
    paths = [pathlib.Path(p).resolve() for p in paths]
    for path in paths:
        if not path.exists():
            return None, f"нет такого файла или папки: {path}"
        if path.is_file() and path.suffix.lower() != ".ipynb":
            return None, f"{path}: не ноутбук Jupyter (.ipynb)"
    folder = paths[0] if paths[0].is_dir() else paths[0].parent
    if any((p if p.is_dir() else p.parent) != folder for p in paths):
        return None, "укажите ноутбуки из одной папки (или саму папку курса)"
    names = [p.name for p in paths if p.is_file()] or sorted(
        f"{name}.ipynb" for name in course.NOTEBOOKS if (folder / f"{name}.ipynb").is_file())
    if not names:
        return None, (f"в папке {folder} нет ноутбуков курса ({course.NOTEBOOKS[0]}.ipynb … "
                      f"{course.NOTEBOOKS[-1]}.ipynb): укажите папку gpt из архива курса")
    return folder, names


def main(paths):
    folder, names = notebooks_to_check(paths)
    if folder is None:
        print(f"ошибка: {names}", file=sys.stderr)
        return 2
    env = _environment(folder)
    print(f"Выполняю ноутбуки ({', '.join(names)}) под nbval...")
    nbval_ok, lines = run_nbval(folder, names, env)
    print("\n".join(lines) if lines else "Все ячейки ноутбуков выполнились.")
    print("\nДиагностика классов (что делает ваш forward):")
    diagnosis_ok, text = run_diagnosis(folder, env)
    print(text)
    return 0 if nbval_ok and diagnosis_ok else 1
