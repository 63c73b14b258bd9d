"""The grader's file operations in folders a kernel can write (fast: plain processes, no kernel).

A kernel may swap any folder of its tree for a link while the grader removes it, plant a
FIFO where results are expected, or nest folders thousands deep: the grader (often root)
must never act on anything outside that tree, never block, and still clean up.
"""
import multiprocessing
import os
import pathlib
import stat
import tempfile
import threading
import time

import pytest

from autograder.worker import kernel_folders, probe_exchange


@pytest.fixture
def arena():
    """A folder for the kernel's tree and a canary folder beside it, reachable by nobody."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="kernel-folders-", dir="/tmp"))
    base.chmod(0o755)
    canary = base / "canary"
    canary.mkdir(mode=0o755)
    canary.chmod(0o755)
    (canary / "keep").write_text("canary")
    (canary / "sub").mkdir()
    (canary / "sub" / "keep").write_text("canary")
    yield base, canary
    kernel_folders.remove(base, settled=True)   # whatever a failed test left, however large


def canary_state(canary):
    return {str(p.relative_to(canary)): (stat.S_IMODE(p.lstat().st_mode), p.is_file() and p.read_text())
            for p in [canary, *sorted(canary.rglob("*"))]}


def _swapper(tree, canary, stop):
    """What a hostile kernel does during the clean-up: refill the tree, make folders read-only,
    and swap folders for links to the canary folder, as fast as it can."""
    n = 0
    while not stop.is_set():
        n += 1
        try:
            if os.path.islink(tree / "a"):  # the kernel's own link: it never writes through it
                os.unlink(tree / "a")
            (tree / "a" / "b").mkdir(parents=True, exist_ok=True)
            for i in range(5):
                (tree / "a" / "b" / f"f{i}").write_text("x")
            (tree / "a" / "b").chmod(0o500)
            os.rename(tree / "a", tree / f"moved{n}")
            os.symlink(canary, tree / "a")
            os.symlink(canary, tree / f"moved{n}" / "c")
        except OSError:
            pass


@pytest.mark.parametrize("rounds", [20])
def test_a_race_against_the_clean_up_never_touches_a_linked_folder(arena, rounds):
    base, canary = arena
    before = canary_state(canary)
    for _ in range(rounds):
        tree = base / "kernel"
        tree.mkdir(exist_ok=True)
        stop = multiprocessing.Event()
        swapper = multiprocessing.Process(target=_swapper, args=(tree, canary, stop))
        swapper.start()
        time.sleep(0.01)
        try:
            kernel_folders.remove(tree)
        finally:
            stop.set()
            swapper.join(10)
            if swapper.is_alive():  # starved mid-step on a loaded machine: the kernel is gone now
                swapper.kill()
                swapper.join()
        # the clean-up once the kernel has stopped: a racing swapper may have outrun the first
        # removal's budget and left more entries than it; all must go now
        assert kernel_folders.remove(tree, settled=True)
        assert not tree.exists(), f"left after the kernel stopped: {sorted(os.listdir(tree))[:20]}"
        assert canary_state(canary) == before


def _wide_tree(tree, folders, files):
    for i in range(folders):
        (tree / f"d{i}" / "locked").mkdir(parents=True)
        for j in range(files):
            (tree / f"d{i}" / f"f{j}").write_text("x")
        (tree / f"d{i}").chmod(0o500)


def test_a_tree_larger_than_the_budget_goes_once_the_kernel_has_stopped(arena, monkeypatch):
    """While the kernel may run a removal gives up after its budget; a stopped kernel's tree
    goes whatever its size (here 20 times the budget)."""
    base, _ = arena
    monkeypatch.setattr(kernel_folders, "REMOVAL_BUDGET", 100)
    tree = base / "kernel"
    _wide_tree(tree, 200, 8)
    assert kernel_folders.remove(tree) is False and tree.exists()
    assert kernel_folders.remove(tree, settled=True) and not tree.exists()


def test_a_removal_stops_when_a_pass_removes_nothing(arena, monkeypatch):
    """What cannot be removed stays, and the removal ends at once instead of spending its
    budget (20 million entries once the kernel has stopped) on it."""
    base, _ = arena
    tree = base / "kernel"
    _wide_tree(tree, 3, 2)
    (tree / "d1" / "stuck").write_text("x")
    unlink = os.unlink
    tries = []

    def refuse_stuck(name, *, dir_fd=None):
        if name == "stuck":
            tries.append(name)
            raise PermissionError(1, "Operation not permitted", name)
        return unlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(kernel_folders.os, "unlink", refuse_stuck)
    for settled in (False, True):
        tries.clear()
        assert kernel_folders.remove(tree, settled=settled) is False
        assert sorted(p.name for p in tree.rglob("*")) == ["d1", "stuck"]
        assert len(tries) <= 6, len(tries)
    monkeypatch.undo()
    assert kernel_folders.remove(tree) and not tree.exists()


def test_deep_trees_are_removed_with_few_descriptors(arena):
    base, _ = arena
    tree = base / "deep"
    tree.mkdir()
    fd = os.open(tree, os.O_RDONLY)
    for _ in range(3000):  # deeper than any path the grader could name
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    os.close(fd)
    before = len(os.listdir("/proc/self/fd"))
    assert kernel_folders.remove(tree) and not tree.exists()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_fifo_or_a_link_where_results_are_read_does_not_block_or_follow(arena):
    base, canary = arena
    workdir = base / "kernel"
    workdir.mkdir()
    os.mkfifo(workdir / probe_exchange.RESULTS_FILE)
    done = []
    reader = threading.Thread(target=lambda: done.append(probe_exchange.take_results(workdir, 1)), daemon=True)
    reader.start()
    reader.join(10)
    assert done and done[0][0] is None, "reading a planted FIFO blocked the grader"
    assert not os.path.lexists(workdir / probe_exchange.RESULTS_FILE)
    os.symlink(canary / "keep", workdir / probe_exchange.RESULTS_FILE)
    assert probe_exchange.take_results(workdir, 1)[0] is None
    assert (canary / "keep").read_text() == "canary"


def test_files_are_copied_in_only_where_nothing_stands(arena):
    base, canary = arena
    workdir = base / "kernel"
    workdir.mkdir()
    source = base / "gpt_course.py"
    source.write_text("course file")
    os.symlink(canary / "keep", workdir / "gpt_course.py")    # planted where the copy goes
    with kernel_folders.folder(workdir) as fd:
        assert not kernel_folders.copy_in(source, fd, "gpt_course.py")
        assert kernel_folders.copy_in(source, fd, "other.py")
    assert (canary / "keep").read_text() == "canary"
    assert (workdir / "other.py").read_text() == "course file"


def test_a_folder_reached_through_a_link_is_refused(arena):
    base, canary = arena
    os.symlink(canary, base / "linked")
    with pytest.raises(OSError):
        kernel_folders.open_folder(base / "linked")
    assert kernel_folders.remove(base / "linked" / "keep") is False or (canary / "keep").exists()
    assert (canary / "keep").read_text() == "canary"


def test_usage_counts_no_link_and_deep_nesting_as_over(arena):
    base, canary = arena
    tree = base / "kernel"
    tree.mkdir()
    (tree / "data").write_bytes(b"x" * 100_000)
    (canary / "big").write_bytes(b"x" * 3_000_000)
    os.symlink(canary, tree / "link")
    used = kernel_folders.usage(tree, 2_000_000)
    assert 100_000 <= used < 2_000_000
    path = tree
    for _ in range(kernel_folders.USAGE_MAX_DEPTH + 2):
        path = path / "d"
    os.makedirs(path)
    assert kernel_folders.usage(tree, 2_000_000) > 2_000_000


AUDITED = r'''
import json, os, pathlib, stat, sys, torch
from autograder.worker import kernel_folders, probe_exchange
base = pathlib.Path(sys.argv[1])
if os.geteuid() == 0:               # a grader that is not root meets read-only folders
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
tree = base / "kernel"
(tree / "a" / "b" / "c").mkdir(parents=True)
(tree / "a" / "b" / "c" / "f").write_text("x")
os.symlink(base / "outside", tree / "a" / "link")
os.mkfifo(tree / probe_exchange.RESULTS_FILE)
for folder in (tree / "a" / "b" / "c", tree / "a" / "b", tree / "a"):
    folder.chmod(0o500)
events = []
def hook(event, args):
    if event in ("open", "os.chmod", "os.rmdir", "os.remove", "os.rename", "os.mkdir", "os.chown",
                 "os.symlink", "os.link", "os.truncate", "os.utime"):
        events.append([event, [a if isinstance(a, (int, type(None))) else str(a) for a in args]])
sys.addaudithook(hook)
ok = [probe_exchange.put_cases(tree, [{"input": torch.zeros(1)}]),
      probe_exchange.take_results(tree, 1)[0] is None,
      kernel_folders.usage(tree, 10**9) > 0,
      kernel_folders.remove(tree)]
print(json.dumps({"ok": ok, "events": events}))
'''


def test_every_step_goes_through_a_descriptor(arena):
    """Whatever the kernel's tree holds, the grader names no path in it: every open is
    no-follow (or of the folder a descriptor holds, /proc/self/fd/N), every removal and
    rename is relative to a folder's descriptor, a mode is changed only through a descriptor."""
    import json
    import subprocess
    import sys
    base, _ = arena
    (base / "outside").mkdir()
    if os.geteuid() == 0:
        os.chown(base, 65534, 65534)
    done = subprocess.run([sys.executable, "-c", AUDITED, str(base)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] == [True, True, True, True], report
    for event, args in report["events"]:
        if event == "open":
            path, _, flags = args
            if isinstance(path, int):  # a file object over a descriptor already held
                continue
            if os.path.isabs(path) and not path.startswith((str(base), "/proc/self/fd/")) and path != "/":
                continue  # outside the tree (a module torch imports on first use)
            through_descriptor = str(path).startswith("/proc/self/fd/")
            assert through_descriptor or path == "/" or int(flags) & os.O_NOFOLLOW, (event, args)
            assert through_descriptor or not os.path.isabs(str(path)) or path == "/", (event, args)
        elif event == "os.chmod":
            assert str(args[0]).startswith("/proc/self/fd/"), (event, args)
        elif event in ("os.rmdir", "os.remove"):
            assert args[-1] is not None, (event, args)          # dir_fd
        elif event == "os.rename":
            assert args[2] is not None and args[3] is not None, (event, args)
        else:
            pytest.fail(f"unexpected {event} {args}")


def test_only_regular_files_are_copied_in(arena):
    base, _ = arena
    workdir = base / "kernel"
    workdir.mkdir()
    (base / "data").mkdir()
    os.mkfifo(base / "fifo")
    with kernel_folders.folder(workdir) as fd:
        assert not kernel_folders.copy_in(base / "data", fd, "data")
        assert not kernel_folders.copy_in(base / "fifo", fd, "fifo")
    assert os.listdir(workdir) == []
