"""The zygote: forks sandboxed kernels from a process that has imported torch and ipykernel.

RUNS AS THE GRADER'S USER (root, or an ordinary user whose bwrap makes user namespaces), in
the kernels' environment (``python -I zygote_server.py SOCKET READY_FD``, started by zygote.py). Starting a kernel costs ~2 CPU-s, nearly all of it importing
ipykernel and torch; this process imports them once, and each kernel is a fork of it.
Matplotlib's drawing modules too (the notebooks draw: ~0.45 CPU-s a kernel, its font
list built anew in each sandbox), with the backend ipykernel would choose: not pyplot,
not a backend module, which bind a process to a display. And ipykernel's debugger module,
which each kernel imports as it starts.

Invariants (each one is why a fork here is safe):
* Single-threaded, always: joining a mount namespace refuses a threaded caller, and a
  fork copies one thread only (a lock another thread held would stay held in the child).
  Checked before every fork (``_single_threaded``).
* It never runs a torch operation: libgomp's thread pool breaks in a forked child once
  started, and a kernel would inherit its state. Importing is all it does with torch.
* It reads no request itself: each connection is read by the entrant forked for it, so no
  kernel inherits another student's request in its memory.
* It ends with the process that started it (polled once a second, with the listener).

One request: the entrant receives the kernel's stdin, stdout and stderr as descriptors
(SCM_RIGHTS) and the holder's host pid, the sandbox's config, the kernel's argv and
environment as JSON; joins the holder's namespaces and root (``setns``, as nsenter does);
forks the kernel (which enters the sandbox as enter.py does and runs ipykernel); answers
the kernel's host pid and its pid in the sandbox, and reaps it.
"""
import atexit
import fcntl
import gc
import importlib.util
import json
import os
import select
import signal
import socket
import sys
import threading
import traceback

import ipykernel.ipkernel  # noqa: F401  (every kernel's: imported once, here)
import ipykernel.kernelapp
import ipykernel.zmqshell  # noqa: F401
import torch


def _import_matplotlib():
    """Matplotlib's modules that pyplot and the course's plots import, loaded once.

    ``import matplotlib`` reads the backend from MPLBACKEND once: it is set here as the
    kernel's ipykernel sets it (its own default when the environment names none), so a
    forked kernel draws inline as a fresh one does. Matplotlib's font list is built in a
    folder of this process's own, removed afterwards: never a shared folder written as root.
    """
    import shutil
    import tempfile
    saved = dict(os.environ)
    private = tempfile.mkdtemp(prefix="zygote-matplotlib-")
    try:
        os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        os.environ["MPLCONFIGDIR"] = private
        import matplotlib.colorbar  # noqa: F401
        import matplotlib.figure  # noqa: F401
        import matplotlib.image  # noqa: F401
    except ImportError:  # a kernel without matplotlib imports nothing of it here either
        pass
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(private, ignore_errors=True)
    for thread in threading.enumerate():  # the font list's cancelled "this may take a moment" timer
        if thread is not threading.main_thread():
            thread.join()


