"""The web routes (Starlette): the students' pages, the kit client's API, the instructor's desk,
and the headers every response carries.

Students see only their own attempts: every lookup is by a random public id *and* the
signed-in student, so another student's id answers 404 like an id that does not exist.
Instructor pages answer 403 to anyone without an instructor session or token. Every POST from
a browser needs the session's CSRF token and a same-origin request; the kit's client signs
each request with its token instead (no cookie, nothing for CSRF to ride on).
"""
import contextlib
import csv
import io
import json
import logging
import pathlib
import tempfile
import threading
import time
import urllib.parse

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..classrun import grade as batch_grade, moodle, report
from ..course import NOTEBOOKS, TASK, TASK_KEYS
from ..results import Note, RunInfo, StudentResult
from ..worker.feedback import PAGE_POLICY
from . import auth, uploads, views

log = logging.getLogger("autograder.service")
HERE = pathlib.Path(__file__).resolve().parent
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")),
                               autoescape=True, trim_blocks=True, lstrip_blocks=True)
# The service's own pages: its one script and style sheet, nothing inline, nothing from elsewhere.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
DESK_POLICY = POLICY + "; frame-src 'self'"
FRAMEABLE = "; frame-ancestors 'self'"
NOTEBOOK_PAGE = {f"{name}.html": name for name in NOTEBOOKS}
UPLOAD_PATHS = ("/upload", "/api/submit", "/desk/moodle_grades.csv")


class Service:
    """What the routes share: the store, the dispatcher, the policy, OUT."""

    def __init__(self, store, dispatcher, policy, out, public_url="", clock=time.time):
        self.store, self.dispatcher, self.policy = store, dispatcher, policy
        self.out = pathlib.Path(out)
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.rates = auth.Rates()
        self._report = (None, b"")
        self._report_lock = threading.Lock()


# ---------------------------------------------------------------- helpers

def render(name, **context):
    return TEMPLATES.get_template(name).render(**context)


def page(request, name, status=200, policy=POLICY, **context):
    identity = request.state.identity
    context.setdefault("csrf", identity.csrf if identity else "")
    context.setdefault("who", who_text(request))
    return HTMLResponse(render(name, **context), status_code=status,
                        headers={"Content-Security-Policy": policy})


def who_text(request):
    identity = request.state.identity
    if identity is None or identity.csrf is None:
        return ""
    if identity.instructor:
        return "преподаватель"
    student = request.app.state.service.store.student(identity.student_id) or {}
    name = " ".join(p for p in (student.get("first_name"), student.get("last_name")) if p)
    return f"{name} ({identity.student_id})" if name else identity.student_id


def message(request, title, text, status):
    if wants_json(request):
        return JSONResponse({"ok": False, "error": text}, status_code=status)
    return page(request, "message.html", status=status, title=title, message=text)


def wants_json(request):
    return (request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")
            or request.headers.get("x-csrf-token") is not None)


def same_origin(request):
    """A browser's POST comes from our own pages (Origin, else Sec-Fetch-Site), or from no browser."""
    origin = request.headers.get("origin")
    if origin:
        ours = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
        service = request.app.state.service
        if service.public_url:
            ours.add(service.public_url)
        return origin in ours
    return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")


def student_only(request):
    identity = request.state.identity
    if identity is None:
        return None
    return identity if identity.role == "student" and identity.student_id else None


def instructor_only(request):
    identity = request.state.identity
    return identity if identity is not None and identity.instructor else None


async def csrf_checked(request, form=None):
    identity = request.state.identity
    sent = request.headers.get("x-csrf-token") or (form.get("csrf") if form is not None else None)
    return same_origin(request) and auth.csrf_ok(identity, sent)


async def read_form(request, max_bytes):
    try:
        return await request.form(max_files=64, max_fields=16, max_part_size=max_bytes)
    except ClientDisconnect:
        raise
    except Exception as exc:  # a malformed or oversized multipart body
        raise uploads.Refused("загрузка не разобрана: " + ("слишком большой файл" if "size" in str(exc).lower()
                                                            else "повреждённый запрос")) from None


async def uploaded_files(form):
    files = []
    for value in form.getlist("files") + form.getlist("file"):
        if isinstance(value, UploadFile):
            files.append((value.filename or "файл", await value.read()))
    return files


