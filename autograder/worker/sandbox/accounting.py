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


def process_stats():
    """Yield (pid, comm, fields after comm) of every process in /proc/PID/stat (``fields[1]`` is
    the parent, ``[11]``/``[12]`` user/system ticks, ``[19]`` the start time)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat_line = f.read()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        close = stat_line.rfind(b")")
        yield int(entry), stat_line[stat_line.find(b"(") + 1:close], stat_line[close + 2:].split()


def sandbox_processes(roots, namespace=None):
    """Host pids of the processes below ``roots`` and of those in the pid namespace with inode
    ``namespace`` (read from /proc once)."""
    children, members = {}, []
    for pid, _, fields in process_stats():
        if namespace is not None and pid_namespace(pid) == namespace:
            members.append(pid)
        children.setdefault(int(fields[1]), []).append(pid)
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
        except (OSError, IndexError, ValueError):  # gone meanwhile, or a line not as documented
            pass
    return total
