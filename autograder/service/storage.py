"""The service's database (SQLAlchemy Core): students, hashed tokens, sessions, submissions
with their bytes and digests, results, and what the gradebook holds.

SQLite (``OUT/service.db``, WAL, synchronous writes) by default, PostgreSQL with
``--db-url`` (``postgresql://`` is psycopg 3). Tables are prefixed ``service_`` so the
nbgrader gradebook can live in the same database. Every write is one transaction: an
upload is acknowledged only after ``add_submission`` has committed its files.
"""
import hashlib
import secrets
import time

import sqlalchemy as sa

from ..classrun import database

metadata = sa.MetaData()

students = sa.Table(
    "service_students", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("first_name", sa.String(200), nullable=False, default=""),
    sa.Column("last_name", sa.String(200), nullable=False, default=""),
    sa.Column("email", sa.String(300), nullable=False, default=""))

tokens = sa.Table(
    "service_tokens", metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),            # student | instructor
    sa.Column("student_id", sa.String(200), sa.ForeignKey(students.c.id), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False))

sessions = sa.Table(
    "service_sessions", metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("student_id", sa.String(200), nullable=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False))

submissions = sa.Table(
    "service_submissions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("public_id", sa.String(40), nullable=False, unique=True),  # random: not guessable
    sa.Column("student_id", sa.String(200), sa.ForeignKey(students.c.id), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),                  # sha256 over the files
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),                  # browser | client | test
    sa.Column("idempotency_key", sa.String(80), nullable=True),
    sa.Column("warnings", sa.JSON, nullable=False, default=list),        # Russian, for the student
    sa.Column("late", sa.Boolean, nullable=False, default=False),
    sa.Column("state", sa.String(10), nullable=False, index=True),       # queued|running|done|failed
    sa.Column("priority", sa.Integer, nullable=False, default=0),        # 0 upload, 1 re-grade
    sa.Column("runs", sa.Integer, nullable=False, default=0),            # times handed to a worker
    sa.Column("queued_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),                         # StudentResult.to_json()
    sa.Column("fingerprint", sa.String(64), nullable=True),              # the grader it came from
    sa.UniqueConstraint("student_id", "idempotency_key", name="service_submission_once"))

files = sa.Table(
    "service_files", metadata,
    sa.Column("submission_id", sa.Integer, sa.ForeignKey(submissions.c.id), primary_key=True),
    sa.Column("name", sa.String(40), primary_key=True),                  # the notebook, e.g. 01_head
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False))

published = sa.Table(
    "service_published", metadata,
    sa.Column("student_id", sa.String(200), primary_key=True),
    sa.Column("submission_id", sa.Integer, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("course", sa.String(64), nullable=False))                  # the course folder's stamp


def digest_of(notebooks):
    """sha256 over the notebooks' names and bytes, in the order of their names."""
    digest = hashlib.sha256()
    for name in sorted(notebooks):
        digest.update(name.encode() + b"\0" + hashlib.sha256(notebooks[name]).digest())
    return digest.hexdigest()


def engine_for(url):
    """An engine for ``url``: SQLite waits for its lock, journals to a WAL, syncs every commit."""
    url = database.canonical(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
        return engine
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})


