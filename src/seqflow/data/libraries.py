"""Library-mode input: sequences grouped into libraries (sets of sequences), from one CSV/TSV
file with a set column naming each row's library, or from one file per library (a folder of
FASTA/FASTQ files, or a list of paths of any format; the library name is the file name without
its sequence suffix and ``.gz``)."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqflow.data._delimited import _cell, _column, table_rows
from seqflow.data._source import open_text, quote
from seqflow.data.readers import _SUFFIXES, read_sequences, split_suffix
from seqflow.data.table import SequenceTable
from seqflow.errors import InvalidInputError

FOLDER_FORMATS = ("fasta", "fastq")
"""Formats of the files taken from a folder (by suffix); other files are ignored."""


@dataclass(frozen=True, eq=False)
class LibraryTable:
    """Sequences of several libraries in one table.

    Attributes:
        table: every kept record, tokens of shape (N, L).
        libraries: library name -> row indices into ``table``, shape (n_i,), int64, in order
            of first appearance (set column) or of the files.
    """

    table: SequenceTable
    libraries: dict[str, np.ndarray]

    def sequences(self) -> dict[str, list[str]]:
        """Library name -> its sequences as upper-case strings (for the library metrics)."""
        tokens, lengths = self.table.tokens.numpy(), self.table.lengths.numpy()
        decode = self.table.alphabet.decode_batch
        out = {}
        for name, rows in self.libraries.items():
            texts = decode(np.minimum(tokens[rows], self.table.alphabet.size - 1))
            out[name] = [text[:n] for text, n in zip(texts, lengths[rows], strict=True)]
        return out


def _group_codes(codes: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Rows of each code (one code per row), keyed by name, in order of first appearance."""
    order = np.argsort(codes, kind="stable").astype(np.int64)
    parts = np.split(order, np.cumsum(np.bincount(codes, minlength=len(names)))[:-1])
    present = sorted((part[0], code) for code, part in enumerate(parts) if len(part))
    return {names[code]: parts[code] for _, code in present}


def _set_column(path: str | Path, set_col: str, delimiter: str) -> tuple[array, dict[str, str]]:
    """One streaming pass over a CSV/TSV file: the set code of each row, and each set's name
    with the place of its first row (``file:line (column 'name')``), in order of appearance."""
    codes, code_of, places = array("q"), dict[str, int](), dict[str, str]()
    with open_text(path) as source:
        rows = table_rows(source, delimiter)
        header = next(rows)
        index = _column(header, set_col, f"{source.name}:{source.line}", delimiter, "set")
        column = header[index]
        for row in rows:
            value = _cell(row, index)
            if not value:
                raise InvalidInputError(
                    f"{source.name}:{source.line}: empty set value in column {column!r}"
                )
            if value not in code_of:
                code_of[value] = len(code_of)
                places[value] = f"{source.name}:{source.line} (column {column!r})"
            codes.append(code_of[value])
    return codes, places


def _folder_files(folder: Path) -> list[Path]:
    suffixes = {s for s, fmt in _SUFFIXES.items() if fmt in FOLDER_FORMATS}
    files = sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".")
        and split_suffix(p.name)[1] in FOLDER_FORMATS
    )  # fmt: skip
    if not files:
        raise InvalidInputError(
            f"{folder}: no FASTA/FASTQ files ({', '.join(sorted(suffixes))}, optionally .gz)"
        )
    return files


def _concatenate(tables: list[SequenceTable], source: str) -> SequenceTable:
    """One table of the rows of ``tables``, records numbered file after file; an
    :class:`InvalidInputError` when a table's alphabet differs from the first's."""
    first = tables[0]
    for t in tables[1:]:
        if t.alphabet != first.alphabet:
            raise InvalidInputError(
                f"{t.source}: alphabet {t.alphabet.describe()} differs from "
                f"{first.alphabet.describe()} of {first.source}; give one alphabet"
            )
    width, pad = max(t.length for t in tables), first.pad_token
    tokens = torch.cat([torch.nn.functional.pad(t.tokens, (0, width - t.length), value=pad)
                        for t in tables])  # fmt: skip
    label_names = tuple(sorted({n for t in tables for n in t.label_names}))
    labels = None
    if all(t.labels is not None for t in tables):
        codes = [np.searchsorted(label_names, t.label_names)[t.labels.numpy()]
                 for t in tables if t.labels is not None]  # fmt: skip
        labels = torch.from_numpy(np.concatenate(codes).astype(np.int64))
    offsets = np.cumsum([0] + [t.report.records for t in tables])
    index = [t.record_index + int(o) for t, o in zip(tables, offsets[:-1], strict=True)]
    counts = ("skipped", "replaced_records", "replaced_letters", "cropped", "duplicate_ids")
    report = replace(
        first.report, alphabet=first.alphabet.describe(), records=int(offsets[-1]),
        **{key: sum(getattr(t.report, key) for t in tables) for key in counts},
    )  # fmt: skip
    return SequenceTable(
        tokens=tokens, ids=[i for t in tables for i in t.ids], alphabet=first.alphabet,
        labels=labels, label_names=label_names if labels is not None else (), source=source,
        lengths=torch.cat([t.lengths for t in tables]), values=None, signal=None, splits=None,
        record_index=torch.cat(index), report=report,
    )  # fmt: skip


