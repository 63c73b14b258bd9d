"""The real service for tests and benchmarks: ``python -m autograder serve`` in a process of its
own on a free loopback port, started and stopped with bounded waits, plus the HTTP calls of a
student's client (stdlib only)."""
import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from autograder.course import ROOT

TESTS = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def issue(out, roster, *extra, db_url=""):
    """Tokens for ``roster`` ({id: (first, last)}): ({id: token}, instructor token)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "roster.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "first_name", "last_name", "email"])
        for sid, (first, last) in roster.items():
            writer.writerow([sid, first, last, f"{sid}@example.org"])
    command = [sys.executable, "-m", "autograder", "serve", "--out", str(out), "--issue-tokens",
               "--roster", str(path), *extra] + (["--db-url", db_url] if db_url else [])
    subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=ROOT)
    with open(out / "tokens.csv", encoding="utf-8-sig") as f:
        tokens = {row["student_id"]: row["link"].split("#", 1)[1] for row in csv.DictReader(f)}
    teacher = (out / "instructor-link.txt").read_text().strip().split("#", 1)[1]
    return tokens, teacher


class Server:
    """A running service: ``url``, ``process``, its log file ``log``."""

    def __init__(self, out, *extra, db_url="", jobs=1, env=None, port=None):
        self.out, self.port = out, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "autograder", "serve", "--out", str(out), "--port", str(self.port),
                        "--jobs", str(jobs), *extra] + (["--db-url", db_url] if db_url else [])
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), TESTS]), **(env or {}))
        self.log = out / f"serve-{self.port}.log"
        self.process = None

    def start(self, timeout=180):
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                            env=self.env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the service exited ({self.process.returncode}):\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/signin", timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the service did not answer in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self):
        """SIGKILL, as a crash: the service and everything it started (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout=60):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):   # what its pool may have left
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def call(url, token=None, body=None, headers=None, timeout=30):
    """(status, JSON) of a request with a bearer token."""
    request = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                     headers={**({"Authorization": f"Bearer {token}"} if token else {}),
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text.decode("utf-8", "replace")


def multipart(files):
    boundary = "b" + os.urandom(8).hex()
    parts = []
    for name, data in files:
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def submit(url, token, files, key=None, timeout=30):
    body, content_type = multipart(files)
    headers = {"Content-Type": content_type, **({"Idempotency-Key": key} if key else {})}
    return call(url + "/api/submit", token, body, headers, timeout)


def wait_finished(url, token, public_id, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, state = call(f"{url}/api/submissions/{public_id}", token)
        if status == 200 and state.get("finished"):
            return state
        time.sleep(0.3)
    raise TimeoutError(f"{public_id} not graded in {timeout} s")
