"""Build the student kit: a zip of release/gpt with the top folder gpt/.

    python tools/student_kit.py [build/student-kit.zip]

Only the files of release/gpt go in (no checkpoints or caches), with fixed
timestamps, so the same release gives the same zip.
"""
import pathlib
import sys
import zipfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from autograder.course import RELEASE, kit_files  # noqa: E402  (the grader knows the kit too)

DEFAULT = ROOT / "build" / "student-kit.zip"


def build(out=DEFAULT, release=RELEASE):
    out = pathlib.Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in kit_files(release):
            info = zipfile.ZipInfo(f"gpt/{rel.as_posix()}", date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (release / rel).read_bytes())
    return out


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else DEFAULT))
