"""environment.yml and requirements.txt pin the same packages and versions."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+(?:\[[A-Za-z0-9_,.\-]+\])?)==([^\s#]+)")


def pins(path):
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_requirements_are_exact_pins():
    lines = [l for l in (ROOT / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines and all("==" in l for l in lines), "every requirement must be an exact pin"
    assert len(pins(ROOT / "requirements.txt")) == len(lines), "a pin this test cannot read"
    assert pins(ROOT / "requirements.txt")["torch"] == "2.13.0"


def test_environment_yml_matches_requirements():
    assert pins(ROOT / "environment.yml") == pins(ROOT / "requirements.txt")


def test_the_venv_goes_first_on_path_and_a_missing_path_keeps_the_systems(monkeypatch):
    """``env -i .venv/bin/python -m autograder grade``: no PATH at all. The venv's bin folder
    comes first (nbgrader runs alembic by name) and the system's default path after it (bwrap
    in /usr/bin was «not found» with bubblewrap installed)."""
    import os
    import sys
    from autograder import nbconfig
    bin_dir = os.path.dirname(sys.executable)
    monkeypatch.delenv("PATH", raising=False)
    nbconfig.venv_on_path()
    assert os.environ["PATH"].split(os.pathsep) == [bin_dir, *os.defpath.split(os.pathsep)]
    monkeypatch.setenv("PATH", "/opt/tools")
    nbconfig.venv_on_path()
    assert os.environ["PATH"] == os.pathsep.join([bin_dir, "/opt/tools"])


def test_make_passes_paths_with_spaces_as_one_argument_each():
    """Moodle names its downloads after the course and assignment («GPT с нуля-ДЗ 1-123.zip»):
    ``make grade SUBMISSIONS=…`` split such a path into words (argparse: «unrecognized arguments»)."""
    import shlex
    import subprocess
    paths = {"SUBMISSIONS": "/x/GPT с нуля-ДЗ 1.zip", "OUT": "/y/out dir", "DASK": "tcp://h:1",
             "SERVICE_OUT": "/z/service dir"}
    for target, expected in [("grade", ["grade", paths["SUBMISSIONS"], "--out", paths["OUT"], "--dask", "tcp://h:1"]),
                             ("demo", ["demo", "--out", paths["OUT"]]),
                             ("serve", ["serve", "--out", paths["SERVICE_OUT"]])]:
        shown = subprocess.run(["make", "-n", target, *(f"{k}={v}" for k, v in paths.items())], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
        commands = [shlex.split(line) for line in shown.splitlines() if line.startswith(".venv/bin/python -m autograder")]
        assert [words[3:] for words in commands] == [expected], shown
