"""Jupyter kernels that run inside a bubblewrap (``bwrap``) sandbox.

``SandboxedKernelManager`` is a drop-in ``AsyncKernelManager`` (for nbclient /
nbgrader's ``Execute``: ``kernel_manager_class=SandboxedKernelManager``).  The
kernel it starts

* sees only: /usr and the /bin, /lib... links, a few files of /etc, the Python
  install (venv, base prefix), ``readonly_paths`` (read-only), ``workdir`` (the
  only writable folder, default: the ``cwd`` nbclient starts the kernel in, i.e.
  the notebook's folder), a private folder with the connection file and the ipc
  sockets, and fresh /proc, /dev, /tmp (a small tmpfs, also HOME);
* has no network (own network namespace, loopback only; ZeroMQ goes over unix
  sockets, ``transport = "ipc"``), its own pid / ipc / uts namespaces and a new
  terminal session;
* runs as an ordinary user: when the grader runs as root it becomes
  ``sandbox_uid`` (65534, nobody) for real, not only inside a user namespace
  (RLIMIT_NPROC is not enforced for host root, even one mapped to another id);
* gets rlimits: RLIMIT_DATA = ``memory_limit_mb``, RLIMIT_NPROC =
  ``max_processes``, RLIMIT_FSIZE = ``max_file_size_mb``, no core files;
* gets a filtered environment (``env_keep`` patterns + ``extra_env``);
* is interrupted by an ``interrupt_request`` message, not SIGINT (a signal
  would reach the outer bwrap, which would die and take the kernel with it).

Grader as root: while kernels use ``workdir`` its group becomes ``sandbox_gid``
with rwx and the sticky bit (given back at ``cleanup_resources``). The kernel
can create files there (they stay owned by ``sandbox_uid``) but can't delete,
rename or overwrite the files already there unless their mode lets it. The connection folder is a fresh ``jsbx-*`` folder
in the temp dir, removed at cleanup.

How the processes are stacked (``python -I -S -c _WRAPPER`` is the grader's own
interpreter, run inside the sandbox before the kernel)::

    bwrap [namespaces, mounts] -- python -c _WRAPPER CONFIG -- python -m ipykernel_launcher -f ...

or, grader as root and ``fork_kernels`` (the default), a kernel forked into the
sandbox from a process that has imported torch, which does what the wrapper does
(``ENTER``) and runs ipykernel without an exec (zygote.py)::

    bwrap [namespaces, mounts] -- python -I -S -c zygote.HOLDER CONFIG SECONDS

Grader as root: bwrap runs privileged (no user namespace) with every
capability dropped except CAP_SETUID/CAP_SETGID, so it can bind paths under
/root (e.g. pyenv) that nobody can't reach. The wrapper then drops to
``sandbox_uid``, sets no_new_privs, enters a user namespace of its own (only
so that RLIMIT_NPROC counts the processes of this sandbox, not those of every
sandbox running as nobody at the same time; nested user namespaces are then
disabled, like bwrap's ``--disable-userns``), sets the rlimits and execs the
kernel. Grader as an ordinary user: bwrap runs unprivileged (its own user
namespace, ``--disable-userns``), and the wrapper only sets the rlimits.

Why RLIMIT_DATA and not RLIMIT_AS: torch, OpenMP and glibc reserve a lot of
address space they never touch (thread stacks, 64 MiB malloc arenas per
thread); with RLIMIT_AS = 2 GiB ``torch.set_num_threads(32)`` already fails
with "can't start new thread". RLIMIT_DATA (Linux >= 4.7) counts private
writable mappings, i.e. what malloc / torch's allocator / numpy really get, so
``bytearray(4 * 2**30)`` raises MemoryError and ``torch.empty(2**30)`` raises
RuntimeError("... can't allocate memory"), while imports and threads work. It
does not count shared memory, so /tmp and /dev/shm are size-limited tmpfs.
"""
import fnmatch
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default

from . import kernel_folders

