"""Two ways a kernel starts in its sandbox, behind one interface.

RUNS IN A GRADING WORKER. A launcher gives jupyter_client bwrap's command line and the
descriptors bwrap must get (``command``, ``pass_fds``); once bwrap runs, ``started``
finishes the start and returns the sandbox's pid namespace when known; ``close`` lets go
of what it holds.

* ``ExecLauncher``: bwrap runs programs/enter.py, which enters the sandbox and execs the
  kernel (``python -m ipykernel_launcher``): a new interpreter that imports torch.
* ``ForkLauncher``: bwrap runs the holder (programs/holder.py, pid 2 under bwrap's own
  pid 1); the zygote forks a kernel that has imported torch already into the holder's
  sandbox (zygote.py). ~2 CPU-s less per kernel. Where the zygote cannot (a system that
  refuses joining the sandbox's namespaces), ``started`` raises ``ForkFailed``: the manager
  starts this kernel afresh, and every later one of this process is (``launcher``).
"""
import json
import os
import select
import sys

from . import layout, zygote

ENTER = os.path.join(layout.PROGRAMS_INSIDE, "enter.py")    # paths inside the sandbox
HOLDER = os.path.join(layout.PROGRAMS_INSIDE, "holder.py")
LAUNCHER = "ipykernel_launcher"


class ForkFailed(RuntimeError):
    """The zygote could not fork a kernel into its sandbox (the sandbox is killed)."""


FORK_FAILURES = []  # why forks failed in this process: once one has, its kernels start afresh


def fork_failure():
    """Why the first fork of this process failed, or None."""
    return FORK_FAILURES[0] if FORK_FAILURES else None


def can_fork(kernel_cmd):
    """True for an ipykernel of this Python (what the zygote imports), where forking is supported."""
    return (zygote.supported() and len(kernel_cmd) >= 3 and kernel_cmd[1:3] == ["-m", LAUNCHER]
            and os.path.realpath(kernel_cmd[0]) == os.path.realpath(sys.executable))


class ExecLauncher:
    def __init__(self, settings, workdir, conn_dir):
        self.settings, self.workdir, self.conn_dir = settings, workdir, conn_dir
        self.pass_fds = ()

    def command(self, kernel_cmd):
        config = json.dumps(layout.sandbox_config(self.settings, self.workdir))
        return (layout.bwrap_args(self.settings, self.workdir, self.conn_dir, kernel_cmd[:1])
                + [sys.executable, "-I", "-S", ENTER, config, "--"] + kernel_cmd)

    def started(self, bwrap, stdio):
        return None

    def close(self):
        pass


def _read_within(fd, seconds, what, size=65536):
    """What a pipe gives until ``size`` bytes came or its writers closed it (within ``seconds``)."""
    data = b""
    poller = select.poll()  # not select(): a worker's descriptors may number over 1024
    poller.register(fd, select.POLLIN)
    while len(data) < size:
        if not poller.poll(seconds * 1000):
            raise RuntimeError(f"the sandbox did not {what} within {seconds} s")
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class ForkLauncher:
    def __init__(self, settings, workdir, conn_dir, kernel_cmd, given_env):
        self.settings, self.workdir, self.conn_dir = settings, workdir, conn_dir
        self.config = layout.sandbox_config(settings, workdir)
        self.env = layout.forked_kernel_env(settings, given_env)
        self.argv = [zygote.KERNEL_LAUNCHER] + kernel_cmd[3:]
        zygote.for_env(self.env)  # imports torch while bwrap starts
        # info: bwrap -> grader (the holder's pid, its namespaces); ready: holder -> grader (it has
        # entered); kernel: grader -> holder (the kernel's pid in the sandbox, to wait on)
        self._fds = {}  # every pipe end this launcher holds, each closed exactly once
        for name in ("info", "ready", "kernel"):
            self._fds[name + "_read"], self._fds[name + "_write"] = os.pipe()
        self.pass_fds = tuple(self._fds[n] for n in ("info_write", "ready_write", "kernel_read"))
        self.kernel_pid = None

    def _close(self, *names):
        for name in names:
            fd = self._fds.pop(name, None)
            if fd is not None:
                os.close(fd)

    def command(self, kernel_cmd):
        extra = ["--info-fd", str(self._fds["info_write"])]
        return (layout.bwrap_args(self.settings, self.workdir, self.conn_dir, kernel_cmd[:1], extra)
                + [sys.executable, "-I", "-S", HOLDER, json.dumps(self.config),
                   str(self._fds["ready_write"]), str(self._fds["kernel_read"])])

    def started(self, bwrap, stdio):
        """Fork the kernel into the sandbox ``bwrap`` (a Popen) made; its pid namespace."""
        try:
            self._close("info_write", "ready_write", "kernel_read")  # bwrap and the holder have them now
            self.pass_fds = ()
            info = json.loads(_read_within(self._fds["info_read"], zygote.REPLY_TIMEOUT_S, "start") or b"{}")
            ready = _read_within(self._fds["ready_read"], zygote.REPLY_TIMEOUT_S, "get ready", len(b"ready"))
            if ready != b"ready":
                raise RuntimeError(f"the sandbox ended (exit code {bwrap.poll()}) before its kernel started")
            init = info["child-pid"]  # bwrap's pid 1 in the sandbox; the holder is its one child
            with open(f"/proc/{init}/task/{init}/children") as f:
                holder = int(f.read().split()[0])
            try:
                self.kernel_pid, in_sandbox = zygote.for_env(self.env).spawn(holder, self.config, self.argv,
                                                                             self.env, stdio)
            except RuntimeError as error:
                FORK_FAILURES.append(str(error))
                raise ForkFailed(str(error)) from error
            os.write(self._fds["kernel_write"], f"{in_sandbox}\n".encode())
            return info.get("pid-namespace")
        except Exception:
            bwrap.kill()
            bwrap.wait()
            raise
        finally:
            self.close()

    def close(self):
        self._close(*list(self._fds))
        self.pass_fds = ()


def launcher(settings, workdir, conn_dir, kernel_cmd, given_env):
    """The fork launcher where it can work and is wanted (and no fork failed here), else the exec one."""
    if settings.fork_kernels and not FORK_FAILURES and can_fork(kernel_cmd):
        return ForkLauncher(settings, workdir, conn_dir, kernel_cmd, given_env)
    return ExecLauncher(settings, workdir, conn_dir)

