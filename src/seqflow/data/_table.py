"""CSV/TSV records: one sequence per row, columns chosen by header name (stdlib ``csv``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence

from seqflow.data._source import LineCounter, RawRecord
from seqflow.errors import InvalidInputError

SEQUENCE_COLUMNS = ("sequence", "seq")
"""Default sequence column names, tried in order (case-insensitive)."""

ID_COLUMNS = ("id", "name", "dhs_id")
"""Id column names, tried in order (case-insensitive); without one, ids are ``row{n}``."""


def _find_column(names: Sequence[str], wanted: str) -> int | None:
    if wanted in names:
        return names.index(wanted)
    folded = [n.lower() for n in names]
    return folded.index(wanted.lower()) if wanted.lower() in folded else None


def _layout_hint(names: Sequence[str], delimiter: str) -> str:
    """A hint when the header is one cell that holds the other delimiter."""
    if len(names) == 1 and delimiter == "," and "\t" in names[0]:
        return " (the file looks tab-separated; set fmt='tsv')"
    if len(names) == 1 and delimiter == "\t" and "," in names[0]:
        return " (the file looks comma-separated; set fmt='csv')"
    return ""


def _column(names: Sequence[str], wanted: str | None, where: str, delimiter: str, role: str) -> int:
    """Index of the column ``wanted`` (or of a default sequence column when ``None``)."""
    for candidate in (wanted,) if wanted is not None else SEQUENCE_COLUMNS:
        index = _find_column(names, candidate)
        if index is not None:
            return index
    looked = repr(wanted) if wanted is not None else "(looked for 'sequence', 'seq')"
    listing = ", ".join(repr(n) for n in names)
    hint = _layout_hint(names, delimiter)
    raise InvalidInputError(f"{where}: no {role} column {looked}; columns: {listing}{hint}")


def _cell(row: list[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def iter_table(
    lines: LineCounter,
    source: str,
    *,
    delimiter: str,
    seq_col: str | None,
    label_col: str | None,
) -> Iterator[RawRecord]:
    """Yield one record per non-blank data row; ``#`` lines before the header are skipped.

    Args:
        lines: the file's lines; its counter gives row line numbers.
        source: file name for error messages.
        delimiter: ``","`` or ``"\\t"``.
        seq_col: sequence column name; ``None`` looks for ``sequence`` or ``seq``.
        label_col: label column name, or ``None`` for no labels.

    Raises:
        InvalidInputError: no header, unknown column, a row with an empty sequence or label cell,
            a malformed row.
    """

    def body() -> Iterator[str]:
        in_preamble = True
        for text in lines:
            if in_preamble and (text.startswith("#") or not text.strip()):
                continue
            in_preamble = False
            yield text

    rows = csv.reader(body(), delimiter=delimiter, strict=True)
    try:
        header = next(rows, None)
        if header is None:
            raise InvalidInputError(f"{source}: no header row")
        names = [name.strip() for name in header]
        where = f"{source}:{lines.line}"
        seq_i = _column(names, seq_col, where, delimiter, "sequence")
        label_i = _column(names, label_col, where, delimiter, "label") if label_col else None
        id_i = next((i for c in ID_COLUMNS if (i := _find_column(names, c)) is not None), None)
        n = 0
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            n += 1
            record_id = _cell(row, id_i) or f"row{n}"
            where = f"{source}:{lines.line}: record {record_id!r}"
            seq = _cell(row, seq_i)
            if not seq:
                raise InvalidInputError(f"{where} has no sequence in column {names[seq_i]!r}")
            label = None
            if label_i is not None:
                label = _cell(row, label_i)
                if not label:
                    raise InvalidInputError(f"{where} has no label in column {names[label_i]!r}")
            yield RawRecord(record_id, seq, lines.line, label)
    except csv.Error as err:
        raise InvalidInputError(f"{source}:{lines.line}: malformed row ({err})") from None
    if n == 0:
        raise InvalidInputError(f"{source}: no data rows after the header")