# Becomes the sandbox's unprivileged process; run inside the sandbox, by the wrapper
# below before it execs the kernel, and by a kernel forked from the zygote (zygote.py).
ENTER = r"""
import ctypes, json, os, resource, sys
def enter_sandbox(cfg):
    libc = ctypes.CDLL(None, use_errno=True)
    def check(ret, what):
        if ret != 0:
            err = ctypes.get_errno()
            raise OSError(err, what + ": " + os.strerror(err))
    check(libc.prctl(38, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
    uid, gid = cfg["uid"], cfg["gid"]
    if uid is not None and os.getuid() == 0:
        os.setgroups([]); os.setresgid(gid, gid, gid); os.setresuid(uid, uid, uid)
        check(libc.prctl(4, 1, 0, 0, 0), "prctl(PR_SET_DUMPABLE)")  # else /proc/self is root's
        if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER: RLIMIT_NPROC counted per sandbox
            for name, text in (("uid_map", "%d %d 1" % (uid, uid)), ("setgroups", "deny"),
                               ("gid_map", "%d %d 1" % (gid, gid))):
                with open("/proc/self/" + name, "w") as f:
                    f.write(text)
            try:  # no user namespaces below this one (what bwrap's --disable-userns does)
                with open("/proc/sys/user/max_user_namespaces", "w") as f:
                    f.write("0")
            except OSError:
                pass
            # the new namespace gave every capability in it; an exec would drop them,
            # a kernel forked from the zygote must: bounding set, ambient set, then all
            cap = 0
            while libc.prctl(24, cap, 0, 0, 0) == 0:  # PR_CAPBSET_DROP, up to the last one
                cap += 1
            libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
            header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
            check(libc.capset(header, (ctypes.c_uint32 * 6)()), "capset")
        else:
            print("sandbox: no user namespace (%s); the process limit counts every process of uid %d"
                  % (os.strerror(ctypes.get_errno()), uid), file=sys.stderr)
        if os.getuid() != uid or os.geteuid() != uid:
            sys.exit("sandbox: could not drop to uid %d" % uid)
    os.chdir(cfg["cwd"])
    for name, value in cfg["limits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
"""

# Runs inside the sandbox, before the kernel; argv: CONFIG_JSON -- KERNEL_CMD...
_WRAPPER = ENTER + r"""
enter_sandbox(json.loads(sys.argv[1]))
os.execv(sys.argv[3], sys.argv[3:])
"""

SYSTEM_DIRS = ["/usr"]
SYSTEM_LINKS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]

_workdir_lock = threading.Lock()
_workdir_users = {}  # realpath -> [kernels using it, (gid, mode) before]


def _is_root():
    return os.geteuid() == 0


def _bwrap():
    return shutil.which("bwrap")


def _under(path, parent):
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def python_roots(executable=None):
    """Folders a Python needs: its venv, the venv's base install, the real binary's prefix."""
    executable = executable or sys.executable
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    exe = os.path.abspath(executable)
    venv = os.path.dirname(os.path.dirname(exe))
    cfg = os.path.join(venv, "pyvenv.cfg")
    if os.path.isfile(cfg):
        roots.add(venv)
        with open(cfg, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition("=")
                if key.strip() == "home":
                    roots.add(os.path.dirname(value.strip()))
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(exe))))
    found = set()
    for root in roots:
        if not root or not os.path.isdir(root):
            continue
        for r in (os.path.abspath(root), os.path.realpath(root)):
            if not any(_under(r, d) for d in SYSTEM_DIRS) and r != "/":
                found.add(r)
    # drop roots inside other roots
    return sorted(r for r in found if not any(r != o and _under(r, o) for o in found))


