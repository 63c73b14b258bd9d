"""The machine's processes as /proc shows them, for tests that look at what a command started."""
import os


def table():
    """{pid: (parent pid, argv as a list of str)} of every process (kernel threads: an empty argv)."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [part.decode(errors="replace") for part in f.read().split(b"\0")[:-1]]
            found[int(entry)] = (parent, argv)
        except (OSError, ValueError, IndexError):  # not a process, or gone meanwhile
            continue
    return found


def descendants(pid):
    """The pids of every process ``pid`` started, and theirs."""
    processes, found, more = table(), set(), {pid}
    while more:
        more = {p for p, (parent, _) in processes.items() if parent in more} - found
        found |= more
    return found
