"""Parsing the condition cells of a table row: a value, a signal track, a split name."""

from __future__ import annotations

import math

import numpy as np

from seqflow.data._source import quote
from seqflow.errors import InvalidInputError

SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST = 0, 1, 2
"""Codes of :attr:`SequenceTable.splits`."""

SPLIT_NAMES = {
    "train": SPLIT_TRAIN,
    "valid": SPLIT_VALID,
    "validation": SPLIT_VALID,
    "val": SPLIT_VALID,
    "test": SPLIT_TEST,
}
"""Accepted split cells (case-insensitive) and their codes."""

_SEPARATORS = str.maketrans({",": " ", ";": " ", "\t": " "})
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def parse_value(cell: str, where: str, column: str) -> float:
    """The finite number in ``cell``.

    Args:
        cell: the stripped cell text.
        where: error prefix, e.g. ``"x.csv:3: record 'r2'"``.
        column: the column name, for the message.

    Raises:
        InvalidInputError: empty, non-numeric, nan or infinite.
    """
    if not cell:
        raise InvalidInputError(f"{where} has no value in column {column!r}")
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


def parse_signal(cell: str, where: str, column: str, length: int) -> np.ndarray:
    """One channel of per-position numbers, separated by spaces, commas, semicolons or tabs.

    Args:
        cell: the stripped cell text.
        where: error prefix, e.g. ``"x.csv:3: record 'r2'"``.
        column: the column name, for the message.
        length: the record's sequence length, which the count must equal.

    Returns:
        the numbers, shape (length,), float32.

    Raises:
        InvalidInputError: empty cell, wrong count, a non-numeric or non-finite number.
    """
    parts = cell.translate(_SEPARATORS).split()
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


def parse_split(cell: str, where: str, column: str) -> int:
    """The split code of ``cell``: train, valid (validation, val) or test, any case.

    Raises:
        InvalidInputError: any other text.
    """
    code = SPLIT_NAMES.get(cell.lower())
    if code is None:
        raise InvalidInputError(
            f"{where}: split {quote(cell)} in column {column!r} is not train, valid or test"
        )
    return code
