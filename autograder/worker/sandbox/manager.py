"""``SandboxedKernelManager``: a drop-in ``AsyncKernelManager`` whose kernels run in bubblewrap.

RUNS IN A GRADING WORKER (nbclient / nbgrader's ``Execute`` with
``kernel_manager_class=SandboxedKernelManager``). What the sandbox holds is layout.py's,
how the kernel starts in it launchers.py's, the limits bwrap cannot set watchdog.py's.
The kernel

* sees the system and Python read-only, its working folder (default: the ``cwd``
  nbclient starts it in) and its connection folder writable, fresh /proc, /dev, /tmp;
* has no network (loopback only; ZeroMQ over unix sockets, ``transport = "ipc"``), its
  own pid / ipc / uts namespaces and a new terminal session;
* none of the grader's descriptors: stdin is /dev/null, stdout and stderr a pipe the
  grader reads and caps (``output``);
* runs as an ordinary user (``sandbox_uid`` for real when the grader is root) with
  RLIMIT_DATA, RLIMIT_NPROC, RLIMIT_FSIZE, no core files, a filtered environment;
* is interrupted by an ``interrupt_request`` message, not SIGINT (a signal would reach
  bwrap, which would die and take the kernel with it).

Why RLIMIT_DATA and not RLIMIT_AS: torch, OpenMP and glibc reserve address space they
never touch (thread stacks, 64 MiB malloc arenas per thread); RLIMIT_DATA counts private
writable mappings, what malloc, torch's allocator and numpy really get. It does not count
shared memory, so /tmp and /dev/shm are size-limited tmpfs.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Dict, Float, Integer, List, Unicode, default

from .. import kernel_folders
from . import folders, launchers, layout
from .output import CappedPipe
from .watchdog import Watchdog


class SandboxedKernelManager(AsyncKernelManager):
    """AsyncKernelManager whose kernels run in a bubblewrap sandbox (see the module's doc)."""

    workdir = Unicode("", config=True, help="""The only writable folder, bound read-write at its
        own path; the kernel starts there. Default: the cwd passed to start_kernel.""")
    readonly_paths = List(Unicode(), config=True, help="Extra files or folders bound read-only.")
    memory_limit_mb = Integer(2048, config=True, help="""RLIMIT_DATA of each process, and the limit
        on the resident anonymous and shared memory of all the sandbox's processes together""")
    memory_poll_s = Float(0.2, config=True, help="seconds between two looks at memory and disk")
    disk_limit_mb = Integer(256, config=True, help="""what the kernel may store in its working and
        connection folders together (MiB, or 20,000 entries; and 20,000 entries in each of its tmpfs
        /tmp and /dev/shm, whose bytes tmp_size_mb caps); over it the sandbox is killed""")
    max_processes = Integer(64, config=True, help="RLIMIT_NPROC: processes *and threads* of the sandbox")
    max_open_files = Integer(1024, config=True, help="""RLIMIT_NOFILE of each process (or the grader's own
        hard limit, if lower): every open socket may hold its buffers in the host's kernel memory""")
    max_file_size_mb = Integer(256, config=True, help="RLIMIT_FSIZE (MiB): no file bigger than the "
                               "disk limit; 0: unlimited")
    cpu_threads = Integer(0, config=True, help="""OMP/MKL/OpenBLAS threads when the environment
        doesn't set them; 0: min(cpus, max_processes // 4). Threads count against max_processes.""")
    tmp_size_mb = Integer(512, config=True, help="size of the /tmp and /dev/shm tmpfs (MiB each)")
    output_limit_kb = Integer(2048, config=True, help="""what the grader keeps of the kernel's
        stdout and stderr (KiB): the rest is read and dropped""")
    sandbox_uid = Integer(65534, config=True, help="uid the kernel runs as when the grader is root")
    sandbox_gid = Integer(65534, config=True, help="gid the kernel runs as when the grader is root")
    etc_paths = List(Unicode(), config=True, help="entries of /etc bound read-only, if present")
    env_keep = List(Unicode(), config=True, help="""fnmatch patterns of the grader's environment
        variables the kernel keeps; everything else is dropped""")
    extra_env = Dict(config=True, help="environment variables set in the kernel (last)")
    bwrap_path = Unicode("", config=True, help="bwrap executable; default: found on PATH")
    fork_kernels = Bool(True, config=True, help="""Fork kernels from a process that has imported torch
        (launchers.ForkLauncher; ~2 CPU-s less a kernel). The sandbox is the same.""")

    @default("etc_paths")
    def _etc_paths_default(self):
        return list(layout.ETC_PATHS)

    @default("env_keep")
    def _env_keep_default(self):
        return list(layout.ENV_KEEP)

    sandboxed = True  # ProbingExecute refuses a manager without this when asked for a sandbox
    watchdog = None  # Watchdog of the running (or last) sandbox
    output = None  # CappedPipe: what the kernel wrote to its stdout and stderr
    launcher = None  # how the running kernel was started (launchers.py)
    connection_folder = None
    _claimed = None  # the working folder claim_workdir gave us
    _kernel_cmd = _workdir = None  # the kernel's own command and folder, for a start afresh

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.transport = "ipc"

    @property
    def memory_exceeded(self):
        return bool(self.watchdog and self.watchdog.memory_exceeded)

    @property
    def disk_exceeded(self):
        return bool(self.watchdog and self.watchdog.disk_exceeded)

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        if spec is not None and spec.interrupt_mode != "message":
            spec.interrupt_mode = "message"  # ipykernel then SIGINTs itself
        return spec

    def forked_kernel_env(self, env):
        return layout.forked_kernel_env(self, env)

    async def _async_pre_start_kernel(self, **kw):
        self.transport = "ipc"
        workdir = os.path.realpath(self.workdir or kw.get("cwd") or "")
        if not (self.workdir or kw.get("cwd")) or not os.path.isdir(workdir):
            raise ValueError("SandboxedKernelManager needs workdir (or a cwd) that is a folder")
        if not (self.connection_folder and os.path.isdir(self.connection_folder)):
            self.connection_folder = folders.make_connection_folder(self)
            self.connection_file = os.path.join(self.connection_folder, "kernel.json")
            self.ip = os.path.join(self.connection_folder, "ipc")
        kernel_cmd, kw = await super()._async_pre_start_kernel(**kw)
        if layout.drops_uid(self):
            os.chown(self.connection_file, self.sandbox_uid, self.sandbox_gid)
        if self._claimed != workdir:
            folders.release_workdir(self._claimed, self.log)
            self._claimed = folders.claim_workdir(self, workdir)
        given_env = kw.get("env") or os.environ
        self._close_output()
        self.output = CappedPipe(self.output_limit_kb * 1024)
        self.launcher = launchers.launcher(self, workdir, self.connection_folder, kernel_cmd, given_env)
        kw.update(env=layout.kernel_env(self, given_env), cwd=workdir, stdin=subprocess.DEVNULL,
                  stdout=self.output.write_end, stderr=self.output.write_end, close_fds=True,
                  pass_fds=self.launcher.pass_fds)
        self._kernel_cmd, self._workdir = kernel_cmd, workdir
        cmd = self.launcher.command(kernel_cmd)
        self.log.debug("sandboxed kernel: %s", cmd)
        return cmd, kw

    pre_start_kernel = _async_pre_start_kernel

    async def _async_post_start_kernel(self, **kw):
        process = getattr(self.provisioner, "process", None)
        namespace = None
        if process is not None:
            with open(os.devnull, "rb") as nothing:
                stdio = (nothing.fileno(), self.output.write_end, self.output.write_end)
                try:
                    namespace = self.launcher.started(process, stdio)
                except launchers.ForkFailed as failed:
                    process = await self._start_afresh(failed, kw)
            self.output.start()
        await super()._async_post_start_kernel(**kw)
        if process is not None:
            self._stop_watchdog()
            self.watchdog = Watchdog(process.pid, self.memory_limit_mb * 2**20, self.disk_limit_mb * 2**20,
                                     [self._workdir, self.connection_folder],
                                     self.memory_poll_s, namespace, self.log)
            self.watchdog.start()

    post_start_kernel = _async_post_start_kernel

    async def _start_afresh(self, failed, kw):
        """The kernel whose fork failed, started in a new sandbox of its own (the exec launcher); its bwrap."""
        self.log.warning("kernels are started afresh, not forked from the zygote: %s", failed)
        self.launcher = launchers.ExecLauncher(self, self._workdir, self.connection_folder)
        await self._async_launch_kernel(self.launcher.command(self._kernel_cmd), **dict(kw, pass_fds=()))
        return self.provisioner.process

    def check_limits(self):
        """Check the limits now (e.g. at the end of a notebook); True if the sandbox was killed.

        The watchdog may find the same excess at the same moment and kill first: this
        check then finds no process left, but the watchdog set its flag before killing.
        """
        if self.watchdog is not None and not self.watchdog.exceeded:
            self.watchdog.check()
        return self.memory_exceeded or self.disk_exceeded

    def _stop_watchdog(self):
        if self.watchdog:
            self.watchdog.stop()

    def _close_output(self):
        if self.output is not None:
            self.output.close()

    async def _async_cleanup_resources(self, restart=False):
        self._stop_watchdog()
        self._close_output()
        if self.launcher is not None:
            self.launcher.close()
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            folders.release_workdir(self._claimed, self.log)
            self._claimed = None
            if self.connection_folder:
                folders.remove_connection_folder(self.connection_folder)
                self.connection_folder = None

    cleanup_resources = _async_cleanup_resources


def bwrap_available(timeout=5):
    """(True, "") if a sandbox like the kernel's can start here, else (False, why)."""
    if not sys.platform.startswith("linux"):
        return False, "bubblewrap needs Linux"
    km = SandboxedKernelManager()
    if not (km.bwrap_path or shutil.which("bwrap")):
        return False, "bwrap not found (apt-get install bubblewrap)"
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="jsbx-check-"))
    claimed = None
    try:
        claimed = folders.claim_workdir(km, workdir)
        launcher = launchers.ExecLauncher(km, workdir, None)
        cmd = launcher.command([sys.executable, "-I", "-S", "-c", "import os; open('ok', 'w').close()"])
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout, env={"PATH": "/usr/bin:/bin"})
        wrote = os.path.exists(os.path.join(workdir, "ok"))
    except (OSError, subprocess.SubprocessError) as error:
        return False, f"bwrap failed to start: {error}"
    finally:
        folders.release_workdir(claimed, km.log)
        kernel_folders.remove(workdir, settled=True)
    if done.returncode != 0:
        return False, f"bwrap test sandbox failed (rc {done.returncode}): {done.stderr.strip()[-500:]}"
    if not wrote:
        return False, "bwrap test sandbox could not write to its workdir"
    return True, ""
