"""Hidden checks run inside the kernel (instructor notebooks, plain nbgrader).

RUNS IN THE KERNEL that executes an instructor notebook: the hidden test cells
of ``source/`` call ``check``. The grade command never runs this: it probes
the kernel and compares outside it (see ``worker/execute.py``). This is for
``nbval`` on ``source/`` and for instructors who run stock ``nbgrader autograde``.
"""
from .checks import cases, scoring
from .course import TASK
from .kernel import probe


def check(task, namespace, seed=0):
    """Raise AssertionError on 0 points; return partial points, else None."""
    spec = TASK[task]

    def verdict_for(own_deps):
        made = cases.make_cases(task, seed, own_deps)
        return scoring.grade(task, made, probe.run_cases(spec.cls, spec.depends_on, namespace, made))

    verdict = scoring.best_verdict(task, verdict_for)
    if verdict.points < verdict.max_points:
        from .diagnosis import diagnose
        verdict = scoring.with_diagnosis(verdict, diagnose(task, namespace, namespace.get("config")))
    text = scoring.message(verdict)
    print(text)
    if verdict.points == 0:
        raise AssertionError(text)
    if verdict.points < verdict.max_points:
        return verdict.points
    return None
