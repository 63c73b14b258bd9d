"""Run by tests/test_grader.py in a fresh process, as the grade command runs: does the local pool
fork its workers from this process, and do they grade?

``python tests/fork_probe.py single|threaded OUT`` prints one JSON object: what ``fork_workers``
answered, this process's children right after it (their command lines) and, single-threaded,
the record of an untouched submission graded by those workers. ``threaded`` starts a thread
first, as a service does (its workers come from the fork server, as the service's and the Dask
workers' do in their own tests).
"""
import json
import os
import pathlib
import sys
import threading

import processes  # tests/processes.py, beside this file
import autograder.__main__  # noqa: F401  (the command's own thread settings, before numpy is imported)
from autograder.classrun import collect, executor, gradebook, staging


def children():
    """{pid: command line} of this process's children."""
    return {str(pid): " ".join(argv) for pid, (parent, argv) in processes.table().items() if parent == os.getpid()}


def main(mode, out):
    stop = threading.Event()
    if mode == "threaded":
        threading.Thread(target=stop.wait, daemon=True).start()
    record = None
    with executor.open_executor("", 1) as local:
        forked = local.fork_workers(sandbox=False)
        forked_children = children()
        if forked:
            course, _ = gradebook.prepare(pathlib.Path(out), "probe")
            (course / "work").mkdir()
            staging.stage(collect.Student("s1", {}), course)
            settings = executor.Settings("secret", 10, False, "fp", "fp")
            (sid, found), = local.grade(course, ["s1"], settings)
            record = found.record.to_json()
    stop.set()
    me = open("/proc/self/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()
    print(json.dumps({"forked": forked, "children": forked_children, "me": me, "record": record}))


if __name__ == "__main__":
    main(*sys.argv[1:])
