"""Hostile submissions: no unearned points, no leaks, the host untouched.

One module fixture builds a class in a temporary folder: honest students (two
copies of the reference, one with a known mistake) and one student per attack.
Attackers that try to *gain* points start that task from the untouched release
(so they honestly earn 0 for it); attackers that try to *disrupt* start from the
reference and run their attack after the test cells. The fixture snapshots the
host (the repository's source/, autograder/ and release/ trees, ``git status``,
the other submissions, /etc/passwd, a root-owned canary file outside the
sandbox), runs the real ``python -m autograder grade`` once (sandboxed, as the
command does by default), snapshots again and hands the result to the tests.

Every attack cell prints one line ``ATTACK-<TAG> {json}`` with what each attempt
gave, so the tests can also check what the kernel could do, not only the points.
"""
import csv
import hashlib
import json
import os
import pathlib
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import nbformat
import pytest

from autograder import demo
from autograder.course import TASK_KEYS as TASKS, TASKS as SPECS
from autograder.notebooks import find_cell, paste_body, read, solution_body
from autograder.worker.sandbox import SandboxedKernelManager, bwrap_available

NOTEBOOK_OF_TASK = {spec.key: spec.notebook for spec in SPECS}

ROOT = pathlib.Path(__file__).resolve().parents[1]
AVAILABLE, WHY = bwrap_available()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not AVAILABLE, reason=f"bubblewrap sandbox unavailable: {WHY}")]

CELL_TIMEOUT = 20                # room for the memory attack while other tests run beside it
GIVE_UP_S = 30 * 60             # a grader that hangs: the run is stopped (not a speed check)
FULL = {spec.key: float(spec.points) for spec in SPECS}

# Text that exists only in instructor material: it must reach no output a student or
# the report sees. (The reference *body* itself is in the honest students' own code, so
# e.g. "wei.masked_fill(self.tril" cannot be a marker.)
MARKERS = [b"never enters a",        # autograder/checks/reference.py docstring
           b"head_no_mask",          # autograder/checks/mistakes.py
           b"BEGIN SOLUTION",        # source notebooks
           b"def case_seed"]         # autograder/checks/cases.py
# Also in the autograded notebooks (nbgrader restores the hidden test cells there), so
# checked only in what students and the report get.
HIDDEN_MARKERS = [b"BEGIN HIDDEN", b"autograder.hidden"]
XSS = '<script>alert("adv-xss")</script>'

# ----------------------------------------------------------------- attack code
# Prepended to every attack cell; @NAME@ are filled in with the run's paths.
PRELUDE = '''\
import glob, json, os, pathlib, socket, subprocess, sys, threading, time
ROOT, OUT, SUBS, CANARY = @ROOT@, @OUT@, @SUBS@, @CANARY@
HERE = pathlib.Path.cwd()
_R = {}
def attempt(name, fn):
    try:
        _R[name] = ["ok", str(fn())[:300]]
    except BaseException as exc:
        _R[name] = [type(exc).__name__, str(exc)[:300]]
def report(tag):
    _R.update(_sandboxed=SANDBOXED, _uid=os.getuid())
    print("ATTACK-" + tag + " " + json.dumps(_R, sort_keys=True), flush=True)
# The test must not harm the machine if the grader ever runs a kernel unsandboxed:
# destructive attacks run only where the repository is out of sight.
SANDBOXED = not os.path.exists(ROOT + "/autograder") and not os.path.exists(OUT + "/secret.txt")
def guarded(tag):
    if not SANDBOXED:
        print("ATTACK-" + tag + " " + json.dumps({"_skipped": "kernel not sandboxed: attack not run",
                                                  "_sandboxed": False, "_uid": os.getuid()}), flush=True)
    return SANDBOXED
'''

PATCH_COMPARE = '''
import torch, torch.testing
def _fabricated(self, x):                       # right shape, wrong values
    return torch.zeros(x.shape[0], x.shape[1], self.head_size)
Head.forward = _fabricated
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.isclose = lambda a, b, *r, **k: torch.ones(torch.broadcast_shapes(a.shape, b.shape), dtype=torch.bool)
torch.testing.assert_close = lambda *a, **k: None
torch.Tensor.__eq__ = lambda self, other: True
torch.Tensor.__ne__ = lambda self, other: False
report("PATCH")
'''

PATCH_BUILTINS = '''
import builtins, traceback
ip = get_ipython()
class _Quiet(Exception):
    pass
builtins.AssertionError = _Quiet
builtins.NotImplementedError = _Quiet
sys.excepthook = lambda *a: None
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
ip.showsyntaxerror = lambda *a, **k: None
ip.set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
traceback.print_exc = lambda *a, **k: None
_isinstance = builtins.isinstance
builtins.isinstance = lambda obj, cls: True if cls in (dict, list, tuple) else _isinstance(obj, cls)
report("BUILTINS")
'''

FABRICATED_BODY = '''
cache = type(self).__dict__.get("_cache")
if cache is None:
    cache = {}
    type(self)._cache = cache
if tuple(x.shape) not in cache:
    cache[tuple(x.shape)] = torch.zeros(x.shape)
x = cache[tuple(x.shape)] + 0.0 * x
'''

READ_SOLUTIONS = '''
def grab(path):
    with open(path, "rb") as f:
        data = f.read()
    print("READ", path, repr(data))
    return len(data)
for path in [ROOT + "/source/gpt/01_head.ipynb", ROOT + "/autograder/checks/reference.py",
             ROOT + "/autograder/checks/mistakes.py", ROOT + "/autograder/checks/cases.py",
             OUT + "/course/source/gpt/01_head.ipynb", OUT + "/secret.txt",
             OUT + "/course/gradebook.db", str(HERE.parents[2] / "source" / "gpt" / "01_head.ipynb"),
             str(HERE.parents[2] / "gradebook.db"), "/etc/hostname", CANARY]:
    attempt("read " + path, lambda p=path: grab(p))
def steal():
    sys.path.insert(0, ROOT)
    import autograder.checks.reference as ref
    Head.forward = ref.Head.forward
    return "stolen"
attempt("import_reference", steal)
skip = ("/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix))
visible = []
for d, dirs, files in os.walk("/"):
    dirs[:] = [x for x in dirs if not os.path.join(d, x).startswith(skip)]
    visible += [os.path.join(d, f) for f in files]
print("VISIBLE " + json.dumps(visible))
needle = "BEGIN " + "HIDDEN"        # own folder: the notebooks the grader wrote there
for path in sorted(HERE.glob("*.ipynb")):
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell.get("source", ""))
        if needle in source:
            _R["hidden_in " + path.name] = ["ok", len(source)]
            print("HIDDEN-SOURCE", path.name, repr(source))
report("READ")
'''

READ_OTHERS = '''
found = set()
for pattern in [SUBS + "/*/*.ipynb", OUT + "/*", OUT + "/course/*", OUT + "/course/submitted/*/gpt/*.ipynb",
                OUT + "/course/autograded/*/gpt/*.ipynb", OUT + "/feedback/*/*.html",
                str(HERE.parents[3]) + "/*/autograded/*/gpt/*", str(HERE.parents[3]) + "/*/submitted/*/gpt/*",
                str(HERE.parents[3]) + "/*/gradebook.db"]:
    found.update(glob.glob(pattern))
skip = ("/proc", "/sys", "/dev", "/usr", sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix))
for d, dirs, files in os.walk("/"):                 # '/**/submitted/**' and the like
    dirs[:] = [x for x in dirs if not os.path.join(d, x).startswith(skip)]
    found.update(os.path.join(d, f) for f in files
                 if "submitted" in d or "autograded" in d or "feedback" in d or f.endswith(".db"))
for k in range(1, 7):
    attempt("listdir parent %d" % k, lambda k=k: os.listdir(HERE.parents[k]))
def steal(path):
    nb = json.loads(open(path, encoding="utf-8").read())
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "multihead_solution":
            source = "".join(cell["source"])
            if "NotImplementedError" not in source:
                exec(source, globals())
                return "stolen"
    return "nothing"
for path in sorted(found):
    if path.endswith(".ipynb") and not path.startswith(str(HERE)):
        attempt("steal " + path, lambda p=path: steal(p))
import sqlite3
for db in [OUT + "/course/gradebook.db", OUT + "/gradebook.db", str(HERE.parents[2] / "gradebook.db")]:
    attempt("sqlite " + db, lambda db=db: sqlite3.connect("file:%s?mode=ro" % db, uri=True)
            .execute("select count(*) from grade").fetchall())
print("FOUND " + json.dumps(sorted(found)))
report("OTHERS")
'''

