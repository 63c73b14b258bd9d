"""What executors exchange and decide, in-process (fast): outcomes as data, the admission of Dask
workers, the progress a run that does not finish keeps, and the grade command's --dask checks.
tests/test_dask.py grades a class through a real Dask cluster."""
import io
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import types

import pytest
import torch

from autograder import __main__ as cli, nbconfig
from autograder.checks import cases, scoring
from autograder.classrun import admission, cluster, fingerprint, grade, interruption, outcome, remote, staging
from autograder.course import NOTEBOOKS
from autograder.results import StudentResult, TaskResult

RUN = {"key": "k", "grader": "g" * 64, "course": "c" * 64, "sandbox": True}


def _graded_work(tmp_path, sid="s1"):
    """A private course as a worker leaves it: autograded notebooks, pages, record and log."""
    work = tmp_path / "work"
    for kind, suffix in outcome.KINDS.items():
        folder = work / kind / sid / "gpt"
        folder.mkdir(parents=True)
        for name in NOTEBOOKS[:2]:
            (folder / f"{name}{suffix}").write_bytes(f"{kind} {name}".encode())
    record = StudentResult(sid, tasks={"head": TaskResult("head", 2.0)})
    (work / "result.json").write_text(json.dumps(record.to_json()), encoding="utf-8")
    (work / "grading.log").write_text("Traceback: boom", encoding="utf-8")
    return work


def test_outcome_travels_as_plain_data_and_is_written_as_the_local_pool_writes_it(tmp_path):
    work = _graded_work(tmp_path)
    found = outcome.read_work(work, "s1")
    assert not work.exists()
    assert set(found.autograded) == set(NOTEBOOKS[:2]) and found.record.task("head").points == 2.0
    wire = outcome.to_wire(found)
    assert json.loads(json.dumps(wire, default=lambda b: b.decode()))  # str, bytes, numbers, dicts only
    back = outcome.from_wire(wire, "s1")
    assert back == found
    course = tmp_path / "course"
    (course / "feedback" / "s1" / "gpt").mkdir(parents=True)
    (course / "feedback" / "s1" / "gpt" / "stale.html").write_text("from an earlier run")
    record = outcome.write(back, course, tmp_path / "logs")
    assert record.task("head").points == 2.0
    assert sorted(p.name for p in (course / "feedback" / "s1" / "gpt").iterdir()) == \
        sorted(f"{n}.html" for n in NOTEBOOKS[:2])
    assert (course / "autograded" / "s1" / "gpt" / f"{NOTEBOOKS[0]}.ipynb").read_bytes() == \
        f"autograded {NOTEBOOKS[0]}".encode()
    assert (tmp_path / "logs" / "s1.log").read_text(encoding="utf-8") == "Traceback: boom"


