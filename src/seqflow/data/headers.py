"""``key=value`` tags in FASTA headers, written and read in one place.

A header is the record id followed by tags, e.g. ``sample_3 label=K562 value=1.5
signal=rows.npy:3``: ``seqflow sample`` writes the conditions of each sequence this way, and
``seqflow evaluate`` reads them back (``label=``, ``value=``, ``library=``). Values hold no
whitespace; numbers are written with ``%g``.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from pathlib import Path


def format_header(record_id: str, tags: Mapping[str, object | None]) -> str:
    """``record_id`` followed by ``key=value`` for each tag whose value is not None (floats
    as ``%g``), in the mapping's order."""
    words = [record_id]
    for key, value in tags.items():
        if value is not None:
            words.append(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(words)


def parse_header(header: str) -> dict[str, str]:
    """The ``key=value`` tags of one header (the text after ``>``); the id is not a tag."""
    return dict(word.split("=", 1) for word in header.split()[1:] if "=" in word)


def read_header_tags(path: str | Path) -> list[dict[str, str]]:
    """The tags of each FASTA header of ``path`` (plain or ``.gz``), in record order."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:  # type: ignore[operator]
        return [parse_header(line[1:]) for line in handle if line.startswith(">")]
