"""The course's nbgrader configuration, for any process that runs nbgrader.

``course_config`` loads the repository's one ``nbgrader_config.py`` with a given
course root (no second copy of it anywhere); ``venv_on_path`` lets nbgrader
find ``alembic`` (run by name) when the venv is not activated; ``alembic_head``
answers, in this process, what a new gradebook asks ``alembic heads`` for, and
``gradebook_engine`` keeps one database engine per gradebook.
"""
import os
import sys
import warnings

import nbgrader.api
import sqlalchemy
from alembic.script import ScriptDirectory
from nbgrader.dbutil import ALEMBIC_DIR
from sqlalchemy.exc import SAWarning
from traitlets.config.loader import PyFileConfigLoader

from .course import NBGRADER_CONFIG

# nbgrader's gradebook warns "Object of type <SubmittedNotebook> not in session" on every
# student it records (harmless; the scores are checked against the result records).
warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.api")


def alembic_head():
    """The revision nbgrader stamps a new gradebook with, read from its migration scripts.

    nbgrader's ``get_alembic_version`` runs ``alembic heads`` in a subprocess (about
    3 CPU-seconds for every new gradebook); its migrations have one head, read here.
    """
    return ScriptDirectory(ALEMBIC_DIR).get_current_head()  # raises if there were several


nbgrader.api.get_alembic_version = alembic_head

_ENGINES = {}


def gradebook_engine(url, **options):
    """The SQLAlchemy engine of gradebook ``url``, made once in this process.

    nbgrader opens a gradebook some 40 times per student, each time with a new engine
    whose compiled-statement cache starts empty, so every query is compiled again
    (0.3 CPU-seconds per student). ``Gradebook.close`` disposes of the engine's pooled
    connections; the engine stays usable and connects again when the gradebook is next
    opened, and a session still open elsewhere keeps its own connection.
    """
    key = (str(url), tuple(sorted(options.items())))
    if key not in _ENGINES:
        _ENGINES[key] = sqlalchemy.create_engine(url, **options)
    return _ENGINES[key]


nbgrader.api.create_engine = gradebook_engine


def venv_on_path():
    """Put this Python's bin folder first on PATH (nbgrader runs ``alembic`` by name). Without a
    PATH at all (``env -i``) the system's default path follows it, as a shell would search
    (else bwrap in /usr/bin went unfound: «bwrap not found», with bubblewrap installed)."""
    bin_dir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", os.defpath).split(os.pathsep)
    if bin_dir not in parts:
        os.environ["PATH"] = os.pathsep.join([bin_dir, *filter(None, parts)])


def course_config(root, db_url=""):
    """The repository's nbgrader config, rooted at ``root`` (and with ``db_url``, if given)."""
    venv_on_path()
    config = PyFileConfigLoader(NBGRADER_CONFIG.name, path=str(NBGRADER_CONFIG.parent)).load_config()
    config.CourseDirectory.root = str(root)
    if db_url:
        config.CourseDirectory.db_url = db_url
    return config
