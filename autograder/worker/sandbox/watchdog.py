"""The limits bwrap cannot set: memory and disk over a whole sandbox, checked from outside.

RUNS IN A GRADING WORKER (a thread per running sandbox). RLIMIT_DATA bounds each process;
this bounds their sum (children the kernel starts, in or out of its process tree), and
what it stores on the host, without cgroups, which an ordinary user may not have. Over a
limit, every process of the sandbox is killed, and the flag says which limit.
"""
import os
import threading

from .. import kernel_folders
from .accounting import pid_namespace, resident_bytes, sandbox_processes


# The sandbox's own tmpfs mounts, as its processes see them (layout.bwrap_args). Their bytes are
# capped by bwrap's --size, not their files: empty files cost the host's kernel memory that no
# process's memory shows (one kernel made 1.4 million in 40 s, 1.5 GB), so their entries count
# as stored. Each is opened below /proc/PID/root, one component at a time, no links.
TMPFS = ("tmp", "dev/shm")


class Watchdog:
    """Watches the sandbox whose bwrap process is ``root``; ``folders`` are what it stores."""

    def __init__(self, root, memory_bytes, disk_bytes, folders, poll_s=0.2, namespace=None, log=None,
                 tmpfs=TMPFS):
        self.root, self.memory_bytes, self.disk_bytes = root, memory_bytes, disk_bytes
        self.folders, self.poll_s, self.namespace, self.log = folders, poll_s, namespace, log
        self.tmpfs = tmpfs
        self.memory_exceeded = self.disk_exceeded = False
        self._stop = threading.Event()
        self._thread = None
        self._namespaces = {}  # {(pid, start time): pid namespace} of the last scan

    @property
    def exceeded(self):
        return self.memory_exceeded or self.disk_exceeded

    def start(self):
        self._thread = threading.Thread(target=self._watch, daemon=True, name="sandbox-limits")
        self._thread.start()

    def stop(self):
        self._stop.set()

    def _watch(self):
        while not self._stop.wait(self.poll_s):
            if self.check() is not None:
                return

    def processes(self):
        """Host pids of the sandbox's processes: below bwrap and in its pid namespace (read off
        bwrap's first child once, unless given)."""
        if self.namespace is None:
            own = pid_namespace("self")
            for pid in sandbox_processes([self.root]):
                namespace = pid_namespace(pid)
                if namespace not in (None, own):
                    self.namespace = namespace
                    break
        return sandbox_processes([self.root], self.namespace, self._namespaces)

    def stored_bytes(self):
        """What the kernel stores on the host, in all its folders together (counting stops
        once over the disk limit)."""
        total = 0
        for folder in self.folders:
            if folder and total <= self.disk_bytes:
                total += kernel_folders.usage(folder, self.disk_bytes - total)
        return total

    def tmpfs_crowded(self, pid):
        """True when one of the sandbox's tmpfs mounts (seen from its process ``pid``) holds over
        ``kernel_folders.MAX_ENTRIES`` entries; False when they cannot be opened (the process is gone)."""
        try:
            root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            for mount in self.tmpfs:
                try:
                    fd = kernel_folders.open_below(root, mount)
                except OSError:
                    continue
                try:
                    if kernel_folders.crowded(fd):
                        return True
                finally:
                    os.close(fd)
            return False
        finally:
            os.close(root)

    def check(self):
        """Kill the sandbox if over a limit; None while it runs within them, else why not."""
        pids = self.processes()
        if not pids:
            return "gone"
        if resident_bytes(pids) > self.memory_bytes:
            self.memory_exceeded = True
        elif self.stored_bytes() > self.disk_bytes or self.tmpfs_crowded(pids[0]):
            self.disk_exceeded = True
        if not self.exceeded:
            return None
        if self.log:
            self.log.warning("sandbox: over its %s limit, killed", "memory" if self.memory_exceeded else "disk")
        for pid in [self.root] + pids:
            try:
                os.kill(pid, 9)
            except OSError:  # gone already
                pass
        return "killed"
