"""Write sequences as FASTA, or records as CSV/TSV/JSON Lines, to a file (atomically; gzip for
``.gz``) or to standard output."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TextIO

from seqflow.io_utils import open_output


def _write_records(records: Iterable[tuple[str, str]], handle: TextIO, width: int) -> int:
    count = 0
    for header, seq in records:
        if "\n" in header or "\r" in header or "\n" in seq or "\r" in seq:
            raise ValueError(
                f"record {count + 1} ({header!r}): header and sequence must be single lines"
            )
        handle.write(f">{header}\n")
        if width and len(seq) > width:
            handle.write("\n".join(seq[i : i + width] for i in range(0, len(seq), width)))
            handle.write("\n")
        else:
            handle.write(f"{seq}\n")
        count += 1
    return count


def write_fasta(
    records: Iterable[tuple[str, str]], path: str | Path | None, *, width: int = 0
) -> int:
    """Write ``(header, sequence)`` pairs as FASTA.

    Args:
        records: pairs of header (text after ``>``, e.g. ``"seq1 cell_type=K562"``) and sequence.
        path: output file, written atomically (no partial file on error; gzip when it ends in
            ``.gz``); ``None`` or ``"-"`` writes to standard output.
        width: letters per sequence line; 0 keeps each sequence on one line.

    Returns:
        the number of records written.

    Raises:
        ValueError: negative ``width``, or a header or sequence containing a newline.
        InvalidInputError: the output folder is missing, or ``path`` is a folder.
    """
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    with open_output(path) as handle:
        return _write_records(records, handle, width)


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
        path: output file, written atomically (gzip when it ends in ``.gz``); ``None`` or
            ``"-"`` writes to standard output.
        fmt: ``csv``, ``tsv`` or ``jsonl``.
        columns: the fields written, in order.

    Returns:
        the number of records written.
    """
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"fmt must be one of {TABLE_FORMATS}, got {fmt!r}")

    def emit(handle: TextIO) -> int:
        count = 0
        if fmt == "jsonl":
            for row in rows:
                handle.write(json.dumps({c: row.get(c) for c in columns}) + "\n")
                count += 1
            return count
        writer = csv.writer(handle, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
            count += 1
        return count

    with open_output(path) as handle:
        return emit(handle)
