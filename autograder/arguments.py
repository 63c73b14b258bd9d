"""The commands' options checked before any work: one Russian line instead of a traceback later."""
import argparse
import errno
import os
import socket


def positive(kind):
    """An argparse type: a number of ``kind`` above zero (``--jobs 0``, ``--cell-timeout -5`` refused)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"нужно число, а не {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"нужно число больше 0, а не {text}")
        return value
    return parse


def file_problem(option, value):
    """Why the file an option names cannot be read (in Russian), or None (no value: nothing to check)."""
    if value and not os.path.isfile(value):
        return f"{option}: нет такого файла: {value}"
    return None


def folder_problem(out):
    """Why ``--out`` cannot be a folder this process writes (in Russian), or None."""
    if out.exists() and not out.is_dir():
        return f"--out: {out} — файл, а не папка"
    existing = next(p for p in [out.absolute(), *out.absolute().parents] if p.exists())
    if not existing.is_dir():
        return f"--out: {existing} — файл, папку в нём не создать"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"--out: нет прав на запись в папку {existing}"
    return None


def out_problem(submissions, out):
    """Why the grade command's OUT cannot hold the results of ``submissions`` (in Russian), or None."""
    problem = folder_problem(out)
    if problem is None and submissions.is_dir() and out.resolve().is_relative_to(submissions.resolve()):
        problem = (f"--out: папка результатов {out} внутри папки с работами {submissions}: при следующей "
                   "проверке она сама стала бы работой; укажите папку рядом, а не внутри")
    return problem


def port_problem(host, port):
    """Why the service cannot listen on ``host``:``port`` (in Russian), or None."""
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"--port {port}: порт уже занят (другим сервисом или прежним запуском): укажите другой --port"
        return f"--host {host} --port {port}: не удаётся слушать ({exc.strerror or exc})"
