"""Instructor report (OUT/report.html) and the header of each feedback page.

One self-contained Russian page made from the result records: what needs a
human first, the class at a glance (SVG charts inline as data URIs, integer axes),
the named mistakes per task and who made them, a student table that sorts and
filters in the browser (inline script, no network), and the run's facts.
Every value from a submission is escaped: ids and messages are hostile input.
"""
import base64
import collections
import hashlib
import html
import statistics
import urllib.parse

from ..course import TASK, TASK_KEYS, TASK_OF_NOTEBOOK, TOTAL_POINTS
from ..results import EVENTS, NOTES, grouped
from .charts import grade_histogram, tasks_in_full

HEADER_BEGIN = "<!-- grading-summary -->"
HEADER_END = "<!-- /grading-summary -->"
e = html.escape


def _results(results):
    return list(results.values()) if isinstance(results, dict) else list(results)


def full_name(result):
    name = result.name or {}
    return " ".join(p for p in (name.get("last_name", ""), name.get("first_name", "")) if p)


def who(result):
    """«Фамилия Имя (id)» or the id."""
    name = full_name(result)
    return f"{name} ({result.student_id})" if name else result.student_id


def mistake_groups(results):
    """{task: [(key, message, [results])]}, the most frequent mistake first; stubs left out."""
    found = collections.defaultdict(lambda: collections.defaultdict(list))
    texts = {}
    for result in results:
        for task in TASK_KEYS:
            for key, text in result.task(task).mistakes:
                if key == "not_implemented":
                    continue
                texts.setdefault((task, key), text)
                if result not in found[task][key]:
                    found[task][key].append(result)
    return {task: sorted(((k, texts[(task, k)], who_) for k, who_ in found[task].items()),
                         key=lambda item: (-len(item[2]), item[0]))
            for task in TASK_KEYS if found[task]}


def problems(result):
    """[(kind, Russian text)] of what a person should look at for this student."""
    items = []
    repairs = {}  # a notebook's repairs in one line; notebooks repaired alike (re-saved in UTF-16) share it
    for notebook, repaired, group in grouped(result.submission):
        if repaired:
            words = "; ".join(note.words for note in group)
            if words not in repairs:
                repairs[words] = []
                items.append(("repaired", words))
            repairs[words].append(notebook)
            continue
        note, = group
        text = note.words
        if note.kind == "missing":
            spec = TASK_OF_NOTEBOOK.get(notebook)
            text += ": " + (f"{spec.cls} получает 0" if spec else "он не оценивается, но нужен для обучения модели")
        items.append((note.kind, text))
    for event in result.events:
        text = f"{event.notebook}: {event.words}"
        items.append((event.kind, text + (f" ({event.detail})" if event.detail else "")))
    for note in result.notes:
        items.append(("note", note))
    if result.error:
        items.append(("error", "ошибка проверки: " + (result.error.strip().splitlines() or [""])[-1][:300]))
    return [(kind, f"{', '.join(repairs[text])} {'исправлены' if len(repairs[text]) > 1 else 'исправлен'}: {text}"
             if kind == "repaired" else text) for kind, text in items]


def status_text(result):
    """Short Russian status for the table."""
    kinds = [kind for kind, _ in problems(result) if kind != "note"]
    if result.error:
        return "ошибка проверки"
    if not kinds:
        unsolved = [t for t in TASK_KEYS if "not_implemented" in result.task(t).mistake_keys]
        return f"не решено задач: {len(unsolved)}" if unsolved else "ок"
    words = {**{kind: note.short for kind, note in NOTES.items()}, "repaired": "исправлен",
             **{kind: event.short for kind, event in EVENTS.items()}}
    return ", ".join(dict.fromkeys(words.get(k, k) for k in kinds))


def charts(results):
    """Data URIs of the grade histogram and the per-task pass rate (charts.py)."""
    results = _results(results)
    return grade_histogram([r.total for r in results]), tasks_in_full(results)


