"""Files in the folders a student's kernel can write, handled without following anything.

RUNS IN A GRADING WORKER (often as root). The kernel can put a link, a FIFO or a
deep tree under any name of its folders at any moment, also while the grader works
there, and can swap a folder for a link between two steps of the grader. So every
operation here goes through descriptors: a folder is opened one component at a time
with ``O_NOFOLLOW | O_DIRECTORY``; an entry is removed, created, renamed or read
relative to its folder's descriptor (``dir_fd``); a mode is changed on a descriptor
(through ``/proc/self/fd``), never on a name; nothing is opened that could block
(``O_NONBLOCK``). Deep trees are moved up before they are emptied, so a removal
holds few descriptors however deep the kernel nested its folders.
"""
import contextlib
import os
import shutil
import stat

FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 32            # folders deeper than this are moved up to be emptied on a later pass
REMOVAL_BUDGET = 200_000  # entries one removal may visit before it gives up (the kernel refills)
SETTLED_BUDGET = 20_000_000  # the same once the kernel has stopped: more than its disk limit lets it leave
USAGE_MAX_DEPTH = 64      # a tree nested deeper than this counts as over any size limit
MAX_ENTRIES = 20_000      # a tree of more entries counts as over any size limit


def open_folder(path):
    """A descriptor of the folder ``path``, opened from / one component at a time, no links."""
    return open_below(os.open("/", FOLDER), os.path.abspath(path), own=True)


def open_below(fd, path, own=False):
    """A descriptor of the folder ``path`` below the open folder ``fd``, one component at a time,
    no links (``own``: ``fd`` is closed on the way)."""
    if not own:
        fd = os.dup(fd)
    try:
        for part in path.split("/"):
            if part:
                inner = os.open(part, FOLDER, dir_fd=fd)  # ELOOP or ENOTDIR where a link is
                os.close(fd)
                fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def folder(path):
    """``open_folder(path)`` for the length of a ``with`` block."""
    fd = open_folder(path)
    try:
        yield fd
    finally:
        os.close(fd)


def _open_up(fd):
    """Give the owner rwx on the folder ``fd`` (a grader that is not root meets folders the
    kernel made read-only: the kernel is its own user then). True if it worked."""
    try:
        os.chmod(f"/proc/self/fd/{fd}", 0o700)  # the inode ``fd`` holds, whatever its name now
        return True
    except OSError:
        return False


def _open_inner(parent_fd, name):
    """A descriptor of the folder ``name`` in ``parent_fd``, opened up if the kernel locked it."""
    try:
        return os.open(name, FOLDER, dir_fd=parent_fd)
    except PermissionError:
        path_fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            if not _open_up(path_fd):
                raise
            return os.open(f"/proc/self/fd/{path_fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(path_fd)


def _entries(fd):
    """[(name, is a folder)] of the folder ``fd`` (links are not folders)."""
    with os.scandir(fd) as it:
        return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in it]


class _Walk:
    """One removal's account: entries it may still visit, entries it visited, and entries it
    removed or moved up (a pass that changed none cannot change more)."""

    def __init__(self, budget):
        self.budget, self.visited, self.changed = budget, 0, 0

    def visit(self):
        """Count one entry visited; False once the budget is spent."""
        self.visited += 1
        return self.visited <= self.budget


def _remove(remove, parent_fd, name, walk):
    """``remove(name, dir_fd=parent_fd)`` (os.unlink or os.rmdir), once more after opening up a
    folder the kernel made read-only (grader not root): True if nothing is left under ``name``,
    False if ``os.unlink`` met a folder, None if it stays (a folder refilled meanwhile, a folder
    that cannot be opened up, the sticky bit)."""
    for _ in range(2):
        try:
            remove(name, dir_fd=parent_fd)
            walk.changed += 1
            return True
        except FileNotFoundError:
            return True
        except IsADirectoryError:
            return False
        except PermissionError:
            if not _open_up(parent_fd):
                return None
        except OSError:
            return None
    return None


def _unlink(parent_fd, name, walk):
    return _remove(os.unlink, parent_fd, name, walk)


def _rmdir(parent_fd, name, walk):
    return _remove(os.rmdir, parent_fd, name, walk)


def _clear(fd, top_fd, depth, walk):
    """Remove what the folder ``fd`` holds; folders below ``MAX_DEPTH`` are moved into
    ``top_fd`` instead (the caller's next pass empties them)."""
    for name, is_folder in _entries(fd):
        if not walk.visit():
            return
        if not is_folder and _unlink(fd, name, walk) is not False:
            continue
        if depth >= MAX_DEPTH:
            try:
                os.rename(name, f".removing-{walk.visited}-{depth}", src_dir_fd=fd, dst_dir_fd=top_fd)
                walk.changed += 1
            except OSError:
                pass
            continue
        try:
            inner = _open_inner(fd, name)
        except OSError:  # swapped for a file or a link meanwhile
            _unlink(fd, name, walk)
            continue
        try:
            _clear(inner, top_fd, depth + 1, walk)
        finally:
            os.close(inner)
        _rmdir(fd, name, walk)


