"""Sandboxed kernels forked from a process that has already imported torch.

RUNS IN THE MAIN PROCESS OR A GRADING WORKER (``Zygote``, the client; a run's main
process starts one zygote for all its workers, ``pool.shared_zygote``) and starts the
zygote process (``_SERVER``). Starting a kernel costs ~2 CPU-s, nearly all of it importing
ipykernel and torch, which every student's first notebook does. The zygote imports
them once; each kernel is a fork of it that enters a fresh bwrap sandbox's
namespaces (``setns``, as ``nsenter`` does) and then becomes the same unprivileged
process the sandbox's wrapper makes (``sandbox.ENTER``)::

    bwrap [namespaces, mounts] -- python -I -S -c HOLDER     (pid 2 in the sandbox)
    zygote --fork--> entrant: joins the holder's namespaces and root
                     --fork--> kernel: pid 3 in the sandbox; ENTER; ipykernel

The holder leaves when the kernel does, so bwrap's exit still tells jupyter_client
that the kernel died; killing bwrap ends its pid namespace, kernel included. The
entrant reaps the kernel; it is outside the sandbox's pid namespace, unseen there.

Only for a grader running as root: joining a mount namespace needs CAP_SYS_ADMIN
over it. (An ordinary user's sandbox has its own user namespace; joining it would
give the kernel every capability in it. There kernels start as before.)

The zygote reads no request: each connection is read by the entrant forked for it,
so no kernel inherits another student's request in its memory.
"""
import atexit
import importlib.util
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from .sandbox import ENTER, sandbox_processes

# bwrap's command: the sandbox's pid 2 until the kernel, pid 3, is gone.
# argv: CONFIG_JSON SECONDS_TO_WAIT_FOR_THE_KERNEL
HOLDER_MARK = "# kernel holder"
HOLDER = ENTER + HOLDER_MARK + r"""
import select, time
enter_sandbox(json.loads(sys.argv[1]))
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        kernel = os.pidfd_open(3)
        break
    except ProcessLookupError:
        if time.monotonic() > deadline:
            sys.exit("sandbox: no kernel came")
        time.sleep(0.005)
select.select([kernel], [], [])
"""

# The zygote: python -c _SERVER SOCKET_PATH READY_FD, in the kernels' environment.
_SERVER = ENTER + r"""
import atexit, select, signal, socket, traceback
import torch, ipykernel.kernelapp, ipykernel.ipkernel, ipykernel.zmqshell  # every kernel's

NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")  # the mount namespace last


def receive(conn):
    chunks = []
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            return json.loads(b"".join(chunks))
        chunks.append(chunk)


def holder_state(holder):
    # The holder's environment (what bwrap passed on) and copies of its stdin, stdout, stderr.
    with open("/proc/%d/environ" % holder, "rb") as f:
        env = dict(item.decode("utf-8", "surrogateescape").split("=", 1)
                   for item in f.read().split(b"\0") if b"=" in item)
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(holder)
    stdio = [libc.syscall(438, pidfd, fd, 0) for fd in (0, 1, 2)]  # pidfd_getfd (Linux 5.6)
    os.close(pidfd)
    if min(stdio) < 0:
        raise OSError(ctypes.get_errno(), "pidfd_getfd: " + os.strerror(ctypes.get_errno()))
    return env, stdio


def join_sandbox(holder):
    # Namespaces and root of the holder (host pid), as nsenter joins them.
    libc = ctypes.CDLL(None, use_errno=True)
    fds = []
    for name in NAMESPACES:
        theirs = "/proc/%d/ns/%s" % (holder, name)
        if os.path.exists(theirs) and os.stat(theirs).st_ino != os.stat("/proc/self/ns/" + name).st_ino:
            fds.append((name, os.open(theirs, os.O_RDONLY)))
    root = os.open("/proc/%d/root" % holder, os.O_RDONLY | os.O_DIRECTORY)
    for name, fd in fds:
        if libc.setns(fd, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns(%s): %s" % (name, os.strerror(err)))
        os.close(fd)
    os.fchdir(root)
    os.chroot(".")
    os.close(root)


def kernel(request, env, stdio):
    # The forked kernel: never returns to the zygote's code.
    code = 1
    try:
        os.setsid()
        for fd, copy in enumerate(stdio):
            os.dup2(copy, fd)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        enter_sandbox(request["sandbox"])
        os.environ.clear()
        os.environ.update(env)
        torch.seed()  # a seed of its own, as a new process has (the random module reseeds at fork)
        sys.argv = request["argv"]
        if sys.path and sys.path[0] == "":  # as ipykernel_launcher: no cwd while importing
            del sys.path[0]
        ipykernel.kernelapp.launch_new_instance()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (stop.code is not None)
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def entrant(conn):
    # One request: join the sandbox, fork its kernel, answer its pid, reap it.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        request = receive(conn)
        env, stdio = holder_state(request["holder"])
        join_sandbox(request["holder"])
        pid = os.fork()
    except BaseException as error:
        conn.sendall(json.dumps({"error": "%s: %s" % (type(error).__name__, error)}).encode())
        os._exit(1)
    if pid == 0:
        conn.close()
        kernel(request, env, stdio)
    conn.sendall(json.dumps({"pid": pid}).encode())
    conn.close()
    os.waitpid(pid, 0)
    os._exit(0)


listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(sys.argv[1])
listener.listen(64)
parent = os.getppid()
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # entrants are reaped by Linux
os.write(int(sys.argv[2]), b"ready")
os.close(int(sys.argv[2]))
try:
    while os.getppid() == parent:  # the process that started it is alive
        if not select.select([listener], [], [], 1.0)[0]:
            continue
        conn = listener.accept()[0]
        if os.fork() == 0:
            try:
                listener.close()
                entrant(conn)
            finally:
                os._exit(1)
        conn.close()
finally:  # a pool's worker ends without running atexit: the zygote cleans up after itself
    os.unlink(sys.argv[1])
    os.rmdir(os.path.dirname(sys.argv[1]))
"""