def _link(path, text, title=""):
    return f'<a href="{e(urllib.parse.quote(path))}" title="{e(title)}">{e(text)}</a>'


def _attention(results):
    """Problems that need a person, student by student; below them the notes on files (which
    cost no points: renamed or repeated notebooks, files that belong to nothing)."""
    def table(items_of):
        rows = []
        for result in results:
            items = items_of(result)
            if items:
                lis = "".join(f'<li class="k-{e(kind)}">{e(text)}</li>' for kind, text in items)
                rows.append(f'<tr><td><a href="#s-{e(result.student_id)}">{e(who(result))}</a></td>'
                            f'<td><ul>{lis}</ul></td></tr>')
        return rows

    problem_rows = table(lambda r: [item for item in problems(r) if item[0] != "note"])
    note_rows = table(lambda r: [item for item in problems(r) if item[0] == "note"])
    if problem_rows:
        parts = ['<table class="plain"><tr><th>студент</th><th>что случилось</th></tr>'
                 + "".join(problem_rows) + "</table>"]
    else:
        parts = ["<p>Всё проверено без происшествий: ничего не требует внимания.</p>"]
    if note_rows:
        parts.append('<h3 id="file-notes">Заметки о файлах (на баллы не влияют)</h3>'
                     '<table class="plain"><tr><th>студент</th><th>файлы</th></tr>'
                     + "".join(note_rows) + "</table>")
    return "".join(parts)


def _glance(results):
    totals = [r.total for r in results]
    mean = statistics.fmean(totals) if totals else 0.0
    median = statistics.median(totals) if totals else 0.0
    rows = []
    for t in TASK_KEYS:
        points = [r.task(t).points for r in results]
        full = sum(p >= TASK[t].points for p in points)
        rows.append(f"<tr><td>{e(TASK[t].cls)}</td><td>{TASK[t].points}</td>"
                    f"<td>{statistics.fmean(points) if points else 0:.2f}</td>"
                    f"<td>{100 * full / max(len(points), 1):.0f}% ({full} из {len(points)})</td></tr>")
    return (f'<p class="big">Студентов: <b>{len(results)}</b> · средний балл <b>{mean:.2f}</b> · '
            f'медиана <b>{median:g}</b> из {TOTAL_POINTS}</p>'
            '<table class="plain"><tr><th>задача</th><th>макс.</th><th>средний балл</th>'
            '<th>полный балл</th></tr>' + "".join(rows) + "</table>")


def _mistakes(results):
    groups = mistake_groups(results)
    if not groups:
        return "<p>Ошибок, которые проверка умеет называть, не найдено.</p>"
    parts = []
    n = max(len(results), 1)
    for task, items in groups.items():
        rows = "".join(
            f'<tr><td>{e(text)}</td><td class="num"><span class="bar" style="width:{100 * len(people) / n:.0f}px">'
            f'</span>{len(people)}</td><td>'
            + ", ".join(f'<a href="#s-{e(r.student_id)}">{e(who(r))}</a>' for r in people)
            + "</td></tr>" for key, text, people in items)
        parts.append(f"<h3>{e(TASK[task].cls)} ({e(TASK[task].notebook)})</h3>"
                     '<table class="plain"><tr><th>ошибка</th><th>студентов</th><th>кто</th></tr>'
                     f"{rows}</table>")
    return "".join(parts)


