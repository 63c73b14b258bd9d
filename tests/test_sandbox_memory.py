"""What the sandbox's watchdog counts as memory held, and how its kills are reported
(fast: plain processes, no sandbox)."""
import subprocess
import sys
import types

from autograder.worker import sandbox
from autograder.worker.sandbox import SandboxedKernelManager, resident_bytes

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


def test_a_kill_by_the_watchdog_during_the_notebooks_own_check_is_reported(monkeypatch):
    """At a notebook's end the grader checks the limits while the watchdog may find the same
    excess: when the watchdog kills first, the check finds no process left, and must still
    report the kill (it did not: the disk-fill attack once graded "ok")."""
    km = SandboxedKernelManager()
    km.provisioner = types.SimpleNamespace(process=types.SimpleNamespace(pid=2**22 + 1))

    def watchdog_killed_first(roots, namespace=None):
        km.disk_exceeded = True  # the watchdog's thread: flag set, then every process killed
        return []
    monkeypatch.setattr(sandbox, "sandbox_processes", watchdog_killed_first)
    assert km.check_limits() is True
