"""Text that Windows tools wrote (main process): which encoding the bytes read as.

File names from a zip or a folder unpacked on a Russian Windows come in cp1251 or
cp866; a notebook re-saved by Notepad («Юникод»), by PowerShell's ``>`` or by an
editor set to the Windows code page comes in UTF-16 or cp1251. A reading counts as
Russian when it gives Cyrillic words and no word that mixes Cyrillic with other
letters (cp1251 reads the German «Müller» as «Mьller»). Standard library only.
"""
import codecs
import json
import re

_WORD = re.compile(r"[^\W\d_]+")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _cyrillic(ch):
    return "а" <= ch.lower() <= "я" or ch in "ёЁ"


def _words(text):
    """(letters in all-Cyrillic words, words that mix Cyrillic with other letters)."""
    letters = mixed = 0
    for word in _WORD.findall(text):
        cyrillic = sum(map(_cyrillic, word))
        if cyrillic == len(word):
            letters += cyrillic
        elif cyrillic:
            mixed += 1
    return letters, mixed


def russian_letters(text):
    """How many Cyrillic letters ``text`` has, or 0 when a word mixes them with other letters
    (a short text, such as a name: one such word rules the reading out)."""
    letters, mixed = _words(text)
    return 0 if mixed else letters


def name_text(raw):
    """The text of a file name's bytes: UTF-8; else the Russian Windows code page they read as
    Russian in (cp1251, or cp866 of zips Windows makes); else cp437, as Python reads zips."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    letters, text = max((russian_letters(t), t) for t in (raw.decode(c, "replace") for c in ("cp1251", "cp866")))
    return text if letters else raw.decode("cp437")


# UTF-8 letters before the first byte UTF-8 refuses that make a text UTF-8 still: an 8-bit
# Russian text has one such pair at most before it (a capital letter, then «»» or «—»)
CUT_UTF8_LETTERS = 8


def file_text(raw):
    """(text, encoding) of a text file's bytes, ``encoding`` None for UTF-8 (with a BOM or
    without); else "UTF-16" or "UTF-32" (a BOM, or JSON's zero bytes around ASCII), or the
    8-bit code page it reads as: cp1251 when Russian (a few words mixing scripts allowed in a long
    text), else cp1252. ``CUT_UTF8_LETTERS`` UTF-8 letters before the first byte UTF-8 refuses
    make it UTF-8 still (each refused byte read as «�»). None for ``text`` when the bytes are no
    text (zero bytes in 8-bit data)."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    else:
        wide = next((name for bom, name in _BOMS if raw.startswith(bom)), None)
        if wide is None and 0 in raw[:4]:
            wide = json.detect_encoding(raw[:4]) if len(raw) >= 4 else None   # "utf-16-le", ...
            wide = None if wide == "utf-8" else wide
        if wide:   # a file cut short keeps what it has: JSON's parser names it cut
            return raw.decode(wide, "replace"), wide[:6].upper()
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as error:
        utf8_letters = sum(not ch.isascii() for ch in raw[:error.start].decode("utf-8"))
    if b"\0" in raw:
        return None, None
    if utf8_letters >= CUT_UTF8_LETTERS:   # UTF-8 whose end is damaged (an old save's tail cut mid-letter)
        return raw.decode("utf-8", "replace"), None
    russian = raw.decode("cp1251", "replace")
    letters, mixed = _words(russian)
    if letters and mixed * 20 <= letters:
        return russian, "cp1251"
    try:
        return raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "cp1252"
