"""Sandboxed kernels forked from a process that has already imported torch: the client side.

RUNS IN THE MAIN PROCESS OR A GRADING WORKER. ``Zygote`` starts the zygote process
(programs/zygote_server.py, which documents its invariants) or uses one that another
process started (a run's main process starts one for all its workers: ``use``), and asks
it for kernels. For each kernel bwrap builds the sandbox with a holder in it
(programs/holder.py); the zygote forks a process that joins the holder's namespaces and
root, which forks the kernel there::

    bwrap [namespaces, mounts] -- python -I -S holder.py   (pid 2 in the sandbox)
    zygote --fork--> entrant: joins the holder's namespaces and root
                     --fork--> kernel: pid 3; enters the sandbox; ipykernel

A root grader's bwrap makes no user namespace; an ordinary user's does, and the zygote, its
owner, joins it first (which gives it CAP_SYS_ADMIN over the sandbox's other namespaces).
"""
import atexit
import importlib.util
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs", "zygote_server.py")
KERNEL_LAUNCHER = importlib.util.find_spec("ipykernel_launcher").origin  # a forked kernel's sys.argv[0]
START_TIMEOUT_S = 120
REPLY_TIMEOUT_S = 30


def supported():
    """Kernels can be forked here: Linux with pidfds (5.3). An ordinary user's sandbox is
    joined through its user namespace (zygote_server.join_sandbox); where that is refused
    the kernel starts afresh (launchers.py)."""
    return hasattr(os, "pidfd_open") and sys.platform.startswith("linux")


def _running(pid):
    """Process ``pid`` exists and is no zombie (a zygote that died unreaped is not running)."""
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Zygote:
    """A zygote process for kernels with one environment, and the requests to it.

    With ``socket_path``, one that another process started and owns (``use``).
    """

    def __init__(self, env, socket_path=None, server_pid=None):
        self.env = dict(env)
        self.process = self._ready = None
        self.owner = os.getpid()  # a worker forked from this process inherits the object, not the zygote
        self._lock = threading.Lock()
        if socket_path:
            self.socket_path, self.server_pid = socket_path, server_pid
            return
        self.folder = tempfile.mkdtemp(prefix="jzyg-")  # 0700: only the grader connects
        self.socket_path = os.path.join(self.folder, "zygote")
        ready_read, ready_write = os.pipe()
        self._ready = ready_read
        # a session of its own: a Ctrl+C at the grader's terminal is the grader's to handle (it
        # stops the zygote), not a KeyboardInterrupt and a traceback in the zygote's loop
        self.process = subprocess.Popen([sys.executable, SERVER, self.socket_path, str(ready_write)],
                                        env=self.env, cwd="/", stdin=subprocess.DEVNULL,
                                        pass_fds=(ready_write,), start_new_session=True)
        self.server_pid = self.process.pid
        os.close(ready_write)

    def _owned(self):
        """This process started it (a forked worker inherits the object, not the zygote)."""
        return self.process is not None and self.owner == os.getpid()

    def wait_ready(self, timeout=START_TIMEOUT_S):
        if self._ready is None:
            return
        with self._lock:
            if self._ready is None:
                return
            poller = select.poll()  # not select(): descriptors may number over 1024
            poller.register(self._ready, select.POLLIN)
            ready = poller.poll(timeout * 1000) and os.read(self._ready, 5)
            os.close(self._ready)
            self._ready = None
            if ready != b"ready":
                self.stop()
                raise RuntimeError(f"the kernel zygote did not start (exit code {self.process.poll()})")

    def alive(self):
        """Running, or (another process's) still starting: its socket appears once it is ready."""
        if not self._owned():
            return os.path.exists(self.socket_path) or _running(self.server_pid)
        return self.process.poll() is None

    def _wait_socket(self, timeout=START_TIMEOUT_S):
        """Until another process's zygote, still starting, listens (its socket exists); one that
        is gone is not waited for (``spawn`` then says it did not answer)."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket_path) and _running(self.server_pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the kernel zygote did not start in {timeout} s ({self._state()})")
            time.sleep(0.01)

    def spawn(self, holder, sandbox_config, argv, env, stdio):
        """Fork a kernel into the sandbox of ``holder`` (host pid) with ``stdio`` (three
        descriptors); (its host pid, its pid in the sandbox)."""
        if self._owned():
            self.wait_ready()
        else:  # never read another process's ready pipe: its byte is the owner's
            self._wait_socket()
        request = json.dumps({"holder": holder, "sandbox": sandbox_config, "argv": argv, "env": env}).encode()
        chunks = []
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(REPLY_TIMEOUT_S)
                conn.connect(self.socket_path)
                socket.send_fds(conn, [b"K"], list(stdio))
                conn.sendall(request)
                conn.shutdown(socket.SHUT_WR)
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
        except OSError as error:
            raise RuntimeError(f"the kernel zygote did not answer ({error}; {self._state()})") from error
        try:
            reply = json.loads(b"".join(chunks))
        except ValueError:
            raise RuntimeError(f"the kernel zygote gave no answer ({self._state()})") from None
        if "pid" not in reply:
            raise RuntimeError(f"the kernel zygote could not fork a kernel: {reply.get('error')}")
        return reply["pid"], reply["sandbox_pid"]

    def _state(self):
        if not self._owned():
            return f"started by another process, at {self.socket_path}"
        code = self.process.poll()
        return "running" if code is None else f"exit code {code}"

    def stop(self):
        if not self._owned():  # another process's
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class Zygotes:
    """This process's zygotes, one per kernel environment (started on first use)."""

    def __init__(self):
        self._by_env = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(env):
        """Kernels share a zygote if their environments differ at most in what no import reads."""
        return tuple(sorted((k, v) for k, v in env.items() if k not in ("PWD", "JPY_SESSION_NAME")))

    def for_env(self, env):
        key = self.key(env)
        with self._lock:
            zygote = self._by_env.get(key)
            if zygote is None or not zygote.alive():
                if zygote is not None:
                    zygote.stop()
                zygote = self._by_env[key] = Zygote(dict(key))
            return zygote

    def use(self, env, socket_path, server_pid=None):
        """Kernels with ``env`` come from the zygote at ``socket_path``, another process's (its pid
        ``server_pid``): while it starts, kernels wait for it rather than start a zygote of their own."""
        with self._lock:
            self._by_env[self.key(env)] = Zygote(env, socket_path, server_pid)

    def stop_all(self):
        with self._lock:
            while self._by_env:
                self._by_env.popitem()[1].stop()


ZYGOTES = Zygotes()
atexit.register(ZYGOTES.stop_all)
for_env, use = ZYGOTES.for_env, ZYGOTES.use
