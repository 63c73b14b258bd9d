"""Kernels started by SandboxedKernelManager can't reach the course, the network or the host.

One sandboxed kernel runs a notebook of probes (module fixture); each test
checks one of its answers, for a kernel started afresh in the sandbox and for one
forked from the zygote into it; the grader as an ordinary user runs the same probes
in both kinds (tests/ordinary_user.py). Short notebooks check interrupts, that a
forked kernel leaves nothing behind, and that a kernel the zygote cannot fork starts
afresh.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import nbformat
import pytest

import ordinary_user
from autograder.worker.sandbox import SandboxedKernelManager, bwrap_available, launchers

ROOT = pathlib.Path(__file__).resolve().parents[1]
AVAILABLE, WHY = bwrap_available()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap sandbox unavailable: {WHY}")]

SECRET_VAR = "SANDBOX_TEST_SECRET"
MARK = "SANDBOX-RESULTS:"

PROBES = [
    # each cell fills R; failures are recorded, not raised
    """
import json, os, socket, subprocess, sys, time
R = {}
R["torch_preloaded"] = "torch" in sys.modules  # a kernel forked from the zygote has it
def attempt(name, fn):
    try:
        R[name] = ["ok", fn()]
    except BaseException as e:
        R[name] = [type(e).__name__, str(e)[:200]]
""",
    """
import torch
R["torch"] = str(torch.ones(3).sum().item())
R["uid"] = os.getuid()
R["cwd"] = os.getcwd()
R["home"] = os.environ.get("HOME")
R["env_secret"] = os.environ.get(%r)
R["status"] = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines()
                   if line.startswith(("Cap", "NoNewPrivs")))
attempt("write_workdir", lambda: open("written.txt", "w").write("from the sandbox"))
open("planted.txt", "w").close()
attempt("replace_given", lambda: os.replace("planted.txt", "given.txt"))
attempt("delete_given", lambda: os.remove("given.txt"))
attempt("write_home", lambda: open(os.path.join(os.environ["HOME"], "h.txt"), "w").write("x"))
""" % SECRET_VAR,
    """
ROOT = %r
attempt("list_source", lambda: os.listdir(os.path.join(ROOT, "source")))
attempt("read_gradebook", lambda: open(os.path.join(ROOT, "gradebook.db"), "rb").read(10))
attempt("list_root", lambda: sorted(os.listdir(ROOT)))
attempt("write_repo", lambda: open(os.path.join(ROOT, "sandbox-probe.txt"), "w").write("x"))
attempt("write_venv", lambda: open(os.path.join(sys.prefix, "sandbox-probe.txt"), "w").write("x"))
attempt("read_readonly", lambda: open(READONLY).read())
attempt("write_readonly", lambda: open(READONLY, "a").write("x"))
attempt("list_etc", lambda: sorted(os.listdir("/etc")))
""" % str(ROOT),
    """
def connect(addr):
    with socket.create_connection(addr, timeout=2):
        return "connected"
attempt("net_local", lambda: connect(("127.0.0.1", 80)))
attempt("net_remote", lambda: connect(("1.1.1.1", 53)))
attempt("interfaces", lambda: [name for _, name in socket.if_nameindex()])
attempt("dns", lambda: str(socket.getaddrinfo("example.com", 80)))
""",
    """
procs, failed = [], 0
for _ in range(200):
    try:
        procs.append(subprocess.Popen(["sleep", "30"]))
    except OSError:
        failed += 1
for p in procs:
    p.kill(); p.wait()
R["spawned"], R["spawn_failed"] = len(procs), failed
""",
    """
attempt("nested_userns", lambda: subprocess.run(["unshare", "--user", "true"],
                                                stderr=subprocess.DEVNULL).returncode)
