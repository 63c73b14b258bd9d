"""The probe's results crossing from the student's kernel to the grader, in-process.

The kernel can replace ``.grader_results.pt`` with anything ``torch.save`` writes
(a race with the probe, a hostile thread): only lists of dicts the probe itself
could have written get through, and a failure of the grader's own scoring costs
one task with a named grader error, never the student's other notebooks.
"""
import logging
import os
import pathlib
import shutil
import stat
import tempfile
import types

import pytest
import torch
from nbclient.exceptions import CellExecutionComplete

from autograder.checks import cases as checks_cases, reference, scoring
from autograder.course import TASK
from autograder.worker import hidden_checks, probe_exchange
from autograder.worker.execute import KERNEL_TROUBLE, ProbingExecute
from autograder.worker.hidden_checks import HiddenChecks
from autograder.worker.kernel_session import KernelSession
from autograder.worker.record import Record
from autograder.worker.probe_exchange import RESULTS_FILE, take_results

N = 4
MALFORMED = {
    "number for a tensor": [{"output": 5, "grad.input": "x"}] * N,
    "list for a tensor": [{"output": [1.0] * 10}] * N,
    "tuple for a tensor": [{"output": (torch.zeros(2), None)}] * N,
    "lists for dicts": [[] for _ in range(N)],
    "dict for the list": {"not": "a list"},
    "too few cases": [{"output": torch.zeros(2)}] * (N - 1),
    "complex tensor": [{"output": torch.zeros(3, 4, dtype=torch.complex64)}] * N,
    "sparse tensor": [{"output": torch.zeros(3, 4).to_sparse()}] * N,
    "tensor needing grad": [{"output": torch.zeros(3, requires_grad=True)}] * N,
    "unknown key": [{"outputs": torch.zeros(3)}] * N,
    "key not a string": [{5: torch.zeros(3)}] * N,
    "error not text": [{"error": ["not_implemented"]}] * N,
    "overlong text": [{"error": "exception", "exception": "x" * 10_000}] * N,
    "text for a tensor": [{"loss_is_none": "yes"}] * N,
}


def _plant(folder, payload):
    torch.save(payload, folder / RESULTS_FILE)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_results_are_refused(tmp_path, name):
    _plant(tmp_path, MALFORMED[name])
    got, why = take_results(tmp_path, N)
    assert got is None and why == "malformed results"
    assert not (tmp_path / RESULTS_FILE).exists()   # taken away, whatever it was


def test_probe_shaped_results_pass(tmp_path):
    payload = [{"output": torch.zeros(2, 3), "grad.net.0.weight": torch.ones(4)},
               {"error": "exception", "exception": "ValueError: x", "failed_in": "forward", "line": ""},
               {"logits": torch.zeros(1, 2, 3), "loss": torch.tensor(1.0), "loss_is_none": torch.tensor(False)},
               {"generated": torch.zeros(1, 5, dtype=torch.long)}]
    _plant(tmp_path, payload)
    got, why = take_results(tmp_path, N)
    assert why == "" and len(got) == N and torch.equal(got[3]["generated"], payload[3]["generated"])


def test_planted_link_and_folder_are_refused(tmp_path):
    target = tmp_path / "elsewhere.pt"
    torch.save([{"output": torch.zeros(2)}] * N, target)
    os.symlink(target, tmp_path / RESULTS_FILE)
    assert take_results(tmp_path, N)[0] is None and target.exists()
    (tmp_path / RESULTS_FILE).mkdir()
    assert take_results(tmp_path, N)[0] is None and not (tmp_path / RESULTS_FILE).exists()


def test_a_scoring_failure_costs_one_task_and_is_recorded(tmp_path, monkeypatch):
    """The grader's own bug while scoring: that task scores 0 with a named grader error, the
    record keeps the reason, and the notebook run goes on (nbgrader would drop every notebook)."""
    record = Record()
    settings = types.SimpleNamespace(secret="s", reference_dir=str(tmp_path), fingerprint="f" * 16, probe_timeout=60)
    checks = HiddenChecks(TASK["head"], tmp_path, settings, None, record, logging.getLogger("test"))
    made = checks_cases.make_cases("head", checks_cases.case_seed("s"), False)
    monkeypatch.setattr(checks, "probe", lambda cases: (reference.run_reference("head", made), ""))

    def broken(*args):
        raise ZeroDivisionError("scoring bug")
    monkeypatch.setattr(scoring, "grade", broken)
    verdict = checks.probed_verdict(False)
    assert verdict.points == 0 and verdict.mistake_keys == ["grader_error"]
    assert "не ваша" in verdict.mistakes[0][1]
    assert record.errors == ["scoring of head failed: ZeroDivisionError: scoring bug"]