def _import_debugger():
    """ipykernel's debugger module (debugpy and pydevd), which every kernel imports as it starts:
    ~0.07 CPU-s a kernel. The import starts no thread; it sets ``sys.breakpointhook``, as it does
    in a fresh kernel. Its one output, pydevd's warning that frozen modules are in use, goes
    nowhere here: the grader's terminal is not a kernel's stderr."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError):  # started without a stderr: there is nothing to keep quiet
        import ipykernel.debugger  # noqa: F401
        return
    quiet = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(quiet, 2)
        import ipykernel.debugger  # noqa: F401
        sys.stderr.flush()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(quiet)


_import_matplotlib()
_import_debugger()
gc.freeze()  # what is imported stays: no kernel's collection walks it (IPython's reset collects)

NAMESPACES = ("cgroup", "ipc", "uts", "net", "pid", "mnt")  # the mount namespace last
NS_GET_USERNS, NS_GET_PARENT = 0xB701, 0xB702  # ioctls on a namespace descriptor (linux/nsfs.h)
HERE = os.path.dirname(os.path.abspath(__file__))


def _load_enter():
    spec = importlib.util.spec_from_file_location("sandbox_enter", os.path.join(HERE, "enter.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


enter = _load_enter()


def _single_threaded():
    with open("/proc/self/status", "rb") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith(b"Threads:"))
    if threads != 1 or threading.active_count() != 1:
        raise RuntimeError(f"the zygote must stay single-threaded to fork ({threads} threads)")


def receive(conn):
    """(descriptors, request): the descriptors come with a one-byte message, the JSON after it."""
    data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
    chunks = [data[1:]]
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return fds, json.loads(b"".join(chunks))


def _user_namespaces(holder, owner):
    """Descriptors of the user namespaces from ``owner`` (a descriptor: the one that owns the
    sandbox's other namespaces) down to the holder's, outermost first."""
    chain = [os.open(f"/proc/{holder}/ns/user", os.O_RDONLY)]
    while os.fstat(chain[-1]).st_ino != os.fstat(owner).st_ino:
        if len(chain) > 8:
            raise OSError(f"the holder's user namespace is not below its sandbox's ({len(chain)} levels)")
        chain.append(fcntl.ioctl(chain[-1], NS_GET_PARENT))
    os.close(chain.pop())
    return [owner] + chain[::-1]


def join_sandbox(holder):
    """Namespaces and root of the holder (host pid), as nsenter joins them.

    A root grader's bwrap makes no user namespace: the sandbox's namespaces belong to the
    grader's own, and the kernel makes its user namespace itself (enter.py), as the holder did.
    An ordinary user's bwrap makes them inside a user namespace of its own, with the holder in
    one nested in that (``--disable-userns``): its owner joins the outer one first (gaining
    every capability there, which joining the others needs), then the others, then the
    holder's, so the kernel is where an exec'd kernel is; enter.py drops those capabilities.
    """
    libc = enter.ctypes.CDLL(None, use_errno=True)
    fds = []
    for name in NAMESPACES:
        theirs = f"/proc/{holder}/ns/{name}"
        if os.path.exists(theirs) and os.stat(theirs).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
            fds.append((name, os.open(theirs, os.O_RDONLY)))
    owner = fcntl.ioctl(fds[-1][1], NS_GET_USERNS) if fds and fds[-1][0] == "mnt" else None
    users = []
    if owner is not None and os.fstat(owner).st_ino != os.stat("/proc/self/ns/user").st_ino:
        users = _user_namespaces(holder, owner)
    elif owner is not None:
        os.close(owner)
    root = os.open(f"/proc/{holder}/root", os.O_RDONLY | os.O_DIRECTORY)
    for name, fd in [("user", fd) for fd in users[:1]] + fds + [("user", fd) for fd in users[1:]]:
        if libc.setns(fd, 0) != 0:
            error = enter.ctypes.get_errno()
            raise OSError(error, f"setns({name}): {os.strerror(error)}")
        os.close(fd)
    os.fchdir(root)
    os.chroot(".")
    os.close(root)


def kernel(request, stdio):
    """The forked kernel: never returns to the zygote's code."""
    code = 1
    try:
        os.setsid()
        for fd, given in enumerate(stdio):
            os.dup2(given, fd)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        enter.enter_sandbox(request["sandbox"])
        os.environ.clear()
        os.environ.update(request["env"])
        torch.seed()  # a seed of its own, as a new process has (the random module reseeds at fork)
        sys.argv = request["argv"]
        if sys.path and sys.path[0] == HERE:  # as ipykernel_launcher: nothing of ours on the path
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


def namespace_pid(pid, host_proc):
    """``pid``'s number in its innermost pid namespace (the last of NSpid in the host's /proc,
    ``host_proc`` a descriptor of it: the entrant's own /proc is the sandbox's)."""
    with open(os.open(f"{pid}/status", os.O_RDONLY, dir_fd=host_proc), "rb") as f:
        return int(next(line for line in f if line.startswith(b"NSpid:")).split()[-1])


def entrant(conn):
    """One request: join the sandbox, fork its kernel, answer its pids, reap it."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        fds, request = receive(conn)
        if len(fds) != 3:
            raise ValueError(f"expected the kernel's stdin, stdout and stderr, got {len(fds)} descriptors")
        _single_threaded()
        host_proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
        join_sandbox(request["holder"])
        pid = os.fork()
    except BaseException as error:
        conn.sendall(json.dumps({"error": f"{type(error).__name__}: {error}"}).encode())
        os._exit(1)
    if pid == 0:
        conn.close()
        os.close(host_proc)
        kernel(request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid, "sandbox_pid": namespace_pid(pid, host_proc)}).encode())
    conn.close()
    os.waitpid(pid, 0)
    os._exit(0)


def serve(socket_path, ready_fd):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    parent = os.getppid()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # entrants are reaped by Linux
    try:
        try:
            os.write(ready_fd, b"ready")
        except BrokenPipeError:  # the process that started it has gone meanwhile: nothing to serve
            return
        os.close(ready_fd)
        while os.getppid() == parent:  # the process that started it is alive
            if not select.select([listener], [], [], 1.0)[0]:
                continue
            conn = listener.accept()[0]
            _single_threaded()
            if os.fork() == 0:
                try:
                    listener.close()
                    entrant(conn)
                finally:
                    os._exit(1)
            conn.close()
    finally:  # a pool's worker ends without running atexit: the zygote cleans up after itself
        os.unlink(socket_path)
        os.rmdir(os.path.dirname(socket_path))


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
