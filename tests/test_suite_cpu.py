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


def test_group_seconds_adds_up_a_groups_tests_longest_first():
    tests = [{"id": "tests/test_a.py::one", "group": "tests/test_a.py", "start": 0.0, "end": 5.0},
             {"id": "tests/test_b.py::one", "group": "graded-class", "start": 0.0, "end": 4.0},
             {"id": "tests/test_c.py::one", "group": "graded-class", "start": 4.0, "end": 7.5},
             {"id": "tests/test_d.py::one", "group": None, "start": 1.0, "end": 2.0}]  # recorded by an old bench
    seconds = suite_cpu.group_seconds(tests)
    assert list(seconds.items()) == [("graded-class", 7.5), ("tests/test_a.py", 5.0), ("tests/test_d.py", 1.0)]


def _root_conftest():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Item:
    def __init__(self, nodeid, group):
        import pytest
        self.nodeid, self.mark = nodeid, pytest.mark.xdist_group(group).mark

    def get_closest_marker(self, name):
        return self.mark if name == "xdist_group" else None


def test_groups_that_took_longest_are_run_first_and_each_keeps_its_order():
    conftest = _root_conftest()
    items = [_Item("tests/test_a.py::one", "tests/test_a.py"), _Item("tests/test_a.py::two", "tests/test_a.py"),
             _Item("nb.ipynb::Cell 0", "nb.ipynb"), _Item("nb.ipynb::Cell 1", "nb.ipynb"),
             _Item("tests/test_g.py::one", "graded-class"), _Item("tests/test_h.py::one", "graded-class"),
             _Item("tests/test_new.py::one", "tests/test_new.py")]
    ordered = conftest.longest_first(items, {"graded-class": 150.0, "nb.ipynb": 20.0, "tests/test_a.py": 3.0})
    assert [i.nodeid for i in ordered] == [
        "tests/test_g.py::one", "tests/test_h.py::one", "nb.ipynb::Cell 0", "nb.ipynb::Cell 1",
        "tests/test_a.py::one", "tests/test_a.py::two", "tests/test_new.py::one"]


def test_the_measured_groups_are_this_suites():
    """Every group in tests/group_seconds.json is a file of the suite or a group a test names
    (a renamed file would silently lose its place in the order)."""
    import json
    import re
    conftest = _root_conftest()
    named = {m for path in (ROOT / "tests").glob("*.py")
             for m in re.findall(r'xdist_group\("([^"]+)"\)', path.read_text(encoding="utf-8"))}
    seconds = json.loads(conftest.GROUP_SECONDS.read_text(encoding="utf-8"))["seconds"]
    assert seconds and all(s >= 0 for s in seconds.values())
    assert [g for g in seconds if g not in named and not (ROOT / g).is_file()] == []
