"""What the sandbox's watchdog counts as memory held, and how its kills are reported
(fast: plain processes, no sandbox)."""
import os
import subprocess
import sys

from autograder.worker.sandbox import SandboxedKernelManager, resident_bytes, sandbox_processes
from autograder.worker.sandbox.accounting import pid_namespace
from autograder.worker.sandbox.watchdog import Watchdog

MIB = 2**20
HOLDER = """
import mmap, sys
with open(sys.argv[1], "rb") as f:
    mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
touched = sum(mapped[i] for i in range(0, len(mapped), 4096))   # every page of the file resident
private = bytearray(b"x") * (%d * 2**20)                          # written: resident anonymous memory
shared = mmap.mmap(-1, %d * 2**20)                                # anonymous shared memory, written
shared.write(b"y" * len(shared))
print("ready", flush=True)
sys.stdin.read()
"""


def test_private_and_shared_memory_count_mapped_files_do_not(tmp_path):
    big = tmp_path / "mapped.bin"
    big.write_bytes(b"\1" * (300 * MIB))
    child = subprocess.Popen([sys.executable, "-c", HOLDER % (120, 60), str(big)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        held = resident_bytes([child.pid])
    finally:
        child.communicate("")
    assert 180 * MIB <= held < 180 * MIB + 100 * MIB, held / MIB   # 120 + 60 MiB and the interpreter
    assert resident_bytes([child.pid]) == 0                         # gone: nothing held


def _holding(mib, tmp_path):
    """A process (standing for bwrap) whose child holds ``mib`` MiB of written memory, until killed."""
    mapped = tmp_path / "mapped.bin"
    mapped.write_bytes(b"\1" * MIB)
    start = "import subprocess, sys; subprocess.run([sys.executable, '-c', sys.argv[1], sys.argv[2]])"
    parent = subprocess.Popen([sys.executable, "-c", start, HOLDER % (mib, 1), str(mapped)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    return parent


def test_the_watchdog_kills_a_process_tree_over_its_limit_and_says_why(tmp_path):
    child = _holding(120, tmp_path)
    try:
        # namespace 0: none, so only the tree below the process counts (a plain process, no sandbox)
        watchdog = Watchdog(child.pid, 100 * MIB, 10**12, [tmp_path], namespace=0)
        assert len(watchdog.processes()) == 1 and watchdog.stored_bytes() >= MIB
        assert watchdog.check() == "killed" and watchdog.memory_exceeded and not watchdog.disk_exceeded
        assert child.wait(10) == -9
        assert watchdog.check() == "gone"
    finally:
        child.kill()
        child.wait()


def test_a_kill_by_the_watchdog_first_is_still_reported_by_the_notebooks_own_check(tmp_path):
    """At a notebook's end the grader checks the limits while the watchdog may find the same
    excess: when the watchdog's thread kills first, the check finds no process left, and must
    still report the kill (it did not: the disk-fill attack once graded "ok")."""
    child = _holding(120, tmp_path)
    try:
        km = SandboxedKernelManager()
        km.watchdog = Watchdog(child.pid, 100 * MIB, 10**12, [], poll_s=0.01, namespace=0)
        km.watchdog.start()                      # the watchdog's thread finds the excess first
        assert child.wait(10) == -9
        assert km.check_limits() is True and km.memory_exceeded
    finally:
        child.kill()
        child.wait()


def test_the_watchdog_counts_the_files_of_the_sandboxs_tmpfs_as_seen_by_its_process(tmp_path):
    """Empty files in the sandbox's /tmp cost the host kernel memory that no process shows: over
    kernel_folders.MAX_ENTRIES entries the sandbox is killed as over its disk limit. A plain
    process stands for the sandbox here: its /proc/PID/root is /, so the tmpfs is a folder."""
    from autograder.worker import kernel_folders
    flood = tmp_path / "flood"
    (flood / "deep").mkdir(parents=True)
    for i in range(kernel_folders.MAX_ENTRIES - 1):
        (flood / "deep" / str(i)).touch()
    (tmp_path / "link").symlink_to(flood, target_is_directory=True)
    child = _holding(1, tmp_path)
    try:
        mount = str(flood).lstrip("/")
        watchdog = Watchdog(child.pid, 10**12, 10**12, [], namespace=0, tmpfs=(mount, "no/such/folder"))
        assert not watchdog.tmpfs_crowded(child.pid) and watchdog.check() is None   # at the limit
        (flood / "one_more").touch()
        assert not Watchdog(child.pid, 10**12, 10**12, [], namespace=0,
                            tmpfs=(str(tmp_path / "link").lstrip("/"),)).tmpfs_crowded(child.pid)  # no links
        assert watchdog.check() == "killed" and watchdog.disk_exceeded and not watchdog.memory_exceeded
        assert child.wait(10) == -9
        assert not watchdog.tmpfs_crowded(child.pid)   # gone: nothing to open
    finally:
        child.kill()
        child.wait()


def _run_bpf(program, nr, arch):
    """What the kernel's classic BPF would return for a system call (the four instructions used)."""
    import struct
    code = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    data, pc, acc = {0: nr, 4: arch}, 0, 0
    while True:
        op, jt, jf, k = code[pc]
        if op == 0x20:
            acc = data[k]
        elif op == 0x06:
            return k
        elif op in (0x15, 0x35):
            pc += jt if (acc == k if op == 0x15 else acc >= k) else jf
        else:
            raise AssertionError(f"instruction {op:#x}")
        pc += 1


def test_the_seccomp_filter_refuses_hidden_memory_and_nothing_else():
    """enter.py's program (checked instruction by instruction here; tests/test_sandbox.py runs it in
    a real sandbox): memfd_create, memfd_secret and shmget refused with EPERM on the native ABI, every
    call of another ABI (i386's int 0x80, x32) refused, every other call allowed."""
    import errno
    from autograder.worker.sandbox.programs import enter
    allow, eperm = 0x7FFF0000, 0x00050000 | errno.EPERM
    for machine, (arch, denied) in enter.DENIED.items():
        program = enter.seccomp_program(machine)
        for nr in range(460):
            assert _run_bpf(program, nr, arch) == (eperm if nr in denied.values() else allow), (machine, nr)
        assert _run_bpf(program, 0x40000000 + denied["memfd_create"], arch) == eperm   # x32
        assert _run_bpf(program, 356, 0x40000003) == eperm                              # i386
        assert _run_bpf(program, 0, 0x40000003) == eperm
    assert enter.seccomp_program("riscv64") is None


def test_namespace_members_are_looked_up_once_per_process_and_the_gone_forgotten():
    """The watchdog scans /proc five times a second: each process's pid namespace is read once,
    kept by (pid, start time), and dropped when the process is gone."""
    own = pid_namespace("self")
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        known = {}
        found = sandbox_processes([], own, known)
        assert child.pid in found and os.getpid() in found
        key = next(k for k in known if k[0] == child.pid)
        assert known[key] == own
        # what is kept is believed: no namespace is read again (so this child and its ancestors,
        # through which it was also found, are no members now)
        known.update({k: own + 1 for k in known})
        again = sandbox_processes([], own, known)
        assert child.pid not in again and os.getpid() not in again
        assert child.pid in sandbox_processes([os.getpid()], None)   # below a root: no namespace needed
    finally:
        child.communicate(b"")
    sandbox_processes([], own, known)
    assert not [k for k in known if k[0] == child.pid]