def test_a_worker_never_reads_through_a_link_the_kernel_could_plant(tmp_path):
    work = _graded_work(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for anyone")
    pages = work / "feedback" / "s1" / "gpt"
    (pages / f"{NOTEBOOKS[0]}.html").unlink()
    (pages / f"{NOTEBOOKS[0]}.html").symlink_to(secret)
    (pages / f"{NOTEBOOKS[1]}.html").unlink()
    os.mkfifo(pages / f"{NOTEBOOKS[1]}.html")  # would block a reader that opened it plainly
    found = outcome.read_work(work, "s1")
    assert found.feedback == {} and set(found.autograded) == set(NOTEBOOKS[:2])


@pytest.mark.parametrize("change, why", [
    (lambda w: w.update(student_id="s2"), "not an outcome"),
    (lambda w: w["feedback"].update({"../../etc/passwd": b"x"}), "unexpected entry"),
    (lambda w: w["autograded"].update({NOTEBOOKS[0]: "text, not bytes"}), "unexpected entry"),
    (lambda w: w["record"].update(student_id="s2"), "record of"),
    (lambda w: w["record"].update(tasks=[1, 2]), "record"),
    (lambda w: w.update(log=b"bytes"), "log"),
])
def test_an_outcome_of_another_shape_is_refused(tmp_path, change, why):
    wire = outcome.to_wire(outcome.read_work(_graded_work(tmp_path), "s1"))
    change(wire)
    with pytest.raises(outcome.BadOutcome, match=why):
        outcome.from_wire(wire, "s1")


def test_a_submission_made_into_a_private_course_from_bytes(tmp_path):
    course = tmp_path / "course"
    folder = course / "submitted" / "s1" / "gpt"
    folder.mkdir(parents=True)
    (folder / "01_head.ipynb").write_text("{}")
    (folder / "data").mkdir()
    (folder / "data" / "x.txt").write_text("x")
    files = staging.submission_files(course, "s1")
    assert files == {"gpt/01_head.ipynb": b"{}", "gpt/data/x.txt": b"x"}
    (tmp_path / "source" / "gpt").mkdir(parents=True)
    work = staging.stage_work_from(tmp_path, "s1", b"db", tmp_path / "source", files)
    assert (work / "gradebook.db").read_bytes() == b"db" and (work / "source" / "gpt").is_dir()
    assert (work / "submitted" / "s1" / "gpt" / "data" / "x.txt").read_text() == "x"
    for bad in ("../../escape.txt", "/etc/escape.txt"):
        with pytest.raises(ValueError, match="outside"):
            staging.stage_work_from(tmp_path, "s1", b"db", tmp_path / "source", {bad: b"x"})
    assert not (tmp_path / "escape.txt").exists()


def _facts(**changes):
    facts = {"address": "tcp://10.0.0.5:4000", "host": "node5", "root": "/srv/course", "nthreads": 1,
             "grader": RUN["grader"], "course": RUN["course"], "sandbox": [True, ""], "reference": {},
             "daemon": False}
    facts.update(changes)
    return facts


def test_an_identical_worker_is_admitted():
    assert admission.differences(RUN, _facts()) == []
    assert admission.differences(dict(RUN, sandbox=False), _facts(sandbox=None)) == []


def test_a_worker_with_other_code_is_refused_naming_the_files_and_torch():
    mine = {"grader": {"autograder/checks/scoring.py": "1", "autograder/a.py": "2", "autograder/b.py": "3",
                       "torch": "2.13.0"}}
    theirs = {"autograder/checks/scoring.py": "9", "autograder/b.py": "3", "autograder/old.py": "4",
              "torch": "2.12.0"}
    reasons = admission.differences(RUN, _facts(grader="x" * 64, grader_files=theirs, reference=None), mine)
    assert len(reasons) == 1, reasons
    text = reasons[0]
    assert text.startswith("другой проверяющий код")
    for words in ("torch 2.12.0 у рабочего, 2.13.0 здесь", "изменены: autograder/checks/scoring.py",
                  "нет у рабочего: autograder/a.py", "лишние у рабочего: autograder/old.py"):
        assert words in text, text
    assert "autograder/b.py" not in text


def test_a_worker_with_another_course_is_refused_naming_the_notebook():
    mine = {"course": {"source/gpt/01_head.ipynb": "1", "nbgrader_config.py": "2"}}
    theirs = {"source/gpt/01_head.ipynb": "7", "nbgrader_config.py": "2"}
    reasons = admission.differences(RUN, _facts(course="y" * 64, course_files=theirs), mine)
    assert reasons == ["другой курс: изменены: source/gpt/01_head.ipynb"]


def test_many_differing_files_are_named_few_and_counted():
    mine = {"course": {f"source/gpt/f{i}.py": "1" for i in range(10)}}
    reasons = admission.differences(RUN, _facts(course="y" * 64, course_files={}), mine)
    assert reasons[0].endswith("и ещё 6"), reasons


def test_a_worker_without_a_sandbox_refuses_unless_the_run_is_unsafe():
    facts = _facts(sandbox=[False, "bwrap not found (apt-get install bubblewrap)"])
    reasons = admission.differences(RUN, facts)
    assert len(reasons) == 1 and "bwrap not found" in reasons[0] and "--unsafe-no-sandbox" in reasons[0]
    assert admission.differences(dict(RUN, sandbox=False), dict(facts, sandbox=None)) == []


def test_a_daemonic_worker_is_refused_naming_the_setting():
    reasons = admission.differences(RUN, _facts(daemon=True))
    assert len(reasons) == 1 and "DASK_DISTRIBUTED__WORKER__DAEMON=False" in reasons[0]


def test_a_worker_whose_reference_outputs_differ_is_refused():
    facts = _facts(reference={"head-1-2.pt": 0.25, "block-1-2-own.pt": None})
    reasons = admission.differences(RUN, facts)
    assert len(reasons) == 1 and "head-1-2.pt (макс. |Δ| 0.25)" in reasons[0] and "block-1-2-own.pt (нет)" in reasons[0]


def test_a_worker_examines_itself_as_the_main_process_expects(tmp_path, monkeypatch):
    """``remote.examine`` in-process, as a worker runs it: its facts admit it, or name why not."""
    worker = types.SimpleNamespace(address="tcp://127.0.0.1:1", state=types.SimpleNamespace(nthreads=1),
                                   local_directory=str(tmp_path / "worker"))
    prepared = []
    monkeypatch.setattr(remote, "_worker", lambda: worker)
    monkeypatch.setattr(remote, "_warm", prepared.append)  # no fork server or zygote from this test
    monkeypatch.setattr(remote, "_RUNS", {})
    monkeypatch.setattr(remote, "bwrap_available", lambda: (False, "bwrap not found"))
    secret, grader_fp = "s3cret", fingerprint.grader()
    grade.cache_references(tmp_path / "course", secret, grader_fp)  # the main process's
    run = {"key": "k1", "secret": secret, "sandbox": True, "grader": grader_fp,
           "course": fingerprint.course(), "template": b"db",
           "reference_sample": cluster.reference_sample(tmp_path / "course", secret, grader_fp)}
    assert len(run["reference_sample"]) == 8
    facts = remote.examine(run)
    assert facts["reference"] == {} and facts["sandbox"] == [False, "bwrap not found"] and not prepared
    assert facts["daemon"] is False
    reasons = admission.differences(run, facts)
    assert len(reasons) == 1 and "bwrap not found" in reasons[0]
    unsafe = dict(run, sandbox=False)
    assert admission.differences(unsafe, remote.examine(unsafe)) == [] and prepared == [False]
    assert (remote._RUNS["k1"].reference / next(iter(run["reference_sample"]))).is_file()
    other = dict(unsafe, grader="0" * 64)
    facts = remote.examine(other)
    assert "grader_files" in facts and facts["reference"] is None
    assert admission.differences(other, facts, {"grader": {**facts["grader_files"], "torch": "0.1"}}) == \
        [f"другой проверяющий код: torch {torch.__version__} у рабочего, 0.1 здесь"]
    remote.forget("k1")
    assert "k1" not in remote._RUNS and not (tmp_path / "worker" / "autograder" / "k1").exists()


def _reference_file(folder, name, value):
    torch.save([{"output": value, "grad.input": value * 2}, {"output": value + 1}], folder / name)


def test_reference_outputs_are_compared_within_the_scoring_tolerance(tmp_path):
    mine = tmp_path / "reference"
    mine.mkdir()
    base = torch.linspace(-1, 1, 48).reshape(3, 16)
    _reference_file(mine, "head-1-2.pt", base)
    _reference_file(mine, "block-1-2.pt", base)
    sample = {}
    for name, value in (("head-1-2.pt", base * (1 + scoring.RTOL / 10)), ("block-1-2.pt", base + 0.01),
                        ("gpt_model-1-2.pt", base)):
        buffer = io.BytesIO()
        torch.save([{"output": value, "grad.input": value * 2}], buffer)
        sample[name] = buffer.getvalue()
    differs = remote.compare_references(mine, sample)
    assert set(differs) == {"block-1-2.pt", "gpt_model-1-2.pt"}, differs
    assert differs["block-1-2.pt"] == pytest.approx(0.02, rel=1e-3)  # the larger of output and grad
    assert differs["gpt_model-1-2.pt"] is None


def test_the_main_process_computes_the_references_on_one_thread_whatever_the_environment(tmp_path):
    """Without OMP_NUM_THREADS (an instructor's shell) torch would start a second thread that only
    spins: the main process took 9.4-10.6 CPU-s for one student, 6.0-7.0 on one thread."""
    code = ("import os, pathlib, torch\n"
            "from autograder.classrun import grade\n"
            "before = len(os.listdir('/proc/self/task'))\n"
            "grade.cache_references(pathlib.Path(os.environ['FOLDER']), 's3cret', 'f' * 64)\n"
            "print(torch.get_num_threads(), len(os.listdir('/proc/self/task')) - before)\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], env=dict(env, FOLDER=str(tmp_path)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", "0"], done.stdout   # one thread, and no new one started
    assert list((tmp_path / "reference").glob("head-*.pt"))


def test_the_reference_sample_is_the_first_case_of_each_file_of_the_run(tmp_path):
    folder = tmp_path / "reference"
    folder.mkdir()
    secret, fp = "s3cret", "f" * 64
    key = f"{cases.case_seed(secret)}-{fp[:16]}"
    _reference_file(folder, f"head-{key}.pt", torch.ones(2))
    _reference_file(folder, "head-0-other.pt", torch.ones(2))
    sample = cluster.reference_sample(tmp_path, secret, fp)
    assert list(sample) == [f"head-{key}.pt"]
    assert len(torch.load(io.BytesIO(sample[f"head-{key}.pt"]), weights_only=True)) == 1


def test_fingerprint_files_are_what_the_fingerprints_cover():
    files = fingerprint.grader_files()
    assert files["torch"] == torch.__version__ and "autograder/classrun/remote.py" in files
    assert not any("__pycache__" in path for path in files)
    assert "nbgrader_config.py" in fingerprint.course_files()


def _result(sid, digest, error=""):
    return StudentResult(sid, tasks={"head": TaskResult("head", 2.0)}, digest=digest, error=error)


def test_a_run_that_did_not_finish_keeps_the_students_it_merged(tmp_path):
    grade.write_state(tmp_path, "run-1", {"a": _result("a", "d1")})
    grade.record_progress(tmp_path, "run-1", _result("b", "d2"))
    grade.record_progress(tmp_path, "run-1", _result("a", "d1-new"))
    grade.record_progress(tmp_path, "run-0", _result("c", "d3"))  # another grader's
    with open(tmp_path / grade.JOURNAL_FILE, "a", encoding="utf-8") as f:
        f.write('{"fingerprint": "run-1", "student": {"student_id": "d", "ta')  # cut short by the stop
    earlier = grade.read_state(tmp_path, "run-1")
    assert sorted(earlier) == ["a", "b"] and earlier["a"].digest == "d1-new"
    assert grade.reusable(earlier, "b", "d2")
    grade.write_state(tmp_path, "run-1", earlier)
    assert not (tmp_path / grade.JOURNAL_FILE).exists()
    assert sorted(grade.read_state(tmp_path, "run-1")) == ["a", "b"]


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_that_does_not_answer_stops_the_command_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 2)
    address = f"tcp://127.0.0.1:{_closed_port()}"
    submissions = tmp_path / "class"
    submissions.mkdir()
    out = tmp_path / "out"
    assert cli.main(["grade", str(submissions), "--out", str(out), "--dask", address]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ошибка: планировщик Dask") and address in err[0], err
    assert "c.Autograder.dask" in err[0] and not out.exists()


def test_the_cluster_can_be_named_in_nbgrader_config(tmp_path, monkeypatch):
    config = tmp_path / "nbgrader_config.py"
    config.write_text(nbconfig.NBGRADER_CONFIG.read_text(encoding="utf-8")
                      + '\nc.Autograder.dask = "tcp://head.example.org:8786"\n', encoding="utf-8")
    monkeypatch.setattr(nbconfig, "NBGRADER_CONFIG", pathlib.Path(config))
    from autograder.classrun import gradebook
    assert gradebook.configured_dask() == "tcp://head.example.org:8786"
    monkeypatch.undo()
    assert gradebook.configured_dask() == ""


def test_an_interrupt_a_library_swallowed_still_stops_the_run():
    """SIGINT raises KeyboardInterrupt as by default; where code swallows it (as SQLAlchemy's pool
    does while it closes a connection), the run still learns of it (grade.py asks after each student)."""
    before = signal.getsignal(signal.SIGINT)
    with interruption.watch() as interrupted:
        assert not interrupted()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert interrupted()
    with interruption.watch() as interrupted:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except BaseException:  # noqa: B036 -- the swallowing library
            pass
        assert interrupted()
    assert signal.getsignal(signal.SIGINT) is before
