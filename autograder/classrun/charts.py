"""The report's two charts, drawn as SVG: the grade histogram and the tasks solved in full.

Two bar charts need no plotting library: drawn here, the grade command neither imports nor
runs matplotlib (about 0.6 CPU-s a run). Each chart is a data URI for an ``<img>`` (the
report's policy allows images from data: only); every bar carries a ``<title>`` with its
exact value, which the browser shows on hover. Axes count in whole numbers.
"""
import base64
import html
import math

from ..course import TASK, TASK_KEYS, TOTAL_POINTS

WIDTH, HEIGHT = 600, 320
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 34, 62   # the plot area's margins
GRADES_COLOUR, TASKS_COLOUR = "#4c72b0", "#55a868"
FONT = 'font-family="system-ui,sans-serif" fill="#222" font-size="13"'
TITLE_FONT = FONT.replace('"13"', '"15"')
e = html.escape


def integer_ticks(top, most=6):
    """0, step, 2·step, ... up to the first tick at or above ``top``: a step of 1, 2 or 5 times a
    power of ten, the smallest that needs at most ``most`` steps."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if top <= factor * step * most:
                step *= factor
                count = max(1, -(-int(top) // step))
                return [i * step for i in range(count + 1)]
        step *= 10


def students(n):
    """«1 студент», «2 студента», «5 студентов»."""
    word = ("студент" if n % 10 == 1 and n % 100 != 11 else
            "студента" if n % 10 in (2, 3, 4) and n % 100 not in (12, 13, 14) else "студентов")
    return f"{n} {word}"


def _svg(title, x_label, y_label, y_ticks, bars, x_ticks, slanted=False):
    """An SVG bar chart. ``bars``: (x from 0 to 1, width from 0 to 1, height in y units, colour,
    tooltip); ``x_ticks``: (x from 0 to 1, label)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    y_top = y_ticks[-1] or 1
    x_of = lambda x: LEFT + x * plot_w  # noqa: E731
    y_of = lambda y: TOP + plot_h - y / y_top * plot_h  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img"><title>{e(title)}</title>',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
             f'<text x="{LEFT + plot_w / 2}" y="20" text-anchor="middle" {TITLE_FONT}>{e(title)}</text>']
    for y in y_ticks:
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y_of(y):.1f}" y2="{y_of(y):.1f}" stroke="#ddd"/>'
                     f'<text x="{LEFT - 6}" y="{y_of(y) + 4:.1f}" text-anchor="end" {FONT}>{y:g}</text>')
    for x, width, height, colour, tooltip in bars:
        if height > 0:
            parts.append(f'<rect class="bar" x="{x_of(x):.1f}" y="{y_of(height):.1f}" width="{width * plot_w:.1f}" '
                         f'height="{y_of(0) - y_of(height):.1f}" fill="{colour}"><title>{e(tooltip)}</title></rect>')
    parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y_of(0)}" y2="{y_of(0)}" stroke="#222"/>'
                 f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{y_of(0)}" stroke="#222"/>')
    for x, label in x_ticks:
        tick_y = y_of(0)
        anchor, turn = ("end", f' transform="rotate(-20 {x_of(x):.1f} {tick_y + 16:.1f})"') if slanted else ("middle", "")
        parts.append(f'<line x1="{x_of(x):.1f}" x2="{x_of(x):.1f}" y1="{tick_y}" y2="{tick_y + 4}" stroke="#222"/>'
                     f'<text x="{x_of(x):.1f}" y="{tick_y + 16:.1f}" text-anchor="{anchor}"{turn} {FONT}>'
                     f'{e(label)}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle" {FONT}>{e(x_label)}</text>'
                 f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" {FONT}>'
                 f'{e(y_label)}</text></svg>')
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode()).decode()


def grade_histogram(totals):
    """Students per total, in half points from 0 to TOTAL_POINTS (a total between two halves
    counts at the nearer one, at the higher one halfway)."""
    halves = 2 * TOTAL_POINTS
    counts = [0] * (halves + 1)
    for total in totals:
        counts[min(max(math.floor(total * 2 + 0.5), 0), halves)] += 1
    span = TOTAL_POINTS + 1   # x from -0.5 to TOTAL_POINTS + 0.5
    at = lambda points: (points + 0.5) / span  # noqa: E731
    bars = [(at(i / 2 - 0.225), 0.45 / span, n, GRADES_COLOUR, f"{i / 2:g} из {TOTAL_POINTS}: {students(n)}")
            for i, n in enumerate(counts)]
    return _svg("Распределение оценок", f"баллы (из {TOTAL_POINTS})", "студентов",
                integer_ticks(max(counts)), bars, [(at(p), str(p)) for p in range(TOTAL_POINTS + 1)])


def tasks_in_full(results):
    """Per task, the share (%) of students with its full points."""
    n = len(TASK_KEYS)
    bars, ticks = [], []
    for i, key in enumerate(TASK_KEYS):
        full = sum(r.task(key).points >= TASK[key].points for r in results)
        rate = 100 * full / max(len(results), 1)
        bars.append(((i + 0.1) / n, 0.8 / n, rate, TASKS_COLOUR,
                     f"{TASK[key].cls}: {rate:.0f}% ({full} из {len(results)})"))
        ticks.append(((i + 0.5) / n, TASK[key].cls))
    return _svg("Задачи, решённые полностью", "", "% с полным баллом", integer_ticks(100, most=5), bars,
                ticks, slanted=True)
