"""What a sandbox holds: bwrap's command line, the kernel's environment, its rlimits.

RUNS IN A GRADING WORKER. ``settings`` is a SandboxedKernelManager (its traits). The
kernel sees /usr and the /bin, /lib... links, a few files of /etc, the Python install
(venv, base prefix), the read-only paths, its working folder (the only writable folder,
bound at its own path), its connection folder, and fresh /proc, /dev, /tmp and /dev/shm
(small tmpfs), and the programs that run in it (programs/, read-only at /run/sandbox).
Grader as root: bwrap runs privileged, no user namespace, with every
capability dropped but CAP_SETUID/CAP_SETGID, so it can bind paths under /root (e.g.
pyenv) that nobody can't reach; the program it starts drops to ``sandbox_uid``
(programs/enter.py). As an ordinary user: bwrap's own user namespace, no nested ones.
"""
import fnmatch
import os
import resource
import shutil
import sys

PROGRAMS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "programs")
PROGRAMS_INSIDE = "/run/sandbox"  # where the sandbox sees them, read-only (not the repository's path)
SYSTEM_DIRS = ["/usr"]
SYSTEM_LINKS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
ETC_PATHS = ["ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf",
             "host.conf", "hosts", "gai.conf", "localtime", "timezone", "alternatives",
             "fonts", "ssl", "ca-certificates", "mime.types", "os-release", "locale.alias"]
ENV_KEEP = ["LANG", "LANGUAGE", "LC_*", "TERM", "TZ", "PYTHONHASHSEED", "PYTHONUNBUFFERED",
            "PYTHONWARNINGS", "MPLBACKEND", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS", "CUBLAS_WORKSPACE_CONFIG",
            "JPY_SESSION_NAME", "GPT_*"]


def drops_uid(settings):
    """The grader is root and the kernel becomes ``sandbox_uid`` for real."""
    return os.geteuid() == 0 and settings.sandbox_uid != 0


def under(path, parent):
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
            if not any(under(r, d) for d in SYSTEM_DIRS) and r != "/":
                found.add(r)
    return sorted(r for r in found if not any(r != o and under(r, o) for o in found))  # outermost only


def open_files_limit(wanted):
    """``wanted``, or the grader's own hard limit where that is lower (a process cannot raise it)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


def sandbox_config(settings, workdir):
    """What programs/enter.py does inside the sandbox: uid, limits, folder."""
    limits = {"RLIMIT_DATA": settings.memory_limit_mb * 2**20,
              "RLIMIT_NPROC": settings.max_processes,
              "RLIMIT_NOFILE": open_files_limit(settings.max_open_files),
              "RLIMIT_CORE": 0}
    if settings.max_file_size_mb > 0:
        limits["RLIMIT_FSIZE"] = settings.max_file_size_mb * 2**20
    return {"uid": settings.sandbox_uid if drops_uid(settings) else None,
            "gid": settings.sandbox_gid, "limits": limits, "cwd": workdir}


def _binds(settings, workdir, conn_dir, executables):
    """[(destination, bwrap option, source)], parents before children, and the symlink options."""
    binds, links = [], []
    for d in SYSTEM_DIRS:
        if os.path.isdir(d):
            binds.append((d, "--ro-bind", d))
    for d in SYSTEM_LINKS:
        if os.path.islink(d):
            links += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            binds.append((d, "--ro-bind", d))
    for name in settings.etc_paths:
        path = os.path.join("/etc", name)
        if os.path.lexists(path):
            binds.append((path, "--ro-bind", path))
    roots = set(python_roots())
    for exe in executables:
        if os.path.isabs(exe) and "python" in os.path.basename(exe) and os.path.exists(exe):
            roots.update(python_roots(exe))
    binds += [(root, "--ro-bind", root) for root in sorted(roots)]
    for path in map(os.path.abspath, settings.readonly_paths):
        if not os.path.exists(path):
            raise FileNotFoundError(f"sandbox readonly path does not exist: {path}")
        binds.append((path, "--ro-bind", path))
    binds.append((PROGRAMS_INSIDE, "--ro-bind", PROGRAMS))
    binds.append((workdir, "--bind", workdir))
    if conn_dir:
        binds.append((conn_dir, "--bind", conn_dir))
    binds.sort(key=lambda t: (t[0].rstrip("/").count("/"), t[0]))  # a child bind after its parent's
    return binds, links


def bwrap_args(settings, workdir, conn_dir, executables=(), extra=()):
    """bwrap and its options (``extra`` among them), up to and including ``--``."""
    args = [settings.bwrap_path or shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--hostname", "sandbox", *extra]
    if drops_uid(settings):
        # privileged bwrap (no user namespace): keep only what enter.py needs
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--disable-userns"]
    binds, links = _binds(settings, workdir, conn_dir, executables)
    tmp_size = str(settings.tmp_size_mb * 2**20)
    args += links + ["--proc", "/proc", "--dev", "/dev",
                     "--size", tmp_size, "--tmpfs", "/tmp",
                     "--size", tmp_size, "--tmpfs", "/dev/shm",
                     "--chmod", "1777", "/tmp", "--chmod", "1777", "/dev/shm"]
    for dest, option, source in binds:
        args += [option, source, dest]
    # folders bwrap made on the way to the binds are 0700 when it runs as root
    bound = [d for d, _, _ in binds]
    made = set()
    for d in bound:
        parent = os.path.dirname(d)
        while parent not in ("/", ""):
            if not any(under(parent, b) for b in bound) and parent not in ("/tmp", "/dev"):
                made.add(parent)
            parent = os.path.dirname(parent)
    for path in sorted(made, key=lambda p: p.count("/")):
        args += ["--chmod", "0755", path]
    # the sandbox's own root (a tmpfs holding the mount points) read-only too
    args += ["--remount-ro", "/"]
    # No --chdir: bwrap would chdir as capability-less root, which a workdir owned by the
    # sandbox user may refuse; enter.py does it after dropping. JPY_PARENT_PID (the grader's
    # pid) would make ipykernel exit at once (its parent is in the sandbox). Set to 1,
    # ipykernel starts no parent poller and doesn't print its "Ctrl-C will not work" note.
    return args + ["--setenv", "JPY_PARENT_PID", "1", "--"]


def kernel_env(settings, env):
    """The kernel's environment: ``env`` filtered by ``env_keep``, then paths, user, threads."""
    keep = {k: v for k, v in env.items() if any(fnmatch.fnmatchcase(k, pat) for pat in settings.env_keep)}
    bins = [os.path.join(r, "bin") for r in python_roots()]
    path = [os.path.dirname(os.path.abspath(sys.executable))] + bins + ["/usr/local/bin", "/usr/bin", "/bin"]
    keep.update(HOME="/tmp", TMPDIR="/tmp", PATH=os.pathsep.join(dict.fromkeys(path)),
                USER="nobody" if drops_uid(settings) else env.get("USER", ""))
    # One thread count for all the libraries: the grader's OMP_NUM_THREADS if set
    # (torch also reads MKL_NUM_THREADS, so leaving that one higher oversubscribes).
    threads = settings.cpu_threads or keep.get("OMP_NUM_THREADS") or max(
        1, min(os.cpu_count() or 1, settings.max_processes // 4))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        keep.setdefault(name, str(threads))
    keep.update({k: str(v) for k, v in settings.extra_env.items()})
    return keep


def forked_kernel_env(settings, env):
    """The environment of a kernel forked from a zygote, and so of the zygote: what bwrap
    passes on to the holder when the grader starts it with ``env``."""
    return dict(kernel_env(settings, env), JPY_PARENT_PID="1")
