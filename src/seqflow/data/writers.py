"""Write sequences as FASTA, to a file (atomically) or to standard output."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from seqflow.io_utils import atomic_write


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
        path: output file, written atomically (no partial file on error); ``None`` or ``"-"``
            writes to standard output.
        width: letters per sequence line; 0 keeps each sequence on one line.

    Returns:
        the number of records written.

    Raises:
        ValueError: negative ``width``, or a header or sequence containing a newline.
        InvalidInputError: the output folder is missing, or ``path`` is a folder.
    """
    if width < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    if path is None or str(path) == "-":
        count = _write_records(records, sys.stdout, width)
        sys.stdout.flush()
        return count
    with atomic_write(path) as handle:
        return _write_records(records, handle, width)
