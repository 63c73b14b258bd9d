"""The holder of a sandbox a kernel is forked into: bwrap's command, pid 2 of the sandbox.

RUNS INSIDE THE SANDBOX, standard library only (``python -I -S holder.py CONFIG_JSON
READY_FD KERNEL_FD``) when the kernel comes from the zygote. It enters the sandbox as the
kernel will (enter.py), says so on READY_FD, reads the kernel's pid in the sandbox from
KERNEL_FD (the grader writes it once the zygote has forked the kernel in), and waits on
that pid's pidfd. When the kernel ends the holder ends, bwrap's pid 1 with it and so the
namespace and everything left in it; bwrap's exit tells jupyter_client the kernel died.
Killing bwrap kills its pid 1 (--die-with-parent) and so the whole sandbox. Nothing polls.
"""
import importlib.util
import json
import os
import select
import sys


def _enter():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "enter.py")
    spec = importlib.util.spec_from_file_location("sandbox_enter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.enter_sandbox


def main(argv):
    config, ready, kernel = json.loads(argv[1]), int(argv[2]), int(argv[3])
    low, high = sorted((ready, kernel))
    for start, stop in ((3, low), (low + 1, high), (high + 1, os.sysconf("SC_OPEN_MAX"))):
        os.closerange(start, stop)  # nothing of bwrap's or the grader's beyond its two pipes
    _enter()(config)
    os.write(ready, b"ready")
    os.close(ready)
    with os.fdopen(kernel, "rb") as f:
        line = f.readline()  # blocks until the grader writes; empty if it gave up
    if not line.strip().isdigit():
        sys.exit("sandbox: no kernel came")
    pidfd = os.pidfd_open(int(line))
    select.select([pidfd], [], [])


if __name__ == "__main__":
    main(sys.argv)