def _unprivileged(check, tree):
    """Run ``check()`` where permissions bind: as root, in a child process that became nobody."""
    if os.geteuid() != 0:
        return check()
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            os.chown(name, 65534, 65534)
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
        except OSError:
            os._exit(3)
        try:
            os._exit(0 if check() else 1)
        except BaseException:
            os._exit(2)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code == 3:
        pytest.skip("this machine does not let root become nobody: permissions cannot be made to bind")
    return code == 0


def test_a_folder_made_read_only_is_still_cleaned():
    """The kernel may chmod its folder: stale results are still removed before the next probe,
    and a read-only tree it left is removed whole."""
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="exchange-", dir="/tmp"))  # reachable by nobody
    tmp_path.chmod(0o755)
    workdir = tmp_path / "kernel"
    (workdir / "locked" / "deeper").mkdir(parents=True)
    (workdir / "locked" / "deeper" / "file").write_text("x")
    (workdir / "sealed").mkdir()
    (workdir / "sealed" / "file").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, workdir / "link")   # never opened up through
    _plant(workdir, [{"output": torch.zeros(2)}] * N)

    def check():
        (workdir / "sealed").chmod(0o000)
        outside.chmod(0o500)
        for folder in (workdir / "locked" / "deeper", workdir / "locked", workdir):
            folder.chmod(0o500)
        try:
            (workdir / "probe-write").write_text("x")
            return False  # permissions do not bind here: the check would prove nothing
        except PermissionError:
            pass
        cases_written = probe_exchange.put_cases(workdir, [{"input": torch.zeros(2)}] * N)
        clean = not (workdir / RESULTS_FILE).exists() and (workdir / probe_exchange.CASES_FILE).is_file()
        removed = probe_exchange.remove(workdir) and not workdir.exists()
        return cases_written and clean and removed and stat.S_IMODE(outside.stat().st_mode) == 0o500
    try:
        assert _unprivileged(check, tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _message(msg_type, content):
    return {"msg_type": msg_type, "content": content, "header": {"msg_type": msg_type},
            "parent_header": {}, "metadata": {}}


def test_malformed_kernel_messages_are_dropped_and_noted():
    """A kernel can send messages nbclient would choke on (nbgrader then drops every notebook):
    they are dropped, noted as the notebook's event, and well-formed ones still count."""
    import nbformat
    record = Record()
    step = ProbingExecute.for_student(record, KernelSession(record))()
    step.begin_notebook("01_head")
    step.clear_before_next_output = False  # set by nbclient for each cell it runs
    cell = nbformat.v4.new_code_cell("pass", metadata={"execution": {}})
    for msg_type, content in [
            ("comm_open", {"comm_id": "c", "target_name": "jupyter.widget", "data": {}}),
            ("comm_open", {"comm_id": "c", "target_name": "jupyter.widget", "data": {"state": 5}}),
            ("display_data", {"data": 5, "metadata": {}, "transient": {"display_id": "d"}}),
            ("stream", {"name": "stdout"}),
            ("error", {"ename": "X"})]:
        assert step.process_message(_message(msg_type, content), cell, 0) is None
    assert [e.kind for e in record.events] == ["bad_message"] and record.events[0].notebook == "01_head"
    step.process_message(_message("stream", {"name": "stdout", "text": "ok\n"}), cell, 0)
    assert cell.outputs[-1]["text"] == "ok\n"
    # text no file can hold (a lone surrogate, sent as raw JSON) is made writable
    step.process_message(_message("stream", {"name": "stdout", "text": "bad \ud800 text"}), cell, 0)
    step.process_message(_message("display_data", {"data": {"text/plain": "\udfff"}, "metadata": {}}), cell, 0)
    nb = nbformat.v4.new_notebook(cells=[cell])
    assert "bad ? text" in nbformat.writes(nb).encode("utf-8").decode("utf-8")
    with pytest.raises(CellExecutionComplete):
        step.process_message(_message("status", {"execution_state": "idle"}), cell, 0)


def test_a_reply_breaking_the_protocol_fails_only_its_cell(monkeypatch):
    """nbclient raising on a forged reply (a KeyError on its content) fails that cell, noted as
    the notebook's event; nbclient's own signals (dead kernel, timeout) still go through."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    async def forged(self, cell, *args, **kwargs):
        raise KeyError("status")
    monkeypatch.setattr(NotebookClient, "async_execute_cell", forged)
    record = Record()
    step = ProbingExecute.for_student(record, KernelSession(record))()
    step.begin_notebook("02_multihead_attention")
    cell = nbformat.v4.new_code_cell("pass")
    assert step.execute_cell(cell, 0) is cell
    assert cell.outputs[-1]["ename"] == "KernelProtocolError"
    assert [e.kind for e in record.events] == ["bad_message"]

    async def dead(self, cell, *args, **kwargs):
        raise DeadKernelError("Kernel died")
    monkeypatch.setattr(NotebookClient, "async_execute_cell", dead)
    with pytest.raises(DeadKernelError):
        step.execute_cell(cell, 0)


def test_a_kernel_client_that_cannot_start_is_kernel_trouble(monkeypatch):
    """A forged kernel_info_reply (KeyError in jupyter_client) is the kernel's trouble, which costs
    that notebook only, never the grader's error that costs every notebook."""
    from nbclient import NotebookClient

    async def forged(self):
        raise KeyError("protocol_version")
    monkeypatch.setattr(NotebookClient, "async_start_new_kernel_client", forged)
    with pytest.raises(KERNEL_TROUBLE) as caught:
        ProbingExecute().start_new_kernel_client()
    assert "protocol_version" in str(caught.value)


def test_hidden_cells_of_a_task_share_one_time_budget(monkeypatch):
    """A class that stalls whenever it is probed costs probe_timeout per task: the second probe
    and the diagnosis get what is left, and nothing once it is spent."""
    clock = [1000.0]
    monkeypatch.setattr(hidden_checks.time, "monotonic", lambda: clock[0])
    given = []

    def stalls(code, timeout, during):
        given.append(timeout)
        clock[0] += timeout if len(given) == 1 else 15   # the first runs out, the next takes 15 s
        return True
    settings = types.SimpleNamespace(probe_timeout=60)
    checks = HiddenChecks(TASK["head"], None, settings, stalls, Record(), logging.getLogger("test"))
    checks.deadline = clock[0] + 60
    clock[0] += 20
    assert checks.run("probe", "") and given == [40]
    checks.deadline = clock[0] + 60                             # the next task: a fresh budget
    assert checks.run("probe", "") and checks.run("probe", "")
    assert given == [40, 60, 45]
    clock[0] += 45
    assert not checks.run("diagnosis", "") and len(given) == 3


def test_a_kernel_killed_for_a_limit_after_its_notebook_ended_is_recorded():
    """A kernel the watchdog kills between two notebooks (a thread still allocating, files
    still growing) keeps its event, named after the notebook it last ran."""
    class Killed:
        has_kernel, memory_exceeded, disk_exceeded, memory_limit_mb, disk_limit_mb = True, True, False, 2048, 256

        async def is_alive(self):
            return False

        async def shutdown_kernel(self, now=False):
            pass
    record = Record()
    session = KernelSession(record)
    first = session.manager("04_block", Killed)
    assert not session.ran_before                              # a new kernel: nothing to reset
    fresh = session.manager("05_gpt_model", Killed)            # 04's kernel was killed after it ended
    assert fresh is not first and not session.ran_before
    assert [(e.notebook, e.kind) for e in record.events] == [("04_block", "memory")]
    fresh.memory_exceeded, fresh.disk_exceeded = False, True   # the last kernel, killed for its files
    session.shut_down()                                        # the student's end
    assert [(e.notebook, e.kind) for e in record.events] == [("04_block", "memory"), ("05_gpt_model", "disk")]
    assert session.km is None
