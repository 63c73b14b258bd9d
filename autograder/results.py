"""The result record: what grading one student found, as data.

The worker writes one ``StudentResult`` per student (JSON, ``result.json`` in
the student's work folder); the main process reads it. Statuses, ``grades.csv``,
the report, the feedback headers and the Moodle worksheet are all made from it:
nothing is recovered by searching notebook text.
"""
import dataclasses
import itertools
import json

from .course import TASK, TASK_KEYS



@dataclasses.dataclass(frozen=True)
class EventKind:
    status: str  # the words of grades.csv's status column, with {notebook}
    words: str   # the report's Russian words
    short: str   # ... and in a word, for the report's table


# Every kind of notebook event the worker records: the one table of their words.
EVENTS = {
    "timeout": EventKind("timeout in {notebook}", "превышено время выполнения", "время"),
    "memory": EventKind("memory limit in {notebook}", "превышен лимит памяти", "память"),
    "disk": EventKind("disk limit in {notebook}", "превышен лимит диска", "диск"),
    "kernel_died": EventKind("kernel died in {notebook}", "ядро Python остановилось", "ядро"),
    "output_cut": EventKind("output cut in {notebook}", "слишком длинный вывод обрезан", "вывод обрезан"),
    "bad_message": EventKind("malformed kernel message dropped in {notebook}",
                             "ядро прислало сообщение не по протоколу (пропущено)", "сообщение ядра"),
}


# What staging found in a notebook handed in (missing, not a notebook, how it was repaired) and
# the service's late attempts: grades.csv's English words and the Russian words people read
# (the report, the service's pages), with the note's fields. The one table of their words.
NOTES = {
    "missing": EventKind("missing {notebook}", "нет ноутбука {notebook}", "нет ноутбука"),
    "invalid": EventKind("invalid notebook {notebook}: {reason}",
                         "негодный файл {notebook} ({reason_words}): проверен нетронутый ноутбук, 0 за задачу",
                         "негодный файл"),
    "other_format": EventKind("{notebook} handed in as {file!r}, not a notebook",
                              "{notebook} сдан как {file!r}, а не ноутбук .ipynb: проверен нетронутый ноутбук, 0 за "
                              "задачу; попросите сдать сам ноутбук (в Jupyter: File → Save, файл .ipynb)",
                              "не ноутбук"),
    "unopened_archive": EventKind("archive {notebook} not opened: {reason}", "архив {notebook} не открыт: "
                                  "{reason_words}", "архив не открыт"),
    "recoded": EventKind("text in {encoding} read as such (Jupyter saves UTF-8)",
                         "текст в кодировке {encoding}, а не UTF-8, прочитан как {encoding}; Jupyter сохраняет "
                         "в UTF-8: не пересохраняйте ноутбук в другом редакторе", "исправлен"),
    "trailing_text": EventKind("{chars} characters after the notebook's end ignored (an old save's tail)",
                               "после конца ноутбука в файле ещё {chars} символов (обычно хвост прежнего "
                               "сохранения, Jupyter такой файл не открывает): они отброшены, проверен сам ноутбук",
                               "исправлен"),
    "cut_short": EventKind("file cut short or damaged: its first {count} whole cells read",
                           "файл обрезан или повреждён (например, прервалось сохранение; Jupyter его не открывает): "
                           "прочитаны его первые целые ячейки ({count}), недостающие ячейки задания взяты из "
                           "выданного ноутбука", "исправлен"),
    "metadata_restored": EventKind("nbgrader metadata restored by content ({count} cell{s})",
                                   "разметка nbgrader восстановлена по содержимому (ячеек: {count})", "исправлен"),
    "export_restored": EventKind("export tags restored ({count} cell{s})",
                                 "метки export восстановлены (ячеек: {count})", "исправлен"),
    "class_inserted": EventKind("class {cls} not found: release cell inserted",
                                "класс {cls} не найден: вставлена ячейка из выданного ноутбука", "исправлен"),
    "tests_inserted": EventKind("test cell missing: release cell inserted",
                                "нет ячейки с тестами: вставлена ячейка из выданного ноутбука", "исправлен"),
    "foreign_cell": EventKind("cell {grade_id!r} not in the assignment: graded as a plain cell",
                              "ячейка {grade_id!r} не из задания: проверена как обычная", "исправлен"),
    "repeated_cell": EventKind("cell {grade_id!r} repeated: the last one kept",
                               "ячейка {grade_id!r} повторена: взята последняя", "исправлен"),
    "late": EventKind("late (submitted {when})", "сдано после срока ({when})", "после срока"),  # the service's
    "as_recorded": EventKind("{text}", "{text}", "работа"),   # a record from before these kinds
}
REPAIRS = ("recoded", "trailing_text", "cut_short", "metadata_restored", "export_restored", "class_inserted", "tests_inserted", "foreign_cell",
           "repeated_cell")