LAUNCHER = importlib.util.find_spec("ipykernel_launcher").origin  # the kernel's sys.argv[0]
START_TIMEOUT_S = 120
REPLY_TIMEOUT_S = 30


def supported():
    """Kernels can be forked here: a grader running as root, Linux 5.6 or later (``pidfd_getfd``),
    which Yama's ``ptrace_scope`` 3 would refuse even to root."""
    release = tuple(int(part) for part in re.findall(r"\d+", os.uname().release)[:2])
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            no_attach = f.read().strip() == "3"
    except OSError:  # no Yama
        no_attach = False
    return os.geteuid() == 0 and hasattr(os, "pidfd_open") and release >= (5, 6) and not no_attach


def can_fork(kernel_cmd):
    """True for an ipykernel of this Python (what the zygote imports), where ``supported``."""
    return (supported() and len(kernel_cmd) >= 3 and kernel_cmd[1:3] == ["-m", "ipykernel_launcher"]
            and os.path.realpath(kernel_cmd[0]) == os.path.realpath(sys.executable))


def holder_cmd(sandbox_cfg, wait_s=REPLY_TIMEOUT_S + START_TIMEOUT_S):
    return [sys.executable, "-I", "-S", "-c", HOLDER, json.dumps(sandbox_cfg), str(wait_s)]


def find_holder(bwrap, timeout=REPLY_TIMEOUT_S):
    """Host pid of the holder under the bwrap process ``bwrap`` (a Popen), once it runs."""
    deadline = time.monotonic() + timeout
    while True:
        for pid in sandbox_processes([bwrap.pid]):
            try:
                with open(f"/proc/{pid}/status", "rb") as f:
                    nspid = [line for line in f if line.startswith(b"NSpid:")][0].split()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read()
            except (OSError, IndexError):
                continue
            if nspid[-1] == b"2" and HOLDER_MARK.encode() in cmdline:
                return pid
        if bwrap.poll() is not None:
            raise RuntimeError(f"the sandbox ended (exit code {bwrap.returncode}) before its kernel started")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox did not start within {timeout} s")
        time.sleep(0.002)


class Zygote:
    """A zygote process for kernels with one environment, and the requests to it.

    With ``socket_path``, one that another process started and owns (``use``).
    """

    def __init__(self, env, socket_path=None):
        self.env = dict(env)
        self.process = self._ready = None
        if socket_path:
            self.socket_path = socket_path
            return
        self.folder = tempfile.mkdtemp(prefix="jzyg-")  # 0700: only the grader connects
        self.socket_path = os.path.join(self.folder, "zygote")
        ready_read, ready_write = os.pipe()
        self._ready = ready_read
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, self.socket_path, str(ready_write)],
            env=self.env, cwd="/", stdin=subprocess.DEVNULL, pass_fds=(ready_write,))
        os.close(ready_write)
        self._lock = threading.Lock()

    def wait_ready(self, timeout=START_TIMEOUT_S):
        if self._ready is None:
            return
        with self._lock:
            if self._ready is None:
                return
            ready = select.select([self._ready], [], [], timeout)[0] and os.read(self._ready, 5)
            os.close(self._ready)
            self._ready = None
            if ready != b"ready":
                self.stop()
                raise RuntimeError(f"the kernel zygote did not start (exit code {self.process.poll()})")

    def alive(self):
        if self.process is None:
            return os.path.exists(self.socket_path)
        return self.process.poll() is None

    def spawn(self, holder, sandbox_cfg, argv):
        """Fork a kernel into the sandbox of ``holder``, with its environment and stdio; its host pid."""
        self.wait_ready()
        request = {"holder": holder, "sandbox": sandbox_cfg, "argv": argv}
        chunks = []
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(REPLY_TIMEOUT_S)
                conn.connect(self.socket_path)
                conn.sendall(json.dumps(request).encode())
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
        return reply["pid"]

    def _state(self):
        if self.process is None:
            return f"started by another process, at {self.socket_path}"
        code = self.process.poll()
        return "running" if code is None else f"exit code {code}"

    def stop(self):
        if self.process is None:  # another process's
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_zygotes = {}  # frozen environment -> Zygote
_zygotes_lock = threading.Lock()


def _key(env):
    """Kernels share a zygote if their environments differ at most in what no import reads."""
    return tuple(sorted((k, v) for k, v in env.items() if k not in ("PWD", "JPY_SESSION_NAME")))


def for_env(env):
    """This process's zygote for kernels with ``env`` (started on first use, not waited for)."""
    key = _key(env)
    with _zygotes_lock:
        zygote = _zygotes.get(key)
        if zygote is None or not zygote.alive():
            if zygote is not None:
                zygote.stop()
            zygote = _zygotes[key] = Zygote(dict(key))
        return zygote


def use(env, socket_path):
    """Kernels with ``env`` come from the zygote at ``socket_path`` (started by the main process)."""
    with _zygotes_lock:
        _zygotes[_key(env)] = Zygote(env, socket_path)


@atexit.register
def stop_all():
    with _zygotes_lock:
        while _zygotes:
            _zygotes.popitem()[1].stop()
