"""What a sandbox's processes hold, read from /proc.

RUNS IN A GRADING WORKER (the watchdog's thread). A sandbox's processes are those below
bwrap and every process in its pid namespace: a process can leave the tree (a child made
with ``CLONE_PARENT`` gets its parent's parent, which for a forked kernel is outside) but
not the namespace.
"""
import os


def pid_namespace(pid):
    """Inode of ``pid``'s pid namespace, or None if it is gone (or not ours to see)."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def _read(path):
    """The bytes of a small /proc file, unbuffered (half the CPU of ``open().read()``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def process_stats():
    """Yield (pid, comm, fields after comm) of every process in /proc/PID/stat (``fields[1]`` is
    the parent, ``[11]``/``[12]`` user/system ticks, ``[19]`` the start time)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat_line = _read(f"/proc/{entry}/stat")
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        close = stat_line.rfind(b")")
        if close < 0:
            continue
        yield int(entry), stat_line[stat_line.find(b"(") + 1:close], stat_line[close + 2:].split()


def sandbox_processes(roots, namespace=None, known=None):
    """Host pids of the processes below ``roots`` and of those in the pid namespace with inode
    ``namespace`` (read from /proc once).

    ``known``: a dict kept between calls, {(pid, start time): pid namespace}: a process never
    changes its pid namespace, so each is looked up once (the watchdog calls this five times a
    second, and the host may run hundreds of processes); it keeps the processes seen this time."""
    children, members, seen = {}, [], {}
    for pid, _, fields in process_stats():
        if namespace is not None:
            key = (pid, fields[19])
            inode = known.get(key) if known is not None else None
            if inode is None:
                inode = pid_namespace(pid)
            seen[key] = inode
            if inode == namespace:
                members.append(pid)
        children.setdefault(int(fields[1]), []).append(pid)
    if known is not None:
        known.clear()
        known.update(seen)
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
            for line in _read(f"/proc/{pid}/status").splitlines():
                if line.startswith((b"RssAnon:", b"RssShmem:")):
                    total += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):  # gone meanwhile, or a line not as documented
            pass
    return total
