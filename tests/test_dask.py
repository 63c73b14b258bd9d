"""grade --dask on a real cluster on localhost: `dask scheduler` and `dask worker` processes (the
CLI), each worker in its own copy of the repository, against the local pool on the same class.

One class of three students is graded by the local pool, then through the cluster in a run
that is interrupted after its first student and run again (only the missing are graded), then
in a run where one worker is killed after its first student starts while a worker from a
changed copy of the repository is refused: grades, result records and gradebook are the local
pool's each time.
"""
import csv
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from autograder import demo
from autograder.course import TASKS

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = os.path.dirname(sys.executable)
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
ENV = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), **ONE_THREAD}
WORKER_ENV = dict(ENV, DASK_DISTRIBUTED__WORKER__DAEMON="False")  # workers start grading processes
# Three students that each take a whole grading: when the first is merged, one is still being graded,
# so the run stops with one left to grade again (kept < 3) even when it notices the interrupt only
# after the next student it merges (classrun/interruption.py). An untouched release takes 3 s.
STUDENTS = ("student_reference", "student_pre_norm", "student_no_scale")
STARTED = "autograder: grading"  # what a worker's task says when a student starts (remote.grade)


def repo_copy(folder, change=None):
    """A copy of the repository as a worker machine has it (the venv is shared)."""
    for part in ("autograder", "source", "release"):
        shutil.copytree(ROOT / part, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    if change:
        path, old, new = change
        text = (folder / path).read_text(encoding="utf-8")
        assert old in text
        (folder / path).write_text(text.replace(old, new), encoding="utf-8")
    return folder


class Cluster:
    """A scheduler and named workers, each a process group of its own, with its log."""

    def __init__(self, folder):
        self.folder, self.processes = folder, {}
        self.address = None

    def _start(self, name, command, cwd, env):
        log = open(self.folder / f"{name}.log", "w")
        self.processes[name] = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def start_scheduler(self):
        info = self.folder / "scheduler.json"
        self._start("scheduler", [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--scheduler-file", str(info),
                                  "--idle-timeout", "900"], self.folder, ENV)
        deadline = time.monotonic() + 120
        while not info.is_file() or "address" not in info.read_text():
            assert time.monotonic() < deadline and self.processes["scheduler"].poll() is None, self.log("scheduler")
            time.sleep(0.2)
        time.sleep(0.2)  # written whole
        self.address = json.loads(info.read_text())["address"]

    def start_worker(self, name, repo):
        self._start(name, [sys.executable, "-m", "dask", "worker", self.address, "--name", name,
                           "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--death-timeout", "120",
                           "--local-directory", str(self.folder / f"space-{name}")],
                    repo, dict(WORKER_ENV, PYTHONPATH=str(repo)))

    def wait_for(self, names):
        """Until the scheduler lists exactly the workers ``names``."""
        from distributed import Client
        with Client(self.address, timeout=60, set_as_default=False) as client:
            deadline = time.monotonic() + 180
            while sorted(w["name"] for w in client.scheduler_info()["workers"].values()) != sorted(names):
                assert time.monotonic() < deadline, {n: self.log(n)[-2000:] for n in names}
                time.sleep(0.5)

    def log(self, name):
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def kill(self, name):
        """SIGKILL to the worker's whole group: nanny, worker, zygote, kernels."""
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes.pop(name).wait(timeout=60)

    def stop(self):
        for name, process in list(self.processes.items()):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=60)
        self.processes.clear()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("dask")
    folder = demo.build_class(base / "class")
    for extra in folder.iterdir():
        if extra.name not in STUDENTS:
            shutil.rmtree(extra)
    cluster = Cluster(base)
    try:
        cluster.start_scheduler()
        for name in ("a", "b"):  # they start while the local pool grades
            cluster.start_worker(name, repo_copy(base / f"repo-{name}"))
        local = base / "out-local"
        done = grade(base, folder, local, "--jobs", "2")
        assert done.returncode == 0, done.stderr[-3000:]
        yield base, folder, cluster, local
    finally:
        cluster.stop()


def grade(base, folder, out, *options):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out),
                           "--cell-timeout", "30", *options], cwd=base, env=dict(ENV, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=900)