def remove_at(parent_fd, name, settled=False):
    """Remove the entry ``name`` of the folder ``parent_fd``, whatever the kernel made of it
    (a file, a link, a FIFO, a tree); True when nothing is left under that name.

    While the kernel may run it can refill the tree as fast as it is emptied: the removal gives
    up after ``REMOVAL_BUDGET`` entries. ``settled`` says the kernel has stopped: then the
    removal goes on through a tree of any size a stopped kernel could leave. Either way it
    stops after a pass that removed nothing (what is left cannot be removed)."""
    walk = _Walk(SETTLED_BUDGET if settled else REMOVAL_BUDGET)
    while walk.visit():
        changed = walk.changed
        gone = _unlink(parent_fd, name, walk)
        if gone is True:
            return True
        if gone is None:
            return False
        try:
            inner = _open_inner(parent_fd, name)
        except FileNotFoundError:
            return True
        except OSError:
            if settled:
                return False  # a folder that cannot be opened, and nothing changes it now
            continue  # swapped for a link or a file: unlink it on the next pass
        try:
            _clear(inner, inner, 1, walk)
        finally:
            os.close(inner)
        if _rmdir(parent_fd, name, walk):
            return True
        if walk.changed == changed:
            return False
        # refilled meanwhile, or holding what was moved up into it: another pass
    return False


def remove(path, settled=False):
    """Remove what is at ``path`` (its parent folder reached without links); True if nothing is
    left. ``settled``: the kernel has stopped, nothing refills the tree (see ``remove_at``)."""
    path = os.path.abspath(path)
    try:
        with folder(os.path.dirname(path)) as parent:
            return remove_at(parent, os.path.basename(path), settled)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def create(parent_fd, name, mode=0o644):
    """A new regular file ``name`` in ``parent_fd``, opened for writing (fails if anything is there)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode,
                 dir_fd=parent_fd)
    return os.fdopen(fd, "wb")


def open_regular(parent_fd, name, max_bytes):
    """The regular file ``name`` of ``parent_fd`` opened for reading, or None for anything else
    (a link, a FIFO, a folder, a file over ``max_bytes``). Never blocks."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent_fd)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def copy_in(source, parent_fd, name):
    """Copy the grader's regular file ``source`` to a new ``name`` in ``parent_fd``; False if
    ``source`` is not a regular file or something already stands under ``name``."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return False
    with os.fdopen(fd, "rb") as src:
        try:
            target = create(parent_fd, name, stat.S_IMODE(info.st_mode) & 0o755 | 0o444)
        except OSError:
            return False
        with target:
            shutil.copyfileobj(src, target)
    return True


def usage(path, stop_at, max_entries=MAX_ENTRIES):
    """Bytes stored in the tree at ``path`` (allocated blocks; links not followed). Counting stops
    once over ``stop_at``; more than ``max_entries`` entries, or folders nested deeper than
    ``USAGE_MAX_DEPTH``, count as over it too. 0 when ``path`` cannot be opened."""
    try:
        fd = open_folder(path)
    except OSError:
        return 0
    totals = [0, 0]  # bytes, entries
    try:
        if not _usage(fd, stop_at, max_entries, totals, 0):
            return stop_at + 1
    finally:
        os.close(fd)
    return totals[0]


def crowded(fd, max_entries=MAX_ENTRIES):
    """True when the file system of the open folder ``fd`` holds more than ``max_entries`` entries
    in the tree there (or folders nested deeper than ``USAGE_MAX_DEPTH``), whatever their size.
    What is mounted inside it (a sandbox's binds under its /tmp: the working folder, a venv) is
    another file system, neither counted nor entered."""
    return not _usage(fd, float("inf"), max_entries, [0, 0], 0, os.fstat(fd).st_dev)


def _usage(fd, stop_at, max_entries, totals, depth, device=None):
    """Add the folder ``fd``'s bytes and entries to ``totals`` (only those on ``device`` if given);
    False once over a limit."""
    if depth > USAGE_MAX_DEPTH:
        return False
    try:
        entries = _entries(fd)
    except OSError:
        return True
    for name, is_folder in entries:
        try:
            stat = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            stat = None
        if stat is not None and device is not None and stat.st_dev != device:
            continue   # a mount point: another file system
        totals[1] += 1
        if totals[1] > max_entries:
            return False
        if stat is None:
            continue
        totals[0] += stat.st_blocks * 512
        if totals[0] > stop_at:
            return False
        if is_folder:
            try:
                inner = os.open(name, FOLDER, dir_fd=fd)
            except OSError:
                continue
            try:
                if not _usage(inner, stop_at, max_entries, totals, depth + 1, device):
                    return False
            finally:
                os.close(inner)
    return True
