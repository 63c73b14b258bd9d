"""The dispatcher: queued submissions to the grader, fairly and durably.

Fair: students take turns. The next submission is the one with the lowest (priority, its
rank among its student's queued ones, when its student was last served, when it was
queued), so a student with ten uploads waiting gets one graded per round like everyone
else, and re-grades (priority 1) wait for fresh uploads. One submission per student at a
time. Submissions go to the grader in batches, as a class goes to the batch command's pool
(whose workers grade several each); each result is recorded as it comes. Durable: the queue is the database. A submission is marked running before it is
handed out and gets its result in one transaction afterwards (``Store.finish`` takes one
result per run, only for a running submission); at start, what was running when the service
stopped is queued again, so a restart loses nothing and records nothing twice. A grading that
failed (a crashed worker, a grader error) is tried once more before its failure is recorded.
"""
import logging
import threading
import time
import traceback

from ..results import StudentResult

log = logging.getLogger("autograder.service")


def fair_order(queued, last_served):
    """``queued`` rows (oldest first) in the order they will be graded."""
    rank, keyed = {}, []
    for row in queued:
        r = rank.get((row["student_id"], row["priority"]), 0)
        rank[(row["student_id"], row["priority"])] = r + 1
        keyed.append(((row["priority"], r, last_served.get(row["student_id"], 0.0),
                       row["queued_at"], row["id"]), row))
    return [row for _, row in sorted(keyed, key=lambda item: item[0])]


def _failure(submission, exc):
    log.error("работа %s (%s): %s: %s", submission["public_id"], submission["student_id"], type(exc).__name__, exc)
    return StudentResult(submission["student_id"], error=f"{type(exc).__name__}: {exc}"[:300]).to_json()


class Dispatcher:
    """Hands queued submissions to ``grader.grade_many`` in batches: the next ones in fair order,
    one per student, up to ``workers`` × ``PER_WORKER``, as the batch command hands a class to
    its pool; results are recorded one by one as they come. A lone upload is a batch of one."""

    # Attempts per worker in a batch: the second and later ones a worker grades are the cheap
    # ones, and an upload that arrives while a batch runs waits for it (at most this many
    # gradings per worker; the batch command takes 20, pool.BATCH_PER_WORKER).
    PER_WORKER = 5

    def __init__(self, store, grader, policy, workers=1):
        self.store, self.grader, self.policy = store, grader, policy
        self.workers = max(1, workers)
        self.version = 0                  # changes whenever anything a page shows may have
        self.started = time.time()
        self._last_served = {}
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads = []

    # ---- life

    def start(self):
        again = self.store.requeue_running()
        if again:
            log.info("снова в очереди после перезапуска: %d", again)
        self.republish()
        warm = getattr(self.grader, "warm", None)
        if warm:
            threading.Thread(target=warm, name="warm-up", daemon=True).start()
        thread = threading.Thread(target=self._loop, name="grading", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout=None):
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)

    def wake(self):
        with self._wake:
            self.version += 1
            self._wake.notify_all()

    # ---- the queue

    def order(self):
        return fair_order(self.store.queued(), self._last_served)

    def positions(self):
        """{public id: place in the queue (1 = next)}."""
        return {row["public_id"]: i for i, row in enumerate(self.order(), 1)}

    def _claim_batch(self):
        """The next submissions in fair order, one per student, marked running."""
        batch, students = [], set()
        for row in self.order():
            if len(batch) >= self.workers * self.PER_WORKER:
                break
            if row["student_id"] in students:
                continue
            if self.store.claim(row["id"]):
                students.add(row["student_id"])
                self._last_served[row["student_id"]] = time.time() + len(batch) * 1e-6
                batch.append(row)
        return batch

    def _loop(self):
        while not self._stop.is_set():
            try:
                batch = self._claim_batch()
            except Exception:  # the database went away for a moment: try again shortly
                log.exception("очередь: не удалось взять работы")
                batch = []
            if not batch:
                with self._wake:
                    self._wake.wait(1.0)
                continue
            self.wake()
            try:
                self.run(batch)
            except Exception:   # whatever was not recorded is graded again
                log.error("пакет работ не проверен: %s", traceback.format_exc())
                for row in batch:
                    self.store.retry(row["id"])
            finally:
                self.wake()

    def run(self, rows):
        """Grade claimed submissions (different students) and record each result as it comes."""
        submissions, attempts = {}, []
        for row in rows:
            submission = self.store.submission(internal_id=row["id"])
            submissions[submission["public_id"]] = submission
            try:
                notebooks = self.store.files_of(submission["id"])
            except Exception as exc:   # a stored file that does not match its digest is not graded
                self.record(submission, _failure(submission, exc), failed=True)
                continue
            attempts.append((submission["student_id"], self.store.student(submission["student_id"]) or {},
                             notebooks, submission["public_id"]))
        done = set()
        try:
            for public_id, result in self.grader.grade_many(attempts):
                done.add(public_id)
                self.record(submissions[public_id], result, failed=False)
                self.wake()
        except Exception as exc:  # the grader's failure: recorded, costs the student no attempt
            log.error("пакет работ: %s", traceback.format_exc())
            for _sid, _name, _files, public_id in attempts:
                if public_id not in done:
                    self.record(submissions[public_id], _failure(submissions[public_id], exc), failed=True)

    def record(self, submission, result, failed):
        """One result, once; a failed grading is tried once more first."""
        sid = submission["student_id"]
        if (failed or result.get("error")) and submission["runs"] < 2 and not self._stop.is_set():
            # a crashed worker or a grader error: graded once more before it is recorded
            log.info("работа %s (%s) будет проверена ещё раз", submission["public_id"], sid)
            self.store.retry(submission["id"])
            return
        if self.store.finish(submission["id"], result, self.grader.fingerprint, failed):
            self.publish(sid)

    # ---- what counts

    def publish(self, sid):
        """Put the attempt that counts for ``sid`` into the gradebook, if it is not there yet."""
        attempts = self.store.submissions_of(sid)
        counted = self.policy.counted(attempts)
        if counted is None:
            return
        held = self.store.published().get(sid)
        if held and (held["submission_id"], held["fingerprint"], held["course"]) == (
                counted["id"], counted["fingerprint"], self.grader.course_id):
            return
        try:
            self.grader.publish(sid, self.store.student(sid) or {}, counted["result"], counted["public_id"])
        except Exception:
            log.error("оценка %s не записана в журнал nbgrader: %s", sid, traceback.format_exc())
            return
        self.store.set_published(sid, counted["id"], counted["fingerprint"], self.grader.course_id)

    def republish(self):
        """Every student's counted attempt into the gradebook where it is not (a new course folder,
        a changed policy, a stop between a result and its publishing)."""
        for sid in sorted({row["student_id"] for row in self.store.all_submissions(with_results=False)}):
            self.publish(sid)
