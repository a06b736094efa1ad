"""Sequence sets for ``evaluate``: generated FASTA with conditions in its headers, and real
reference or training sets from any reader format (optionally one split of a split column)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqflow.data import (
    Alphabet,
    SequenceTable,
    read_header_tags,
    read_sequences,
    write_fasta,
    write_table,
)
from seqflow.data.table import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID
from seqflow.errors import InvalidInputError

SPLITS = {"train": SPLIT_TRAIN, "valid": SPLIT_VALID, "test": SPLIT_TEST}


@dataclass(frozen=True)
class SeqSet:
    """Sequences as strings, with the condition of each when known.

    Attributes:
        seqs: the sequences (upper case, no end/pad letters).
        labels: class label per sequence (None where unknown), or None for the whole set.
        values: value per sequence (NaN where unknown), or None for the whole set.
        source: the file (and split) it came from, for messages.
        letters: the alphabet's letters.
    """

    seqs: list[str]
    labels: list[str | None] | None
    values: list[float] | None
    source: str
    letters: str

    def by_label(self) -> dict[str, list[str]]:
        """Sequences grouped by label (empty without labels)."""
        groups: dict[str, list[str]] = {}
        if self.labels is None:
            return groups
        for seq, label in zip(self.seqs, self.labels, strict=True):
            if label is not None:
                groups.setdefault(label, []).append(seq)
        return groups


def decode_tokens(alphabet: Alphabet, tokens: Tensor, pad: int | None) -> list[str]:
    """Letters of tokens ``(batch, length)``, generated or read; with ``pad``, each sequence
    stops at its first end/pad token."""
    array = tokens.numpy()
    if pad is None:
        return alphabet.decode_batch(array)
    lengths = (array != pad).sum(axis=1)
    texts = alphabet.decode_batch(np.where(array == pad, 0, array))
    return [text[:k] for text, k in zip(texts, lengths.tolist(), strict=True)]


def write_rows(
    rows: list[dict[str, Any]],
    target: str | Path | None,
    fmt: str,
    *,
    header: Callable[[dict[str, Any]], str],
    columns: Sequence[str],
) -> None:
    """Write generated rows (each with ``sequence``) as FASTA, one record ``header(row)`` per
    row, or as a ``csv``/``tsv``/``jsonl`` table of those ``columns`` some row has (None or
    ``-``: standard output)."""
    if fmt == "fasta":
        write_fasta(((header(r), str(r["sequence"])) for r in rows), target)
        return
    present = [c for c in columns if any(c in r for r in rows)]
    write_table(rows, target, fmt=fmt, columns=present)


def read_set(
    path: str | Path,
    *,
    alphabet: str = "auto",
    label_col: str | None = None,
    value_col: str | None = None,
    split_col: str | None = None,
    split: str | None = None,
) -> SeqSet:
    """Read a real sequence set; with ``split`` keep only that split of ``split_col``."""
    if split is not None and split_col is None:
        raise InvalidInputError(f"{path}: a split ({split!r}) needs --split-col")
    table = read_sequences(
        path, alphabet=alphabet, label_col=label_col, value_col=value_col, split_col=split_col
    )
    keep = torch.ones(len(table), dtype=torch.bool)
    source = table.source
    if split is not None:
        if split not in SPLITS:
            raise InvalidInputError(f"{path}: split {split!r}; choose train, valid or test")
        assert table.splits is not None
        keep = table.splits.long() == SPLITS[split]
        source = f"{table.source} [{split}]"
        if not keep.any():
            raise InvalidInputError(f"{path}: no record is in the {split!r} split")
    idx = torch.nonzero(keep).flatten()
    seqs = decode_tokens(table.alphabet, table.tokens[idx], _pad(table))
    labels = None
    if table.labels is not None:
        names = table.label_names
        labels = [names[i] for i in table.labels[idx].tolist()]
    values = table.values[idx].tolist() if table.values is not None else None
    return SeqSet(seqs, labels, values, source, table.alphabet.letters)


def read_generated(path: str | Path, *, alphabet: str = "auto") -> SeqSet:
    """Read generated FASTA; ``label=`` and ``value=`` words in headers give the conditions."""
    table = read_sequences(path, alphabet=alphabet, fmt="fasta")
    seqs = decode_tokens(table.alphabet, table.tokens, _pad(table))
    headers = read_header_tags(path) if str(path) != "-" else []
    if len(headers) != len(seqs):
        headers = [{} for _ in seqs]
    labels: list[str | None] = [h.get("label") for h in headers]
    values: list[float] = []
    for i, h in enumerate(headers):
        try:
            values.append(float(h["value"]) if "value" in h else math.nan)
        except ValueError:
            raise InvalidInputError(
                f"{path}: record {i + 1} has a non-numeric value= in its header"
            ) from None
    known_labels = labels if any(label is not None for label in labels) else None
    known_values = values if any(not math.isnan(v) for v in values) else None
    return SeqSet(seqs, known_labels, known_values, table.source, table.alphabet.letters)


def _pad(table: SequenceTable) -> int | None:
    """The table's pad token when its records vary in length, else None."""
    return table.pad_token if table.variable else None
