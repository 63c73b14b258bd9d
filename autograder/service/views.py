"""What a student and an instructor are shown, as data for the templates.

A student sees per attempt its state and place in the queue, then (as the policy allows
before the deadline) the points per task, the named mistakes and the feedback pages; never
the grader's error text, the hidden inputs or anything of another student. Everything here
is escaped by the templates (Jinja's autoescape) or by ``html.escape``.
"""
import datetime
import html

from ..classrun import report
from ..course import TASK, TASK_KEYS, TOTAL_POINTS
from ..results import StudentResult

STATES = {"queued": "в очереди", "running": "проверяется", "done": "проверено", "failed": "ошибка проверки"}


def when(moment, policy):
    return datetime.datetime.fromtimestamp(moment, policy.zone).strftime("%d.%m.%Y %H:%M:%S")


def result_of(row):
    return StudentResult.from_json(row["result"]) if row.get("result") else None


def problems_for_student(result):
    """Russian lines about the submission and the run (no grader error text)."""
    lines = []
    for kind, text in report.problems(result):
        if kind == "error":
            continue
        lines.append(text)
    return lines


def attempt(row, number, policy, now, position=None, counted_id=None, instructor=False):
    """One attempt as the pages show it."""
    result = result_of(row)
    regrading = row["state"] in ("queued", "running") and result is not None
    points = instructor or policy.shows_points(now)
    view = {"number": number, "id": row["public_id"], "created": when(row["created_at"], policy),
            "state": row["state"], "state_text": STATES.get(row["state"], row["state"]),
            "position": position, "late": bool(row["late"]), "warnings": list(row["warnings"] or []),
            "counted": counted_id is not None and row["id"] == counted_id, "regrading": regrading,
            "points_shown": points, "tasks": [], "total": None, "max_total": TOTAL_POINTS,
            "problems": [], "pages": [], "error": False, "seconds": None}
    if row["state"] == "running":
        view["state_text"] = "перепроверяется" if regrading else "проверяется"
    elif row["state"] == "queued":
        view["state_text"] = ("ждёт перепроверки" if regrading else "в очереди") + (
            f": место {position}" if position else "")
    if row.get("finished_at") and row["state"] in ("done", "failed") and row["priority"] == 0:
        view["seconds"] = round(row["finished_at"] - row["created_at"], 1)   # not for a re-grade
    if result is None:
        return view
    if result.error:
        view["error"] = True
        view["error_text"] = result.error if instructor else ""
        if row["state"] in ("done", "failed"):
            view["state_text"] = "ошибка проверки"
    view["total"] = result.total
    for key in TASK_KEYS:
        task = result.task(key)
        view["tasks"].append({"cls": TASK[key].cls, "points": task.points, "max": TASK[key].points,
                              "full": task.points >= TASK[key].points,
                              "mistakes": [text for _k, text in task.mistakes]})
    view["problems"] = problems_for_student(result)
    if points:
        view["pages"] = [(notebook, page) for notebook, page in sorted(result.feedback.items())]
    return view


def attempts(rows, policy, now, positions, counted, instructor=False):
    """A student's attempts, newest first."""
    counted_id = counted["id"] if counted else None
    views = [attempt(row, i, policy, now, positions.get(row["public_id"]), counted_id, instructor)
             for i, row in enumerate(rows, 1)]
    return list(reversed(views))


HEADER_STYLE = """
#attempt-summary{font-family:system-ui,sans-serif;font-size:15px;max-width:1100px;margin:1em auto;
  padding:.8em 1.2em;border:1px solid #ccc;border-radius:6px;background:#fafafa;color:#222}
#attempt-summary h2{margin:0 0 .5em;font-size:1.3em;font-weight:600}
#attempt-summary table{border-collapse:collapse;margin:0 0 .6em}
#attempt-summary td,#attempt-summary th{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}
#attempt-summary th{background:#eee}
"""


def page_header(view, back):
    """The block above an attempt's feedback page: points per task and the named mistakes."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(t['cls'])}</td><td>{t['points']:g} из {t['max']}</td>"
        f"<td>{'; '.join(e(m) for m in t['mistakes']) or '—'}</td></tr>" for t in view["tasks"])
    late = " (сдано после срока)" if view["late"] else ""
    return (f"<style>{HEADER_STYLE}</style><div id=\"attempt-summary\">"
            f"<h2>Попытка {view['number']} от {e(view['created'])}{late}: {view['total']:g} из {TOTAL_POINTS}</h2>"
            f"<table><tr><th>задача</th><th>баллы</th><th>замечания</th></tr>{rows}</table>"
            f'<p><a href="{e(back)}">← к попыткам</a></p></div>')


def with_header(page, header):
    """``header`` right after the page's ``<body>``."""
    lower = page.lower()
    at = lower.find("<body")
    at = lower.find(">", at) + 1 if at >= 0 else 0
    return page[:at] + header + page[at:]
