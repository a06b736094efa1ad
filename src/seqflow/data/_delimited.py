"""CSV/TSV records: one sequence per row, columns chosen by header name (stdlib ``csv``), and
the condition cells of a row parsed: a value, a signal track, a split name."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from itertools import dropwhile
from typing import Any

import numpy as np

from seqflow.data._source import RawRecord, TextSource, quote
from seqflow.data.table import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID
from seqflow.errors import InvalidInputError

SEQUENCE_COLUMNS = ("sequence", "seq")  # default sequence columns, any case, in order
ID_COLUMNS = ("id", "name", "dhs_id")  # id columns, any case, in order; else ids are row{n}
MAX_LISTED = 20  # columns listed at most in an unknown-column error
SPLIT_NAMES = {  # accepted split cells (any case) and their codes
    "train": SPLIT_TRAIN,
    "valid": SPLIT_VALID,
    "validation": SPLIT_VALID,
    "val": SPLIT_VALID,
    "test": SPLIT_TEST,
}


@dataclass(frozen=True)
class Columns:
    """Column names asked for; ``None`` (or empty) means none (for ``seq``: ``sequence`` or
    ``seq``)."""

    seq: str | None = None
    label: str | None = None
    value: str | None = None
    signal: str | None = None
    split: str | None = None

    def options(self) -> list[str]:
        """Names of the ``*_col`` options that were given, e.g. ``["label_col"]``."""
        return [f"{f.name}_col" for f in fields(self) if getattr(self, f.name) is not None]


SEPARATORS = str.maketrans({",": " ", ";": " ", "\t": " "})
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _value(cell: str, where: str, column: str, length: int) -> float:
    """The finite float32-sized number of a value cell."""
    try:
        number = float(cell)
    except ValueError:
        raise InvalidInputError(
            f"{where}: value {quote(cell)} in column {column!r} is not a number"
        ) from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{where}: value {quote(cell)} in column {column!r} is not finite")
    if abs(number) > _FLOAT32_MAX:
        raise InvalidInputError(
            f"{where}: value {quote(cell)} in column {column!r} is too large for float32"
        )
    return number


def _signal(cell: str, where: str, column: str, length: int) -> np.ndarray:
    """One channel of ``length`` finite numbers separated by spaces, commas, semicolons or tabs,
    shape (length,), float32."""
    parts = cell.translate(SEPARATORS).split()
    if not parts:
        raise InvalidInputError(f"{where} has no signal in column {column!r}")
    if len(parts) != length:
        raise InvalidInputError(
            f"{where}: signal has {len(parts)} values for a sequence of length {length} "
            f"(column {column!r})"
        )
    try:
        numbers = np.array(parts, dtype=np.float64).astype(np.float32)
    except ValueError:
        numbers = np.array([_number_or_nan(p) for p in parts], dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        i = int(bad[0])
        raise InvalidInputError(
            f"{where}: signal value {quote(parts[i])} at position {i + 1} is not a finite number "
            f"(column {column!r})"
        )
    return numbers


def _number_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _split(cell: str, where: str, column: str, length: int) -> int:
    """The split code of a cell: train, valid (validation, val) or test, any case."""
    code = SPLIT_NAMES.get(cell.lower())
    if code is None:
        raise InvalidInputError(
            f"{where}: split {quote(cell)} in column {column!r} is not train, valid or test"
        )
    return code


_PARSERS = {"label": lambda cell, *_: cell, "value": _value, "signal": _signal, "split": _split}
"""Condition columns, in the order they are looked up and read, and the parser of their cells."""


def _find_column(names: Sequence[str], wanted: str) -> int | None:
    if wanted in names:
        return names.index(wanted)
    folded = [n.lower() for n in names]
    return folded.index(wanted.lower()) if wanted.lower() in folded else None


def _column(names: Sequence[str], wanted: str | None, where: str, delimiter: str, role: str) -> int:
    """Index of the column ``wanted`` (or of a default sequence column when ``None``)."""
    for candidate in (wanted,) if wanted is not None else SEQUENCE_COLUMNS:
        index = _find_column(names, candidate)
        if index is not None:
            return index
    looked = repr(wanted) if wanted is not None else "(looked for 'sequence', 'seq')"
    listing = ", ".join(quote(n) for n in names[:MAX_LISTED])
    if len(names) > MAX_LISTED:
        listing += f", ... ({len(names)} columns)"
    other, kind, fmt = ("\t", "tab", "tsv") if delimiter == "," else (",", "comma", "csv")
    hint = ""
    if len(names) == 1 and other in names[0]:  # one header cell holding the other delimiter
        hint = f" (the file looks {kind}-separated; set fmt='{fmt}')"
    raise InvalidInputError(f"{where}: no {role} column {looked}; columns: {listing}{hint}")


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def table_rows(lines: TextSource, delimiter: str) -> Iterator[list[str]]:
    """The header's names (stripped), then every non-blank data row (``#`` comments and blank
    lines before the header skipped); an :class:`InvalidInputError` for no header or a
    malformed row."""
    body = dropwhile(lambda text: text.startswith("#") or not text.strip(), lines)
    rows = csv.reader(body, delimiter=delimiter, strict=True)
    try:
        header = next(rows, None)
        if header is None:
            raise InvalidInputError(f"{lines.name}: no header row")
        yield [name.strip() for name in header]
        yield from (row for row in rows if any(cell.strip() for cell in row))
    except csv.Error as err:
        raise InvalidInputError(f"{lines.name}:{lines.line}: malformed row ({err})") from None


def iter_table(lines: TextSource, *, delimiter: str, columns: Columns) -> Iterator[RawRecord]:
    """Yield one record per non-blank data row of the ``columns`` asked for (cells stripped).

    Raises:
        InvalidInputError: no header, unknown column (the message lists the columns), a row with
            an empty sequence or label cell, a bad value, signal or split cell, a malformed row.
    """
    rows = table_rows(lines, delimiter)
    names, header = next(rows), f"{lines.name}:{lines.line}"
    seq_index = _column(names, columns.seq, header, delimiter, "sequence")
    condition_index = {
        role: _column(names, wanted, header, delimiter, role)
        for role in _PARSERS
        if (wanted := getattr(columns, role))
    }
    id_index = next((i for c in ID_COLUMNS if (i := _find_column(names, c)) is not None), None)
    n = 0
    for n, row in enumerate(rows, start=1):
        record_id = _cell(row, id_index) or f"row{n}"
        where = f"{lines.name}:{lines.line}: record {quote(record_id)}"
        seq = _cell(row, seq_index)
        if not seq:
            raise InvalidInputError(f"{where} has no sequence in column {names[seq_index]!r}")
        conditions: dict[str, Any] = {}
        for role, index in condition_index.items():
            cell, column = _cell(row, index), names[index]
            if not cell and role != "split":
                raise InvalidInputError(f"{where} has no {role} in column {column!r}")
            conditions[role] = _PARSERS[role](cell, where, column, len(seq))
        yield RawRecord(record_id, seq, lines.line, lines.line, 0, **conditions)
    if n == 0:
        raise InvalidInputError(f"{lines.name}: no data rows after the header")
