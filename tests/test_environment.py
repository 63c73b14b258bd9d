"""environment.yml and requirements.txt pin the same packages and versions."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PIN = re.compile(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+(?:\[[A-Za-z0-9_,.\-]+\])?)==([^\s#]+)")


def pins(path):
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def test_requirements_are_exact_pins():
    lines = [l for l in (ROOT / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines and all("==" in l for l in lines), "every requirement must be an exact pin"
    assert len(pins(ROOT / "requirements.txt")) == len(lines), "a pin this test cannot read"
    assert pins(ROOT / "requirements.txt")["torch"] == "2.13.0"


def test_environment_yml_matches_requirements():
    assert pins(ROOT / "environment.yml") == pins(ROOT / "requirements.txt")


def test_the_longest_groups_named_first_exist():
    """Each group the root conftest.py sends first is a test file or a group that tests name."""
    tree = ast.parse((ROOT / "conftest.py").read_text(encoding="utf-8"))
    first = next(ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LONGEST_FIRST")
    named = {m for path in (ROOT / "tests").glob("*.py")
             for m in re.findall(r'xdist_group\("([^"]+)"\)', path.read_text(encoding="utf-8"))}
    assert first
    for group in first:
        assert (ROOT / group).is_file() or group in named, group
