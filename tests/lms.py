"""An LMS as the tests meet it: a Moodle export and worksheet, the grade command run as an
instructor runs it, and formgrader's own view of a graded course."""
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

from autograder.course import RELEASE, ROOT, SOURCE, TASKS

# The environment of a newcomer who runs the venv's python without activating it: a bare PATH.
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "OMP_NUM_THREADS": "1"}

# Moodle's grading worksheet (English), as downloaded before grading.
EN = ('\ufeff"Identifier","Full name","Email address","Status","Grade","Maximum Grade","Grade can be changed",'
      '"Last modified (submission)","Last modified (grade)","Feedback comments"\r\n'
      '"Participant 1001","Anna Petrova","anna@example.org","Submitted for grading - Not graded","","10.00","Yes",'
      '"Monday, 30 November 2026, 1:00 AM","-",""\r\n'
      '"Participant 1002","Ivan Ivanov","ivan@example.org","No submission","","10.00","Yes","-","-",""\r\n'
      '"Participant 1003","Locked Person","l@example.org","Submitted for grading","7.00","10.00","No","-","-","old"\r\n')

def moodle_export(folder, students):
    """A Moodle export: <Full Name>_<id>_assignsubmission_file_/ with the release notebooks,
    the reference solution pasted where ``solved``."""
    from autograder.notebooks import paste_body, read, solution_body
    import nbformat
    for (name, sid), solved in students.items():
        target = folder / f"{name}_{sid}_assignsubmission_file_"
        target.mkdir(parents=True)
        for spec in TASKS:
            nb = read(RELEASE / f"{spec.notebook}.ipynb")
            if solved:
                paste_body(nb, spec.key, solution_body(read(SOURCE / f"{spec.notebook}.ipynb"), spec.key))
            nbformat.write(nb, str(target / f"{spec.notebook}.ipynb"))
    return folder


def grade_command(*args, timeout=900):
    """The grade command as an instructor runs it (sandboxed: kernels forked from the zygote), two workers."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", *map(str, args), "--jobs", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


def formgrader_students(course):
    """Formgrader's JSON API (/formgrader/api/students) of a Jupyter server started on ``course``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(8)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}"],
        cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/formgrader/api/students",
                                     headers={"Authorization": f"token {token}"})
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    return json.loads(reply.read())
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
