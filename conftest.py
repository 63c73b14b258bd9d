"""Test-wide settings: kernels started by nbval and the tests inherit these."""
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("GPT_MAX_ITERS", "60")
os.environ.setdefault("GPT_COURSE_DATA", str(ROOT / "source" / "gpt" / "data" / "input.txt"))
os.environ.setdefault("MPLBACKEND", "Agg")
