"""Test-wide settings: the tests, and kernels started by nbval and the tests, inherit these.

One thread per process for torch (OpenMP, MKL, OpenBLAS): several processes at
once would otherwise oversubscribe the cores (measured: 10x slower). The venv's
bin goes on PATH, since nbgrader's gradebook runs ``alembic`` by name.
"""
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent
for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[name] = "1"
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("GPT_MAX_ITERS", "30")  # as the kit test: 06_training runs, briefly
os.environ.setdefault("GPT_COURSE_DATA", str(ROOT / "source" / "gpt" / "data" / "input.txt"))
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402  (after the thread variables)

torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """Test processes take a group at a time (``--dist loadgroup``): a file is a group of its own,
    as with ``--dist loadfile``, unless its tests name one (``pytest.mark.xdist_group``), as the
    files that read the same graded class do: one process grades it once (tests/conftest.py)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
