"""Which zygote a kernel is forked from (fast: no zygote process is started)."""
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