WRITE_OUTSIDE = '''
import sqlite3
def open_for_writing(path):                     # repository files: opening is the test
    open(path, "ab").close()
    return "opened"
def write(path):
    with open(path, "ab") as f:
        f.write(b"PWNED")
    return "wrote"
for path in [ROOT + "/source/gpt/01_head.ipynb", ROOT + "/autograder/checks/scoring.py",
             ROOT + "/release/gpt/01_head.ipynb", ROOT + "/source/gpt/data/input.txt", ROOT + "/gradebook.db"]:
    attempt("open " + path, lambda p=path: open_for_writing(p))
for path in [CANARY, ROOT + "/pwned.txt", OUT + "/course/gradebook.db", OUT + "/gradebook.db",
             OUT + "/grades.csv", OUT + "/state.json", OUT + "/pwned.txt",
             SUBS + "/honest_a/01_head.ipynb", OUT + "/course/submitted/honest_a/gpt/01_head.ipynb",
             str(HERE.parents[2] / "gradebook.db"), str(HERE.parents[2] / "pwned.txt"),
             sys.prefix + "/pwned.txt", "/etc/passwd", "/pwned.txt"]:
    attempt("write " + path, lambda p=path: write(p))
def forge(db):
    con = sqlite3.connect(db, timeout=1)
    con.execute("UPDATE grade SET auto_score = 100, manual_score = 100")
    con.commit()
    return "forged"
for db in [OUT + "/course/gradebook.db", OUT + "/gradebook.db", str(HERE.parents[2] / "gradebook.db")]:
    attempt("sqlite " + db, lambda db=db: forge(db))
attempt("verdicts", lambda: (HERE.parents[2] / "verdicts.json").write_text(json.dumps(
    {t: {"points": 100, "mistakes": [], "passed": []}
     for t in ["head", "multihead", "feedforward", "block", "gpt_model"]})))
for name in ["01_head.ipynb", "03_feedforward.ipynb", "04_block.ipynb", "05_gpt_model.ipynb", "gpt_course.py"]:
    attempt("append " + name, lambda n=name: write(n))
    attempt("replace " + name, lambda n=name: (open("forged.tmp", "w").write("{}"), os.replace("forged.tmp", n)))
    attempt("unlink " + name, lambda n=name: os.unlink(n))
    attempt("chmod " + name, lambda n=name: os.chmod(n, 0o666))
report("WRITE")
'''

NETWORK = '''
def tcp(addr):
    socket.create_connection(addr, timeout=2).close()
    return "connected"
for host, port in [("127.0.0.1", 22), ("127.0.0.1", 80), ("127.0.0.1", 8888), ("8.8.8.8", 53)]:
    attempt("tcp %s:%d" % (host, port), lambda a=(host, port): tcp(a))
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(b"\\0", ("8.8.8.8", 53))
    return "sent"
attempt("udp 8.8.8.8:53", udp)
attempt("dns example.com", lambda: socket.getaddrinfo("example.com", 80))
_R["interfaces"] = [n for _, n in socket.if_nameindex()]
report("NET")
'''

MEMORY = '''
import numpy, torch
attempt("bytearray 8 GiB", lambda: len(bytearray(8 * 2**30)))
attempt("torch.empty(2**31)", lambda: torch.empty(2**31).fill_(1.0).numel())
attempt("numpy 8 GiB", lambda: numpy.ones(2**30).sum())
def grow():
    chunks = []
    try:
        while True:
            chunks.append(bytearray(b"x") * (100 * 2**20))
    except MemoryError:
        return len(chunks) * 100
_R["grow_mib"] = grow()
report("MEM")
'''

MEMORY_CHILDREN = '''
child = "import time\\nb = bytearray(b'x') * (1536 * 2**20)\\nprint('held', flush=True)\\ntime.sleep(30)"
procs = [subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True) for _ in range(3)]
_R["children_holding_1536_mib"] = sum(p.stdout.readline().strip() == "held" for p in procs)
for p in procs:
    p.kill()
    p.wait()
report("MEMCHILDREN")
'''

FORK_FLOOD = '''
procs, failed = [], 0
for _ in range(500):
    try:
        procs.append(subprocess.Popen(["sleep", "60"]))
    except OSError:
        failed += 1
threads = 0
for _ in range(200):
    try:
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        threads += 1
    except RuntimeError:
        break
_R.update(spawned=len(procs), failed=failed, threads=threads)
report("FORK")
'''

OUTPUT_FLOOD = '''
sys.stdout.write("x" * (50 * 2**20))
sys.stdout.flush()
for _ in range(100000):
    print("y" * 100)
'''
DISPLAY_FLOOD = '''
from IPython.display import display
display({"text/html": "<b>" + "z" * (20 * 2**20) + "</b>", "text/plain": "z"}, raw=True)
'''

BAD_MESSAGES = '''
k = get_ipython().kernel
parent = k.get_parent("shell")
for kind, content in [("comm_open", {"comm_id": "c1", "target_name": "jupyter.widget", "data": {}}),
                      ("display_data", {"data": 5, "metadata": {}, "transient": {"display_id": "d"}}),
                      ("stream", {"name": "stdout"})]:
    k.session.send(k.iopub_socket, kind, content, parent=parent)
# already packed: JSON text with a lone surrogate, which no notebook file can hold
k.session.send(k.iopub_socket, "stream", b'{"name": "stdout", "text": "bad \\ud800 text"}', parent=parent)
# a forged reply to the cell's own request, without the status nbclient reads
k.session.send(k.shell_stream, "execute_reply", {"no_status": 1}, parent=parent, ident=k._parent_ident["shell"])
print("sent")
'''

PLANTER = '''
import os, time, torch
def fabricate(cases):
    out = []
    for c in cases:
        x, size = c["input"], c["config"]["head_size"]
        shape = (x.shape[0], x.shape[1], size)
        r = {"output": torch.zeros((c["repeat"],) + shape if c.get("repeat") else shape)}
        if c.get("backward"):
            r["grad.input"] = torch.zeros_like(x)
            for name, t in c["state_dict"].items():
                r["grad." + name] = torch.zeros_like(t)
        out.append(r)
    return out
FALLBACK = [{"input": torch.zeros(3, 16, 48), "config": {"head_size": 16}, "state_dict": {}}] * 20
def plant_forever(tag):
    parent, stop = os.getppid(), time.time() + 600
    while time.time() < stop and os.getppid() == parent:
        try:
            cases = FALLBACK
            if os.path.exists(".grader_cases.pt"):
                cases = torch.load(".grader_cases.pt", weights_only=True)
            torch.save(fabricate(cases), ".planted-%s.tmp" % tag)
            os.replace(".planted-%s.tmp" % tag, ".grader_results.pt")
        except Exception:
            pass
        time.sleep(0.002)
'''
PROBE_OVERWRITE = '''
exec(PLANTER_SOURCE)
torch.save(fabricate(FALLBACK), ".grader_results.pt")
threading.Thread(target=plant_forever, args=("thread",), daemon=True).start()
if SANDBOXED:     # a process outside a sandbox would outlive the kernel
    child = subprocess.Popen([sys.executable, "-c", PLANTER_SOURCE + "\\nplant_forever('child')"])
    _R["child"] = child.pid
report("OVERWRITE")
'''

PROBE_SYMLINK = '''
TARGETS = ["/etc/passwd", CANARY, ROOT + "/autograder/checks/reference.py", "/etc/hostname"]
def link_forever():
    i, stop = 0, time.time() + 600
    while time.time() < stop:
        for name in (".grader_results.pt", ".grader_cases.pt"):
            try:
                if os.path.lexists(name) and not os.path.islink(name):
                    os.unlink(name)               # works only on files the kernel owns
                if not os.path.lexists(name):
                    os.symlink(TARGETS[i % len(TARGETS)], name)
            except OSError:
                pass
        i += 1
        time.sleep(0.001)
attempt("symlink results", lambda: os.symlink("/etc/passwd", ".grader_results.pt"))
attempt("symlink cases", lambda: os.symlink(CANARY, ".grader_cases.pt"))
threading.Thread(target=link_forever, daemon=True).start()
report("SYMLINK")
'''