attempt("alloc_256m", lambda: len(bytearray(256 * 2**20)))
def descriptors():
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            found[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    return found
R["fds"] = descriptors()
R["ttys"] = [fd for fd in map(int, R["fds"]) if os.isatty(fd)]
attempt("dev_tty", lambda: open("/dev/tty", "rb").close())
attempt("read_stdin", lambda: os.read(0, 100).decode())
os.write(1, b"RAW-FD-1 \\x1b]0;title\\x07\\n")
os.write(2, b"RAW-FD-2\\n")
attempt("alloc_4g", lambda: len(bytearray(4 * 2**30)))
attempt("torch_4g", lambda: torch.empty(2**30).numel())
import ctypes
attempt("memfd", lambda: os.memfd_create("hidden"))
_libc = ctypes.CDLL(None, use_errno=True)
attempt("sysv_shm", lambda: (_libc.shmget(0, 2**20, 0o1600), ctypes.get_errno()))
attempt("posix_shm", lambda: open("/dev/shm/shared", "wb").write(b"x"))
import resource
R["open_files"] = resource.getrlimit(resource.RLIMIT_NOFILE)
""",
    "print(%r + json.dumps(R, default=repr))" % MARK,
]


def notebook(cells):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


class RecordingKernelManager(SandboxedKernelManager):
    """Remembers the connection folders it made, the kernels it forked, their output pipes."""

    made = []
    forked = []
    outputs = []  # CappedPipe of each kernel

    async def _async_post_start_kernel(self, **kw):
        await super()._async_post_start_kernel(**kw)
        self.made.append(self.connection_folder)
        self.outputs.append(self.output)
        if getattr(self.launcher, "kernel_pid", None):
            self.forked.append(self.launcher.kernel_pid)

    post_start_kernel = _async_post_start_kernel


def execute(nb, workdir, readonly_paths=(), fork_kernels=True, client_class=None, **kw):
    """Run ``nb`` in a sandboxed kernel; nbclient starts it in ``workdir`` (its cwd)."""
    from nbclient import NotebookClient
    from traitlets.config import Config
    config = Config()
    config.RecordingKernelManager.readonly_paths = [str(p) for p in readonly_paths]
    config.RecordingKernelManager.fork_kernels = fork_kernels
    if client_class:
        config.RecordingKernelManager.client_class = client_class
    kw.setdefault("timeout", 60)
    client = NotebookClient(nb, kernel_manager_class=RecordingKernelManager, config=config,
                            resources={"metadata": {"path": str(workdir)}}, **kw)
    client.execute()
    return client


@pytest.fixture(scope="module", params=["forked", "started"])
def sandbox_run(request, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("student")
    readonly = tmp_path_factory.mktemp("data") / "input.txt"
    readonly.write_text("course data")
    readonly.chmod(0o644)
    (workdir / "given.txt").write_text("from the grader")
    before = os.stat(workdir)
    nb = notebook(["READONLY = %r" % str(readonly)] + PROBES)
    os.environ[SECRET_VAR] = "instructor-only"
    RecordingKernelManager.made.clear()
    RecordingKernelManager.forked.clear()
    RecordingKernelManager.outputs.clear()
    try:
        client = execute(nb, workdir, readonly_paths=[readonly], fork_kernels=request.param == "forked")
    finally:
        del os.environ[SECRET_VAR]
    made = list(RecordingKernelManager.made)
    output = "".join(pipe.text() for pipe in RecordingKernelManager.outputs)
    results = probe_results(nb)
    if request.param == "forked" and launchers.fork_failure():
        pytest.skip(f"this system refuses a kernel forked into its sandbox: {launchers.fork_failure()}")
    if request.param == "forked":
        assert RecordingKernelManager.forked and results["torch_preloaded"], "no kernel was forked"
    else:
        assert not RecordingKernelManager.forked and not results["torch_preloaded"]
    return {"results": results, "workdir": workdir, "readonly": readonly, "before": before,
            "client": client, "sandbox_dirs": made, "output": output}


def fails(result):
    return result[0] != "ok"


def probe_results(nb):
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert MARK in text, nb.cells[-1].outputs
    # ipykernel forwards an earlier cell's raw writes to fd 1 from a thread: on a busy machine they
    # can come in this cell's output, after the results (seen once in a full run: "Extra data")
    return json.JSONDecoder().raw_decode(text.split(MARK, 1)[1])[0]


def test_torch_imports(sandbox_run):
    assert sandbox_run["results"]["torch"] == "3.0"


def test_workdir_is_writable_and_shared(sandbox_run):
    r, workdir = sandbox_run["results"], sandbox_run["workdir"]
    assert r["cwd"] == os.path.realpath(workdir)
    assert r["write_workdir"][0] == "ok", r["write_workdir"]
    assert (workdir / "written.txt").read_text() == "from the sandbox"
    assert r["write_home"][0] == "ok" and r["home"] == "/tmp"


def test_course_folder_is_invisible(sandbox_run):
    r = sandbox_run["results"]
    assert (ROOT / "source").is_dir()  # it is there outside the sandbox
    assert fails(r["list_source"]), r["list_source"]
    assert fails(r["read_gradebook"]), r["read_gradebook"]
    # at most the venv shows up, when it lives inside the repo
    if r["list_root"][0] == "ok":
        assert set(r["list_root"][1]) <= {".venv"}, r["list_root"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader keeps its files apart")
def test_grader_files_in_workdir_stay(sandbox_run):
    r = sandbox_run["results"]
    assert fails(r["replace_given"]) and fails(r["delete_given"]), r
    assert (sandbox_run["workdir"] / "given.txt").read_text() == "from the grader"


def test_repo_venv_and_readonly_paths_are_not_writable(sandbox_run):
    r, readonly = sandbox_run["results"], sandbox_run["readonly"]
    assert fails(r["write_repo"]) and fails(r["write_venv"]), (r["write_repo"], r["write_venv"])
    assert not (ROOT / "sandbox-probe.txt").exists()
    assert r["read_readonly"] == ["ok", "course data"]
    assert fails(r["write_readonly"]) and readonly.read_text() == "course data"


def test_only_a_few_etc_files(sandbox_run):
    etc = sandbox_run["results"]["list_etc"][1]
    assert "passwd" in etc and "shadow" not in etc and "jupyter" not in etc


def test_no_network(sandbox_run):
    r = sandbox_run["results"]
    assert r["interfaces"] == ["ok", ["lo"]], r["interfaces"]
    for name in ("net_local", "net_remote", "dns"):
        assert fails(r[name]), (name, r[name])


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader switches the kernel's user: "
                                             "an ordinary user's kernel runs as that user, in its own namespaces")
def test_not_root(sandbox_run):
    assert sandbox_run["results"]["uid"] == SandboxedKernelManager().sandbox_uid != 0


def test_no_capabilities(sandbox_run):
    """Whether the kernel was exec'd or forked from the root zygote, it holds no capability."""
    status = sandbox_run["results"]["status"]
    assert status["NoNewPrivs"] == "1", status
    for name in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(status[name], 16) == 0, status
    if os.geteuid() == 0:  # dropped by the wrapper after its user namespace
        assert int(status["CapBnd"], 16) == 0, status


def test_no_descriptor_of_the_grader(sandbox_run):
    """stdin is /dev/null, no terminal is open, and what the kernel writes to its own
    descriptors 1 and 2 goes to the grader's pipe (kept, capped), not to its terminal."""
    r = sandbox_run["results"]
    fds = r["fds"]
    assert fds["0"] == "/dev/null", fds
    assert r["ttys"] == [], fds
    assert not [t for t in fds.values() if t.startswith(("/dev/pts", "/dev/tty", "/dev/console"))], fds
    assert fails(r["dev_tty"]), r["dev_tty"]
    assert r["read_stdin"] == ["ok", ""], r["read_stdin"]
    # the kernel's own files: pipes, sockets, anonymous inodes, /dev/null and what it may read
    allowed = ("pipe:", "socket:", "anon_inode:", "/dev/null", "/dev/urandom", "/usr/", "/tmp/")
    assert all(t.startswith(allowed) or t.startswith(tuple(sorted(sys_roots())))
               for t in fds.values()), fds
    assert "RAW-FD-1 \\x1b]0;title\\x07" in sandbox_run["output"], sandbox_run["output"][-500:]
    assert "RAW-FD-2" in sandbox_run["output"]


def sys_roots():
    return {sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix)}


