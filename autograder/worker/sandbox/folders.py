"""The two host folders a kernel writes: its working folder (made writable for it while it
runs) and its connection folder (made for it).

RUNS IN A GRADING WORKER. Grader as root: while kernels use a working folder its group
becomes ``sandbox_gid`` with rwx and the sticky bit (given back when the last of them is
done). The kernel can create files there (they stay owned by ``sandbox_uid``) but can't
delete, rename or overwrite the files already there unless their mode lets it, such as
the notebooks nbgrader writes back as root. The connection folder is a fresh ``jsbx-*``
folder in the temp dir (short: unix socket paths hold 107 bytes), removed at clean-up.
"""
import os
import stat
import tempfile
import threading

from .. import kernel_folders
from .layout import drops_uid

_lock = threading.Lock()
_users = {}  # realpath -> [kernels using it, (gid, mode) before]


def claim_workdir(settings, workdir):
    """Let the sandbox's group write ``workdir`` (grader as root); returns what to release."""
    if not drops_uid(settings):
        return None
    with _lock:
        entry = _users.get(workdir)
        if entry is None:
            info = os.stat(workdir)
            entry = _users[workdir] = [0, (info.st_gid, stat.S_IMODE(info.st_mode))]
            os.chown(workdir, -1, settings.sandbox_gid)
            os.chmod(workdir, stat.S_IMODE(info.st_mode) | stat.S_ISVTX | 0o070)
        entry[0] += 1
    return workdir


def release_workdir(workdir, log):
    """Undo ``claim_workdir`` once no kernel uses ``workdir`` any more."""
    if workdir is None:
        return
    with _lock:
        entry = _users.get(workdir)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] > 0:
            return
        del _users[workdir]
    gid, mode = entry[1]
    try:
        os.chown(workdir, -1, gid)
        os.chmod(workdir, mode)
    except OSError as error:
        log.warning("sandbox: could not give %s back: %s", workdir, error)


def make_connection_folder(settings):
    """A fresh folder for the kernel's connection file and sockets, the kernel's to write."""
    base = os.path.realpath(tempfile.gettempdir())
    if len(base) > 60:  # unix socket paths are limited to 107 bytes
        base = "/tmp"
    folder = tempfile.mkdtemp(prefix="jsbx-", dir=base)
    if drops_uid(settings):
        os.chown(folder, settings.sandbox_uid, settings.sandbox_gid)
    return folder


def remove_connection_folder(folder):
    kernel_folders.remove(folder, settled=True)