PROBE_MALFORMED = '''
import torch
PAYLOADS = [
    lambda n: [{"output": 5, "grad.input": "x"} for _ in range(n)],
    lambda n: [{"output": [1.0] * 10} for _ in range(n)],
    lambda n: [{"error": "not_implemented", "output": torch.zeros(2)} for _ in range(n)],
    lambda n: [[] for _ in range(n)],
    lambda n: {"not": "a list"},
    lambda n: [{"output": torch.full((3, 16, 48), float("nan"))} for _ in range(n)],
    lambda n: [{"output": torch.zeros(3, 16, 48, dtype=torch.complex64)} for _ in range(n)],
]
def malform_forever():
    i, stop = 0, time.time() + 600
    while time.time() < stop:
        try:
            n = len(torch.load(".grader_cases.pt", weights_only=True)) if os.path.exists(".grader_cases.pt") else 20
            torch.save(PAYLOADS[i % len(PAYLOADS)](n), ".malformed.tmp")
            os.replace(".malformed.tmp", ".grader_results.pt")
        except Exception:
            pass
        i += 1
        time.sleep(0.002)
threading.Thread(target=malform_forever, daemon=True).start()
report("MALFORMED")
'''

PATCH_IO = '''
import builtins, torch, IPython
_save, _load = torch.save, torch.load
def _fake_pair(idx, targets=None):
    B, T = idx.shape
    logits = torch.zeros(B, T, 29)
    return logits, (None if targets is None else torch.tensor(3.3673))
class _FakeModel(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
    def forward(self, idx, targets=None):
        return _fake_pair(idx, targets)
    def generate(self, idx, n):
        return torch.cat([idx, torch.zeros(idx.shape[0], n, dtype=idx.dtype)], dim=1)
def fake_save(obj, f, *a, **k):
    if isinstance(obj, list) and "results" in str(f):
        obj = [{"logits": torch.zeros(3, 16, 29), "loss": torch.tensor(3.3673),
                "loss_is_none": torch.tensor(False), "generated": torch.zeros(1, 4, dtype=torch.long)}
               for _ in obj]
    return _save(obj, f, *a, **k)
torch.save = fake_save
torch.load = lambda f, *a, **k: _load(f, *a, **k)
class _FakeShell:
    user_ns = {"GPTModel": _FakeModel}
get_ipython = lambda: _FakeShell()           # the probe looks it up in the user namespace
builtins.get_ipython = get_ipython
IPython.get_ipython = get_ipython
report("IO")
'''

DETECTOR_BODY = '''
import sys
B, T, C = x.shape
probing, frame = False, sys._getframe()
while frame is not None:
    if frame.f_code.co_filename == "<probe>" or frame.f_globals.get("__name__") == "grader_probe":
        probing = True
    frame = frame.f_back
v = self.value(x)
if probing:
    out = torch.zeros_like(v)
else:        # a causal mean of v passes every visible assert
    out = v.cumsum(1) / torch.arange(1, T + 1, dtype=v.dtype).view(1, T, 1)
'''

# Correct Head without dropout: honestly 1.5 of 2 (a partial-credit verdict: a
# stdout stream and an execute_result "1.5"). The first forward call, in the test
# cell, shows two outputs with display ids; a later cell updates the second one,
# which after the verdict is that execute_result.
DISPLAY_FORGE_BODY = '''
if not getattr(type(self), "_shown", False):
    type(self)._shown = True
    from IPython.display import display
    display({"text/plain": "a"}, raw=True, display_id="adv-forge-a")
    display({"text/plain": "b"}, raw=True, display_id="adv-forge-b")
B, T, C = x.shape
k = self.key(x)
q = self.query(x)
wei = q @ k.transpose(-2, -1) * self.head_size ** -0.5
wei = wei.masked_fill(self.tril[:T, :T] == 0, float('-inf'))
wei = F.softmax(wei, dim=-1)
v = self.value(x)
out = wei @ v
'''
DISPLAY_FORGE_UPDATE = '''
from IPython.display import update_display
update_display({"text/plain": "2"}, raw=True, display_id="adv-forge-b")
report("FORGE")
'''

SYMLINK_PLANT = '''
LINKS = {
    "leak_reference.txt": ROOT + "/autograder/checks/reference.py",
    "leak_mistakes.txt": ROOT + "/autograder/checks/mistakes.py",
    "leak_source.txt": ROOT + "/source/gpt/01_head.ipynb",
    "leak_work_source.txt": str(HERE.parents[2] / "source" / "gpt" / "01_head.ipynb"),
    "leak_secret.txt": OUT + "/secret.txt",
    "leak_canary.txt": CANARY,
    "leak_gradebook.db": OUT + "/course/gradebook.db",
    "leak_dir": ROOT + "/source/gpt",
}
for name, target in LINKS.items():
    attempt("link " + name, lambda n=name, t=target: os.symlink(t, n) or "linked")
report("LINKS")
'''

DANGLING = '''
attempt("dangling file link", lambda: os.symlink("/nonexistent-adv-target/x.txt", "dangling.txt") or "linked")
attempt("dangling dir link", lambda: os.symlink("/nonexistent-adv-target/", "dangling_dir") or "linked")
report("DANGLING")
'''

DISK_FILL = '''
def fill(i):
    with open("fill_%d.bin" % i, "wb") as f:
        for _ in range(100):
            f.write(bytes(2**20))
    return os.path.getsize("fill_%d.bin" % i)
for i in range(3):
    attempt("fill %d" % i, lambda i=i: fill(i))
report("DISK")
'''

# ---- round 2: the grader's clean-up, its pages, its terminal, limits around the watchdog
# A thread swaps the folders the grader removes (the probe's results and cases) for links to the
# canary's folder, refilling them, until the kernel is reset for the next notebook. A grader that
# acts on a name there (a chmod of a parent re-opened by name) changes the canary folder.
CLEANUP_RACE = """
import builtins, shutil
CANARY_DIR = os.path.dirname(CANARY)
ABOVE, NAME = os.path.dirname(CANARY_DIR), os.path.basename(CANARY_DIR)
ip = get_ipython()
ip.user_ns["_race_alive"] = True
stats = builtins.__dict__.setdefault("_race_stats", {"swaps": 0, "rebuilt": 0, "errors": 0})
def race():
    deadline = time.monotonic() + 60
    n = 0
    while ip.user_ns.get("_race_alive") and time.monotonic() < deadline:
        for top in (".grader_results.pt", ".grader_cases.pt"):
            n += 1
            moved = "%s/moved%d" % (top, n)
            try:
                if os.path.islink(top + "/a"):
                    os.unlink(top + "/a")
                os.makedirs(top + "/a/" + NAME + "/c", exist_ok=True)
                for i in range(3):
                    open("%s/a/%s/c/f%d" % (top, NAME, i), "w").close()
                os.chmod(top + "/a/" + NAME, 0o500)
                stats["rebuilt"] += 1
                os.rename(top + "/a", moved)
                os.symlink(ABOVE, top + "/a")          # top/a/NAME is now the canary folder
                stats["swaps"] += 1
                time.sleep(0.002)
                os.chmod(moved + "/" + NAME, 0o700)    # its own leftovers, so the folder stays small
                shutil.rmtree(moved)
            except OSError:
                stats["errors"] += 1
threading.Thread(target=race, daemon=True).start()
print("race started")
"""
CLEANUP_RACE_REPORT = """
import builtins
_R.update(builtins.__dict__.get("_race_stats", {}))
report("RACE")
"""

# Scripts in every place a feedback page shows student work. Each tries to mark the page and to
# read the run's secret beside the report when served (OUT/feedback/<sid>/ -> ../../secret.txt).
PAGE_SCRIPT = ("document.title='PWNED'; window.__pwned=1; fetch('../../secret.txt').then(r => r.text())"
               ".then(t => document.body.insertAdjacentHTML('beforeend', '<div id=pwned>' + t + '</div>'))")
PAGE_MARKDOWN = ("## заметки\n\n<script>%s</script>\n\n<img src=x onerror=\"%s\">\n\n"
                 "<svg onload=\"%s\"></svg> <a href=\"javascript:%s\">ссылка</a>" % ((PAGE_SCRIPT,) * 4))