class PeopleStore:
    """Students, their hashed tokens and sessions (``self.engine``: Store's)."""

    def upsert_student(self, student_id, name=None):
        name = {k: (name or {}).get(k, "") or "" for k in ("first_name", "last_name", "email")}
        with self.engine.begin() as c:
            if c.execute(sa.select(students.c.id).where(students.c.id == student_id)).first():
                if any(name.values()):
                    c.execute(students.update().where(students.c.id == student_id)
                              .values(**{k: v for k, v in name.items() if v}))
            else:
                c.execute(students.insert().values(id=student_id, **name))

    def student(self, student_id):
        with self.engine.connect() as c:
            row = c.execute(sa.select(students).where(students.c.id == student_id)).first()
        return row._asdict() if row else None

    def students(self):
        with self.engine.connect() as c:
            return [r._asdict() for r in c.execute(sa.select(students).order_by(students.c.id))]

    def has_token(self, role, student_id=None):
        with self.engine.connect() as c:
            return c.execute(sa.select(tokens.c.hash).where(
                tokens.c.role == role, tokens.c.student_id == student_id,
                tokens.c.revoked.is_(False))).first() is not None

    def add_token(self, token_hash, role, student_id=None, replace=False):
        with self.engine.begin() as c:
            if replace:
                c.execute(tokens.update().where(tokens.c.role == role, tokens.c.student_id == student_id)
                          .values(revoked=True))
            c.execute(tokens.insert().values(hash=token_hash, role=role, student_id=student_id,
                                             created_at=time.time(), revoked=False))

    def find_token(self, token_hash):
        """(role, student id) of a valid token, or None."""
        with self.engine.connect() as c:
            row = c.execute(sa.select(tokens.c.role, tokens.c.student_id).where(
                tokens.c.hash == token_hash, tokens.c.revoked.is_(False))).first()
        return (row.role, row.student_id) if row else None

    # ---- sessions

    def add_session(self, session_hash, role, student_id, csrf, lifetime):
        with self.engine.begin() as c:
            c.execute(sessions.delete().where(sessions.c.expires_at < time.time()))
            c.execute(sessions.insert().values(hash=session_hash, role=role, student_id=student_id,
                                               csrf=csrf, expires_at=time.time() + lifetime))

    def find_session(self, session_hash):
        with self.engine.connect() as c:
            row = c.execute(sa.select(sessions).where(sessions.c.hash == session_hash,
                                                      sessions.c.expires_at > time.time())).first()
        return row._asdict() if row else None

    def drop_session(self, session_hash):
        with self.engine.begin() as c:
            c.execute(sessions.delete().where(sessions.c.hash == session_hash))