@dataclasses.dataclass
class Note:
    """One thing staging found in a notebook handed in (a key of ``NOTES`` and its fields)."""

    notebook: str
    kind: str
    fields: dict = dataclasses.field(default_factory=dict)

    def _format(self, text):
        count = self.fields.get("count", 1)
        return text.format(notebook=self.notebook, s="s" if count != 1 else "", **self.fields)

    @property
    def status(self):
        return self._format(NOTES[self.kind].status)

    @property
    def words(self):
        return self._format(NOTES[self.kind].words)

    @property
    def repair(self):
        return self.kind in REPAIRS


def grouped(notes):
    """(notebook, repaired, [notes]) of ``notes`` in order: a notebook's repairs together, each
    other note alone. Said in one item by grades.csv and by the report."""
    for (notebook, repaired), group in itertools.groupby(notes, key=lambda n: (n.notebook, n.repair)):
        group = list(group)
        if repaired:
            yield notebook, True, group
        else:
            yield from ((notebook, False, [note]) for note in group)


def submission_status(notes):
    """grades.csv's words for ``notes``: a notebook's repairs in one item ("repaired NAME: a, b")."""
    return [f"repaired {notebook}: " + ", ".join(n.status for n in group) if repaired else group[0].status
            for notebook, repaired, group in grouped(notes)]


@dataclasses.dataclass
class TaskResult:
    """Points and named mistakes of one task."""

    task: str
    points: float = 0.0
    mistakes: list = dataclasses.field(default_factory=list)  # [[key, Russian message], ...]
    passed: list = dataclasses.field(default_factory=list)    # names of the checks passed

    @property
    def max_points(self):
        return TASK[self.task].points

    @property
    def mistake_keys(self):
        return [key for key, _ in self.mistakes]


@dataclasses.dataclass
class Event:
    """Something that happened to a notebook while it ran (data, not cell text)."""

    notebook: str
    kind: str          # a key of EVENTS
    detail: str = ""   # Russian, for people

    @property
    def status(self):
        return EVENTS[self.kind].status.format(notebook=self.notebook)

    @property
    def words(self):
        """The report's Russian words for it."""
        return EVENTS[self.kind].words


@dataclasses.dataclass
class StudentResult:
    """Everything grading one student produced."""

    student_id: str
    tasks: dict = dataclasses.field(default_factory=dict)      # task key -> TaskResult
    events: list = dataclasses.field(default_factory=list)     # [Event]
    submission: list = dataclasses.field(default_factory=list)  # [Note]: missing, invalid, repaired notebooks
    notes: list = dataclasses.field(default_factory=list)      # file matching (renamed, repeated, unknown files)
    error: str = ""        # why grading failed (empty when it did not); traceback in the log
    digest: str = ""       # fingerprint of the input this result was computed from
    name: dict = dataclasses.field(default_factory=dict)       # first_name, last_name, email
    feedback: dict = dataclasses.field(default_factory=dict)   # notebook -> page, relative to OUT

    def task(self, key):
        return self.tasks.get(key) or TaskResult(key)

    @property
    def points(self):
        return {key: self.task(key).points for key in TASK_KEYS}

    @property
    def total(self):
        return sum(self.points.values())

    @property
    def status_items(self):
        items = submission_status(self.submission) + [e.status for e in self.events]
        if self.error:
            items.append("grading error: " + self.error.strip().splitlines()[-1][:200]
                         if self.error.strip() else "grading error")
        return items

    @property
    def status(self):
        return "; ".join(self.status_items) or "ok"

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data):
        data = dict(data)
        data["tasks"] = {k: TaskResult(**v) for k, v in data.get("tasks", {}).items()}
        data["events"] = [Event(**e) for e in data.get("events", [])]
        data["submission"] = [Note(**n) if isinstance(n, dict) else Note("", "as_recorded", {"text": str(n)})
                              for n in data.get("submission", [])]
        return cls(**data)


def write(result, path):
    path.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")


def read(path):
    return StudentResult.from_json(json.loads(path.read_text(encoding="utf-8")))


@dataclasses.dataclass
class RunInfo:
    """Facts about one run of ``grade``, for the report."""

    started: str = ""            # ISO date and time
    wall_seconds: float = 0.0
    grader_fingerprint: str = ""  # code of the grader, reference and checks
    course_fingerprint: str = ""  # source notebooks and config
    graded: int = 0               # students graded in this run
    reused: int = 0               # students whose earlier result was still valid
    sandbox: bool = True
    executor: str = ""            # where they were graded: local processes, or a Dask cluster