PAGE_OUTPUTS = """
from IPython.display import HTML, Javascript, SVG, display
display(HTML("<b>html</b><script>%s</script><img src=x onerror=\\"%s\\">"))
display(Javascript("%s"))
display(SVG("<svg xmlns='http://www.w3.org/2000/svg'><script>%s</script></svg>"))
display({"application/vnd.jupyter.widget-view+json": {"model_id": "m", "version_major": 2, "version_minor": 0},
         "text/plain": "widget"}, raw=True)
display({"text/markdown": "<script>%s</script>*md*", "text/plain": "md"}, raw=True)
print("pages attacked")
""" % ((PAGE_SCRIPT.replace('"', '\\\\"'),) * 5)
WIDGET_STATE = {"application/vnd.jupyter.widget-state+json": {
    "version_major": 2, "version_minor": 0,
    "state": {"m": {"model_name": "HTMLModel", "model_module": "@jupyter-widgets/controls",
                    "model_module_version": "2.0.0",
                    "state": {"value": "<script>%s</script></script><script>%s</script>" % (PAGE_SCRIPT, PAGE_SCRIPT)}}}}}

# The kernel reads what the instructor types and writes to the grader's terminal.
TTY = """
import fcntl
got = {}
def drain(fd, name):
    try:
        os.set_blocking(fd, False)
    except OSError as exc:
        got[name] = "set_blocking: " + type(exc).__name__
        return
    deadline = time.monotonic() + 4
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
            if chunk:
                data += chunk
            elif data == b"":
                got[name] = "eof"
                return
        except BlockingIOError:
            time.sleep(0.05)
        except OSError as exc:
            got[name] = type(exc).__name__
            return
    got[name] = data.decode("utf-8", "replace")[:2000]
for fd in (0, 1, 2):
    drain(fd, "fd%d" % fd)
attempt("open /dev/tty", lambda: os.open("/dev/tty", os.O_RDWR))
if _R["open /dev/tty"][0] == "ok":
    drain(int(_R["open /dev/tty"][1]), "tty")
_R["read"] = got
_R["isatty"] = [os.isatty(fd) for fd in (0, 1, 2)]
report("TTY")    # before the flood, which the output cap cuts
forged = b"\\x1b]0;PWNED-TITLE\\x07\\n[99/99] honest_a: 0/10 (ATTACK-TTY-FORGED)\\n"
flood = b"ATTACK-TTY-FLOOD " * 64 * 1024
for fd in (1, 2):
    attempt("write fd%d" % fd, lambda fd=fd: os.write(fd, forged) + sum(os.write(fd, flood) for _ in range(6)))
attempt("write __stderr__", lambda: sys.__stderr__.write(forged.decode()) and sys.__stderr__.flush())
"""

# Children made with CLONE_PARENT have the kernel's parent as theirs: a forked kernel's parent is
# outside its sandbox's process tree. Three of 900 MiB each hold 2.6 GiB against a 2 GiB limit.
CLONE_PARENT = """
import ctypes, mmap, signal
libc = ctypes.PyDLL(None, use_errno=True)   # the clone holds the GIL: a child that needs it has it
SYS_CLONE = {"x86_64": 56, "aarch64": 220}[os.uname().machine]
pids = []
ready, told = os.pipe()
# A raw clone copies the GIL's state as it is. A kernel thread that waited for the GIL longer
# than the switch interval has asked the holder to drop it; a child that inherits that request
# drops the GIL and waits forever for a thread it does not have (under load, one child in
# three hung, the other two held too little, and the cell ran out its time). So no thread may
# ask during the clones: a long interval, then two sleeps, to serve every thread that waits.
switch_interval = sys.getswitchinterval()
sys.setswitchinterval(30)
time.sleep(0.05)
time.sleep(0.05)
for _ in range(3):
    pid = libc.syscall(SYS_CLONE, 0x00008000 | signal.SIGCHLD, 0, 0, 0, 0)   # CLONE_PARENT
    if pid == 0:
        try:   # a raw clone runs no atfork handler: malloc's lock may be held by a kernel thread
            held = mmap.mmap(-1, 900 * 2**20)
            for i in range(0, len(held), 4096):
                held[i] = 1
            os.write(told, b"1")
            time.sleep(30)
        finally:
            os._exit(0)
    pids.append(pid)
sys.setswitchinterval(switch_interval)
os.close(told)
got = b""
while len(got) < 3:   # the memory is held while this cell runs, however slow a loaded machine is
    more = os.read(ready, 3)
    if not more:
        break
    got += more
time.sleep(6)
_R["children"] = pids
report("CLONEPARENT")
"""

# Every folder the kernel can write, then as much as it can into the ones that outlive it.
WRITE_EVERYWHERE = """
skip = ("/proc", "/sys")
writable = []
for d, dirs, files in os.walk("/"):
    dirs[:] = [x for x in dirs if not os.path.join(d, x).startswith(skip)]
    probe = os.path.join(d, ".adv-probe")
    try:
        with open(probe, "w") as f:
            f.write("x")
        os.unlink(probe)
        writable.append(d)
    except OSError:
        pass
print("WRITABLE " + json.dumps(writable), flush=True)
cwd = os.getcwd()
targets = [d for d in writable if "/jsbx-" in d or not d.startswith(("/tmp", "/dev/shm", cwd))]
def fill(folder):
    written = 0
    for i in range(8):
        try:
            with open(os.path.join(folder, "fill_%d.bin" % i), "wb") as f:
                for _ in range(128):
                    f.write(bytes(2**20))
                    written += 2**20
        except OSError:
            break
    return written
for d in targets:
    attempt("fill " + d, lambda d=d: fill(d))
report("EVERYWHERE")
"""

# Huge messages the grader would buffer whole: 6 of 128 MiB each.
BIG_MESSAGES = """
from IPython.display import display
for _ in range(6):
    display({"text/plain": "m" * (128 * 2**20)}, raw=True)
print("sent big messages")
"""


# A Block.forward that takes its output from the students' kit instead of computing it: the
# old kit's Block program first, then every function and class of the kit called with what a
# forward has; whatever of x's shape comes back is returned. The kit computes no output: 0.
KIT_CALL_BODY = '''
import importlib
kits = []
for name in ("gpt_selfcheck", "gpt_harness"):
    try:
        kits.append(importlib.import_module(name))
    except ImportError:
        pass
out = None
try:
    out = kits[0]._block_program(self, x, self.sa, self.ffwd, "post", "post", True, True, False, "ok")
except Exception:
    pass
if out is None and not getattr(type(self), "_asking_the_kit", False):
    type(self)._asking_the_kit = True
    try:
        for kit in kits:
            for name, function in list(vars(kit).items()):
                if out is not None or not callable(function) or name in ("main", "selfcheck"):
                    continue
                for args in ((self, x), (x, self), ("block", self, x), (self, x, self.sa, self.ffwd),
                             (type(self), self.n_embd, x)):
                    try:
                        result = function(*args)
                    except Exception:
                        continue
                    if torch.is_tensor(result) and result.shape == x.shape and not torch.equal(result, x):
                        out = result
                        break
    finally:
        type(self)._asking_the_kit = False
x = out if out is not None else x
'''

# Heads whose forward misbehaves whenever it runs (in its own test cell, in the hidden checks,
# and when a later notebook imports Head): each costs Head only, never the other four tasks.
HEAD_BODY = solution_body(read(ROOT / "source" / "gpt" / "01_head.ipynb"), "head")  # the reference's
# A Head with no dropout whose train mode adds 5 % random noise to the attention weights:
# random and unbiased, but not dropout: the forward's 1.5 points, not the dropout half-point.
NOISE_DROPOUT_BODY = HEAD_BODY.replace("wei = self.dropout(wei)", "if self.training:\n"
                                       "    wei = wei * (1 + 0.05 * torch.randn_like(wei))")
assert NOISE_DROPOUT_BODY != HEAD_BODY
MISBEHAVING_HEADS = {
    "adv_head_flood": "import sys\nsys.stdout.write('x' * (200 * 2**20))\n",
    "adv_head_exit": "import sys\nsys.exit(0)\n",
    "adv_head_os_exit": "import os\nos._exit(0)\n",
    "adv_head_wedge": "import time\nwhile True:\n    time.sleep(0.05)\n",
}


KILL_PARENT = "import os\nos.kill(os.getppid(), 9)"
KILL_INIT = "import os\nos.kill(1, 9)"
KILL_PKILL = ("import subprocess\nfor cmd in (['pkill', '-9', '-f', 'autograder'], ['pkill', '-9', '-f', 'python'],"
              " ['killall', '-9', 'python']):\n    subprocess.run(cmd)")
