"""Отправка работы на проверку из папки задания: ``python gpt_submit.py`` (или
``python gpt_selfcheck.py --submit``).

В первый раз программа спросит вашу персональную ссылку из письма преподавателя и сохранит её
в файле ``.gpt_submit.json`` рядом с ноутбуками (не пересылайте этот файл никому). Затем она
отправляет сохранённые ноутбуки ``00_data.ipynb`` … ``06_training.ipynb``, показывает место в
очереди и ждёт результата: баллы по задачам и найденные ошибки. Только стандартная
библиотека Python (3.10 и новее).
"""
import io
import json
import os
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile

NOTEBOOKS = ("00_data", "01_head", "02_multihead_attention", "03_feedforward", "04_block",
             "05_gpt_model", "06_training")
CONFIG = ".gpt_submit.json"
WAIT_SECONDS = 600
TIMEOUT = 60


class SubmitError(Exception):
    """Что пошло не так, одной фразой по-русски."""


def parse_link(link):
    """(адрес сервера, код) из персональной ссылки ``https://host/signin#КОД``."""
    link = link.strip()
    parts = urllib.parse.urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.fragment:
        raise SubmitError("это не персональная ссылка: она выглядит как https://…/signin#код")
    return f"{parts.scheme}://{parts.netloc}", parts.fragment


def load_config(folder, ask=input):
    path = folder / CONFIG
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return data["server"], data["token"]
    link = ask("Вставьте персональную ссылку из письма преподавателя: ")
    server, token = parse_link(link)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"server": server, "token": token}, f)
    print(f"Ссылка сохранена в {path.name} (не пересылайте этот файл).")
    return server, token


def pack(folder):
    """(zip с сохранёнными ноутбуками, имена найденных, имена недостающих)."""
    buffer = io.BytesIO()
    found, missing = [], []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in NOTEBOOKS:
            path = folder / f"{name}.ipynb"
            if path.is_file():
                archive.write(path, path.name)
                found.append(name)
            else:
                missing.append(name)
    if not found:
        raise SubmitError(f"в папке {folder} нет ни одного ноутбука задания: запустите программу в папке gpt")
    return buffer.getvalue(), found, missing


def request(server, token, path, body=None, headers=None):
    req = urllib.request.Request(server + path, data=body, method="POST" if body is not None else "GET",
                                 headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                                          **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        try:
            error = json.loads(exc.read().decode("utf-8")).get("error")
        except ValueError:
            error = None
        raise SubmitError(error or f"сервер ответил ошибкой {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SubmitError(f"сервер {server} не отвечает ({getattr(exc, 'reason', exc)}); "
                          "проверьте интернет и попробуйте ещё раз") from None


def upload(server, token, data, key):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"gpt.zip\"\r\n"
            "Content-Type: application/zip\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Idempotency-Key": key}
    for attempt in range(3):   # the same key: a repeated send is the same attempt, never a second one
        try:
            return request(server, token, "/api/submit", body, headers)
        except SubmitError:
            if attempt == 2:
                raise
            time.sleep(2 + 3 * attempt)


def show(result):
    lines = []
    if result.get("error"):
        lines.append("Проверка не удалась по вине проверяющей программы; попытка не засчитана. "
                     "Преподаватель видит причину.")
        return "\n".join(lines)
    if result.get("total") is not None:
        lines.append(f"Итого: {result['total']:g} из {result['max_total']}")
    for task in result.get("tasks", []):
        points = f"{task['points']:g} из {task['max']}" if "points" in task else ""
        mistakes = "; ".join(task.get("mistakes") or []) or ("ошибок не найдено" if task.get("full", True) else "")
        lines.append(f"  {task['cls']}: {points}{' — ' if points and mistakes else ''}{mistakes}")
    lines += [f"  {p}" for p in result.get("problems", [])]
    if result.get("pages"):
        lines.append("Подробные отзывы: войдите на сайт по своей ссылке.")
    return "\n".join(lines)


def submit(folder=".", ask=input, wait=True, out=print):
    folder = pathlib.Path(folder).resolve()
    server, token = load_config(folder, ask)
    data, found, missing = pack(folder)
    if missing:
        out("Нет ноутбуков: " + ", ".join(missing) + " (за их задачи будет 0).")
    out(f"Отправляю {len(found)} ноутбуков на {server} …")
    ack = upload(server, token, data, uuid.uuid4().hex)
    for warning in ack.get("warnings", []):
        out("Внимание: " + warning)
    out("Работа принята" + (f", место в очереди: {ack['position']}" if ack.get("position") else "") + ".")
    if not wait:
        return ack
    deadline = time.monotonic() + WAIT_SECONDS
    shown_position = ack.get("position")
    while time.monotonic() < deadline:
        time.sleep(2)
        state = request(server, token, ack["status_url"])
        if state.get("finished"):
            out(show(state))
            return state
        if state.get("position") and state.get("position") != shown_position:
            shown_position = state["position"]
            out(f"Место в очереди: {shown_position}")
    out("Результат ещё не готов: он появится на сайте, страницу можно не держать открытой.")
    return ack


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    folder = argv[0] if argv else "."
    try:
        submit(folder)
    except SubmitError as exc:
        print(f"Не отправлено: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nОстановлено. Если работа была принята, результат появится на сайте.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
