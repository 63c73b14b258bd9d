"""Which earlier results a rerun reuses (OUT/state.json), in-process."""
from autograder.classrun import grade
from autograder.results import StudentResult, TaskResult


def _result(sid, digest, error=""):
    return StudentResult(sid, tasks={"head": TaskResult("head", 2.0)}, digest=digest, error=error)


def test_state_round_trip_and_reuse(tmp_path):
    results = {"a": _result("a", "d1"), "b": _result("b", "d2", error="nbgrader autograde: boom")}
    grade.write_state(tmp_path, "run-1", results)
    earlier = grade.read_state(tmp_path, "run-1")
    assert earlier["a"].to_json() == results["a"].to_json()
    assert grade.reusable(earlier, "a", "d1")
    assert not grade.reusable(earlier, "a", "changed")     # a new submission is graded
    assert not grade.reusable(earlier, "b", "d2")          # a failed grading is tried again
    assert not grade.reusable(earlier, "c", "d3")          # a new student is graded


def test_state_of_another_grader_is_not_used(tmp_path, capsys):
    grade.write_state(tmp_path, "run-1", {"a": _result("a", "d1")})
    assert grade.read_state(tmp_path, "run-2") == {}
    assert "проверяются заново" in capsys.readouterr().err
    assert grade.read_state(tmp_path / "nowhere", "run-1") == {}
