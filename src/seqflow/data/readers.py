"""Read FASTA, CSV or TSV files (plain or gzip, or stdin) into a token table.

Records are copied as ASCII bytes into one growing ``uint8`` buffer while the file is read; the
alphabet is then resolved (``auto`` looks at every letter of the file) and the buffer is turned
into tokens in place, chunk by chunk, with the alphabet's lookup table.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from seqflow.data._fasta import iter_fasta
from seqflow.data._source import GZIP_ERRORS, LineCounter, RawRecord, TextSource, open_text
from seqflow.data._table import iter_table
from seqflow.data.alphabet import (
    INVALID,
    Alphabet,
    auto_hint,
    detect_alphabet,
    invalid_letter_error,
    resolve_alphabet,
)
from seqflow.errors import InvalidInputError

FORMATS = ("fasta", "csv", "tsv")
_SUFFIXES = {
    ".fa": "fasta", ".fasta": "fasta", ".fna": "fasta", ".fas": "fasta",
    ".csv": "csv", ".tsv": "tsv", ".txt": "tsv",
}  # fmt: skip
_CHUNK_BYTES = 1 << 22
"""Bytes converted per vectorised step (bounds the temporary index arrays numpy makes)."""


@dataclass(frozen=True, eq=False)
class SequenceTable:
    """Equal-length sequences as tokens, with ids and optional class labels.

    Attributes:
        tokens: token indices into ``alphabet.letters``, shape (N, L), uint8.
        ids: record ids, N strings.
        alphabet: the alphabet the tokens index.
        labels: class index of each record into ``label_names``, shape (N,), int64; or ``None``.
        label_names: sorted unique label names (empty without labels).
        source: the file name as given (``<stdin>`` for standard input).
    """

    tokens: torch.Tensor
    ids: tuple[str, ...]
    alphabet: Alphabet
    labels: torch.Tensor | None
    label_names: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if self.tokens.dtype != torch.uint8 or self.tokens.ndim != 2:
            raise ValueError(
                f"tokens must be (N, L) uint8, got {self.tokens.dtype} {tuple(self.tokens.shape)}"
            )
        if len(self.ids) != self.tokens.shape[0]:
            raise ValueError(f"{len(self.ids)} ids for {self.tokens.shape[0]} sequences")
        if self.labels is not None and self.labels.shape != (self.tokens.shape[0],):
            raise ValueError(f"labels must have shape (N,), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def length(self) -> int:
        """Sequence length L (all records share it)."""
        return int(self.tokens.shape[1])


def _resolve_format(fmt: str, path: str | Path, source: TextSource) -> str:
    """Explicit ``fmt``, else the suffix (``.gz`` stripped), else a look at the content."""
    key = fmt.lower()
    if key in FORMATS:
        return key
    if key != "auto":
        raise InvalidInputError(f"{source.name}: unknown format {fmt!r}; use auto, fasta, csv, tsv")
    suffixes = [s.lower() for s in Path(str(path)).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIXES and str(path) != "-":
        return _SUFFIXES[suffixes[-1]]
    first = next((line for line in source.head.splitlines() if line.strip()), "")
    if first.lstrip().startswith(">"):
        return "fasta"
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    raise InvalidInputError(
        f"{source.name}: cannot tell the format (not FASTA, no tab or comma in the first line); "
        "set fmt to fasta, csv or tsv"
    )


def _records(
    source: TextSource, lines: LineCounter, fmt: str, seq_col: str | None, label_col: str | None
) -> Iterable[RawRecord]:
    if fmt == "fasta":
        if seq_col is not None or label_col is not None:
            raise InvalidInputError(
                f"{source.name}: seq_col/label_col need a CSV or TSV file; FASTA headers carry no "
                "labels here (use a CSV with columns id,sequence,label)"
            )
        return iter_fasta(lines, source.name)
    delimiter = "," if fmt == "csv" else "\t"
    return iter_table(lines, source.name, delimiter=delimiter, seq_col=seq_col, label_col=label_col)


class _ByteRows:
    """A growing (rows, L) uint8 buffer of ASCII sequence bytes, with ids, lines and labels."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.data = np.empty((0, 0), dtype=np.uint8)
        self.n = 0
        self.ids: list[str] = []
        self.lines = array("q")
        self.labels: list[str] = []

    def add(self, record: RawRecord) -> None:
        where = f"{self.source}:{record.line}: record {record.id!r}"
        try:
            raw = record.seq.encode("ascii")
        except UnicodeEncodeError as err:
            raise invalid_letter_error(where, record.seq[err.start], err.start + 1, None) from None
        if self.n == 0:
            rows = max(1, min(1024, _CHUNK_BYTES // max(1, len(raw))))
            self.data = np.empty((rows, len(raw)), dtype=np.uint8)
        elif len(raw) != self.data.shape[1]:
            raise InvalidInputError(
                f"{where} has length {len(raw)} but earlier records have {self.data.shape[1]}; "
                "seqflow needs equal lengths (variable length is not supported yet)"
            )
        if self.n == self.data.shape[0]:
            self.data.resize((2 * self.n, self.data.shape[1]), refcheck=False)
        self.data[self.n] = np.frombuffer(raw, dtype=np.uint8)
        self.n += 1
        self.ids.append(record.id)
        self.lines.append(record.line)
        if record.label is not None:
            self.labels.append(record.label)

    def chunks(self) -> Iterable[tuple[int, np.ndarray]]:
        """(first row, view of rows) blocks of about ``_CHUNK_BYTES`` bytes."""
        step = max(1, _CHUNK_BYTES // max(1, self.data.shape[1]))
        for start in range(0, self.n, step):
            yield start, self.data[start : min(start + step, self.n)]

    def letter_counts(self) -> dict[str, int]:
        """How often each character occurs in the buffer."""
        counts = np.zeros(256, dtype=np.int64)
        for _, block in self.chunks():
            counts += np.bincount(block.ravel(), minlength=256)
        return {chr(b): int(counts[b]) for b in np.flatnonzero(counts)}

    def tokenise(self, alphabet: Alphabet, hint: str = "") -> np.ndarray:
        """Map the bytes to tokens in place and trim the buffer; returns the (n, L) tokens."""
        self._map_in_place(alphabet, hint)
        self.data.resize((self.n, self.data.shape[1]), refcheck=False)
        return self.data

    def _map_in_place(self, alphabet: Alphabet, hint: str) -> None:
        for start, block in self.chunks():
            mapped = alphabet.lookup[block]
            bad = np.flatnonzero(mapped == INVALID)
            if bad.size:
                row, col = divmod(int(bad[0]), block.shape[1])
                where = f"{self.source}:{self.lines[start + row]}: record {self.ids[start + row]!r}"
                err = invalid_letter_error(where, chr(block[row, col]), col + 1, alphabet)
                raise InvalidInputError(f"{err}{hint}") from None
            block[...] = mapped


def _pick_alphabet(rows: _ByteRows, spec: str) -> tuple[Alphabet, str]:
    """The alphabet to tokenise with, and a hint to append to an invalid-letter error."""
    if spec.strip().lower() != "auto":
        return resolve_alphabet(spec, where=rows.source), ""
    alphabet, missing = detect_alphabet(rows.letter_counts())
    return alphabet, (f"; {auto_hint(alphabet, missing)}" if missing else "")


def read_sequences(
    path: str | Path,
    *,
    alphabet: str = "auto",
    seq_col: str | None = None,
    label_col: str | None = None,
    fmt: str = "auto",
) -> SequenceTable:
    """Read equal-length sequences from FASTA, CSV or TSV (optionally gzip), or stdin (``"-"``).

    Args:
        path: the file; ``"-"`` reads standard input.
        alphabet: ``auto`` (dna, rna or protein from every letter of the file, see
            :func:`~seqflow.data.alphabet.detect_alphabet`), a built-in name, or custom letters
            such as ``"ACGTN"``; letters are case-insensitive.
        seq_col: CSV/TSV sequence column; default ``sequence`` or ``seq``.
        label_col: CSV/TSV column of class labels; not available for FASTA.
        fmt: ``auto`` (from the suffix, else from the content), ``fasta``, ``csv`` or ``tsv``.

    Returns:
        the table; tokens have shape (N, L), labels (N,) when ``label_col`` is given.

    Raises:
        InvalidInputError: one line starting ``path:line:`` (or ``path:``) naming the problem.
    """
    with open_text(path) as source:
        kind = _resolve_format(fmt, path, source)
        lines = LineCounter(source.handle)
        rows = _ByteRows(source.name)
        try:
            for record in _records(source, lines, kind, seq_col, label_col):
                rows.add(record)
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"{source.name}: not a UTF-8 text file (undecodable byte after line {lines.line})"
            ) from None
        except GZIP_ERRORS as err:
            raise InvalidInputError(f"{source.name}: damaged gzip file ({err})") from None
    if rows.n == 0:
        raise InvalidInputError(f"{source.name}: no FASTA records (no line starts with '>')")
    chosen, hint = _pick_alphabet(rows, alphabet)
    tokens = torch.from_numpy(rows.tokenise(chosen, hint))
    labels: torch.Tensor | None = None
    names: tuple[str, ...] = ()
    if label_col is not None:
        names = tuple(sorted(set(rows.labels)))
        index = {name: i for i, name in enumerate(names)}
        labels = torch.tensor([index[label] for label in rows.labels], dtype=torch.int64)
    return SequenceTable(tokens, tuple(rows.ids), chosen, labels, names, source.name)