def start_grading(base, folder, out, *options):
    return subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out),
                             "--cell-timeout", "30", *options], cwd=base, env=dict(ENV, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def progress(err):
    """The progress lines' counters ("[2/3]") in the order printed."""
    return re.findall(r"^(\[\d+/\d+\]) ", err, re.M)


def gradebook_rows(out):
    """Every grade and comment of every student, as nbgrader's gradebook holds them."""
    from nbgrader.api import Gradebook
    rows = {}
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
        for student in gb.students:
            submission = gb.find_submission("gpt", student.id)
            for notebook in submission.notebooks:
                for g in notebook.grades:
                    rows[(student.id, notebook.name, "grade", g.name)] = (g.auto_score, g.manual_score, g.max_score)
                for c in notebook.comments:
                    rows[(student.id, notebook.name, "comment", c.name)] = c.auto_comment
    return rows


def assert_same_results(local, out):
    """Same grades.csv, result records, gradebook and feedback pages as the local pool's."""
    read = lambda o: list(csv.DictReader(open(o / "grades.csv", encoding="utf-8")))  # noqa: E731
    assert read(out) == read(local)
    state = lambda o: json.loads((o / "state.json").read_text(encoding="utf-8"))["students"]  # noqa: E731
    assert state(out) == state(local)
    assert gradebook_rows(out) == gradebook_rows(local) and len(gradebook_rows(local)) > len(TASKS)
    pages = lambda o: sorted(p.relative_to(o).as_posix() for p in (o / "feedback").rglob("*.html"))  # noqa: E731
    assert pages(out) == pages(local) and pages(local)
    autograded = lambda o: sorted(p.relative_to(o).as_posix() for p in (o / "course" / "autograded").rglob("*.ipynb"))  # noqa: E731
    assert autograded(out) == autograded(local) and autograded(local)


def test_the_local_pool_graded_the_class(setup):
    base, folder, cluster, local = setup
    rows = {r["student_id"]: r for r in csv.DictReader(open(local / "grades.csv", encoding="utf-8"))}
    assert rows["student_reference"]["total"] == "10"
    assert rows["student_pre_norm"]["block"] == "0" and rows["student_no_scale"]["head"] == "0"


def test_an_interrupted_run_goes_on_where_it_stopped_and_matches_the_local_pool(setup):
    base, folder, cluster, local = setup
    cluster.wait_for(["a", "b"])
    out = base / "out-dask"
    process = start_grading(base, folder, out, "--dask", cluster.address)
    lines = []
    for line in process.stderr:  # progress as students finish; stop the command after the first
        lines.append(line)
        if line.startswith("[1/3]"):
            process.send_signal(signal.SIGINT)
            break
    rest = process.communicate(timeout=300)[1]
    assert process.returncode != 0, "".join(lines) + rest
    assert sum(line.rstrip().endswith(" допущен") for line in lines) == 2, "".join(lines)
    assert not (out / "state.json").exists()
    kept = len((out / "state.partial.jsonl").read_text(encoding="utf-8").splitlines())
    assert 1 <= kept < len(STUDENTS)  # two workers may finish at once: the second is kept too
    left = len(STUDENTS) - kept
    done = grade(base, folder, out, "--dask", cluster.address)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"проверяется заново: {left}" in done.stderr, done.stderr
    assert progress(done.stderr) == [f"[{i}/{left}]" for i in range(1, left + 1)], done.stderr
    assert_same_results(local, out)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"Dask {cluster.address}" in report


def test_a_killed_worker_costs_nothing_and_a_changed_copy_is_refused(setup):
    base, folder, cluster, local = setup
    changed = repo_copy(base / "repo-c", ("autograder/checks/scoring.py", "все скрытые проверки пройдены.",
                                          "все скрытые проверки пройдены (v2)."))
    cluster.start_worker("c", changed)
    cluster.wait_for(["a", "b", "c"])
    out = base / "out-kill"
    started = {name: cluster.log(name).count(STARTED) for name in "abc"}
    process = start_grading(base, folder, out, "--dask", cluster.address)
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()[1][-3000:]
        victim = next((n for n in "ab" if cluster.log(n).count(STARTED) > started[n]), None)
        time.sleep(0.1)
    cluster.kill(victim)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    assert_same_results(local, out)
    refused = [line for line in err.splitlines() if "отклонён" in line]
    assert len(refused) == 1 and str(changed) in refused[0], err
    assert "другой проверяющий код: изменены: autograder/checks/scoring.py" in refused[0], refused
    assert "ушёл" in err
    assert cluster.log("c").count(STARTED) == 0  # the refused worker graded no one
    survivor = "b" if victim == "a" else "a"
    assert cluster.log(survivor).count(STARTED) - started[survivor] >= len(STUDENTS) - 1
    assert progress(err) == [f"[{i}/3]" for i in (1, 2, 3)], err  # each student merged once