KILL_ALL = "import os\nos.kill(-1, 9)"
# Endless, in a class cell: the grader interrupts it. Both loops here wait rather than spin:
# the timeout is wall-clock, an interrupt reaches a waiting loop as it reaches a spinning one,
# and a spinning loop is test_interrupt_on_timeout's in tests/test_sandbox.py (3 s timeout);
# spinning here took 13 to 20 CPU-seconds each from the rest of the suite.
LOOP = "\n\nimport time\nwhile True:\n    time.sleep(0.05)\n"
# Deaf to interrupts: the grader must kill the kernel.
STUBBORN_LOOP = '''
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    try:
        while True:
            time.sleep(0.05)
    except BaseException:
        pass
'''


def guard(tag, code):
    """Run ``code`` only inside a sandbox (else report that it was skipped)."""
    return "if guarded(%r):\n" % tag + textwrap.indent(code.strip("\n") + "\n", "    ")


XSS_BODY = "raise RuntimeError('%s<img src=x onerror=alert(1)>')\n" % XSS


# ----------------------------------------------------------------- the class
# sid: (task started from the release or None, edits, tasks that must score 0, exact scores)
# edit: (notebook task, where, code); where: "before_tests", "end", "body", "solution_end", "tests"
ATTACKERS = {
    "adv_patch_compare": ("head", [("head", "before_tests", PATCH_COMPARE)], {"head"}, {}),
    "adv_patch_builtins": ("gpt_model", [("gpt_model", "before_tests", PATCH_BUILTINS)], {"gpt_model"}, {}),
    "adv_fabricated_forward": ("block", [("block", "body", FABRICATED_BODY)], {"block"}, {}),
    "adv_read_solutions": ("head", [("head", "before_tests", READ_SOLUTIONS)], {"head"}, {}),
    "adv_read_others": ("multihead", [("multihead", "before_tests", READ_OTHERS)], {"multihead"}, {}),
    "adv_write_outside": ("feedforward", [("feedforward", "end", guard("WRITE", WRITE_OUTSIDE))], {"feedforward"}, {}),
    "adv_probe_overwrite": ("head", [("head", "before_tests", PROBE_OVERWRITE)], {"head"}, {}),
    "adv_probe_symlink": ("feedforward", [("feedforward", "before_tests", guard("SYMLINK", PROBE_SYMLINK))], {"feedforward"}, {}),
    "adv_probe_malformed": ("block", [("block", "before_tests", PROBE_MALFORMED)], {"block"}, {}),
    "adv_patch_io": ("gpt_model", [("gpt_model", "before_tests", PATCH_IO)], {"gpt_model"}, {}),
    "adv_probe_detector": ("head", [("head", "body", DETECTOR_BODY)], {"head"}, {}),
    "adv_forged_grade_cells": ("head", [("head", "tests", None)], {"head"}, {}),
    "adv_xss": ("feedforward", [("feedforward", "body", XSS_BODY)], {"feedforward"}, {}),
    "adv_display_forge": (None, [("head", "body", DISPLAY_FORGE_BODY), ("head", "end", DISPLAY_FORGE_UPDATE)],
                          set(), {"head": 1.5}),
    # disruptive, after the test cells of a solved notebook
    "adv_killer": (None, [("head", "end", guard("KILL", KILL_PARENT)), ("head", "end", guard("KILL", KILL_INIT)),
                          ("multihead", "end", guard("KILL", KILL_PKILL)), ("block", "end", guard("KILL", KILL_ALL))],
                   set(), {}),
    "adv_exiter": (None, [("head", "end", "import sys\nsys.exit(0)"),
                          ("multihead", "end", "get_ipython().ask_exit()"),
                          ("feedforward", "end", "import os\nos._exit(0)")], set(), {}),
    "adv_loop_plain": (None, [("gpt_model", "solution_end", LOOP)], set(), {}),
    "adv_loop_stubborn": (None, [("multihead", "end", STUBBORN_LOOP)], set(), {}),
    "adv_memory": (None, [("feedforward", "end", guard("MEM", MEMORY)),
                    ("block", "end", guard("MEMCHILDREN", MEMORY_CHILDREN))], set(), {}),
    "adv_fork_flood": (None, [("block", "end", guard("FORK", FORK_FLOOD))], set(), {}),
    "adv_output_flood": (None, [("head", "end", OUTPUT_FLOOD), ("head", "end", DISPLAY_FLOOD)], set(), {}),
    # messages nbclient cannot handle, sent on the kernel's own channel: dropped, the rest graded
    "adv_bad_messages": (None, [("head", "end", BAD_MESSAGES), ("multihead", "before_tests", BAD_MESSAGES)],
                         set(), dict(FULL)),
    "adv_network": (None, [("multihead", "end", guard("NET", NETWORK))], set(), {}),
    "adv_symlink_plant": (None, [("gpt_model", "end", SYMLINK_PLANT)], set(), {}),
    "adv_disk_fill": (None, [("block", "end", DISK_FILL)], set(), {}),
    "adv_dangling_link": (None, [("gpt_model", "end", DANGLING)], set(), {}),
    # round 2
    "adv_cleanup_race": ("multihead", [("multihead", "before_tests", guard("RACESTART", CLEANUP_RACE)),
                                       ("gpt_model", "end", CLEANUP_RACE_REPORT)], {"multihead"},
                         dict(FULL, multihead=0.0)),
    "adv_pages": (None, [("head", "markdown", PAGE_MARKDOWN), ("head", "end", PAGE_OUTPUTS),
                         ("head", "metadata", WIDGET_STATE)], set(), dict(FULL)),
    "adv_tty": (None, [("head", "end", TTY)], set(), dict(FULL)),
    "adv_clone_parent": (None, [("block", "end", guard("CLONEPARENT", CLONE_PARENT))], set(), dict(FULL)),
    "adv_write_everywhere": (None, [("gpt_model", "end", guard("EVERYWHERE", WRITE_EVERYWHERE))], set(),
                             dict(FULL)),
    "adv_big_messages": (None, [("head", "end", BIG_MESSAGES)], set(), dict(FULL)),
    "adv_kit_call": ("block", [("block", "body", KIT_CALL_BODY)], {"block"}, dict(FULL, block=0.0)),
    "adv_noise_dropout": ("head", [("head", "body", NOISE_DROPOUT_BODY)], set(), dict(FULL, head=1.5)),
    **{sid: ("head", [("head", "body", bad + HEAD_BODY)], {"head"}, dict(FULL, head=0.0))
       for sid, bad in MISBEHAVING_HEADS.items()},
}
HONEST = {"honest_a": {}, "honest_b": {}, "honest_no_scale": {"head": 0.0}}


def _code(source):
    return nbformat.v4.new_code_cell(source)


def _forge_grade_cells(nb):
    """Test cell emptied and worth 100; a bonus grade cell; a duplicate test cell."""
    tests = find_cell(nb, "head_tests")
    tests.source = "print('ok')"
    tests.metadata["nbgrader"]["points"] = 100
    bonus = _code("pass")
    bonus.metadata["nbgrader"] = dict(tests.metadata["nbgrader"], grade_id="head_bonus", points=100)
    duplicate = _code("print('всё верно')")
    duplicate.metadata["nbgrader"] = dict(tests.metadata["nbgrader"])
    other = _code("pass")
    other.metadata["nbgrader"] = dict(tests.metadata["nbgrader"], grade_id="gpt_model_tests", points=4)
    nb.cells += [bonus, duplicate, other]


def _apply(folder, task, where, code, prelude):
    path = folder / f"{NOTEBOOK_OF_TASK[task]}.ipynb"
    nb = read(path)
    if where == "body":
        paste_body(nb, task, code)
    elif where == "solution_end":
        find_cell(nb, task + "_solution").source += code
    elif where == "tests":
        _forge_grade_cells(nb)
    elif where == "markdown":
        nb.cells.append(nbformat.v4.new_markdown_cell(code))
    elif where == "metadata":
        nb.metadata["widgets"] = code
    else:
        cell = _code(prelude + code)
        if where == "end":
            nb.cells.append(cell)
        else:
            nb.cells.insert(nb.cells.index(find_cell(nb, task + "_tests")), cell)
    nbformat.write(nb, str(path))