def sandbox_processes(roots, namespace=None):
    """Host pids of the processes below ``roots`` and of those in the pid namespace with inode
    ``namespace`` (read from /proc once). A process can leave the tree of its sandbox (a child
    made with ``CLONE_PARENT`` gets its parent's parent, outside) but not its pid namespace."""
    children, members = {}, []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat_line = f.read()
            if namespace is not None and os.stat(f"/proc/{entry}/ns/pid").st_ino == namespace:
                members.append(int(entry))
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat_line[stat_line.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(members), list(roots) + members
    while todo:
        pid = todo.pop()
        for child in children.get(pid, ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return sorted(found)


def resident_bytes(pids):
    """Memory ``pids`` hold together (bytes): their resident anonymous and shared memory.

    Pages of mapped files are left out, as RLIMIT_DATA leaves them out: they are the
    page cache, shared by every process that maps them (torch's libraries alone are
    some 400 MB in each kernel). Counting them made the watchdog kill a kernel that
    stayed within RLIMIT_DATA, before its own allocation failed.
    """
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", "rb") as f:
                for line in f:
                    if line.startswith((b"RssAnon:", b"RssShmem:")):
                        total += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            pass
    return total


class CappedPipe:
    """A pipe for a kernel's stdout and stderr, read by a thread that keeps the first
    ``limit`` bytes and drops the rest: what a kernel writes to its file descriptors
    never reaches the grader's terminal, and a flood costs no memory."""

    def __init__(self, limit):
        self.limit = limit
        self.kept = bytearray()
        self.dropped = 0
        self._read, self.write_end = os.pipe()
        self._thread = None

    def start(self):
        """The kernel holds the write end now: close ours and start reading."""
        os.close(self.write_end)
        self.write_end = None
        self._thread = threading.Thread(target=self._drain, daemon=True, name="kernel-output")
        self._thread.start()

    def _drain(self):
        try:
            while chunk := os.read(self._read, 65536):
                room = self.limit - len(self.kept)
                self.kept += chunk[:max(room, 0)]
                self.dropped += max(len(chunk) - max(room, 0), 0)
        except OSError:
            pass
        finally:
            os.close(self._read)

    def close(self):
        """Close the write end if the kernel never started (reading ends by itself otherwise)."""
        if self.write_end is not None:
            os.close(self.write_end)
            self.write_end = None
        if self._thread is None and self._read is not None:
            os.close(self._read)
            self._read = None

    def text(self):
        """What the kernel wrote, as text safe to show (control characters escaped)."""
        text = bytes(self.kept).decode("utf-8", "replace")
        return "".join(c if c.isprintable() or c in "\n\t" else f"\\x{ord(c):02x}" for c in text)


def bwrap_available(timeout=5):
    """(True, "") if a sandbox like the kernel's can start here, else (False, why)."""
    if not sys.platform.startswith("linux"):
        return False, "bubblewrap needs Linux"
    bwrap = _bwrap()
    if not bwrap:
        return False, "bwrap not found (apt-get install bubblewrap)"
    km = SandboxedKernelManager()
    workdir = tempfile.mkdtemp(prefix="jsbx-check-")
    try:
        cmd = km.bwrap_args(os.path.realpath(workdir), None) + km.wrapper_cmd(os.path.realpath(workdir)) + [
            sys.executable, "-I", "-S", "-c", "import os; open('ok', 'w').close()"]
        km._claim_workdir(os.path.realpath(workdir))
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, env={"PATH": "/usr/bin:/bin"})
        wrote = os.path.exists(os.path.join(workdir, "ok"))
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"bwrap failed to start: {e}"
    finally:
        km._release_workdir()
        shutil.rmtree(workdir, ignore_errors=True)
    if r.returncode != 0:
        return False, f"bwrap test sandbox failed (rc {r.returncode}): {r.stderr.strip()[-500:]}"
    if not wrote:
        return False, "bwrap test sandbox could not write to its workdir"
    return True, ""


class SandboxedKernelManager(AsyncKernelManager):
    """AsyncKernelManager whose kernels run in a bubblewrap sandbox (see module doc)."""

    workdir = Unicode("", config=True, help="""The only writable folder, bound
        read-write at its own path; the kernel starts there. Default: the cwd
        passed to start_kernel (nbclient passes the notebook's folder).""")
    readonly_paths = List(Unicode(), config=True, help="""Extra files or
        folders bound read-only at their own paths (e.g. the data file).""")
    memory_limit_mb = Integer(2048, config=True, help="""RLIMIT_DATA of each
        process, and the limit on the memory all the sandbox's processes hold
        together, resident anonymous and shared memory (``resident_bytes``;
        watched every ``memory_poll_s``; the sandbox is killed when over it)""")
    memory_poll_s = Float(0.2, config=True, help="seconds between two looks at the sandbox's memory and disk")
    disk_limit_mb = Integer(256, config=True, help="""what the kernel may store in
        its writable folder and its connection folder together (MiB, or 20,000 entries);
        over it the sandbox is killed""")
    max_processes = Integer(64, config=True, help="""RLIMIT_NPROC: processes
        *and threads* of the sandbox (torch's thread pool counts).""")
    max_file_size_mb = Integer(256, config=True, help="RLIMIT_FSIZE (MiB): no file bigger than the "
                               "disk limit; 0: unlimited")
    cpu_threads = Integer(0, config=True, help="""OMP/MKL/OpenBLAS threads
        when the environment doesn't set them; 0: min(cpus, max_processes // 4).
        Threads count against max_processes, and libgomp aborts the kernel when
        it can't make one.""")
    tmp_size_mb = Integer(512, config=True, help="size of the /tmp and /dev/shm tmpfs (MiB each)")
    output_limit_kb = Integer(2048, config=True, help="""what the grader keeps of the kernel's
        stdout and stderr (its file descriptors 1 and 2, a pipe the grader reads; KiB): the
        rest is read and dropped. The kernel's stdin is /dev/null.""")
    sandbox_uid = Integer(65534, config=True, help="uid the kernel runs as when the grader is root")
    sandbox_gid = Integer(65534, config=True, help="gid the kernel runs as when the grader is root")
    etc_paths = List(Unicode(), config=True, help="entries of /etc bound read-only, if present")
    env_keep = List(Unicode(), config=True, help="""fnmatch patterns of the
        grader's environment variables the kernel keeps; everything else is dropped""")
    extra_env = Dict(config=True, help="environment variables set in the kernel (last)")
    bwrap_path = Unicode("", config=True, help="bwrap executable; default: found on PATH")
    fork_kernels = Bool(True, config=True, help="""Grader as root: fork ipykernels
        from a process that has imported torch (zygote.py) instead of starting each
        one afresh (~2 CPU-s less a kernel). The sandbox is the same.""")

    @default("etc_paths")
    def _etc_paths_default(self):
        return ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
                "host.conf", "hosts", "gai.conf", "localtime", "timezone", "alternatives",
                "fonts", "ssl", "ca-certificates", "mime.types", "os-release", "locale.alias"]

    @default("env_keep")
    def _env_keep_default(self):
        return ["LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "PYTHONHASHSEED", "PYTHONUNBUFFERED",
                "PYTHONWARNINGS", "MPLBACKEND", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG",
                "JPY_SESSION_NAME", "GPT_*"]

    memory_exceeded = False  # set when the watchdog killed the sandbox for memory
    disk_exceeded = False  # ... or for what it wrote
    _watchdog = None
    sandboxed = True  # ProbingExecute refuses a manager without this when asked for a sandbox
    _sandbox_dir = None
    _workdir_in_use = None
    _kernel_workdir = None
    _fork = None  # (sandbox config, environment, argv) of a kernel to fork from the zygote
    _forked = None  # host pid of the forked kernel
    _namespace = None  # inode of the sandbox's pid namespace, once known
    output = None  # CappedPipe: what the kernel wrote to its stdout and stderr

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"

    # ---- interrupts: a signal would hit the outer bwrap (and kill the sandbox)
    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        if spec is not None and spec.interrupt_mode != "message":
            spec.interrupt_mode = "message"  # ipykernel then SIGINTs itself
        return spec

    # ---- command line
    def _drop_uid(self):
        return _is_root() and self.sandbox_uid != 0

    def sandbox_config(self, workdir):
        """What ``ENTER`` does inside the sandbox: uid, limits, folder."""
        limits = {"RLIMIT_DATA": self.memory_limit_mb * 2**20,
                  "RLIMIT_NPROC": self.max_processes,
                  "RLIMIT_CORE": 0}
        if self.max_file_size_mb > 0:
            limits["RLIMIT_FSIZE"] = self.max_file_size_mb * 2**20
        return {"uid": self.sandbox_uid if self._drop_uid() else None,
                "gid": self.sandbox_gid, "limits": limits, "cwd": workdir}

    def wrapper_cmd(self, workdir):
        return [sys.executable, "-I", "-S", "-c", _WRAPPER, json.dumps(self.sandbox_config(workdir)), "--"]

    def bwrap_args(self, workdir, conn_dir, executables=()):
        """bwrap and its options, up to and including ``--``."""
        args = [self.bwrap_path or _bwrap() or "bwrap", "--die-with-parent", "--new-session",
                "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--hostname", "sandbox"]
        if self._drop_uid():
            # privileged bwrap (no user namespace): keep only what the wrapper needs
            args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            args += ["--unshare-user", "--disable-userns"]
        dests = []  # (dest, option, source)
        for d in SYSTEM_DIRS:
            if os.path.isdir(d):
                dests.append((d, "--ro-bind", d))
        links = []
        for d in SYSTEM_LINKS:
            if os.path.islink(d):
                links += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                dests.append((d, "--ro-bind", d))
        for name in self.etc_paths:
            p = os.path.join("/etc", name)
            if os.path.lexists(p):
                dests.append((p, "--ro-bind", p))
        roots = set(python_roots())
        for exe in executables:
            if os.path.isabs(exe) and "python" in os.path.basename(exe) and os.path.exists(exe):
                roots.update(python_roots(exe))
        for root in sorted(roots):
            dests.append((root, "--ro-bind", root))
        for p in self.readonly_paths:
            p = os.path.abspath(p)
            if not os.path.exists(p):
                raise FileNotFoundError(f"sandbox readonly path does not exist: {p}")
            dests.append((p, "--ro-bind", p))
        dests.append((workdir, "--bind", workdir))
        if conn_dir:
            dests.append((conn_dir, "--bind", conn_dir))
        # parents before children, so a child bind is not hidden by its parent's
        dests.sort(key=lambda t: (t[0].rstrip("/").count("/"), t[0]))
        tmp_size = str(self.tmp_size_mb * 2**20)
        args += links + ["--proc", "/proc", "--dev", "/dev",
                         "--size", tmp_size, "--tmpfs", "/tmp",
                         "--size", tmp_size, "--tmpfs", "/dev/shm",
                         "--chmod", "1777", "/tmp", "--chmod", "1777", "/dev/shm"]
        for dest, option, source in dests:
            args += [option, source, dest]
        # folders bwrap made on the way to the binds are 0700 when it runs as root
        bound = [d for d, _, _ in dests]
        made = set()
        for d in bound:
            parent = os.path.dirname(d)
            while parent not in ("/", ""):
                if not any(_under(parent, b) for b in bound) and parent not in ("/tmp", "/dev"):
                    made.add(parent)
                parent = os.path.dirname(parent)
        for p in sorted(made, key=lambda p: p.count("/")):
            args += ["--chmod", "0755", p]
        # the sandbox's own root (a tmpfs holding the mount points) read-only too
        args += ["--remount-ro", "/"]
        # no --chdir: bwrap would chdir as capability-less root, which a workdir
        # owned by the sandbox user may refuse; the wrapper does it after dropping
        # JPY_PARENT_PID (the grader's pid) would make ipykernel exit at once
        # (its parent is bwrap's init, pid 1 in the sandbox). Set to 1, ipykernel
        # starts no parent poller and doesn't print its "Ctrl-C will not work" note.
        args += ["--setenv", "JPY_PARENT_PID", "1", "--"]
        return args

    def forked_kernel_env(self, env):
        """The environment of a kernel forked from a zygote, and so of the zygote: what bwrap
        passes on to the holder when jupyter_client starts it with ``env``."""
        return dict(self._kernel_env(env), JPY_PARENT_PID="1")

    def _kernel_env(self, env):
        keep = {k: v for k, v in env.items()
                if any(fnmatch.fnmatchcase(k, pat) for pat in self.env_keep)}
        bins = [os.path.join(r, "bin") for r in python_roots()]
        path = [os.path.dirname(os.path.abspath(sys.executable))] + bins + [
            "/usr/local/bin", "/usr/bin", "/bin"]
        keep.update(HOME="/tmp", TMPDIR="/tmp", PATH=os.pathsep.join(dict.fromkeys(path)),
                    USER="nobody" if self._drop_uid() else env.get("USER", ""))
        # One thread count for all the libraries: the grader's OMP_NUM_THREADS if set
        # (torch also reads MKL_NUM_THREADS, so leaving that one higher oversubscribes).
        threads = self.cpu_threads or keep.get("OMP_NUM_THREADS") or max(
            1, min(os.cpu_count() or 1, self.max_processes // 4))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            keep.setdefault(name, str(threads))
        keep.update({k: str(v) for k, v in self.extra_env.items()})
        return keep

    # ---- workdir access (grader as root: the kernel must be able to write there)
    def _claim_workdir(self, workdir):
        """Group ``sandbox_gid`` gets rwx on ``workdir``, plus the sticky bit.

        The owner stays (root), so with the sticky bit the kernel can add files
        but not delete, rename or replace (e.g. by a symlink) files it doesn't
        own, such as the notebooks nbgrader writes back as root.
        """
        if not self._drop_uid():
            return
        with _workdir_lock:
            entry = _workdir_users.get(workdir)
            if entry is None:
                st = os.stat(workdir)
                entry = _workdir_users[workdir] = [0, (st.st_gid, stat.S_IMODE(st.st_mode))]
                os.chown(workdir, -1, self.sandbox_gid)
                os.chmod(workdir, stat.S_IMODE(st.st_mode) | stat.S_ISVTX | 0o070)
            entry[0] += 1
        self._workdir_in_use = workdir

    def _release_workdir(self):
        workdir, self._workdir_in_use = self._workdir_in_use, None
        if workdir is None:
            return
        with _workdir_lock:
            entry = _workdir_users.get(workdir)
            if entry is None:
                return
            entry[0] -= 1
            if entry[0] <= 0:
                del _workdir_users[workdir]
                gid, mode = entry[1]
                try:
                    os.chown(workdir, -1, gid)
                    os.chmod(workdir, mode)
                except OSError as e:
                    self.log.warning("sandbox: could not give %s back: %s", workdir, e)

    # ---- start / cleanup
    def _make_sandbox_dir(self):
        if self._sandbox_dir and os.path.isdir(self._sandbox_dir):
            return
        base = os.path.realpath(tempfile.gettempdir())
        if len(base) > 60:  # unix socket paths are limited to 107 bytes
            base = "/tmp"
        self._sandbox_dir = tempfile.mkdtemp(prefix="jsbx-", dir=base)
        if self._drop_uid():
            os.chown(self._sandbox_dir, self.sandbox_uid, self.sandbox_gid)
        self.connection_file = os.path.join(self._sandbox_dir, "kernel.json")
        self.ip = os.path.join(self._sandbox_dir, "ipc")

    async def _async_pre_start_kernel(self, **kw):
        self.transport = "ipc"
        workdir = os.path.realpath(self.workdir or kw.get("cwd") or "")
        if not (self.workdir or kw.get("cwd")) or not os.path.isdir(workdir):
            raise ValueError("SandboxedKernelManager needs workdir (or a cwd) that is a folder")
        self._make_sandbox_dir()
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        if self._drop_uid():
            os.chown(self.connection_file, self.sandbox_uid, self.sandbox_gid)
        if self._workdir_in_use != workdir:
            self._release_workdir()
            self._claim_workdir(workdir)
        self._kernel_workdir = workdir
        given_env = kw.get("env") or os.environ
        kw["env"] = self._kernel_env(given_env)
        kw["cwd"] = workdir
        # No descriptor of the grader's: stdin from /dev/null, stdout and stderr into a pipe the
        # grader reads (a terminal there could be read from and written to).
        self._close_output()
        self.output = CappedPipe(self.output_limit_kb * 1024)
        kw.update(stdin=subprocess.DEVNULL, stdout=self.output.write_end, stderr=self.output.write_end,
                  close_fds=True)
        self._fork = self._forked = self._namespace = None
        from . import zygote  # built on ENTER, above
        if self.fork_kernels and self._drop_uid() and zygote.can_fork(kernel_cmd):
            config = self.sandbox_config(workdir)
            self._fork = (config, self.forked_kernel_env(given_env),
                          [zygote.LAUNCHER] + kernel_cmd[3:])
            zygote.for_env(self._fork[1])  # imports torch while bwrap starts
            cmd = self.bwrap_args(workdir, self._sandbox_dir, kernel_cmd[:1]) + zygote.holder_cmd(config)
        else:
            cmd = (self.bwrap_args(workdir, self._sandbox_dir, kernel_cmd[:1])
                   + self.wrapper_cmd(workdir)
                   + kernel_cmd)
        self.log.debug("sandboxed kernel: %s", cmd)
        return cmd, kw

    pre_start_kernel = _async_pre_start_kernel

    async def _async_post_start_kernel(self, **kw):
        process = getattr(self.provisioner, "process", None)
        if self.output is not None and self.output.write_end is not None:
            self.output.start()
        if self._fork and process is not None:
            self._forked = self._fork_kernel(process)
        await super()._async_post_start_kernel(**kw)
        if process is not None:
            self._stop_watchdog()
            self.memory_exceeded = self.disk_exceeded = False
            stop = threading.Event()
            thread = threading.Thread(target=self._watch_limits, args=(process.pid, stop),
                                      daemon=True, name="sandbox-limits")
            self._watchdog = (thread, stop)
            thread.start()

    post_start_kernel = _async_post_start_kernel

    def _fork_kernel(self, bwrap):
        """Fork the kernel into the sandbox ``bwrap`` has made; its host pid."""
        from . import zygote
        config, env, argv = self._fork
        try:
            holder = zygote.find_holder(bwrap)
            self._namespace = os.stat(f"/proc/{holder}/ns/pid").st_ino
            return zygote.for_env(env).spawn(holder, config, argv)
        except Exception:
            bwrap.kill()
            raise

    def _sandbox_pids(self, root):
        """Host pids of the sandbox's processes: below bwrap, and every process in its pid
        namespace (the forked kernel's is known; an exec'd kernel's is read off bwrap's child)."""
        if self._namespace is None:
            own = os.stat("/proc/self/ns/pid").st_ino
            for pid in sandbox_processes([root]):
                try:
                    namespace = os.stat(f"/proc/{pid}/ns/pid").st_ino
                except OSError:
                    continue
                if namespace != own:
                    self._namespace = namespace
                    break
        return sandbox_processes([root], self._namespace)

    def _watch_limits(self, root, stop):
        """Kill the whole sandbox when its processes together hold too much memory,
        or its folder too many bytes.

        RLIMIT_DATA bounds each process; this bounds their sum (children the
        kernel starts), without cgroups, which an ordinary user may not have.
        """
        while not stop.wait(self.memory_poll_s):
            if self._check_limits(root) is not None:
                return

    def _check_limits(self, root):
        """Kill the sandbox if over a limit; None while it runs within them, else why."""
        pids = self._sandbox_pids(root)
        if not pids:
            return "gone"
        if resident_bytes(pids) > self.memory_limit_mb * 2**20:
            self.memory_exceeded = True
        elif self.stored_bytes() > self.disk_limit_mb * 2**20:
            self.disk_exceeded = True
        if not (self.memory_exceeded or self.disk_exceeded):
            return None
        self.log.warning("sandbox: over its %s limit, killed",
                         "memory" if self.memory_exceeded else "disk")
        for pid in [root] + pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        return "killed"

    def stored_bytes(self):
        """What the kernel stores on the host: its folder and its connection folder, together
        (counting stops once over the disk limit)."""
        limit, total = self.disk_limit_mb * 2**20, 0
        for folder in (self._kernel_workdir, self._sandbox_dir):
            if folder and total <= limit:
                total += kernel_folders.usage(folder, limit - total)
        return total

    def check_limits(self):
        """Check the limits now (e.g. at the end of a notebook); True if the sandbox was killed.

        The watchdog may find the same excess at the same moment and kill first: this
        check then finds no process left, but the watchdog set its flag before killing.
        """
        process = getattr(self.provisioner, "process", None)
        if process is not None and not (self.memory_exceeded or self.disk_exceeded):
            self._check_limits(process.pid)
        return self.memory_exceeded or self.disk_exceeded

    def _stop_watchdog(self):
        if self._watchdog:
            thread, stop = self._watchdog
            stop.set()
            self._watchdog = None

    def _close_output(self):
        if self.output is not None:
            self.output.close()

    async def _async_cleanup_resources(self, restart=False):
        self._stop_watchdog()
        self._close_output()
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            self._release_workdir()
            if self._sandbox_dir:
                kernel_folders.remove(self._sandbox_dir)
                self._sandbox_dir = None

    cleanup_resources = _async_cleanup_resources