def test_no_nested_user_namespaces(sandbox_run):
    assert sandbox_run["results"]["nested_userns"] != ["ok", 0]


def test_environment_is_filtered(sandbox_run):
    assert sandbox_run["results"]["env_secret"] is None


def test_process_limit(sandbox_run):
    r = sandbox_run["results"]
    assert r["spawn_failed"] > 0, r
    assert 0 < r["spawned"] <= SandboxedKernelManager().max_processes


def test_memory_limit(sandbox_run):
    r = sandbox_run["results"]
    assert r["alloc_256m"] == ["ok", 256 * 2**20]
    assert r["alloc_4g"][0] == "MemoryError", r["alloc_4g"]
    assert fails(r["torch_4g"]), r["torch_4g"]


def test_memory_no_process_shows_is_refused(sandbox_run):
    """memfd and System V shared memory hold memory outside every process's resident memory (a
    kernel held 3 GB in memfds with a 2 GiB limit): the seccomp filter refuses them; /dev/shm, a
    size-capped tmpfs, stays usable."""
    r = sandbox_run["results"]
    assert r["memfd"][0] == "PermissionError", r["memfd"]
    assert r["sysv_shm"] == ["ok", [-1, 1]], r["sysv_shm"]   # -1, EPERM
    assert r["posix_shm"] == ["ok", 1], r["posix_shm"]


