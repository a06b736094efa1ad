"""The result of reading a sequence file: tokens, ids, conditions and a report of what was done."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np
import torch

from seqflow.data.alphabet import Alphabet

SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST = 0, 1, 2
"""Codes of :attr:`SequenceTable.splits`."""

_ITER_IDS = 1 << 16  # offsets turned into Python ints at a time while iterating over ids


class DuplicateIdWarning(UserWarning):
    """Several records of a file share an id."""


class RecordIds(Sequence[str]):
    """Read-only record ids kept compactly: one UTF-8 buffer and the end offset of each id, not
    copied (they may be memory maps of :mod:`seqflow.data.cache`), an id decoded when asked for.

    Args:
        data: the ids' UTF-8 bytes, one after another (``bytes`` or a uint8 array).
        ends: end offset of each id in ``data``, shape (N,), int64, non-decreasing.
    """

    def __init__(self, data: bytes | np.ndarray, ends: np.ndarray) -> None:
        self._data = data if isinstance(data, bytes) else np.ascontiguousarray(data, np.uint8).data
        self._ends = np.asarray(ends, dtype=np.int64)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Views of the ids' bytes, shape (bytes,), uint8, and end offsets, shape (N,), int64."""
        return np.frombuffer(self._data, dtype=np.uint8), self._ends

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[str, ...]: ...

    def __getitem__(self, index: int | slice) -> str | tuple[str, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        i = range(len(self))[index]
        start = self._ends[i - 1] if i else 0
        return str(self._data[start : self._ends[i]], "utf-8")

    def __iter__(self) -> Iterator[str]:
        data, start = self._data, 0
        for a in range(0, len(self._ends), _ITER_IDS):
            for end in self._ends[a : a + _ITER_IDS].tolist():
                yield str(data[start:end], "utf-8")
                start = end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(repr(s) for s in self[:3])
        return f"RecordIds([{shown}{', ...' if len(self) > 3 else ''}], n={len(self)})"


@dataclass(frozen=True)
class ReadReport:
    """What reading a file did besides tokenising.

    Attributes:
        format: ``fasta``, ``fastq``, ``csv`` or ``tsv``.
        alphabet_detected: True when ``alphabet="auto"`` chose the alphabet.
        records: records read from the file (before any were skipped).
        skipped: records dropped by ``on_invalid="skip"``.
        replaced_records, replaced_letters: records and letters ``on_invalid="replace"`` changed.
        cropped: records cut to ``max_length``.
        duplicate_ids: records whose id an earlier record already had.
        alphabet: the alphabet, described (``"dna: ACGT"``), for the summary.
        max_length: the ``max_length`` asked for, or None.
    """

    format: str
    alphabet_detected: bool
    records: int
    skipped: int = 0
    replaced_records: int = 0
    replaced_letters: int = 0
    cropped: int = 0
    duplicate_ids: int = 0
    alphabet: str = ""
    max_length: int | None = None

    def summary(self) -> str:
        """One human line on skipped, replaced and cropped records; ``""`` when none were."""
        parts = []
        if self.skipped:
            parts.append(
                f"skip: {self.skipped} records with letters outside {self.alphabet} dropped"
            )
        if self.replaced_letters:
            parts.append(
                f"replace: {self.replaced_letters} letters in {self.replaced_records} records "
                "replaced"
            )
        if self.cropped:
            parts.append(f"crop: {self.cropped} records cut to {self.max_length} letters")
        return "; ".join(parts)


@dataclass(frozen=True, eq=False)
class SequenceTable:
    """Sequences as padded tokens, with ids and optional conditions.

    Attributes:
        tokens: token indices into ``alphabet.letters``, shape (N, L), uint8, with L the
            longest length; positions at or beyond ``lengths[i]`` hold ``pad_token``.
        ids: record ids, N strings.
        alphabet: the alphabet the tokens index.
        labels: class index of each record into ``label_names``, shape (N,), int64; or ``None``.
        label_names: sorted unique label names (empty without labels).
        source: the file name as given (``<stdin>`` for standard input).
        lengths: letters in each record, shape (N,), int64.
        values: the value column, shape (N,), float32; or ``None``.
        signal: the signal column, shape (N, L, C), float32, zero beyond each length; or ``None``.
        splits: ``SPLIT_TRAIN``/``SPLIT_VALID``/``SPLIT_TEST`` per record, shape (N,), int8;
            or ``None``.
        record_index: 0-based index of each record among the file's records, shape (N,), int64
            (not ``arange`` when records were skipped).
        report: what reading did (detection, skipped, replaced, cropped, duplicate ids).
    """

    tokens: torch.Tensor
    ids: Sequence[str]
    alphabet: Alphabet
    labels: torch.Tensor | None
    label_names: tuple[str, ...]
    source: str
    lengths: torch.Tensor
    values: torch.Tensor | None
    signal: torch.Tensor | None
    splits: torch.Tensor | None
    record_index: torch.Tensor
    report: ReadReport

    def __post_init__(self) -> None:
        if self.tokens.dtype != torch.uint8 or self.tokens.ndim != 2:
            raise ValueError(
                f"tokens must be (N, L) uint8, got {self.tokens.dtype} {tuple(self.tokens.shape)}"
            )
        n, length = self.tokens.shape
        if len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} ids for {n} sequences")
        channels = self.signal.shape[-1] if self.signal is not None and self.signal.ndim == 3 else 0
        expected = {
            "lengths": ((n,), torch.int64), "record_index": ((n,), torch.int64),
            "labels": ((n,), torch.int64), "values": ((n,), torch.float32),
            "splits": ((n,), torch.int8), "signal": ((n, length, channels), torch.float32),
        }  # fmt: skip
        for name, (shape, dtype) in expected.items():
            tensor = getattr(self, name)
            if tensor is not None and (tuple(tensor.shape) != shape or tensor.dtype != dtype):
                raise ValueError(
                    f"{name} must be {shape} {dtype}, got {tuple(tensor.shape)} {tensor.dtype}"
                )

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def length(self) -> int:
        """Padded sequence length L (the longest record)."""
        return int(self.tokens.shape[1])

    @property
    def variable(self) -> bool:
        """Whether the records differ in length (then ``tokens`` holds padding)."""
        return bool(len(self) and (self.lengths != self.lengths[0]).any())

    @property
    def pad_token(self) -> int:
        """The token of positions past a record's end: ``alphabet.size``."""
        return self.alphabet.size