def build(base, subs, out, canary):
    made = demo.build_class(base / "demo")
    reference, release = made / "student_reference", ROOT / "release" / "gpt"
    subs.mkdir(parents=True)
    shutil.copytree(reference, subs / "honest_a")
    shutil.copytree(reference, subs / "honest_b")
    shutil.copytree(made / "student_no_scale", subs / "honest_no_scale")
    planter = "PLANTER_SOURCE = %r\n" % PLANTER
    prelude = (PRELUDE.replace("@ROOT@", repr(str(ROOT))).replace("@OUT@", repr(str(out)))
               .replace("@SUBS@", repr(str(subs))).replace("@CANARY@", repr(str(canary))) + planter)
    for sid, (from_release, edits, _, _) in ATTACKERS.items():
        shutil.copytree(reference, subs / sid)
        if from_release:
            name = NOTEBOOK_OF_TASK[from_release]
            shutil.copy(release / f"{name}.ipynb", subs / sid / f"{name}.ipynb")
        for task, where, code in edits:
            if where == "body" and not from_release:   # a body replaces the release stub
                name = NOTEBOOK_OF_TASK[task]
                shutil.copy(release / f"{name}.ipynb", subs / sid / f"{name}.ipynb")
            _apply(subs / sid, task, where, code, prelude)


# ----------------------------------------------------------------- host snapshots
def _digest_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_state(root):
    """{relative path: (kind or content hash, mode, uid)} of a tree (no __pycache__)."""
    state = {}
    root = pathlib.Path(root)
    if not root.exists():
        return state
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in dirnames + filenames:
            path = pathlib.Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                what = "link:" + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                what = _digest_file(path)
            else:
                what = "dir"
            state[str(path.relative_to(root))] = (what, stat.S_IMODE(st.st_mode), st.st_uid)
    return state


def file_state(path):
    st = os.lstat(path)
    return (_digest_file(path), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, stat.S_ISLNK(st.st_mode))


def host_state(subs, canary):
    git = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                         capture_output=True, text=True)
    return {
        "trees": {name: tree_state(ROOT / name) for name in ("source", "autograder", "release", "data")},
        "git": git.stdout if git.returncode == 0 else None,
        "subs": tree_state(subs),
        "canary": file_state(canary),
        "canary_dir": sorted(os.listdir(canary.parent)),
        "canary_dir_mode": (stat.S_IMODE(os.stat(canary.parent).st_mode), os.stat(canary.parent).st_uid),
        "passwd": file_state("/etc/passwd"),
    }


def _restore_modes(before):
    """Put back file modes a vulnerable grader changed (e.g. chmod through a planted link)."""
    for name, tree in before["trees"].items():
        for rel, (_, mode, _) in tree.items():
            path = ROOT / name / rel
            try:
                if not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) != mode:
                    path.chmod(mode)
            except OSError:
                pass


# ----------------------------------------------------------------- the run
def run_at_a_terminal(command, typed, timeout):
    """Run ``command`` as an instructor would, in a terminal (a pseudo-terminal it controls),
    while someone types ``typed`` into it every half second; (returncode, every byte shown)."""
    import pty
    import types
    master, slave = pty.openpty()
    proc = subprocess.Popen(["setsid", "--ctty", *command], stdin=slave, stdout=slave, stderr=slave,
                            cwd=ROOT, close_fds=True)
    os.close(slave)
    os.set_blocking(master, False)  # a full input queue must not stop the typing loop
    shown = bytearray()

    def read():
        while True:
            try:
                chunk = os.read(master, 65536)
            except BlockingIOError:
                time.sleep(0.05)
                continue
            except OSError:  # the terminal closed with its last process
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            os.write(master, (typed + "\n").encode())
        except OSError:
            pass
        time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    reader.join(10)
    os.close(master)
    text = bytes(shown).decode("utf-8", "replace")
    return types.SimpleNamespace(returncode=proc.returncode, output=bytes(shown), stdout=text, stderr=text)


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    base = tmp_path_factory.mktemp("adversarial")
    subs, out = base / "submissions", base / "out"
    canary_dir = pathlib.Path(tempfile.mkdtemp(prefix="adv-canary-", dir="/tmp"))
    canary_dir.chmod(0o755)
    canary = canary_dir / "canary"
    token = "canary-" + secrets.token_hex(16)
    canary.write_text(token)
    canary.chmod(0o666)               # writable by anyone who can reach it
    build(base, subs, out, canary)
    before = host_state(subs, canary)
    typed = "typed-by-the-instructor-" + secrets.token_hex(8)
    try:
        # three at once: a few attackers wait out their timeouts, which costs wall time, not CPU
        proc = run_at_a_terminal([sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out),
                                  "--cell-timeout", str(CELL_TIMEOUT), "--jobs", "3"], typed, timeout=GIVE_UP_S)
        after = host_state(subs, canary)
        (base / "grader.log").write_bytes(proc.output)
    finally:
        _restore_modes(before)   # undo what a vulnerable grader did to the repository (after the snapshot)
    rows = {}
    if (out / "grades.csv").is_file():
        rows = {r["student_id"]: r for r in csv.DictReader(open(out / "grades.csv", encoding="utf-8"))}
    secret = (out / "secret.txt").read_text().strip() if (out / "secret.txt").is_file() else None
    yield dict(proc=proc, rows=rows, out=out, subs=subs, canary=canary, token=token, typed=typed,
               before=before, after=after, secret=secret)
    shutil.rmtree(canary_dir, ignore_errors=True)


def _workdir_prefix(out, sid):
    return str(out / "course" / "work" / f"grade-{sid}-")


def attack_lines(out, sid, task):
    """[(tag, report, whole output text)] the attacker printed in the notebook of ``task``."""
    path = out / "course" / "autograded" / sid / "gpt" / f"{NOTEBOOK_OF_TASK[task]}.ipynb"
    if not path.is_file():
        return []
    found = []
    for cell in nbformat.read(str(path), as_version=4).cells:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            for line in text.splitlines():
                if line.startswith("ATTACK-") and " " in line:
                    tag, _, payload = line.partition(" ")
                    try:
                        found.append((tag[len("ATTACK-"):], json.loads(payload), text))
                    except ValueError:
                        pass
    return found


def attack_report(out, sid, task, tag):
    """The ``ATTACK-<tag>`` report of ``sid`` in the notebook of ``task`` (fails if missing or skipped)."""
    for found, report, text in attack_lines(out, sid, task):
        if found == tag:
            if "_skipped" in report:
                pytest.fail(f"{sid}: attack {tag} not run, its kernel was not sandboxed ({report})")
            return report, text
    pytest.fail(f"{sid}: the attack cell did not report ATTACK-{tag} in {NOTEBOOK_OF_TASK[task]}")


def _score(row, task):
    return float(row[task])