def test_open_files_are_limited(sandbox_run):
    """Every open socket may hold ~200 KB of queued data in the host's kernel memory: with this
    machine's 20,000 descriptors a kernel queued 2.2 GB in socket pairs, with 1024 106 MB."""
    soft, hard = sandbox_run["results"]["open_files"]
    assert soft == hard <= SandboxedKernelManager().max_open_files == 1024


def test_cleanup(sandbox_run):
    """Connection folder removed, workdir given back to its owner."""
    assert sandbox_run["sandbox_dirs"], "the kernel manager made no connection folder"
    for folder in sandbox_run["sandbox_dirs"]:
        assert not os.path.exists(folder), folder
    after, before = os.stat(sandbox_run["workdir"]), sandbox_run["before"]
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid,
                                                           before.st_mode)


def test_interrupt_on_timeout(tmp_path):
    """Interrupts go as messages (a SIGINT to bwrap would kill the sandbox): a sleeping cell and
    a spinning one (pure Python, a core busy) are interrupted, and the same kernel runs the next
    one. The graded class's endless loop waits: spinning there cost the suite its 15 s timeout
    in CPU-seconds, for the same interrupt."""
    nb = notebook(["import os, time; pid = os.getpid(); time.sleep(60)",
                   "while True:\n    pass",
                   "print('still alive', pid == os.getpid())"])
    execute(nb, tmp_path, timeout=3, interrupt_on_timeout=True, allow_errors=True)
    for cell in nb.cells[:2]:
        assert [o.get("ename") for o in cell.outputs if o.get("output_type") == "error"] == ["KeyboardInterrupt"]
    assert "still alive True" in "".join(o.get("text", "") for o in nb.cells[2].outputs)


def _gone(pid, within_s=10):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_a_forked_kernel_leaves_with_its_sandbox(tmp_path):
    """Shut down, or killed with its sandbox (bwrap), a forked kernel leaves no process."""
    from jupyter_client.manager import run_sync
    RecordingKernelManager.forked.clear()
    execute(notebook(["x = 1"]), tmp_path)
    if launchers.fork_failure():
        pytest.skip(f"this system refuses a kernel forked into its sandbox: {launchers.fork_failure()}")
    assert len(RecordingKernelManager.forked) == 1
    assert _gone(RecordingKernelManager.forked[0])
    km = RecordingKernelManager()
    run_sync(km.start_kernel)(cwd=str(tmp_path))
    try:
        pid = RecordingKernelManager.forked[-1]
        assert not _gone(pid, within_s=0.5)
        run_sync(km._async_kill_kernel)()  # SIGKILL to bwrap, as a shutdown that timed out
        assert _gone(pid)
    finally:
        run_sync(km.cleanup_resources)()


