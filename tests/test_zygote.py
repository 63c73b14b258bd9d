"""Which zygote a kernel is forked from (fast: no zygote process is started)."""
import subprocess
import threading

from autograder.classrun import pool
from autograder.worker.sandbox import zygote
from autograder.worker.sandbox import SandboxedKernelManager


def test_a_worker_uses_the_main_process_zygote_for_kernels_with_its_environment(tmp_path):
    zygotes = zygote.Zygotes()  # a worker's, before its first kernel
    env = SandboxedKernelManager().forked_kernel_env(pool.worker_environment())
    socket_path = tmp_path / "zygote"
    socket_path.touch()  # stands for the socket of a zygote another process runs
    zygotes.use(env, str(socket_path))
    # jupyter_client adds the kernel's folder and session name; no import reads them
    found = zygotes.for_env(dict(env, PWD="/somewhere", JPY_SESSION_NAME="01_head.ipynb"))
    assert found.socket_path == str(socket_path) and found.process is None
    found.stop()  # another process's: left alone


def test_the_zygote_environment_is_the_forked_kernels(monkeypatch):
    """What the main process computes for its zygote is what a worker's manager forks with."""
    monkeypatch.setattr("os.environ", pool.worker_environment())
    km = SandboxedKernelManager()
    env = km.forked_kernel_env(pool.worker_environment())
    assert env["JPY_PARENT_PID"] == "1" and "PYTHONPATH" not in env
    assert env["OMP_NUM_THREADS"] == "1" and env["HOME"] == "/tmp"
    assert zygote.Zygotes.key(env) == zygote.Zygotes.key(km.forked_kernel_env(dict(pool.worker_environment(),
                                                                                    PWD="/w")))


def test_a_zygote_that_does_not_answer_is_named(tmp_path):
    """A worker whose shared zygote is gone gets a grader error saying so, not an AttributeError."""
    import pytest
    gone = zygote.Zygote({}, str(tmp_path / "zygote"))
    with pytest.raises(RuntimeError, match="did not answer .*started by another process"):
        gone.spawn(holder=1, sandbox_config={}, argv=[], env={}, stdio=(0, 1, 2))


def test_a_worker_waits_for_the_shared_zygote_while_it_starts_rather_than_start_its_own(tmp_path):
    """The main process's zygote imports torch for seconds before it listens; a worker that asks
    for a kernel meanwhile waits for it (a zygote of its own cost 1.8 CPU-s, five times a suite)."""
    starting = subprocess.Popen(["sleep", "30"])   # stands for the zygote process, not listening yet
    try:
        zygotes = zygote.Zygotes()
        env = SandboxedKernelManager().forked_kernel_env(pool.worker_environment())
        socket_path = tmp_path / "zygote"
        zygotes.use(env, str(socket_path), starting.pid)
        shared = zygotes.for_env(env)
        assert shared.alive() and shared.process is None and shared.socket_path == str(socket_path)
        threading.Timer(0.3, socket_path.touch).start()   # it listens
        shared._wait_socket(timeout=10)
        assert socket_path.exists()
        socket_path.unlink()
        starting.kill()
        starting.wait()
        assert not shared.alive()   # gone before it listened: a worker would start its own
    finally:
        starting.kill()
        starting.wait()