# ----------------------------------------------------------------- tests
def test_grader_finishes_and_grades_everyone(attacked):
    proc = attacked["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert set(attacked["rows"]) == set(HONEST) | set(ATTACKERS)


def test_kernels_run_in_the_sandbox(attacked):
    """Every attack cell that ran says where it ran: never as root, never beside the repository."""
    out, reports = attacked["out"], []
    for sid in ATTACKERS:
        for task in TASKS:
            reports += [(sid, tag, r) for tag, r, _ in attack_lines(out, sid, task)]
    assert len(reports) >= 5, reports
    outside = [(sid, tag, r.get("_uid")) for sid, tag, r in reports if r.get("_sandboxed") is not True]
    assert not outside, f"kernels ran outside the sandbox (sid, attack, uid): {outside}"
    if os.geteuid() == 0:
        assert all(r.get("_uid") == SandboxedKernelManager().sandbox_uid for _, _, r in reports)


@pytest.mark.parametrize("sid", sorted(HONEST))
def test_honest_students_get_their_usual_points(attacked, sid):
    row = attacked["rows"][sid]
    want = dict(FULL, **HONEST[sid])
    assert {t: _score(row, t) for t in TASKS} == want, row
    assert float(row["total"]) == sum(want.values())
    if sid != "honest_no_scale":
        assert row["status"] == "ok", row


@pytest.mark.parametrize("sid", sorted(ATTACKERS))
def test_attacker_earns_nothing_unearned(attacked, sid):
    _, _, zero, exact = ATTACKERS[sid]
    row = attacked["rows"][sid]
    for task in TASKS:
        got = _score(row, task)
        if task in zero:
            assert got == 0.0, f"{sid} got {got} for {task}, which it did not solve ({row})"
        elif task in exact:
            assert got == exact[task], f"{sid} got {got} for {task}, it earned {exact[task]} ({row})"
        else:
            assert 0.0 <= got <= FULL[task], (sid, task, row)
    assert float(row["total"]) == pytest.approx(sum(_score(row, t) for t in TASKS))


# Disruptive attackers: the row names what stopped them, in the notebook where it happened.
STATUS = {
    "adv_loop_plain": "timeout in 05_gpt_model",
    "adv_loop_stubborn": "timeout in 02_multihead_attention",
    "adv_memory": "memory limit in 04_block",
    "adv_disk_fill": "disk limit in 04_block",
    "adv_exiter": "kernel died in 03_feedforward",
    "adv_bad_messages": "malformed kernel message dropped in 02_multihead_attention",
    "adv_clone_parent": "memory limit in 04_block",
    "adv_write_everywhere": "disk limit in 05_gpt_model",
}


@pytest.mark.parametrize("sid", sorted(STATUS))
def test_status_names_the_limit_and_the_notebook(attacked, sid):
    assert STATUS[sid] in attacked["rows"][sid]["status"], attacked["rows"][sid]


def test_forged_replies_failed_only_their_cells(attacked):
    """adv_bad_messages forged an execute_reply in 01 and 02: those cells carry the protocol
    error, the surrogate text was written, and every task still has its points (row above)."""
    folder = attacked["out"] / "course" / "autograded" / "adv_bad_messages" / "gpt"
    for name in ("01_head", "02_multihead_attention"):
        text = (folder / f"{name}.ipynb").read_text(encoding="utf-8")
        assert "KernelProtocolError" in text, name
    assert "bad ? text" in (folder / "01_head.ipynb").read_text(encoding="utf-8")


def test_gradebook_agrees_with_grades_csv(attacked):
    """No forged scores: the course gradebook holds what the grader computed, out of 10."""
    from nbgrader.api import Gradebook
    rows, out = attacked["rows"], attacked["out"]
    for db in (out / "course" / "gradebook.db", out / "gradebook.db"):
        with Gradebook(f"sqlite:///{db}") as gb:
            assert gb.find_assignment("gpt").max_score == 10
            for sid, row in rows.items():
                submission = gb.find_submission("gpt", sid)
                assert submission.max_score == 10, sid
                assert submission.score == pytest.approx(float(row["total"])), (db.name, sid, row)


def test_repository_trees_unchanged(attacked):
    before, after = attacked["before"], attacked["after"]
    for name in before["trees"]:
        b, a = before["trees"][name], after["trees"][name]
        changed = sorted(k for k in set(b) | set(a) if b.get(k) != a.get(k))
        assert not changed, f"{name}/ changed during grading: {[(k, b.get(k), a.get(k)) for k in changed[:10]]}"
    assert before["git"] == after["git"], (before["git"], after["git"])
    assert not (ROOT / "pwned.txt").exists()


def test_no_file_of_the_sandbox_user_in_the_repository(attacked):
    uid = SandboxedKernelManager().sandbox_uid
    owned = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in (".git", ".venv", "build")]
        owned += [os.path.join(dirpath, f) for f in dirnames + filenames
                  if os.lstat(os.path.join(dirpath, f)).st_uid == uid]
    assert not owned, owned[:10]


def test_canary_and_system_files_intact(attacked):
    before, after = attacked["before"], attacked["after"]
    assert after["canary"] == before["canary"], f"canary changed: {before['canary']} -> {after['canary']}"
    assert attacked["canary"].read_text() == attacked["token"]
    assert after["canary_dir"] == before["canary_dir"] == ["canary"]
    assert after["passwd"] == before["passwd"]


def test_other_submissions_unchanged(attacked):
    before, after = attacked["before"]["subs"], attacked["after"]["subs"]
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, changed[:10]


def _scanned_files(out):
    excluded = [out / "course" / "source", out / "course" / "reference", out / "course" / "gradebook.db",
                out / "gradebook.db", out / "secret.txt"]
    for path in sorted(out.rglob("*")):
        if path.is_file() and not path.is_symlink() and not any(
                path == e or e in path.parents for e in excluded):
            yield path


def _contains(path, needles):
    found, tail, width = set(), b"", max(len(n) for n in needles)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(8 * 2**20), b""):
            block = tail + chunk
            found.update(n for n in needles if n in block)
            tail = block[-width:]
    return found


def test_no_instructor_text_in_any_output(attacked):
    out = attacked["out"]
    needles = MARKERS + [attacked["token"].encode()] + ([attacked["secret"].encode()] if attacked["secret"] else [])
    leaks = {}
    for path in _scanned_files(out):
        found = _contains(path, needles)
        if found:
            leaks[str(path.relative_to(out))] = sorted(found)
    assert not leaks, leaks


def test_no_hidden_tests_in_what_students_and_report_get(attacked):
    out = attacked["out"]
    student_facing = [p for p in _scanned_files(out)
                      if p.relative_to(out).parts[0] in ("feedback", "grades.csv", "report.html", "state.json")
                      or p.relative_to(out).parts[:2] == ("course", "feedback")]
    assert len(student_facing) > 5 * len(attacked["rows"])
    leaks = {str(p.relative_to(out)): sorted(f) for p in student_facing if (f := _contains(p, HIDDEN_MARKERS))}
    assert not leaks, leaks


def test_feedback_and_report_escape_student_html(attacked):
    out = attacked["out"]
    for path in [out / "report.html", *out.rglob("*.html")]:
        assert XSS.encode() not in path.read_bytes(), path


def test_reads_outside_the_sandbox_fail(attacked):
    r, _ = attack_report(attacked["out"], "adv_read_solutions", "head", "READ")
    reads = {k: v for k, v in r.items() if k.startswith("read ") or k == "import_reference"}
    assert len(reads) >= 10
    assert all(v[0] != "ok" for v in reads.values()), {k: v for k, v in reads.items() if v[0] == "ok"}


def test_hidden_test_source_not_readable_by_the_kernel(attacked):
    """The sanitized notebook nbgrader writes into the kernel's folder holds the hidden tests."""
    r, _ = attack_report(attacked["out"], "adv_read_solutions", "head", "READ")
    assert not [k for k in r if k.startswith("hidden_in ")], r


def test_other_students_are_invisible(attacked):
    out = attacked["out"]
    r, text = attack_report(out, "adv_read_others", "multihead", "OTHERS")
    found = json.loads(next(line for line in text.splitlines() if line.startswith("FOUND "))[6:])
    own = _workdir_prefix(out, "adv_read_others")
    # the folders on the way to its own one are empty mount points, not others' work
    foreign = [p for p in found if p.startswith(str(out)) and not p.startswith(own)
               and not own.startswith(p.rstrip("/") + "/")]
    foreign += [p for p in found if str(attacked["subs"]) in p]
    assert not foreign, foreign[:10]
    assert not [k for k, v in r.items() if (k.startswith("steal ") and v == ["ok", "stolen"])
                or k.startswith("sqlite ") and v[0] == "ok"], r


def test_writes_outside_the_sandbox_fail(attacked):
    r, _ = attack_report(attacked["out"], "adv_write_outside", "feedforward", "WRITE")
    assert len(r) > 30
    succeeded = {k: v for k, v in r.items() if not k.startswith("_") and v[0] == "ok"}
    assert not succeeded, succeeded


def test_network_is_unreachable(attacked):
    r, _ = attack_report(attacked["out"], "adv_network", "multihead", "NET")
    assert r["interfaces"] == ["lo"], r
    attempts = {k: v for k, v in r.items() if k != "interfaces" and not k.startswith("_")}
    assert len(attempts) == 6
    assert all(v[0] != "ok" for v in attempts.values()), attempts


def test_process_limit_holds(attacked):
    r, _ = attack_report(attacked["out"], "adv_fork_flood", "block", "FORK")
    assert r["spawned"] + r["threads"] < SandboxedKernelManager().max_processes, r
    assert r["failed"] > 0, r


def test_memory_limit_holds_in_one_process(attacked):
    r, _ = attack_report(attacked["out"], "adv_memory", "feedforward", "MEM")
    for key in ("bytearray 8 GiB", "torch.empty(2**31)", "numpy 8 GiB"):
        assert r[key][0] != "ok", (key, r[key])
    assert r["grow_mib"] <= SandboxedKernelManager().memory_limit_mb, r


def test_memory_limit_holds_for_the_whole_sandbox(attacked):
    """RLIMIT_DATA is per process: can three children hold 1.5 GiB each at once?

    Either the children fail to get the memory, or the sandbox is killed (the
    attack cell then never reports, and the row says why).
    """
    if not any(tag == "MEMCHILDREN" for tag, _, _ in attack_lines(attacked["out"], "adv_memory", "block")):
        assert "memory limit in 04_block" in attacked["rows"]["adv_memory"]["status"], attacked["rows"]["adv_memory"]
        return
    r, _ = attack_report(attacked["out"], "adv_memory", "block", "MEMCHILDREN")
    held = r["children_holding_1536_mib"] * 1536
    assert held <= SandboxedKernelManager().memory_limit_mb, \
        f"the sandbox held {held} MiB in child processes, over the {SandboxedKernelManager().memory_limit_mb} MiB limit"