def test_the_zygote_leaves_with_the_process_that_started_it(tmp_path):
    start = ("import os, sys\n"
             "from autograder.worker.sandbox import zygote\n"
             "z = zygote.Zygote(dict(os.environ))\n"
             "z.wait_ready()\n"
             "print(z.process.pid, flush=True)\n"
             "os.kill(os.getpid(), 9)\n")
    done = subprocess.run([sys.executable, "-c", start], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == -9, done.stderr
    assert _gone(int(done.stdout)), "the zygote outlived the process that started it"


def _resident_mib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def test_oversized_kernel_messages_are_dropped_before_they_are_buffered(tmp_path):
    """Six 128 MiB messages from a kernel: the grader's client drops each at ZeroMQ's size limit,
    so the grading process never holds them (with jupyter_client's own client it grew by 1 GiB)."""
    import threading
    nb = notebook(["from IPython.display import display\n"
                   "for _ in range(6):\n"
                   "    display({'text/plain': 'm' * (128 * 2**20)}, raw=True)\n",
                   "print('after')"])
    baseline, peak, stop = _resident_mib(), [0.0], threading.Event()

    def sample():
        while not stop.wait(0.02):
            peak[0] = max(peak[0], _resident_mib())
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        execute(nb, tmp_path, client_class="autograder.worker.kernel_client.BoundedKernelClient",
                allow_errors=True, timeout=120,
                raise_on_iopub_timeout=False, iopub_timeout=2)
    finally:
        stop.set()
        sampler.join()
    assert peak[0] - baseline < 200, f"the grading process grew by {peak[0] - baseline:.0f} MiB"
    assert not any("m" * 1000 in o.get("text", "") for o in nb.cells[0].outputs)


def test_a_kernel_flooding_its_tmpfs_with_files_is_killed_as_over_its_disk_limit(tmp_path):
    """Empty files in /tmp take no bytes of the tmpfs's --size but the host's kernel memory (one
    kernel made 1.4 million in 40 s, 1.5 GB, seen by no process): the watchdog counts them."""
    from nbclient.exceptions import DeadKernelError
    from nbclient import NotebookClient
    from traitlets.config import Config
    flood = ("import os, time\nos.makedirs('/tmp/f', exist_ok=True)\nstart = time.monotonic()\n"
             "for n in range(500_000):\n    open('/tmp/f/%d' % n, 'w').close()\n"
             "    if time.monotonic() - start > 60:\n        break\nprint('made', n + 1)")
    managers = []

    class Remembered(SandboxedKernelManager):
        def __init__(self, **kw):
            super().__init__(**kw)
            managers.append(self)

    nb = notebook(["import torch", flood])
    client = NotebookClient(nb, kernel_manager_class=Remembered, config=Config(), timeout=90,
                            resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(DeadKernelError):
        client.execute()
    (km,) = managers
    assert km.disk_exceeded and not km.memory_exceeded
    assert not any("made" in o.get("text", "") for o in nb.cells[1].outputs), nb.cells[1].outputs


def test_what_is_mounted_under_the_sandboxs_tmp_is_not_its_files(tmp_path):
    """Binds under /tmp (the working folder, a course data folder, a repository and venv cloned
    into /tmp) are other file systems: their files are not the kernel's, however many."""
    from nbclient import NotebookClient
    from traitlets.config import Config
    many = tmp_path / "many"
    many.mkdir()
    for i in range(25_000):
        (many / str(i)).touch()
    managers = []

    class Remembered(SandboxedKernelManager):
        def __init__(self, **kw):
            super().__init__(**kw)
            managers.append(self)

    config = Config()
    config.Remembered.readonly_paths = [str(many)]
    nb = notebook([f"import os, time\nfound = len(os.listdir({str(many)!r}))\ntime.sleep(1)\nprint('found', found)"])
    work = tmp_path / "work"   # the kernel's own folder, beside the bound one
    work.mkdir()
    NotebookClient(nb, kernel_manager_class=Remembered, config=config, timeout=60,
                   resources={"metadata": {"path": str(work)}}).execute()
    (km,) = managers
    assert "found 25000" in nb.cells[0].outputs[0]["text"] and not km.disk_exceeded


def test_a_kernel_the_zygote_cannot_fork_starts_afresh(tmp_path, monkeypatch):
    """Where joining a sandbox is refused (a security module's policy, say), the kernel starts
    afresh in a sandbox of its own, and so does every later kernel of the process."""
    from autograder.worker.sandbox import zygote

    def refused(*args, **kwargs):
        raise RuntimeError("the kernel zygote could not fork a kernel: PermissionError: setns(user)")
    monkeypatch.setattr(zygote.Zygote, "spawn", refused)
    monkeypatch.setattr(launchers, "FORK_FAILURES", [])
    RecordingKernelManager.forked.clear()
    nb = notebook(["import sys, os\nprint('torch' in sys.modules, os.getcwd())"])
    execute(nb, tmp_path)
    assert nb.cells[0].outputs[0]["text"].split() == ["False", str(tmp_path)], nb.cells[0].outputs
    assert not RecordingKernelManager.forked and "setns(user)" in launchers.fork_failure()
    kernel_cmd = [sys.executable, "-m", launchers.LAUNCHER, "-f", "kernel.json"]
    assert isinstance(launchers.launcher(SandboxedKernelManager(), str(tmp_path), str(tmp_path), kernel_cmd, {}),
                      launchers.ExecLauncher)


# what a kernel forked from an ordinary user's zygote and one it started answer alike
SAME_IN_BOTH = ("uid", "home", "env_secret", "status", "write_workdir", "replace_given", "delete_given", "write_home",
                "list_source", "read_gradebook", "list_root", "write_repo", "write_venv", "read_readonly",
                "write_readonly", "list_etc", "net_local", "net_remote", "interfaces", "dns", "nested_userns",
                "alloc_256m", "ttys", "dev_tty", "read_stdin", "alloc_4g", "torch_4g", "memfd", "sysv_shm",
                "posix_shm", "open_files")


@pytest.mark.skipif(not ordinary_user.usable()[0], reason=ordinary_user.usable()[1])
def test_an_ordinary_users_grader_forks_kernels_into_the_same_sandbox():
    """The grader as an ordinary user (uid 65534, started by this root test process): its zygote
    joins bwrap's user namespace, then the sandbox's others; the kernel it forks answers every
    probe as the kernel the same grader starts afresh does, holds no capability, and has
    torch imported already."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="ordinary-user-"))
    try:
        folder.chmod(0o755)
        os.chown(folder, ordinary_user.UID, ordinary_user.GID)
        env = {"PATH": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
               "HOME": str(folder), "JUPYTER_RUNTIME_DIR": str(folder / "runtime"),
               "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), "OMP_NUM_THREADS": "1"}
        needed = [os.path.realpath(sys.executable), sys.base_prefix, sys.prefix, str(ROOT), str(folder)]
        done = subprocess.run(ordinary_user.command(needed, [sys.executable, __file__, str(folder)]),
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
        found = json.loads((folder / "results.json").read_text())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    forked, started = found["forked"], found["started"]
    assert forked["forked_pids"] and forked["torch_preloaded"], "no kernel was forked"
    assert not started["forked_pids"] and not started["torch_preloaded"]
    assert forked["uid"] == ordinary_user.UID
    assert forked["status"]["NoNewPrivs"] == "1"
    for name in ("CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd"):
        assert int(forked["status"][name], 16) == 0, forked["status"]
    assert {k: forked[k] for k in SAME_IN_BOTH} == {k: started[k] for k in SAME_IN_BOTH}


def _probe_as_this_user(folder):
    """The probes in a kernel forked from the zygote and in one started afresh, their answers
    into FOLDER/results.json (run as a program, by the test above as the ordinary user)."""
    readonly = folder / "data" / "input.txt"
    readonly.parent.mkdir()
    readonly.write_text("course data")
    found = {}
    for kind in ("forked", "started"):
        workdir = folder / kind
        workdir.mkdir()
        (workdir / "given.txt").write_text("from the grader")
        nb = notebook(["READONLY = %r" % str(readonly)] + PROBES)
        RecordingKernelManager.forked.clear()
        execute(nb, workdir, readonly_paths=[readonly], fork_kernels=kind == "forked")
        found[kind] = dict(probe_results(nb), forked_pids=list(RecordingKernelManager.forked))
    (folder / "results.json").write_text(json.dumps(found, default=repr))


if __name__ == "__main__":
    _probe_as_this_user(pathlib.Path(sys.argv[1]))