# ---------------------------------------------------------------- sign-in

async def home(request):
    identity = request.state.identity
    if identity is None or identity.csrf is None:
        return page(request, "signin.html", title="Вход")
    if identity.instructor:
        return RedirectResponse("/desk", status_code=303)
    return await run_in_threadpool(student_page, request, identity)


async def signin_page(request):
    return page(request, "signin.html", title="Вход")


async def signin(request):
    service = request.app.state.service
    client = request.client.host if request.client else "?"
    is_json = request.headers.get("content-type", "").startswith("application/json")
    if not same_origin(request):
        return JSONResponse({"ok": False, "error": "запрос не с этого сайта"}, status_code=403)
    if not service.rates.allow(("signin", client), 20):
        return JSONResponse({"ok": False, "error": "слишком много попыток входа: подождите минуту"},
                            status_code=429)
    try:
        if is_json:
            token = (json.loads(await request.body() or b"{}") or {}).get("token", "")
        else:
            token = (await request.form(max_fields=4, max_files=0)).get("token", "")
    except (ValueError, AttributeError):
        token = ""
    token = str(token).strip().split("#")[-1]
    session = await run_in_threadpool(auth.sign_in, service.store, token)
    if session is None:
        text = "ссылка не подошла: проверьте, что она скопирована целиком, или попросите новую у преподавателя"
        if is_json:
            return JSONResponse({"ok": False, "error": text}, status_code=403)
        request.state.identity = None
        return page(request, "signin.html", status=403, title="Вход", error=text)
    key, identity = session
    next_page = "/desk" if identity.instructor else "/"
    response = (JSONResponse({"ok": True, "next": next_page}) if is_json
                else RedirectResponse(next_page, status_code=303))
    response.set_cookie(auth.COOKIE, key, max_age=auth.SESSION_SECONDS, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
    log.info("вход: %s", identity.student_id or "преподаватель")
    return response


async def signout(request):
    form = await request.form(max_fields=4, max_files=0)
    if not await csrf_checked(request, form):
        return message(request, "Выход", "запрос отклонён (нет защиты от подделки): обновите страницу", 403)
    if request.state.identity and request.state.identity.session:
        await run_in_threadpool(request.app.state.service.store.drop_session, request.state.identity.session)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response


# ---------------------------------------------------------------- students

def student_context(service, sid, instructor=False):
    now = service.clock()
    rows = service.store.submissions_of(sid)
    positions = service.dispatcher.positions() if any(r["state"] == "queued" for r in rows) else {}
    counted = service.policy.counted(rows)
    return {"attempts": views.attempts(rows, service.policy, now, positions, counted, instructor),
            "left": service.policy.left(now, rows), "policy_lines": service.policy.describe(),
            "page_base": "/desk/attempt/" if instructor else "/attempt/"}


def student_page(request, identity):
    service = request.app.state.service
    return page(request, "student.html", title="Мои попытки", **student_context(service, identity.student_id))


async def attempts_fragment(request):
    identity = student_only(request)
    if identity is None:
        return message(request, "Вход", "войдите по персональной ссылке", 403)
    service = request.app.state.service
    context = await run_in_threadpool(student_context, service, identity.student_id)
    return HTMLResponse(render("attempts.html", **context))


def accept_upload(service, sid, files, source, key):
    """Parse, check the policy, commit: (status, JSON body)."""
    try:
        parsed = uploads.parse(files, service.policy.max_upload_bytes)
    except uploads.Refused as exc:
        return 400, {"ok": False, "error": f"Работа не принята: {exc}."}
    now = service.clock()
    if key:
        earlier = service.store.submission_by_key(sid, key)
        if earlier:
            return 200, ack(service, earlier, again=True)
    refusal = service.policy.refusal(now, service.store.submissions_of(sid))
    if refusal:
        return 429 if "очеред" in refusal or "попытк" in refusal else 403, {
            "ok": False, "error": f"Работа не принята: {refusal}."}
    late = service.policy.after(now)
    warnings = list(parsed.warnings)
    if late:
        warnings.insert(0, f"сдано после срока ({service.policy.shown(service.policy.deadline_at)})")
    row, new = service.store.add_submission(sid, parsed.notebooks, source=source, warnings=warnings,
                                            late=late, idempotency_key=key, now=now)
    service.dispatcher.wake()
    log.info("загрузка %s от %s: %d ноутбуков, %d байт", row["public_id"], sid, len(parsed.notebooks), row["size"])
    return (201 if new else 200), ack(service, row, again=not new)


def ack(service, row, again=False):
    return {"ok": True, "id": row["public_id"], "digest": row["digest"], "size": row["size"],
            "position": service.dispatcher.positions().get(row["public_id"]),
            "warnings": list(row["warnings"] or []), "repeated": again,
            "status_url": f"/api/submissions/{row['public_id']}"}


async def upload(request):
    identity = student_only(request)
    service = request.app.state.service
    if identity is None:
        return message(request, "Загрузка", "войдите по персональной ссылке", 403)
    forged = JSONResponse({"ok": False, "error": "запрос отклонён (нет защиты от подделки): обновите страницу"},
                          status_code=403)
    if request.headers.get("x-csrf-token") is not None and not await csrf_checked(request):
        return forged   # refused before the body is read or counted
    form = await read_form_or_refusal(request, service)
    if isinstance(form, Response):
        return form
    if not await csrf_checked(request, form):
        return forged
    return await finish_upload(request, service, identity, form, "browser")


async def api_submit(request):
    service = request.app.state.service
    identity = auth.from_bearer(service.store, request.headers.get("authorization"))
    if identity is None or identity.role != "student":
        return JSONResponse({"ok": False, "error": "код доступа не подошёл: попросите новую ссылку у преподавателя"},
                            status_code=403)
    request.state.identity = identity
    form = await read_form_or_refusal(request, service)
    if isinstance(form, Response):
        return form
    return await finish_upload(request, service, identity, form, "client")


async def read_form_or_refusal(request, service):
    """The upload's form, or a refusal: too frequent (a repeat of an acknowledged upload, by its
    idempotency key, is not counted), or a body that does not parse."""
    sid = request.state.identity.student_id
    key = (request.headers.get("idempotency-key") or "")[:80]
    repeat = key and await run_in_threadpool(service.store.submission_by_key, sid, key)
    if not repeat and not service.rates.allow(("upload", sid), service.policy.uploads_per_minute):
        return JSONResponse({"ok": False, "error": "Работа не принята: слишком часто, подождите минуту."},
                            status_code=429)
    try:
        return await read_form(request, service.policy.max_upload_bytes)
    except uploads.Refused as exc:
        return JSONResponse({"ok": False, "error": f"Работа не принята: {exc}."}, status_code=400)


async def finish_upload(request, service, identity, form, source):
    files = await uploaded_files(form)
    key = (request.headers.get("idempotency-key") or "")[:80] or None
    status, body = await run_in_threadpool(accept_upload, service, identity.student_id, files, source, key)
    return JSONResponse(body, status_code=status)


def submission_json(service, row):
    rows = service.store.submissions_of(row["student_id"])
    now = service.clock()
    counted = service.policy.counted(rows)
    number = [r["id"] for r in rows].index(row["id"]) + 1
    positions = service.dispatcher.positions() if row["state"] == "queued" else {}
    view = views.attempt(row, number, service.policy, now, positions.get(row["public_id"]),
                         counted["id"] if counted else None)
    view["finished"] = row["state"] in ("done", "failed") and not view["regrading"]
    if not view["points_shown"]:
        view["total"] = None
        for task in view["tasks"]:
            task.pop("points"), task.pop("full")
    if service.public_url:
        view["pages"] = [f"{service.public_url}/attempt/{row['public_id']}/{nb}.html" for nb, _ in view["pages"]]
    return view


async def api_submission(request):
    service = request.app.state.service
    identity = auth.from_bearer(service.store, request.headers.get("authorization")) or request.state.identity
    if identity is None or identity.role != "student":
        return JSONResponse({"ok": False, "error": "нужен вход"}, status_code=403)
    row = await run_in_threadpool(service.store.submission, request.path_params["pid"], identity.student_id)
    if row is None:
        return JSONResponse({"ok": False, "error": "нет такой попытки"}, status_code=404)
    return JSONResponse(await run_in_threadpool(submission_json, service, row))


def attempt_page(service, row, notebook, back, instructor):
    rows = service.store.submissions_of(row["student_id"])
    counted = service.policy.counted(rows)
    number = [r["id"] for r in rows].index(row["id"]) + 1
    view = views.attempt(row, number, service.policy, service.clock(), None,
                         counted["id"] if counted else None, instructor)
    if not view["pages"] or notebook not in dict(view["pages"]):
        return None
    path = service.out / "attempts" / row["public_id"] / "feedback" / f"{notebook}.html"
    if not path.is_file():
        return None
    return views.with_header(path.read_text(encoding="utf-8"), views.page_header(view, back))


async def student_feedback(request):
    identity = student_only(request)
    if identity is None:
        return message(request, "Отзыв", "войдите по персональной ссылке", 403)
    return await feedback_response(request, identity.student_id, "/", False)


async def feedback_response(request, sid, back, instructor):
    service = request.app.state.service
    notebook = NOTEBOOK_PAGE.get(request.path_params["page"])
    row = await run_in_threadpool(service.store.submission, request.path_params["pid"], sid)
    text = None
    if row is not None and notebook is not None:
        text = await run_in_threadpool(attempt_page, service, row, notebook, back, instructor)
    if text is None:
        return message(request, "Отзыв", "такой страницы нет", 404)
    return HTMLResponse(text, headers={"Content-Security-Policy": PAGE_POLICY})


# ---------------------------------------------------------------- the instructor's desk

def counted_results(service):
    """{student id: StudentResult} of the counted attempts (the late ones say so), and the rows."""
    rows = service.store.all_submissions()
    held = service.store.published()
    by_student = {}
    for row in rows:
        by_student.setdefault(row["student_id"], []).append(row)
    results = {}
    for sid, attempts in sorted(by_student.items()):
        counted = service.policy.counted(attempts)
        if counted is None:
            continue
        result = StudentResult.from_json(counted["result"])
        student = service.store.student(sid) or {}
        result.name = {k: student.get(k, "") for k in ("first_name", "last_name", "email")}
        if counted["late"]:
            result.submission = [*result.submission,
                                 Note("", "late", {"when": service.policy.shown(counted["created_at"])})]
        is_held = held.get(sid, {}).get("submission_id") == counted["id"]
        result.feedback = ({nb: f"feedback/{sid}/{nb}.html" for nb in result.feedback
                            if (service.out / "feedback" / sid / f"{nb}.html").is_file()} if is_held else {})
        results[sid] = result
    return results, by_student


def desk_context(service):
    rows = service.store.all_submissions(with_results=True)
    results, by_student = counted_results(service)
    fingerprint = service.dispatcher.grader.fingerprint
    counts = {state: sum(r["state"] == state for r in rows) for state in ("queued", "running", "done", "failed")}
    counts["failed"] += sum(r["state"] == "done" and bool((r["result"] or {}).get("error")) for r in rows)
    counts["done"] -= sum(r["state"] == "done" and bool((r["result"] or {}).get("error")) for r in rows)
    counts["stale"] = sum(r["state"] == "done" and r["fingerprint"] != fingerprint for r in rows)
    roster = service.store.students()
    counts["students"], counts["roster"] = len(by_student), len(roster)
    table = []
    for student in roster:
        sid = student["id"]
        attempts = by_student.get(sid, [])
        result = results.get(sid)
        last = attempts[-1] if attempts else None
        table.append({
            "id": sid, "name": " ".join(p for p in (student["last_name"], student["first_name"]) if p),
            "attempts": len(attempts),
            "points": [f"{result.task(k).points:g}" if result else "—" for k in TASK_KEYS],
            "total": f"{result.total:g}" if result else "—",
            "last": views.when(last["created_at"], service.policy) if last else "—",
            "state": views.STATES.get(last["state"], last["state"]) if last else "нет попыток",
            "late": bool(result and any(note.kind == "late" for note in result.submission))})
    return {"counts": counts, "students": table, "classes": [TASK[k].cls for k in TASK_KEYS],
            "version": service.dispatcher.version}


def refuse_desk(request):
    return message(request, "Стол преподавателя", "эта страница только для преподавателя", 403)


async def desk(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    context = await run_in_threadpool(desk_context, request.app.state.service)
    return page(request, "desk.html", policy=DESK_POLICY, title="Стол преподавателя", **context)


async def desk_fragment(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    context = await run_in_threadpool(desk_context, request.app.state.service)
    return HTMLResponse(render("desk_fragment.html", **context))


def report_bytes(service):
    """The report of the counted attempts, made again only when something changed."""
    with service._report_lock:
        version = service.dispatcher.version
        if service._report[0] != version:
            results, by_student = counted_results(service)
            graded = sum(r["state"] in ("done", "failed") for rows in by_student.values() for r in rows)
            grader = service.dispatcher.grader
            info = RunInfo(started=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(service.dispatcher.started)),
                           grader_fingerprint=getattr(grader, "grader_fingerprint", grader.fingerprint),
                           course_fingerprint=getattr(grader, "course_fingerprint", ""),
                           graded=graded, reused=0, sandbox=getattr(grader, "sandbox", True),
                           wall_seconds=time.time() - service.dispatcher.started)
            service._report = (version, report.page(results, info).encode("utf-8"))
        return service._report[1]


async def desk_report(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    body = await run_in_threadpool(report_bytes, request.app.state.service)
    return HTMLResponse(body, headers={"Content-Security-Policy": report.POLICY + FRAMEABLE,
                                       "X-Frame-Options": "SAMEORIGIN"})


async def desk_feedback(request):
    """A counted attempt's page as the report links it (OUT/feedback/<student>/<notebook>.html)."""
    if instructor_only(request) is None:
        return refuse_desk(request)
    service = request.app.state.service
    sid, name = request.path_params["sid"], request.path_params["page"]
    held = await run_in_threadpool(service.store.published)
    if sid not in held or name not in NOTEBOOK_PAGE:
        return message(request, "Отзыв", "такой страницы нет", 404)
    path = service.out / "feedback" / sid / name
    if not path.is_file():
        return message(request, "Отзыв", "такой страницы нет", 404)
    return HTMLResponse(path.read_text(encoding="utf-8"),
                        headers={"Content-Security-Policy": PAGE_POLICY + FRAMEABLE, "X-Frame-Options": "SAMEORIGIN"})


async def desk_student(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    service = request.app.state.service
    sid = request.path_params["sid"]
    student = await run_in_threadpool(service.store.student, sid)
    if student is None:
        return message(request, "Студент", "нет такого студента", 404)
    context = await run_in_threadpool(student_context, service, sid, True)
    name = " ".join(p for p in (student["last_name"], student["first_name"]) if p)
    return page(request, "desk_student.html", title=sid, student_id=sid,
                student_name=f"{name} ({sid})" if name else sid, **context)


async def desk_student_fragment(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    context = await run_in_threadpool(student_context, request.app.state.service, request.path_params["sid"], True)
    return HTMLResponse(render("attempts.html", **context))


async def desk_attempt_feedback(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    service = request.app.state.service
    row = await run_in_threadpool(service.store.submission, request.path_params["pid"])
    if row is None:
        return message(request, "Отзыв", "такой страницы нет", 404)
    back = "/desk/student/" + urllib.parse.quote(row["student_id"])
    return await feedback_response(request, row["student_id"], back, True)


async def desk_regrade(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    form = await request.form(max_fields=4, max_files=0)
    if not await csrf_checked(request, form):
        return message(request, "Перепроверка", "запрос отклонён (нет защиты от подделки): обновите страницу", 403)
    service = request.app.state.service
    stale = await run_in_threadpool(service.store.requeue_stale, service.dispatcher.grader.fingerprint)
    failed = await run_in_threadpool(service.store.requeue_failed)
    errors = await run_in_threadpool(service.store.requeue_errors)
    service.dispatcher.wake()
    log.info("перепроверка: %d устаревших, %d неудачных", stale, failed + errors)
    return RedirectResponse("/desk", status_code=303)


def grades_csv(service):
    results, _ = counted_results(service)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, batch_grade.CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(batch_grade.rows(results.values()))
    return buffer.getvalue().encode("utf-8")


def moodle_csv(service, worksheet_bytes=None):
    results, _ = counted_results(service)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        sheet = None
        if worksheet_bytes is not None:
            sheet = tmp / "worksheet.csv"
            sheet.write_bytes(worksheet_bytes)
        path, _filled, _missing, _held = moodle.write(tmp, results, sheet)
        return path.read_bytes()


def download(body, name):
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def desk_grades(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    return download(await run_in_threadpool(grades_csv, request.app.state.service), "grades.csv")


async def desk_moodle(request):
    if instructor_only(request) is None:
        return refuse_desk(request)
    service = request.app.state.service
    sheet = None
    if request.method == "POST":
        form = await request.form(max_fields=4, max_files=1, max_part_size=10 * 2**20)
        if not await csrf_checked(request, form):
            return message(request, "Лист Moodle", "запрос отклонён (нет защиты от подделки): обновите страницу", 403)
        upload_file = form.get("worksheet")
        sheet = await upload_file.read() if isinstance(upload_file, UploadFile) else b""
    try:
        body = await run_in_threadpool(moodle_csv, service, sheet)
    except ValueError as exc:
        return message(request, "Лист Moodle", f"лист не заполнен: {exc}", 400)
    return download(body, moodle.FILE)


# ---------------------------------------------------------------- the app

class Guard:
    """ASGI middleware: who is asking, body size caps, security headers, a log line without
    tokens or cookies."""

    def __init__(self, app, service):
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.monotonic()
        path = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        limit = self.service.policy.max_upload_bytes + 2**20 if path in UPLOAD_PATHS else 2**20
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            await JSONResponse({"ok": False, "error": f"Работа не принята: загрузка больше "
                                                      f"{self.service.policy.max_upload_mb} МБ."},
                               status_code=413, headers=security_headers(scope))(scope, receive, send)
            return
        cookie = _cookie(headers.get("cookie", ""), auth.COOKIE)
        identity = await run_in_threadpool(auth.from_cookie, self.service.store, cookie) if cookie else None
        scope.setdefault("state", {})["identity"] = identity
        received = 0

        async def capped_receive():
            nonlocal received
            message_ = await receive()
            if message_["type"] == "http.request":
                received += len(message_.get("body", b""))
                if received > limit:
                    raise ClientDisconnect()
            return message_

        status = {"code": 0}

        async def secured_send(message_):
            if message_["type"] == "http.response.start":
                status["code"] = message_["status"]
                present = {k.lower() for k, _ in message_.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in security_headers(scope).items()
                         if k.lower().encode() not in present]
                message_ = dict(message_, headers=list(message_.get("headers", [])) + extra)
            await send(message_)

        try:
            await self.app(scope, capped_receive, secured_send)
        except ClientDisconnect:
            if not status["code"]:
                await JSONResponse({"ok": False, "error": "загрузка прервана или слишком велика"},
                                   status_code=413, headers=security_headers(scope))(scope, receive, send)
        who = identity.student_id or "преподаватель" if identity else "-"
        log.info("%s %s %s %.0f мс %s", scope.get("method"), path, status["code"] or 413,
                 1000 * (time.monotonic() - started), who)


def security_headers(scope):
    headers = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
               "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin",
               "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()"}
    if not scope.get("path", "").startswith("/static/"):
        headers["Cache-Control"] = "no-store"
    if scope.get("scheme") == "https":
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def _cookie(header, name):
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def create(service):
    routes = [
        Route("/", home), Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]), Route("/signout", signout, methods=["POST"]),
        Route("/upload", upload, methods=["POST"]), Route("/fragment/attempts", attempts_fragment),
        Route("/attempt/{pid}/{page}", student_feedback),
        Route("/api/submit", api_submit, methods=["POST"]), Route("/api/submissions/{pid}", api_submission),
        Route("/desk", desk), Route("/desk/fragment", desk_fragment), Route("/desk/report.html", desk_report),
        Route("/desk/feedback/{sid}/{page}", desk_feedback), Route("/desk/student/{sid}", desk_student),
        Route("/desk/fragment/student/{sid}", desk_student_fragment),
        Route("/desk/attempt/{pid}/{page}", desk_attempt_feedback),
        Route("/desk/regrade", desk_regrade, methods=["POST"]),
        Route("/desk/grades.csv", desk_grades), Route("/desk/moodle_grades.csv", desk_moodle, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        # uvicorn ends the process with the signal that stopped it once this returns: the
        # gradings under way finish and are recorded (and published) first
        await run_in_threadpool(service.dispatcher.stop, 150)

    app = Starlette(routes=routes, middleware=[Middleware(Guard, service=service)], lifespan=lifespan)
    app.state.service = service
    return app

