"""The course's policy for the service: attempts, which attempt counts, the deadline, what a
student sees before it, and the limits that keep the service fair.

Read from a TOML file (``serve --policy FILE``; every key optional, defaults below)::

    attempts_per_day = 5          # 0: no limit; a day ends at midnight in `timezone`
    attempts_total = 30           # 0: no limit
    counts = "best"               # "best" or "last" finished attempt
    deadline = "2026-05-31T23:59:00+03:00"   # empty: none
    after_deadline = "late"       # "late": accepted and marked late; "refuse"
    before_deadline = "points"    # "points": points and named mistakes; "mistakes": mistakes only
    timezone = "Europe/Moscow"
    max_upload_mb = 40
    uploads_per_minute = 4        # per student, a burst of this many then one every 60/n s
    queued_per_student = 3        # uploads of one student waiting at once

Attempts whose grading failed for the grader's own reasons cost the student nothing.
"""
import dataclasses
import datetime
import tomllib
import zoneinfo

COUNTS = ("best", "last")
AFTER = ("late", "refuse")
BEFORE = ("points", "mistakes")


class PolicyError(ValueError):
    """A policy file that cannot be used (Russian, names the key)."""


@dataclasses.dataclass
class Policy:
    attempts_per_day: int = 5
    attempts_total: int = 30
    counts: str = "best"
    deadline: str = ""
    after_deadline: str = "late"
    before_deadline: str = "points"
    timezone: str = "Europe/Moscow"
    max_upload_mb: int = 40
    uploads_per_minute: int = 4
    queued_per_student: int = 3

    def __post_init__(self):
        for key, allowed in (("counts", COUNTS), ("after_deadline", AFTER), ("before_deadline", BEFORE)):
            if getattr(self, key) not in allowed:
                raise PolicyError(f"{key} = {getattr(self, key)!r}: допустимо {' или '.join(allowed)}")
        for key in ("attempts_per_day", "attempts_total", "max_upload_mb", "uploads_per_minute",
                    "queued_per_student"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise PolicyError(f"{key} = {value!r}: нужно целое число не меньше 0")
        if self.max_upload_mb < 1 or self.queued_per_student < 1:
            raise PolicyError("max_upload_mb и queued_per_student: не меньше 1")
        try:
            self.zone = zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise PolicyError(f"timezone = {self.timezone!r}: нет такого часового пояса") from None
        self.deadline_at = None
        if self.deadline:
            try:
                moment = datetime.datetime.fromisoformat(str(self.deadline))
            except ValueError:
                raise PolicyError(f"deadline = {self.deadline!r}: нужна дата вида 2026-05-31T23:59:00+03:00") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.zone)
            self.deadline_at = moment.timestamp()

    @property
    def max_upload_bytes(self):
        return self.max_upload_mb * 2**20

    def after(self, now):
        """True once the deadline has passed."""
        return self.deadline_at is not None and now > self.deadline_at

    def day_start(self, now):
        local = datetime.datetime.fromtimestamp(now, self.zone)
        return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    def refusal(self, now, attempts):
        """Why an upload at ``now`` is refused (Russian), or None. ``attempts``: the student's
        earlier submissions (rows with ``created_at``, ``state``, ``result``)."""
        if self.after(now) and self.after_deadline == "refuse":
            return f"срок сдачи прошёл ({self.shown(self.deadline_at)}): работы больше не принимаются"
        counting = [a for a in attempts if not failed_by_grader(a)]
        if self.attempts_total and len(counting) >= self.attempts_total:
            return f"исчерпаны попытки: {self.attempts_total} из {self.attempts_total}"
        if self.attempts_per_day:
            today = [a for a in counting if a["created_at"] >= self.day_start(now)]
            if len(today) >= self.attempts_per_day:
                return (f"на сегодня попытки исчерпаны ({self.attempts_per_day} в день); "
                        "новые — после полуночи")
        waiting = [a for a in attempts if a["state"] in ("queued", "running") and a["priority"] == 0]
        if len(waiting) >= self.queued_per_student:
            return (f"у вас уже {len(waiting)} работы в очереди: дождитесь их результата, "
                    "потом загружайте новую")
        return None

    def left(self, now, attempts):
        """{"today": n or None, "total": n or None}: attempts left (None: no limit)."""
        counting = [a for a in attempts if not failed_by_grader(a)]
        total = max(self.attempts_total - len(counting), 0) if self.attempts_total else None
        today = None
        if self.attempts_per_day:
            used = sum(a["created_at"] >= self.day_start(now) for a in counting)
            today = max(self.attempts_per_day - used, 0)
            if total is not None:
                today = min(today, total)
        return {"today": today, "total": total}

    def counted(self, attempts):
        """The attempt that counts: the best or the last finished one whose grading did not fail
        (the latest of equal bests); None if there is none."""
        graded = [a for a in attempts if a["state"] == "done" and a["result"]
                  and not (a["result"].get("error"))]
        if not graded:
            return None
        if self.counts == "last":
            return max(graded, key=lambda a: (a["created_at"], a["id"]))
        return max(graded, key=lambda a: (total_of(a["result"]), a["created_at"], a["id"]))

    def shows_points(self, now):
        """Points are shown (else only the named mistakes): by the policy, or after the deadline."""
        return self.before_deadline == "points" or self.after(now)

    def shown(self, moment):
        return datetime.datetime.fromtimestamp(moment, self.zone).strftime("%d.%m.%Y %H:%M")

    def describe(self):
        """Russian lines for the students' page."""
        lines = []
        if self.deadline_at is not None:
            late = ("работы принимаются и отмечаются как сданные с опозданием"
                    if self.after_deadline == "late" else "работы не принимаются")
            lines.append(f"Срок сдачи: {self.shown(self.deadline_at)} ({self.timezone}); после него {late}.")
        limits = []
        if self.attempts_per_day:
            limits.append(f"{self.attempts_per_day} в день")
        if self.attempts_total:
            limits.append(f"{self.attempts_total} всего")
        lines.append("Попыток: " + (", ".join(limits) if limits else "без ограничений") + ".")
        lines.append("В оценку идёт " + ("лучшая" if self.counts == "best" else "последняя")
                     + " проверенная попытка.")
        if self.before_deadline == "mistakes" and self.deadline_at is not None:
            lines.append("До срока сдачи показываются только найденные ошибки; баллы — после срока.")
        return lines


def total_of(result):
    return sum(task.get("points", 0.0) for task in (result.get("tasks") or {}).values())


def failed_by_grader(attempt):
    """An attempt the grader itself could not grade: it costs the student no attempt."""
    return attempt["state"] == "failed" or bool(attempt["state"] == "done" and attempt["result"]
                                                and attempt["result"].get("error"))


def load(path=None, **overrides):
    """The policy of a TOML file (or the defaults), with ``overrides`` (None values ignored)."""
    values = {}
    if path:
        try:
            with open(path, "rb") as f:
                values = tomllib.load(f)
        except OSError as exc:
            raise PolicyError(f"{path}: не удаётся прочитать ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{path}: не TOML ({exc})") from None
        values = values.get("policy", values)
        unknown = set(values) - {f.name for f in dataclasses.fields(Policy)}
        if unknown:
            raise PolicyError(f"{path}: неизвестные ключи: {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Policy(**values)
