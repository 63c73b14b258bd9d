"""Instructor report: grade histogram, pass rate per task, named mistakes."""
import base64
import collections
import html
import io

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..course import TASK, TASK_KEYS  # noqa: E402
from .grade import rows as csv_rows  # noqa: E402


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def charts(rows, results):
    """{file name: PNG bytes} of the three charts."""
    totals = [float(r["total"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(totals, bins=[x - 0.25 for x in range(0, 12)], color="#4c72b0", rwidth=0.9)
    ax.set(xlabel="баллы (из 10)", ylabel="студентов", title="Распределение оценок")
    out = {"grades.png": _png(fig)}

    fig, ax = plt.subplots(figsize=(6, 3.2))
    rates = [100 * sum(float(r[t]) >= TASK[t].points for r in rows) / max(len(rows), 1) for t in TASK_KEYS]
    ax.bar([TASK[t].cls for t in TASK_KEYS], rates, color="#55a868")
    ax.set(ylabel="% с полным баллом", ylim=(0, 100), title="Задачи, решённые полностью")
    ax.tick_params(axis="x", rotation=20)
    out["tasks.png"] = _png(fig)

    counts = mistake_counts(results)
    fig, ax = plt.subplots(figsize=(7, 0.4 * max(len(counts), 3) + 1))
    labels = [f"{TASK[t].cls}: {key}" for (t, key) in counts]
    ax.barh(labels[::-1], list(counts.values())[::-1], color="#c44e52")
    ax.set(xlabel="студентов", title="Найденные ошибки")
    out["mistakes.png"] = _png(fig)
    return out


def mistake_counts(results):
    counts = collections.Counter()
    for result in results:
        for task, verdict in result.tasks.items():
            for key in verdict.mistake_keys:
                if key != "not_implemented":
                    counts[(task, key)] += 1
    return dict(counts.most_common())


def write(out, results, info):
    """Write OUT/report.html and its PNG charts."""
    results = list(results.values()) if isinstance(results, dict) else list(results)
    rows = csv_rows(results)
    images = charts(rows, results)
    for name, data in images.items():
        (out / name).write_bytes(data)
    texts = {}
    for result in results:
        for task, verdict in result.tasks.items():
            for key, text in verdict.mistakes:
                texts[(task, key)] = text
    mistakes = "".join(
        f"<tr><td>{TASK[t].cls}</td><td>{html.escape(texts.get((t, k), k))}</td><td>{n}</td></tr>"
        for (t, k), n in mistake_counts(results).items())
    table = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r[c]))}</td>" for c in r) + "</tr>" for r in rows)
    header = "".join(f"<th>{html.escape(c)}</th>" for c in (rows[0] if rows else []))
    embedded = {n: base64.b64encode(d).decode() for n, d in images.items()}
    page = f"""<!doctype html><html lang="ru"><meta charset="utf-8">
<title>Отчёт по проверке: GPT с нуля</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px}}img{{max-width:100%}}</style>
<h1>Отчёт по проверке: GPT с нуля</h1>
<p>Студентов: {len(rows)}. Средний балл: {sum(float(r['total']) for r in rows) / max(len(rows), 1):.2f} из 10.</p>
<img src="data:image/png;base64,{embedded['grades.png']}" alt="оценки">
<img src="data:image/png;base64,{embedded['tasks.png']}" alt="задачи">
<h2>Что повторить: найденные ошибки</h2>
<img src="data:image/png;base64,{embedded['mistakes.png']}" alt="ошибки">
<table><tr><th>задача</th><th>ошибка</th><th>студентов</th></tr>{mistakes}</table>
<h2>Оценки</h2><table><tr>{header}</tr>{table}</table>
</html>"""
    (out / "report.html").write_text(page, encoding="utf-8")
    return out / "report.html"