class SubmissionStore:
    """Submissions with their files, their queue, results and what the gradebook holds."""

    def add_submission(self, student_id, notebooks, *, source, warnings=(), late=False,
                       idempotency_key=None, now=None):
        """Commit an upload (its files, their digests) and queue it; return (row, True), or the
        earlier row and False when the same idempotency key was already used by this student."""
        now = time.time() if now is None else now
        if idempotency_key:
            earlier = self.submission_by_key(student_id, idempotency_key)
            if earlier:
                return earlier, False
        values = dict(public_id=secrets.token_urlsafe(16), student_id=student_id, created_at=now,
                      digest=digest_of(notebooks), size=sum(len(b) for b in notebooks.values()),
                      source=source, idempotency_key=idempotency_key, warnings=list(warnings),
                      late=bool(late), state="queued", priority=0, runs=0, queued_at=now)
        try:
            with self.engine.begin() as c:
                new_id = c.execute(submissions.insert().values(**values)).inserted_primary_key[0]
                c.execute(files.insert(), [
                    {"submission_id": new_id, "name": name, "data": data,
                     "sha256": hashlib.sha256(data).hexdigest()} for name, data in notebooks.items()])
        except sa.exc.IntegrityError:
            earlier = idempotency_key and self.submission_by_key(student_id, idempotency_key)
            if earlier:
                return earlier, False
            raise
        return self.submission(values["public_id"]), True

    def submission_by_key(self, student_id, key):
        with self.engine.connect() as c:
            row = c.execute(sa.select(submissions).where(submissions.c.student_id == student_id,
                                                         submissions.c.idempotency_key == key)).first()
        return row._asdict() if row else None

    def submission(self, public_id=None, student_id=None, internal_id=None):
        """One submission by its public id (and owner, when given) or internal id; else None."""
        query = sa.select(submissions)
        if internal_id is not None:
            query = query.where(submissions.c.id == internal_id)
        else:
            query = query.where(submissions.c.public_id == str(public_id))
        if student_id is not None:
            query = query.where(submissions.c.student_id == student_id)
        with self.engine.connect() as c:
            row = c.execute(query).first()
        return row._asdict() if row else None

    def submissions_of(self, student_id):
        """A student's submissions, oldest first."""
        with self.engine.connect() as c:
            return [r._asdict() for r in c.execute(
                sa.select(submissions).where(submissions.c.student_id == student_id)
                .order_by(submissions.c.created_at, submissions.c.id))]

    def all_submissions(self, with_results=True):
        columns = [c for c in submissions.c if with_results or c.name != "result"]
        with self.engine.connect() as c:
            return [r._asdict() for r in c.execute(
                sa.select(*columns).order_by(submissions.c.created_at, submissions.c.id))]

    def files_of(self, internal_id):
        """{notebook: bytes} of a submission, each checked against its stored digest."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(files).where(files.c.submission_id == internal_id)).all()
        found = {}
        for row in rows:
            if hashlib.sha256(row.data).hexdigest() != row.sha256:
                raise ValueError(f"stored file {row.name} of submission {internal_id} does not match its digest")
            found[row.name] = bytes(row.data)
        return found

    def queued(self):
        """Queued submissions (no results), oldest first: what the dispatcher chooses from."""
        columns = [submissions.c[n] for n in ("id", "public_id", "student_id", "priority", "queued_at")]
        with self.engine.connect() as c:
            return [r._asdict() for r in c.execute(
                sa.select(*columns).where(submissions.c.state == "queued")
                .order_by(submissions.c.queued_at, submissions.c.id))]

    def running_students(self):
        with self.engine.connect() as c:
            return {r.student_id for r in c.execute(
                sa.select(submissions.c.student_id).where(submissions.c.state == "running"))}

    def claim(self, internal_id):
        """Mark a queued submission running; False if it was not queued any more."""
        with self.engine.begin() as c:
            done = c.execute(submissions.update().where(submissions.c.id == internal_id,
                                                        submissions.c.state == "queued")
                             .values(state="running", started_at=time.time(),
                                     runs=submissions.c.runs + 1))
        return done.rowcount == 1

    def finish(self, internal_id, result, fingerprint, failed=False):
        """Record a grading's result, once: only a running submission takes one."""
        with self.engine.begin() as c:
            done = c.execute(submissions.update().where(submissions.c.id == internal_id,
                                                        submissions.c.state == "running")
                             .values(state="failed" if failed else "done", result=result,
                                     fingerprint=fingerprint, finished_at=time.time()))
        return done.rowcount == 1

    def retry(self, internal_id):
        """A running submission back to the queue (after the re-grades' priority), no result."""
        with self.engine.begin() as c:
            return c.execute(submissions.update().where(submissions.c.id == internal_id,
                                                        submissions.c.state == "running")
                             .values(state="queued", priority=1, queued_at=time.time(),
                                     started_at=None)).rowcount == 1

    def requeue_running(self):
        """After a restart: what was being graded is queued again (its result never committed)."""
        with self.engine.begin() as c:
            return c.execute(submissions.update().where(submissions.c.state == "running")
                             .values(state="queued", started_at=None)).rowcount

    def requeue_stale(self, fingerprint):
        """Queue every graded submission whose result came from another grader (a re-grade, after
        the uploads waiting); return how many."""
        with self.engine.begin() as c:
            return c.execute(submissions.update().where(
                submissions.c.state.in_(("done", "failed")),
                sa.or_(submissions.c.fingerprint.is_(None), submissions.c.fingerprint != fingerprint))
                .values(state="queued", priority=1, queued_at=time.time())).rowcount

    def requeue_errors(self):
        """Graded submissions whose record says the grader failed go back to the queue."""
        again = 0
        for row in self.all_submissions():
            if row["state"] == "done" and (row["result"] or {}).get("error"):
                with self.engine.begin() as c:
                    again += c.execute(submissions.update().where(submissions.c.id == row["id"],
                                                                  submissions.c.state == "done")
                                       .values(state="queued", priority=1, queued_at=time.time())).rowcount
        return again

    def requeue_failed(self):
        with self.engine.begin() as c:
            return c.execute(submissions.update().where(submissions.c.state == "failed")
                             .values(state="queued", priority=1, queued_at=time.time())).rowcount

    # ---- what the gradebook holds

    def published(self):
        with self.engine.connect() as c:
            return {r.student_id: r._asdict() for r in c.execute(sa.select(published))}

    def set_published(self, student_id, submission_id, fingerprint, course_stamp):
        with self.engine.begin() as c:
            c.execute(published.delete().where(published.c.student_id == student_id))
            c.execute(published.insert().values(student_id=student_id, submission_id=submission_id,
                                                fingerprint=fingerprint, course=course_stamp))


class Store(PeopleStore, SubmissionStore):
    """The service's tables in one database."""

    def __init__(self, url):
        self.url = database.canonical(url)
        self.engine = engine_for(self.url)
        metadata.create_all(self.engine)