def _students(results):
    head = ("<tr><th data-type=\"text\">студент</th><th data-type=\"text\">имя</th>"
            + "".join(f'<th data-type="num">{e(TASK[t].cls)}<br><small>из {TASK[t].points}</small></th>'
                      for t in TASK_KEYS)
            + '<th data-type="num">итого</th><th data-type="text">ошибки</th>'
              '<th data-type="text">статус</th><th data-type="none">отзывы</th></tr>')
    rows = []
    for r in results:
        named = [f"{TASK[t].cls}: {text}" for t in TASK_KEYS for key, text in r.task(t).mistakes
                 if key != "not_implemented"]
        unsolved = [TASK[t].cls for t in TASK_KEYS if "not_implemented" in r.task(t).mistake_keys]
        if unsolved:
            named.append("не решены: " + ", ".join(unsolved))
        links = " ".join(_link(path, name[:2], name) for name, path in r.feedback.items())
        status = status_text(r)
        cells = [f'<td data-v="{e(r.student_id)}">{e(r.student_id)}</td>',
                 f'<td data-v="{e(full_name(r))}">{e(full_name(r))}</td>']
        cells += [f'<td class="num" data-v="{r.task(t).points:g}">{r.task(t).points:g}</td>' for t in TASK_KEYS]
        cells.append(f'<td class="num" data-v="{r.total:g}"><b>{r.total:g}</b></td>')
        cells.append(f'<td data-v="{len(named)}">{"<br>".join(e(m) for m in named) or "—"}</td>')
        kind = "ok" if status == "ок" else "todo" if status.startswith("не решено") else "warn"
        cells.append(f'<td data-v="{e(status)}" class="{kind}">{e(status)}</td>')
        cells.append(f'<td class="links">{links or "—"}</td>')
        rows.append(f'<tr id="s-{e(r.student_id)}">' + "".join(cells) + "</tr>")
    return (f'<table id="students"><thead>{head}</thead><tbody>' + "".join(rows) + "</tbody></table>")


