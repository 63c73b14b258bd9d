"""Cell outputs the grading worker writes, and what it accepts from a kernel's.

RUNS IN A GRADING WORKER. A verdict becomes outputs in the form nbgrader scores: nothing
for full points, a number on the last line for partial credit, an error for none. Output
a kernel sends is capped as it arrives (``OutputCap``); text no file can hold is made
writable (``writable_text``).
"""
import json

from nbformat.notebooknode import NotebookNode

from ..checks import scoring


def error_output(name, why, traceback=None):
    """An error output as nbgrader scores it (a failed cell)."""
    return NotebookNode(output_type="error", ename=name, evalue=why, traceback=[traceback or f"{name}: {why}"])


def note_output(text):
    """A line of the grader's own in a cell's output."""
    return NotebookNode(output_type="stream", name="stdout", text=f"\n{text}\n")


def verdict_outputs(verdict, visible):
    """Cell outputs that make nbgrader record ``verdict.points``."""
    notes = [f"Видимые тесты: {out.get('ename')}: {out.get('evalue')}"
             for out in visible if out.get("output_type") == "error"]
    text_message = scoring.message(verdict)
    text = "\n".join(notes + [text_message]) + "\n"
    if verdict.points <= 0:
        return [NotebookNode(output_type="error", ename="AssertionError",
                             evalue=text_message, traceback=text.rstrip("\n").split("\n"))]
    outputs = [NotebookNode(output_type="stream", name="stdout", text=text)]
    if verdict.points < verdict.max_points:
        outputs.append(NotebookNode(output_type="execute_result", execution_count=None,
                                    metadata={}, data={"text/plain": f"{verdict.points:g}"}))
    return outputs


def writable_text(value):
    """``value`` with every string made encodable as UTF-8 (lone surrogates become '?')."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {writable_text(k): writable_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [writable_text(v) for v in value]
    return value


def output_size(content):
    """Rough size in characters of one output message's content."""
    size = len(content.get("text", "") or "")
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value))
    size += sum(len(line) for line in content.get("traceback", []) or [])
    return size


class OutputCap:
    """What one notebook's output may take; the rest is dropped as it arrives, with a note."""

    def __init__(self, max_bytes):
        self.max_bytes, self.used, self.cut = max_bytes, 0, False

    def take(self, content):
        """True if this message's output still fits in what is left."""
        size = output_size(content)
        if self.used + size > self.max_bytes:
            return False
        self.used += size
        return True

    def note(self):
        """The note shown where the output was cut (once), or None."""
        if self.cut:
            return None
        self.cut = True
        return note_output(f"[вывод обрезан: больше {self.max_bytes // 2**20} МиБ на ноутбук; "
                           "дальнейший вывод не сохраняется]")
