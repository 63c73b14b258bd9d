"""A throw-away PostgreSQL server for tests: Debian's binaries, a cluster in a temporary folder,
a free loopback port where the superuser ``postgres`` logs in with a random password (SCRAM, as
servers are set up), stopped and deleted afterwards.

Root cannot run postgres, so as root the cluster belongs to the ``postgres`` user (made by the
Debian package) or ``nobody``, and the server programs run through ``runuser``.
"""
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile


def binaries():
    """The folder of initdb and pg_ctl (newest Debian version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _owner():
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user to run postgres as")


@contextlib.contextmanager
def server(database="gradebook"):
    """Yield the plain URL, ``postgresql://postgres:PASSWORD@127.0.0.1:PORT/DATABASE``, of a fresh
    database on a private server."""
    bin_dir = binaries()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    owner = _owner()
    prefix = ["runuser", "-u", owner.pw_name, "--"] if owner else []
    folder = tempfile.mkdtemp(prefix="autograder-pg-")
    os.chmod(folder, 0o755)
    data = os.path.join(folder, "data")
    os.mkdir(data, 0o700)
    if owner:
        os.chown(data, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    log = os.path.join(data, "server.log")

    def run(*args):
        done = subprocess.run(prefix + list(args), capture_output=True, text=True, timeout=120, cwd=folder)
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed:\n{done.stdout}\n{done.stderr}")

    password = secrets.token_hex(8)
    password_file = os.path.join(folder, "password")
    with open(password_file, "w") as f:
        f.write(password + "\n")
    os.chmod(password_file, 0o644)
    try:
        run(f"{bin_dir}/initdb", "-D", data, "--auth-local=trust", "--auth-host=scram-sha-256",
            "--pwfile", password_file, "-U", "postgres", "-E", "UTF8", "--no-sync")
        os.unlink(password_file)
        run(f"{bin_dir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o",
            f"-h 127.0.0.1 -p {port} -k {data} -F -c fsync=off", "start")
        try:
            import psycopg
            with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=password,
                                 dbname="postgres", autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{database}"')
            yield f"postgresql://postgres:{password}@127.0.0.1:{port}/{database}"
        finally:
            run(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
