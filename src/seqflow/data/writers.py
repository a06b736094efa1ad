"""Write sequences as FASTA, or records as CSV/TSV/JSON Lines, to a file (atomically; gzip
for ``.gz``) or to standard output; ``key=value`` tags in FASTA headers, written and read here.

A header is the record id followed by tags, e.g. ``sample_3 label=K562 value=1.5
signal=rows.npy:3``: ``seqflow sample`` writes the conditions of each sequence this way, and
``seqflow evaluate`` reads them back (``label=``, ``value=``, ``library=``).
"""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from seqflow.io_utils import open_output


def format_header(record_id: str, tags: Mapping[str, object | None]) -> str:
    """``record_id`` followed by ``key=value`` for each tag whose value is not None (floats
    as ``%g``), in the mapping's order; the id and the values :func:`escaped` to one word each."""
    words = [escaped(record_id)]
    for key, value in tags.items():
        if value is not None:
            text = f"{value:g}" if isinstance(value, float) else str(value)
            words.append(f"{key}={escaped(text)}")
    return " ".join(words)


def read_header_tags(path: str | Path) -> list[dict[str, str]]:
    """The tags of each FASTA header of ``path`` (plain or ``.gz``), in record order, values
    unescaped (:func:`unescaped`); the id is not a tag."""
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:  # type: ignore[operator]
        headers = [line[1:].split()[1:] for line in handle if line.startswith(">")]
    pairs = ([word.split("=", 1) for word in words if "=" in word] for words in headers)
    return [{key: unescaped(value) for key, value in tags} for tags in pairs]


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


def write_fasta(
    records: Iterable[tuple[str, str]], path: str | Path | None, *, width: int = 0
) -> int:
    """Write ``(header, sequence)`` pairs as FASTA.

    Args:
        records: pairs of header (text after ``>``, e.g. ``"seq1 cell_type=K562"``) and sequence.
        path: output file (atomic, gzip for ``.gz``), or ``None`` or ``"-"`` for standard output.
        width: letters per sequence line; 0 keeps each sequence on one line.

    Returns:
        the number of records written.

    Raises:
        ValueError: negative ``width``, or a header or sequence containing a newline.
        InvalidInputError: the output folder is missing, or ``path`` is a folder.
    """
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    count = 0
    with open_output(path) as handle:
        for count, (header, seq) in enumerate(records, start=1):
            if "\n" in header or "\r" in header or "\n" in seq or "\r" in seq:
                raise ValueError(
                    f"record {count} ({header!r}): header and sequence must be single lines"
                )
            lines = [seq[i : i + width] for i in range(0, len(seq), width)] if width else [seq]
            handle.write(f">{header}\n" + "\n".join(lines) + "\n")
    return count


TABLE_FORMATS = ("csv", "tsv", "jsonl")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def write_table(
    rows: Iterable[dict[str, object]],
    path: str | Path | None,
    *,
    fmt: str,
    columns: Sequence[str],
) -> int:
    """Write records as CSV/TSV (one header line, ``columns`` in order) or JSON Lines.

    Args:
        rows: one dict per record; missing keys are empty cells (``null`` in JSON).
        path: output file (atomic, gzip for ``.gz``), or ``None`` or ``"-"`` for standard output.
        fmt: ``csv``, ``tsv`` or ``jsonl``.
        columns: the fields written, in order.

    Returns:
        the number of records written.
    """
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"fmt must be one of {TABLE_FORMATS}, got {fmt!r}")
    count = 0
    with open_output(path) as handle:
        writer = csv.writer(handle, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        if fmt != "jsonl":
            writer.writerow(columns)
        for row in rows:
            if fmt == "jsonl":
                handle.write(json.dumps({c: row.get(c) for c in columns}) + "\n")
            else:
                writer.writerow([_cell(row.get(c)) for c in columns])
            count += 1
    return count
