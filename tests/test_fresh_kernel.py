"""A new grading kernel skips IPython's second, verbose formatting of each error (kernel/fresh_kernel.py).

The setup code the worker sends (``KernelSession.setup_code``) runs in a real IPython shell, in a
process of its own: errors are still shown in full, and what the history stores of them has
no traceback (the formatting that cost 0.3 to 0.5 CPU-s a failing student).
"""
import json
import re
import subprocess
import sys

from autograder.worker.kernel_session import KernelSession

SHELL = r'''
import json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
setup = sys.stdin.read()
results = {}
def failing_cells():
    shell.run_cell("def inner():\n    raise ValueError('from the student')\ninner()", store_history=True)
    class Odd(Exception):
        def __str__(self):
            raise RuntimeError("no text")
    shell.user_ns["Odd"] = Odd
    shell.run_cell("raise Odd()", store_history=True)
    return [shell.history_manager.exceptions.get(n) for n in sorted(shell.history_manager.exceptions)]
results["before"] = failing_cells()
shell.history_manager.exceptions.clear()
assert shell.run_cell(setup, store_history=False).success
results["after"] = failing_cells()
print("RESULTS " + json.dumps(results, default=str))
'''


def _run():
    done = subprocess.run([sys.executable, "-c", SHELL], input=KernelSession.setup_code(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):]), re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)


def test_errors_are_shown_in_full_and_stored_without_their_traceback():
    results, shown = _run()
    before, after = results["before"], results["after"]
    # IPython itself stores the verbose traceback (what the setup skips)
    assert before[0]["ename"] == "ValueError" and any("inner" in line for line in before[0]["traceback"])
    assert after[0] == {"ename": "ValueError", "evalue": "from the student", "traceback": []}
    assert after[1] == {"ename": "Odd", "evalue": "", "traceback": []}  # its __str__ raised: no text
    # the error the student sees is formatted as before, frames and all, each time
    assert shown.count("ValueError: from the student") == 2 and shown.count("inner()") >= 2
