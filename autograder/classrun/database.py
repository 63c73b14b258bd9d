"""The course gradebook's database URL (main process): checked before any work, never shown
with its password.

``problem`` connects once, before a run starts, and says in one Russian line why the database
cannot be used: a URL that does not parse, a driver that is not installed, a server that does
not answer, credentials it refuses, a database it does not have. Failed connections carry no
SQLSTATE (libpq reports them as text, in the server's language), so a refused connection is
looked at once more through the server's own ``postgres`` database, which says whether the
wanted one exists.
"""
import getpass
import pathlib
import re

import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import NullPool

CONNECT_TIMEOUT = 10  # seconds; libpq waits forever by default
MAINTENANCE_DATABASES = ("postgres", "template1")
# libpq's own words when no server answered (client side, in English).
UNREACHABLE = ("connection refused", "could not translate host name", "failed to resolve host",
               "name or service not known", "temporary failure in name resolution", "timeout expired",
               "network is unreachable", "no route to host", "connection timed out",
               "no such file or directory", "could not connect to server")
# The server's words for credentials it refuses (English and Russian servers).
CREDENTIALS = ("password authentication failed", "no password supplied", "authentication failed",
               "no pg_hba.conf entry", "role \"", "проверку подлинности", "пароль", "роль \"")


def canonical(url):
    """``url`` with the ``postgres://`` scheme that many guides and services write (SQLAlchemy
    knows only ``postgresql://``) spelled as SQLAlchemy wants it."""
    return re.sub(r"^postgres(?=[+:])", "postgresql", url.strip())


def shown(url):
    """``url`` as it may be printed: the password (also a ``password=`` parameter) as ``***``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return re.sub(r"^((?:[\w+.-]+://)?[^/@:]*:).*@", r"\1***@", url)  # up to the last @
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True)


def identity(url):
    """What names the database itself, not the way to it: the backend, host, port and database
    of ``url`` (no driver, user or password), so that a new driver or password is the same
    gradebook."""
    parsed = make_url(url)
    query = {k: v for k, v in parsed.query.items() if k in ("host", "port", "dbname")}
    return parsed.set(drivername=parsed.get_backend_name(), username=None, password=None,
                      query=query).render_as_string(hide_password=False)


def problem(url, source="--db-url"):
    """Why the gradebook database at ``url`` cannot be used, as one Russian line naming
    ``source`` and the URL (password hidden), or None when a connection succeeds."""
    where = f"{source} {shown(url)}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return (f"{where}: не URL базы данных; нужен вид postgresql://пользователь:пароль@сервер:порт/база "
                "или sqlite:///путь/gradebook.db")
    if parsed.get_backend_name() == "sqlite":
        folder = pathlib.Path(parsed.database or ".").expanduser().parent
        if parsed.database and parsed.database != ":memory:" and not folder.is_dir():
            return f"{where}: нет папки {folder} для файла базы SQLite"
        return None
    try:
        engine = _engine(parsed)
    except NoSuchModuleError:
        return (f"{where}: неизвестный вид базы данных «{parsed.drivername}»; для PostgreSQL пишите "
                "postgresql://… (драйвер psycopg 3) или postgresql+psycopg2://…")
    except ImportError as exc:
        return (f"{where}: драйвер «{parsed.get_driver_name()}» не установлен ({exc}); для PostgreSQL "
                "пишите postgresql://… (psycopg 3) или postgresql+psycopg2://… — оба в requirements.txt")
    try:
        with engine.connect():
            return None
    except Exception as exc:  # noqa: BLE001 - every driver's failure becomes one line
        detail = _detail(exc, parsed)
    finally:
        engine.dispose()
    if parsed.get_backend_name() != "postgresql":
        return f"{where}: не удалось подключиться к базе данных ({detail})"
    return f"{where}: " + _why_postgres(parsed, detail)


def _engine(parsed):
    options = {"connect_timeout": CONNECT_TIMEOUT} if parsed.get_backend_name() == "postgresql" else {}
    return sqlalchemy.create_engine(parsed, poolclass=NullPool, connect_args=options)


def _detail(exc, parsed):
    """The driver's own words on one line: what follows libpq's «… failed:», password hidden."""
    text = str(getattr(exc, "orig", None) or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    first = first.rsplit(" failed: ", 1)[-1]
    first = re.sub(r"^[A-ZА-ЯЁ]+:\s+", "", first)          # FATAL: / ВАЖНО:
    for secret in (parsed.password, parsed.query.get("password")):
        if secret:
            first = first.replace(str(secret), "***")
    return first[:300]


def _why_postgres(parsed, detail):
    host = parsed.host or parsed.query.get("host") or "localhost"
    server = f"{host}:{parsed.port or 5432}"
    user = parsed.username or getpass.getuser()
    database = parsed.database or user
    lowered = detail.lower()
    if any(words in lowered for words in UNREACHABLE):
        return (f"сервер PostgreSQL {server} недоступен ({detail}); проверьте сервер и порт в URL "
                "и что PostgreSQL запущен")
    exists = _database_exists(parsed, database)
    if exists is False:
        return (f"на сервере PostgreSQL {server} нет базы данных «{database}»; создайте её "
                f"(createdb -h {host} -p {parsed.port or 5432} -U {user} {database}) или исправьте имя в URL")
    if exists is None and any(words in lowered for words in CREDENTIALS):
        return (f"сервер PostgreSQL {server} не принял пользователя «{user}» ({detail}); "
                "проверьте имя пользователя и пароль в URL")
    return f"сервер PostgreSQL {server} отказал в подключении к базе «{database}» ({detail})"


def _database_exists(parsed, database):
    """Whether the server lists ``database``, asked through a maintenance database with the same
    credentials; None when the server does not let these credentials in at all."""
    for maintenance in MAINTENANCE_DATABASES:
        if maintenance == database:
            continue
        engine = _engine(parsed.set(database=maintenance))
        try:
            with engine.connect() as connection:
                found = connection.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                           {"name": database}).first()
                return found is not None
        except Exception:  # noqa: BLE001 - not this way in; try the next
            continue
        finally:
            engine.dispose()
    return None
