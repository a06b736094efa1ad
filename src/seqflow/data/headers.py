"""``key=value`` tags in FASTA headers, written and read in one place.

A header is the record id followed by tags, e.g. ``sample_3 label=K562 value=1.5
signal=rows.npy:3``: ``seqflow sample`` writes the conditions of each sequence this way, and
``seqflow evaluate`` reads them back (``label=``, ``value=``, ``library=``). Values hold no
whitespace; numbers are written with ``%g``.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Mapping
from pathlib import Path


def format_header(record_id: str, tags: Mapping[str, object | None]) -> str:
    """``record_id`` followed by ``key=value`` for each tag whose value is not None (floats
    as ``%g``), in the mapping's order; the id and the values :func:`escaped` (one line, one
    word each)."""
    words = [escaped(record_id)]
    for key, value in tags.items():
        if value is not None:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            words.append(f"{key}={escaped(text)}")
    return " ".join(words)


def parse_header(header: str) -> dict[str, str]:
    """The ``key=value`` tags of one header (the text after ``>``), values unescaped; the id
    is not a tag."""
    pairs = (word.split("=", 1) for word in header.split()[1:] if "=" in word)
    return {key: unescaped(value) for key, value in pairs}


_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPE = re.compile(r"[\\\s\x00-\x1f\x7f-\x9f]")
_UNESCAPE = re.compile(r"\\(\\|n|r|t|x[0-9a-f]{2}|u[0-9a-f]{4})")


def escaped(text: str) -> str:
    """``text`` as one word of a header: a backslash, newline, carriage return and tab as
    ``\\\\``, ``\\n``, ``\\r``, ``\\t``; other whitespace and control characters as
    ``\\xHH`` or ``\\uHHHH`` (Python's escapes; :func:`unescaped` inverts it)."""
    return _ESCAPE.sub(lambda m: _NAMED.get(m[0]) or _code(m[0]), text)


def _code(char: str) -> str:
    return f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}"


def unescaped(word: str) -> str:
    """The text :func:`escaped` made ``word`` of."""
    named = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
    return _UNESCAPE.sub(lambda m: named.get(m[1]) or chr(int(m[1][1:], 16)), word)


def read_header_tags(path: str | Path) -> list[dict[str, str]]:
    """The tags of each FASTA header of ``path`` (plain or ``.gz``), in record order."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:  # type: ignore[operator]
        return [parse_header(line[1:]) for line in handle if line.startswith(">")]
