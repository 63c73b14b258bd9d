"""bench/suite_cpu.py's breakdown of sampled processes (fast: made-up process records)."""
import importlib.util

from autograder.course import ROOT

spec = importlib.util.spec_from_file_location("suite_cpu", ROOT / "bench" / "suite_cpu.py")
suite_cpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(suite_cpu)


def process(pid, ppid, cmd, cpu, seen):
    return {"pid": pid, "ppid": ppid, "cmd": cmd, "cpu": cpu, "seen": seen, "base": 0.0}


def test_a_grading_command_takes_all_it_starts_and_is_put_to_the_test_that_ran():
    tests = [{"id": "tests/test_a.py::test_one", "pid": 10, "start": 100.0, "end": 150.0},
             {"id": "tests/test_a.py::test_two", "pid": 10, "start": 150.0, "end": 200.0}]
    found = [process(10, 1, "python -m xdist worker", 4.0, 90.0),
             process(20, 10, "python -m autograder grade subs --out out", 3.0, 160.0),
             process(21, 20, "python -c from multiprocessing.forkserver import main", 2.0, 161.0),
             process(22, 21, "python /r/autograder/worker/sandbox/programs/zygote_server.py 4", 5.0, 162.0),
             process(30, 10, "/usr/lib/chromium/chromium --headless", 7.0, 120.0),
             process(40, 10, "python -m ipykernel_launcher -f k.json", 1.5, 110.0),
             process(50, 1, "[kworker/0:1]", 0.5, 0.0),
             # pid 20 again, later: another command reusing the pid, from no test
             process(20, 1, "python -m autograder grade again", 1.0, 400.0)]
    processes = {(p["pid"], i): p for i, p in enumerate(found)}
    kinds, others, runs = suite_cpu.breakdown(processes, tests)
    assert kinds == {"grading commands (all they start)": 11.0, "test processes": 4.0, "Chromium": 7.0,
                     "kernel outside grading": 1.5, "other": 0.5}
    assert others == {"[kworker/0:1]": 0.5}
    assert runs == [(10.0, "tests/test_a.py::test_two"), (1.0, "(no test)")]


def test_cpu_by_test_splits_a_test_process_by_its_samples_and_gives_children_to_the_test_that_started_them():
    tests = [{"id": "t::one", "pid": 10, "start": 100.0, "end": 150.0},
             {"id": "t::two", "pid": 10, "start": 150.0, "end": 200.0}]
    worker = process(10, 1, "python -m xdist worker", 6.0, 90.0)
    worker["samples"] = [(95.0, 0.5), (120.0, 2.0), (170.0, 6.0)]     # 0.5 before any test
    found = [worker,
             process(20, 10, "python -m autograder grade subs", 3.0, 140.0),
             process(21, 20, "zygote_server.py", 2.0, 160.0),        # started during test two, by one's command
             process(40, 10, "python -m ipykernel_launcher", 1.5, 180.0),
             process(41, 10, "python -m ipykernel_launcher", 2.5, 150.5),  # two's, just after one ended
             process(42, 10, "python -m ipykernel_launcher", 0.25, 200.5),  # seen late: two's still
             process(50, 1, "[kworker/0:1]", 0.5, 0.0)]
    totals = suite_cpu.cpu_by_test({(p["pid"], i): p for i, p in enumerate(found)}, tests)
    assert totals == {"(no test)": 0.5, "t::one": 1.5 + 3.0 + 2.0, "t::two": 4.0 + 1.5 + 2.5 + 0.25}
