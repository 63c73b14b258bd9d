"""Run a command as an ordinary user (uid and gid 65534) from a root test process.

    unshare --mount --propagation private python -I ordinary_user.py PATH[:PATH...] -- COMMAND...

The command may need files under a folder only root may enter (the venv's Python under
/root/.pyenv, say): in the private mount namespace unshare made, each such folder on the
way to a PATH is covered by an empty tmpfs others may enter, with the one entry on the way
bound back in, so the ordinary user reaches what it needs and nothing beside it. Then it
drops to uid 65534 for real and execs the command.
"""
import os
import shutil
import subprocess
import sys
import tempfile

UID = GID = 65534


def usable():
    """(True, "") where this test process can run a command as the ordinary user, else (False, why)."""
    if os.geteuid() != 0:
        return False, "only a root test process can run a command as another user"
    missing = [tool for tool in ("unshare", "mount") if shutil.which(tool) is None]
    return (not missing, f"{', '.join(missing)} not found (util-linux)" if missing else "")


def command(paths, argv):
    """The command line running ``argv`` as the ordinary user, with ``paths`` reachable."""
    return ["unshare", "--mount", "--propagation", "private", sys.executable, "-I", os.path.abspath(__file__),
            ":".join(paths), "--", *argv]


def _entered_by_others(folder):
    return bool(os.stat(folder).st_mode & 0o001)


def _cover(folder, entries, stash):
    """An empty tmpfs over ``folder`` that others may enter, with ``folder/entry`` of each of
    ``entries`` bound back."""
    kept = []
    for entry in entries:
        kept.append(os.path.join(stash, str(len(os.listdir(stash)))))
        os.mkdir(kept[-1])
        subprocess.run(["mount", "--bind", os.path.join(folder, entry), kept[-1]], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "none", folder], check=True)
    for entry, source in zip(entries, kept):
        os.mkdir(os.path.join(folder, entry))
        subprocess.run(["mount", "--bind", source, os.path.join(folder, entry)], check=True)


def reach(paths):
    """Cover every folder on the way to ``paths`` that others may not enter (outermost first)."""
    stash = tempfile.mkdtemp(prefix="ordinary-user-stash-")
    while True:
        closed = {}
        for path in paths:
            parts = os.path.realpath(path).strip("/").split("/")
            for depth in range(len(parts)):
                folder = "/" + "/".join(parts[:depth])
                if not _entered_by_others(folder):
                    closed.setdefault(folder, set()).add(parts[depth])
                    break
        if not closed:
            return
        for folder, entries in closed.items():
            _cover(folder, sorted(entries), stash)


def main(argv):
    split = argv.index("--")
    reach([p for p in argv[1].split(":") if p])
    os.setgroups([])
    os.setresgid(GID, GID, GID)
    os.setresuid(UID, UID, UID)
    os.execvp(argv[split + 1], argv[split + 1:])


if __name__ == "__main__":
    main(sys.argv)
