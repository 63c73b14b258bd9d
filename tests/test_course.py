"""The course table (autograder/course.py) agrees with the notebooks and nbgrader's config."""
import nbformat
import pytest

from autograder import course
from autograder.nbconfig import course_config


def _grade_cells(folder, name):
    nb = nbformat.read(str(folder / f"{name}.ipynb"), as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in nb.cells
            if "grade_id" in c.metadata.get("nbgrader", {})}


@pytest.mark.parametrize("folder", [course.SOURCE, course.RELEASE], ids=["source", "release"])
@pytest.mark.parametrize("spec", course.TASKS, ids=course.TASK_KEYS)
def test_points_and_grade_ids_match_the_notebooks(folder, spec):
    cells = _grade_cells(folder, spec.notebook)
    assert cells[spec.tests_id]["grade"] and cells[spec.tests_id]["points"] == spec.points
    assert cells[spec.solution_id]["solution"] and not cells[spec.solution_id].get("grade")
    text = "".join(c.source for c in nbformat.read(str(folder / f"{spec.notebook}.ipynb"), as_version=4).cells)
    assert f"class {spec.cls}(" in text


def test_only_task_notebooks_have_graded_cells():
    for name in course.NOTEBOOKS:
        graded = {k for k, v in _grade_cells(course.SOURCE, name).items() if v.get("grade")}
        assert graded == ({course.TASK_OF_NOTEBOOK[name].tests_id} if name in course.TASK_OF_NOTEBOOK else set())


def test_totals_and_partial_credit():
    assert course.TOTAL_POINTS == 10
    for spec in course.TASKS:
        if spec.parts:
            assert sum(part.points for part in spec.parts) == spec.points, spec.key


@pytest.mark.parametrize("spec", [s for s in course.TASKS if s.parts], ids=lambda s: s.key)
def test_each_part_names_cases_the_task_has_and_every_case_belongs_to_a_part(spec):
    from autograder.checks import cases
    kinds = {case["kind"] for case in cases.make_cases(spec.key, 0)}
    named = {kind for part in spec.parts for kind in part.cases}
    assert named == kinds, (named, kinds)


def test_nbgrader_config_has_only_known_options(tmp_path):
    """Every option set in nbgrader_config.py is a configurable trait of an nbgrader class."""
    from nbgrader.apps import NbGraderApp
    classes = {cls.__name__: cls for app in [NbGraderApp] for cls in app().all_configurable_classes()}
    config = course_config(tmp_path)
    for section, options in config.items():
        assert section in classes, f"unknown section {section}"
        traits = classes[section].class_traits(config=True)
        for option in options:
            assert option in traits, f"{section}.{option} is not an option of nbgrader {section}"
    assert config.ClearSolutions.code_stub["python"] == course.STUB


def test_the_kits_task_table_is_generated_from_the_course_table():
    """gpt_selfcheck.py ships to students without the grader, so it reads the course's facts
    from gpt_tasks.py: generated from course.py (``python -m autograder.kit``, run by
    ``make release``), never edited by hand."""
    from autograder import diagnosis, kit
    assert kit.TASKS_FILE.read_text(encoding="utf-8") == kit.tasks_source(), \
        "source/gpt/gpt_tasks.py is stale: run `make release`"
    selfcheck = diagnosis.selfcheck_module()
    assert tuple(selfcheck.TASKS) == course.TASK_KEYS
    for spec in course.TASKS:
        assert selfcheck.CLASS_OF_TASK[spec.key] == spec.cls
        assert selfcheck.NOTEBOOK_OF_TASK[spec.key] == spec.notebook
        assert tuple(selfcheck.DEPENDENCIES[spec.key]) == tuple(spec.depends_on)


def test_a_new_gradebook_is_stamped_with_alembics_head_without_running_alembic(tmp_path, monkeypatch):
    """``nbconfig.alembic_head`` answers what nbgrader asks ``alembic heads`` for, in-process."""
    import os
    import subprocess
    import sys
    from nbgrader import api
    from nbgrader.dbutil import _temp_alembic_ini
    from autograder import nbconfig
    with _temp_alembic_ini("sqlite:///unused.db") as ini:   # what nbgrader itself would run
        printed = subprocess.run([os.path.join(os.path.dirname(sys.executable), "alembic"), "-c", ini, "heads"],
                                 capture_output=True, text=True, check=True).stdout
    assert api.get_alembic_version is nbconfig.alembic_head
    assert nbconfig.alembic_head() == printed.split()[0]
    monkeypatch.setenv("PATH", str(tmp_path))   # no alembic executable to be found
    with api.Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        stamped = gb.db.execute(api.text("SELECT version_num FROM alembic_version")).scalar()
    assert stamped == printed.split()[0]


def test_gradebooks_of_one_url_share_an_engine_and_outlive_each_other(tmp_path):
    """``nbconfig.gradebook_engine``: one engine per gradebook; closing one Gradebook leaves
    another open on the same database working, and a later one reconnects."""
    from nbgrader import api
    from autograder import nbconfig
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert api.create_engine is nbconfig.gradebook_engine
    first, second = api.Gradebook(url), api.Gradebook(url)
    assert first.engine is second.engine
    first.add_student("s1")
    first.close()
    assert [s.id for s in second.students] == ["s1"]
    second.add_student("s2")
    second.close()
    with api.Gradebook(url) as third:
        assert sorted(s.id for s in third.students) == ["s1", "s2"]
    with api.Gradebook(f"sqlite:///{tmp_path / 'other.db'}") as other:
        assert other.engine is not third.engine and other.students == []