def _facts(info):
    sandbox = "bubblewrap" if info.sandbox else "без песочницы (--unsafe-no-sandbox)"
    rows = [("дата проверки", info.started.replace("T", " ")),
            ("версия проверяющего кода", info.grader_fingerprint[:12]),
            ("версия курса", info.course_fingerprint[:12]),
            ("проверено в этот раз", str(info.graded)),
            ("взято из прошлой проверки", str(info.reused)),
            ("время работы", f"{info.wall_seconds:.0f} с"),
            ("где проверено", info.executor or "—"),
            ("песочница", sandbox)]
    return '<table class="plain">' + "".join(f"<tr><th>{a}</th><td>{e(b)}</td></tr>" for a, b in rows) + "</table>"


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1300px;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;vertical-align:top}
th{background:#f3f3f3;text-align:left}.num{text-align:right;white-space:nowrap}
.big{font-size:1.15em}img{max-width:49%;vertical-align:top}ul{margin:0;padding-left:1.2em}
.bar{display:inline-block;height:.8em;background:#c44e52;margin-right:6px;vertical-align:middle}
.ok{color:#2a7a2a}.todo{color:#666}.warn{color:#b3261e;font-weight:bold}.k-note{color:#555}
#students{font-size:.92em}.links{white-space:nowrap}#students th{cursor:pointer;user-select:none}#students th[data-type=none]{cursor:default}
#students th.asc::after{content:" ▲"}#students th.desc::after{content:" ▼"}
#students tr:target{background:#fff6c8}.controls{margin:.5em 0}input[type=search]{width:20em;padding:3px}
"""

SCRIPT = """
(function () {
  var table = document.getElementById('students');
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, i) {
    if (th.dataset.type === 'none') return;
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('asc');
      Array.prototype.forEach.call(heads, function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[i].dataset.v, y = b.cells[i].dataset.v;
        var c = th.dataset.type === 'num' ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, 'ru');
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  var box = document.getElementById('filter'), only = document.getElementById('only-problems');
  function filter() {
    var q = box.value.trim().toLowerCase(), shown = 0;
    Array.prototype.forEach.call(body.rows, function (r) {
      var ok = r.textContent.toLowerCase().indexOf(q) >= 0 &&
               (!only.checked || r.querySelector('.warn'));
      r.hidden = !ok;
      if (ok) shown++;
    });
    document.getElementById('shown').textContent = shown;
  }
  box.addEventListener('input', filter);
  only.addEventListener('change', filter);
  filter();
})();
"""


# The report runs its own script only (by its hash), loads nothing but what it holds, sends nothing.
POLICY = ("default-src 'none'; script-src 'sha256-"
          + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
          + "'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")


def page(results, info):
    """The report as an HTML string."""
    results = _results(results)
    grades, tasks = charts(results)
    return f"""<!doctype html>
<html lang="ru"><head><meta http-equiv="Content-Security-Policy" content="{POLICY}">
<meta charset="utf-8"><meta name="viewport" content="width=device-width">
<link rel="icon" href="data:,"><title>Отчёт по проверке: GPT с нуля</title><style>{STYLE}</style></head>
<body>
<h1>Отчёт по проверке: GPT с нуля</h1>
<h2 id="attention">Требует внимания</h2>
{_attention(results)}
<h2 id="glance">Класс в целом</h2>
{_glance(results)}
<img src="{grades}" alt="гистограмма оценок"> <img src="{tasks}" alt="доля полных баллов по задачам">
<h2 id="mistakes">Что повторить: ошибки по задачам</h2>
{_mistakes(results)}
<h2 id="table">Студенты</h2>
<div class="controls"><input type="search" id="filter" placeholder="фильтр: id, имя, ошибка, статус">
<label><input type="checkbox" id="only-problems"> только с проблемами</label>
· показано <span id="shown">{len(results)}</span> из {len(results)} · щёлкните заголовок, чтобы отсортировать</div>
{_students(results)}
<h2 id="run">О проверке</h2>
{_facts(info)}
<script>{SCRIPT}</script>
</body></html>
"""


HEADER_STYLE = """
#grading-summary{font-family:system-ui,sans-serif;font-size:15px;max-width:1100px;margin:1em auto;
  padding:.8em 1.2em;border:1px solid #ccc;border-radius:6px;background:#fafafa;color:#222}
#grading-summary h2{margin:0 0 .5em;font-size:1.35em;font-weight:600}
#grading-summary table{border-collapse:collapse;margin:0 0 .6em}
#grading-summary td,#grading-summary th{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}
#grading-summary th{background:#eee}#grading-summary p{margin:0}
"""


def header(result):
    """The block shown above nbgrader's feedback page: points per task and named mistakes."""
    cells = "".join(f"<tr><td>{e(TASK[t].cls)}</td><td>{result.task(t).points:g} из {TASK[t].points}</td>"
                    "<td>" + ("; ".join(e(text) for key, text in result.task(t).mistakes) or "—")
                    + "</td></tr>" for t in TASK_KEYS)
    return (f"{HEADER_BEGIN}<style>{HEADER_STYLE}</style><div id=\"grading-summary\">"
            f"<h2>Итог проверки: {e(who(result))} — {result.total:g} из {TOTAL_POINTS}</h2>"
            f"<table><tr><th>задача</th><th>баллы</th><th>замечания</th></tr>{cells}</table>"
            f'<p><a href="../../report.html#s-{e(result.student_id)}">к отчёту по классу</a></p>'
            f"</div>{HEADER_END}")


def add_header(path, result):
    """Put (or replace) the header right after ``<body>`` of one feedback page."""
    text = path.read_text(encoding="utf-8")
    start, end = text.find(HEADER_BEGIN), text.find(HEADER_END)
    if start >= 0 and end > start:
        text = text[:start] + text[end + len(HEADER_END):]
    lower = text.lower()
    at = lower.find("<body")
    at = lower.find(">", at) + 1 if at >= 0 else 0
    path.write_text(text[:at] + header(result) + text[at:], encoding="utf-8")


def add_headers(out, results):
    for result in _results(results):
        for relative in result.feedback.values():
            path = out / relative
            if path.is_file():
                add_header(path, result)


def write(out, results, info):
    """Write OUT/report.html and the feedback pages' headers; return the report's path."""
    add_headers(out, results)
    (out / "report.html").write_text(page(results, info), encoding="utf-8")
    return out / "report.html"
