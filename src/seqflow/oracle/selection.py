"""Which output columns of an external model an oracle reports, by index or by name.

``columns`` picks indices; ``names_file`` (one name per output column, one per line; trailing
blank lines ignored) with ``select`` picks every column whose name contains ``select``. With
``reduce="mean"`` the picked columns become one column named after ``select`` (``mean`` for
indices); with ``reduce="none"`` they are kept with their names. No selection keeps every
column (``reduce`` does not apply).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqflow.errors import InvalidInputError

REDUCTIONS = ("mean", "none")


@dataclass(frozen=True)
class ColumnSelection:
    """The chosen columns of a ``width``-column output.

    Attributes:
        columns: chosen indices in order, or None for every column.
        output_names: names of the reported columns (one, when they are averaged).
    """

    columns: tuple[int, ...] | None
    output_names: tuple[str, ...]


def read_names(names_file: str) -> list[str]:
    """The stripped lines of ``names_file``, trailing blank lines dropped."""
    try:
        lines = [line.strip() for line in Path(names_file).read_text("utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"{names_file}: cannot read the names file ({err})") from None
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _chosen(
    width: int, source: str, columns: list[int] | None, names: list[str], select: str | None
) -> tuple[int, ...] | None:
    if select is not None:
        chosen = tuple(i for i, name in enumerate(names) if select in name)
        if not chosen:
            raise InvalidInputError(f"{source}: no output name contains {select!r}")
        return chosen
    if columns is None:
        return None
    if not columns:
        raise InvalidInputError(f"{source}: columns is empty")
    for c in columns:
        if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < width:
            raise InvalidInputError(
                f"{source}: column {c!r} is out of range for an output of {width} columns "
                f"(0..{width - 1})"
            )
    return tuple(columns)


def select_columns(
    width: int,
    source: str,
    *,
    columns: list[int] | None,
    names_file: str | None,
    select: str | None,
    reduce: str,
) -> ColumnSelection:
    """Check and resolve a selection of a model's ``width`` output columns.

    Args:
        width: columns of the model's output.
        source: the model file, named in error messages.
        columns, names_file, select, reduce: the selection (see the module docstring);
            ``reduce`` is checked by the caller.

    Raises:
        InvalidInputError: the names file lists a different number of columns, an index is out
            of range, ``select`` matches nothing or lacks a names file, or both ways are given.
    """
    if columns is not None and select is not None:
        raise InvalidInputError(f"{source}: give columns or select, not both")
    if select is not None and names_file is None:
        raise InvalidInputError(f"select {select!r}: needs a names_file of output names")
    names = [f"output_{i}" for i in range(width)]
    if names_file is not None:
        names = read_names(names_file)
        if len(names) != width:
            raise InvalidInputError(
                f"{source}: output has {width} columns but {names_file} lists {len(names)}"
            )
    chosen = _chosen(width, names_file or source, columns, names, select)
    if chosen is None:
        return ColumnSelection(None, tuple(names))
    if reduce == "mean":
        return ColumnSelection(chosen, (select if select is not None else "mean",))
    return ColumnSelection(chosen, tuple(names[i] for i in chosen))