def _attacker_bytes(out, sid):
    return {str(p.relative_to(out)): p.stat().st_size for p in out.rglob("*")
            if sid in p.parts and p.is_file() and not p.is_symlink()}


def test_output_flood_is_bounded(attacked):
    sizes = _attacker_bytes(attacked["out"], "adv_output_flood")
    big = {k: v for k, v in sizes.items() if v > 10 * 2**20}
    assert not big, f"output flood reached OUT: {big}"
    page = attacked["out"] / "feedback" / "adv_output_flood" / "01_head.html"
    assert "вывод обрезан" in page.read_text(encoding="utf-8"), "the feedback does not say the output was cut"


def test_student_files_do_not_fill_the_disk(attacked):
    """300 MB into its folder: the sandbox is stopped at its disk limit, nothing reaches OUT."""
    row = attacked["rows"]["adv_disk_fill"]
    assert "disk limit in 04_block" in row["status"], row
    sizes = _attacker_bytes(attacked["out"], "adv_disk_fill")
    total = sum(sizes.values())
    assert total < 50 * 2**20, f"{total / 2**20:.0f} MiB of the student's files in OUT: " \
                               f"{sorted(sizes.items(), key=lambda kv: -kv[1])[:6]}"


def test_planted_symlinks_are_not_followed(attacked):
    """The kernel may make links in its folder; the grader must not read, copy or chmod through them."""
    r, _ = attack_report(attacked["out"], "adv_symlink_plant", "gpt_model", "LINKS")
    out = attacked["out"]
    copied = [str(p.relative_to(out)) for p in out.rglob("leak_*")]
    assert not copied, copied


def test_display_update_cannot_raise_a_partial_score(attacked):
    r, _ = attack_report(attacked["out"], "adv_display_forge", "head", "FORGE")
    assert _score(attacked["rows"]["adv_display_forge"], "head") == 1.5, attacked["rows"]["adv_display_forge"]



# ----------------------------------------------------------------- round 2
def test_a_race_against_the_clean_up_leaves_the_canary_folder(attacked):
    """The kernel swapped the folders the grader removes for links to the canary's folder while
    it removed them; the canary folder keeps its mode, owner and contents."""
    r, _ = attack_report(attacked["out"], "adv_cleanup_race", "gpt_model", "RACE")
    assert r["swaps"] > 10, r    # the race ran while the grader cleaned up
    before, after = attacked["before"], attacked["after"]
    assert after["canary_dir_mode"] == before["canary_dir_mode"] == (0o755, 0)
    assert after["canary_dir"] == before["canary_dir"] and after["canary"] == before["canary"]


def _pages(out):
    return [out / "report.html", *sorted((out / "feedback").rglob("*.html"))]


def test_every_page_carries_a_policy_before_anything_else(attacked):
    for path in _pages(attacked["out"]):
        head = path.read_text(encoding="utf-8").split("<head>", 1)[1].lstrip()
        assert head.startswith("<meta") and "Content-Security-Policy" in head.split(">", 1)[0], path


def test_no_student_script_runs_in_the_pages(attacked):
    """The attacker's feedback pages, opened in Chromium from disk and served over HTTP beside
    the report (as the README suggests): no script of the student's runs, nothing reads secret.txt."""
    import browser
    if browser.missing():
        pytest.skip(browser.missing())
    out = attacked["out"]
    pages = sorted((out / "feedback" / "adv_pages").glob("*.html")) + [out / "feedback" / "adv_xss" / "03_feedforward.html"]
    assert len(pages) >= 6
    requests = []
    browser.SHOTS.mkdir(parents=True, exist_ok=True)
    with browser.chromium() as chromium, browser.served(out, requests) as base:
        for path in pages:
            for url in (path.as_uri(), f"{base}/{path.relative_to(out).as_posix()}"):
                errors, external = [], []
                page = browser.open_page(chromium, url, errors, external)
                page.wait_for_timeout(300)
                assert page.title() != "PWNED" and page.evaluate("typeof window.__pwned") == "undefined", url
                assert page.locator("#pwned").count() == 0, url
                assert not external, (url, external)
                if path.stem == "01_head" and url.startswith("http"):
                    page.screenshot(path=str(browser.SHOTS / "adversarial-pages-01_head.png"), full_page=False)
                page.close()
    assert not [r for r in requests if "secret" in r], requests


def test_the_terminal_is_the_graders_alone(attacked):
    """Typed into the grader's terminal while it ran: no kernel read it; what a kernel wrote to its
    descriptors (6 MiB, a title escape, a forged progress line) never reached the terminal."""
    r, _ = attack_report(attacked["out"], "adv_tty", "head", "TTY")
    assert attacked["typed"] not in json.dumps(r), r
    assert r["isatty"] == [False, False, False] and r["open /dev/tty"][0] != "ok", r
    shown = attacked["proc"].output
    for marker in (b"ATTACK-TTY", b"PWNED-TITLE", b"ATTACK-"):
        assert marker not in shown, marker
    assert len(shown) < 2**20, len(shown)
    assert attacked["typed"].encode() in shown    # the terminal did echo what was typed: the check can fail


def test_clone_parent_children_count_against_the_sandbox(attacked):
    """Three 900 MiB children made with CLONE_PARENT (parent outside a forked kernel's tree) are
    counted by the pid namespace: the sandbox is killed; the attacker keeps its points."""
    row = attacked["rows"]["adv_clone_parent"]
    assert "memory limit in 04_block" in row["status"], row


def test_writes_are_bounded_wherever_the_kernel_can_write(attacked):
    """The kernel can write its own folder, its connection folder and its private /tmp and
    /dev/shm (size-capped tmpfs), nothing else; filling the connection folder stops the sandbox."""
    path = attacked["out"] / "course" / "autograded" / "adv_write_everywhere" / "gpt" / "05_gpt_model.ipynb"
    text = "".join(o.get("text", "") for c in nbformat.read(str(path), as_version=4).cells
                   for o in c.get("outputs", []))
    writable = json.loads(next(line for line in text.splitlines() if line.startswith("WRITABLE "))[9:])
    own = _workdir_prefix(attacked["out"], "adv_write_everywhere")
    allowed = ("/tmp", "/dev/shm", own)
    assert all(d.startswith(allowed) for d in writable), writable
    assert any("jsbx-" in d for d in writable), writable      # the connection folder: counted
    row = attacked["rows"]["adv_write_everywhere"]
    assert "disk limit in 05_gpt_model" in row["status"], row


def test_oversized_messages_cost_nothing_else(attacked):
    row = attacked["rows"]["adv_big_messages"]
    assert float(row["total"]) == 10, row


def test_a_forward_that_asks_the_kit_earns_nothing(attacked):
    row = attacked["rows"]["adv_kit_call"]
    assert _score(row, "block") == 0 and float(row["total"]) == 8, row


def test_noise_is_not_dropout(attacked):
    """Random, unbiased noise in train mode is not dropout's signature: no dropout half-point."""
    row = attacked["rows"]["adv_noise_dropout"]
    assert _score(row, "head") == 1.5 and float(row["total"]) == 9.5, row


@pytest.mark.parametrize("sid, key", [("adv_head_exit", "probe_exit"), ("adv_head_wedge", "probe_timeout"),
                                      ("adv_head_os_exit", "probe_kernel_died"), ("adv_head_flood", None)])
def test_a_misbehaving_head_costs_head_alone_and_is_named_by_what_it_did(attacked, sid, key):
    """A Head that exits, wedges, kills or floods its kernel whenever it runs: 0 for Head, full
    points for the four others (later notebooks import Head), and Head's mistake says what it did."""
    row = attacked["rows"][sid]
    assert {t: _score(row, t) for t in TASKS} == dict(FULL, head=0.0), row
    state = json.loads((attacked["out"] / "state.json").read_text(encoding="utf-8"))
    keys = [k for k, _ in state["students"][sid]["tasks"]["head"]["mistakes"]]
    if key is not None:
        assert keys == [key], keys
    else:  # the flood: its exception or the output cut, never a list of possible causes
        assert keys and "probe_failed" not in keys, keys