def _check_sizes(groups: dict[str, np.ndarray], places: dict[str, str], min_size: int) -> None:
    """Raise unless every library holds ``min_size`` rows (``places`` says where each is)."""
    for name, place in places.items():
        size = len(groups.get(name, ()))
        if size < min_size:
            raise InvalidInputError(
                f"{place}: library {quote(name)} has {size} sequence(s); min_size is {min_size}"
            )


def _read_set_file(path: str | Path, set_col: str, min_size: int, **options: Any) -> LibraryTable:
    name = str(path)
    if name == "-":
        raise InvalidInputError("<stdin>: set_col needs a file (it is read twice), not stdin")
    table = read_sequences(path, **options)
    if table.report.format not in ("csv", "tsv"):
        raise InvalidInputError(
            f"{name}: set_col needs a CSV or TSV file, not {table.report.format}"
        )
    codes, places = _set_column(path, set_col, "," if table.report.format == "csv" else "\t")
    if len(codes) != table.report.records:
        raise InvalidInputError(
            f"{name}: {len(codes)} set values for {table.report.records} records "
            "(did the file change while it was read?)"
        )
    kept = np.frombuffer(codes, dtype=np.int64)[table.record_index.numpy()]
    groups = _group_codes(kept, list(places))
    _check_sizes(groups, places, min_size)
    return LibraryTable(table, groups)


def _read_files(paths: list[Path], source: str, min_size: int, **options: Any) -> LibraryTable:
    places: dict[str, str] = {}
    for path in paths:
        name = split_suffix(path.name)[0]
        if name in places:
            raise InvalidInputError(
                f"{path}: library {quote(name)} already read from {places[name]}"
            )
        places[name] = str(path)
    tables = [read_sequences(p, **options) for p in paths]
    ends = np.cumsum([len(t) for t in tables])
    rows = np.split(np.arange(ends[-1], dtype=np.int64), ends[:-1])
    groups = dict(zip(places, rows, strict=True))
    _check_sizes(groups, places, min_size)
    return LibraryTable(_concatenate(tables, source), groups)


def read_libraries(
    path: str | Path | Sequence[str | Path],
    set_col: str | None = None,
    *,
    seq_col: str | None = None,
    label_col: str | None = None,
    alphabet: str = "auto",
    on_invalid: str = "error",
    max_length: int | None = None,
    crop: bool = False,
    min_size: int = 1,
    seed: int = 0,
) -> LibraryTable:
    """Read sequences grouped into libraries.

    Args:
        path: one CSV/TSV file (with ``set_col``), a folder of FASTA/FASTQ files (one library
            each), or a list of sequence files of any format (one library each).
        set_col: column naming each row's library (one file only).
        seq_col, label_col, alphabet, on_invalid, max_length, crop, seed: as for
            :func:`~seqflow.data.read_sequences`; with one file per library and ``auto``,
            every file must resolve to the same alphabet.
        min_size: fewest sequences a library must keep.

    Returns:
        the table of all kept records and the row indices of each library.

    Raises:
        InvalidInputError: one line naming the file (and line, column) of the problem: any
            reader error, a missing set column, an empty set value, a library below
            ``min_size``, two files with one library name, a folder without sequence files.
    """
    options = {
        "alphabet": alphabet, "seq_col": seq_col, "label_col": label_col,
        "on_invalid": on_invalid, "max_length": max_length, "crop": crop, "seed": seed,
    }  # fmt: skip
    if min_size < 1:
        raise InvalidInputError(f"{path}: min_size must be at least 1, got {min_size}")
    if isinstance(path, str | Path) and not Path(path).is_dir():
        if set_col is None:
            raise InvalidInputError(
                f"{path}: give set_col (the column naming each row's library), or a folder or "
                "list of files with one library each"
            )
        return _read_set_file(path, set_col, min_size, **options)
    if set_col is not None:
        raise InvalidInputError(
            f"{path}: set_col is for one CSV/TSV file; here each file is one library"
        )
    if isinstance(path, str | Path):
        return _read_files(_folder_files(Path(path)), str(path), min_size, **options)
    paths = [Path(p) for p in path]
    if not paths:
        raise InvalidInputError("read_libraries: an empty list of files")
    return _read_files(paths, ", ".join(map(str, paths)), min_size, **options)
