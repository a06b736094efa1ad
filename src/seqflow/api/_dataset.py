"""From a data file and its ``data`` settings to training and validation sets with conditions.

Reads the sequences (and the columns or file that carry their conditions) through the
tokenised cache (``data.cache``, :mod:`seqflow.data.cache`), splits them (a split column, else
``valid_frac`` at random), and standardises scalar values and signal tracks with the training
rows' statistics, which the checkpoint keeps so that sampling uses the same scale.

Memory: a cached table's tokens are memory-mapped. A split whose rows are one consecutive run
(``valid_frac=0``, or a split column that lists the training rows first) keeps them mapped as
a view; a random split gathers the training rows once into memory, ``(1 - valid_frac)`` of
the tokens' bytes (1.9 GB for 10M sequences of 200 bp), because :class:`TrainingSet` holds
its rows as one tensor. A signal condition is standardised into a new ``(N, L, C)`` tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from seqflow.config import DataConfig
from seqflow.data import SequenceTable, read_cached
from seqflow.data.signals import read_signal
from seqflow.data.table import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID
from seqflow.errors import InvalidInputError
from seqflow.models import Condition, Standardizer
from seqflow.training import TrainingSet


@dataclass(frozen=True)
class Dataset:
    """A data file ready for the trainer.

    Attributes:
        table: every record as read.
        train: training rows with their conditions; valid: held-out rows.
        n_test: rows of the ``test`` split (never used for training or validation).
        value: standardisation of the value condition, or None.
        signal: standardisation of the signal condition, or None.
        train_rows: the table rows of ``train``, shape ``(N_train,)``, int64.
    """

    table: SequenceTable
    train: TrainingSet
    valid: TrainingSet
    n_test: int
    value: Standardizer | None
    signal: Standardizer | None
    train_rows: Tensor

    @property
    def vocab(self) -> int:
        """Categories per position: letters, plus the end/pad category for variable length."""
        return self.table.alphabet.size + int(self.table.variable)


def load_dataset(
    data: str | Path,
    cfg: DataConfig,
    *,
    seed: int,
    value: Standardizer | None = None,
    signal: Standardizer | None = None,
    check: Callable[[SequenceTable], None] | None = None,
) -> Dataset:
    """Read ``data`` as ``cfg`` says and split it.

    Args:
        seed: seeds the random validation split and the ``replace`` policy.
        value, signal: standardisations to reuse (a resumed run); None fits them on the
            training rows.
        check: runs on a fresh read before it is cached (see :func:`~seqflow.data.read_cached`).
    """
    table = read_cached(
        data, cache=cfg.cache, alphabet=cfg.alphabet, fmt=cfg.format, seq_col=cfg.seq_col,
        label_col=cfg.label_col, value_col=cfg.value_col, signal_col=cfg.signal_col,
        split_col=cfg.split_col, on_invalid=cfg.on_invalid, max_length=cfg.max_length,
        crop=cfg.crop, seed=seed, check=check,
    )  # fmt: skip
    train_idx, valid_idx, n_test = _split(table, cfg.valid_frac, seed)
    raw_signal = table.signal
    if cfg.signal_file:
        raw_signal = _signal_file(cfg.signal_file, table, cfg.crop)
    values = None
    if table.values is not None:
        value = value or Standardizer.fit(table.values[train_idx], cfg.value_col or "value")
        values = value.apply(table.values)
    signals = None
    if raw_signal is not None:
        inside = torch.arange(table.length)[None, :] < table.lengths[:, None]  # (N, L)
        if signal is None:
            rows = raw_signal[train_idx][inside[train_idx]]
            signal = Standardizer.fit(rows, cfg.signal_col or Path(str(cfg.signal_file)).name)
        elif signal.channels != raw_signal.shape[-1]:
            raise InvalidInputError(
                f"{cfg.signal_file or data}: signal has {raw_signal.shape[-1]} channels; "
                f"the run was trained with {signal.channels}"
            )
        signals = signal.apply(raw_signal) * inside[..., None]
    cond = Condition(labels=table.labels, values=values, signal=signals)

    def subset(idx: Tensor) -> TrainingSet:
        rows = _rows(idx)
        return TrainingSet(tokens=table.tokens[rows], cond=cond.select(rows))

    return Dataset(table, subset(train_idx), subset(valid_idx), n_test, value, signal, train_idx)


def _rows(idx: Tensor) -> Tensor | slice:
    """Sorted unique row indices ``(n,)`` as a slice when they are consecutive (indexing with
    it is a view, which keeps a memory-mapped table mapped), else as they are."""
    if len(idx) == 0:
        return slice(0, 0)
    first, last = int(idx[0]), int(idx[-1])
    return slice(first, last + 1) if last - first + 1 == len(idx) else idx


def _split(table: SequenceTable, valid_frac: float, seed: int) -> tuple[Tensor, Tensor, int]:
    """Training and validation row indices (sorted), and the number of test rows."""
    n = len(table)
    if table.splits is not None:
        splits = table.splits.long()
        train = torch.nonzero(splits == SPLIT_TRAIN).flatten()
        valid = torch.nonzero(splits == SPLIT_VALID).flatten()
        if len(train) == 0:
            raise InvalidInputError(f"{table.source}: no record is in the 'train' split")
        return train, valid, int((splits == SPLIT_TEST).sum())
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 101))
    n_valid = round(n * valid_frac) if n >= 20 else 0
    return perm[n_valid:].sort().values, perm[:n_valid].sort().values, 0


def _signal_file(path: str, table: SequenceTable, crop: bool) -> Tensor:
    """Signal rows of ``path`` aligned with the table's records by their order in the file."""
    strict = not table.variable and not crop  # every row must then have exactly L values
    signal = read_signal(path, length=table.length if strict else None)
    records = table.report.records
    if signal.shape[0] != records:
        raise InvalidInputError(
            f"{path}: {signal.shape[0]} signal rows for {records} records in {table.source} "
            "(rows are matched to records by order)"
        )
    signal = signal[table.record_index]
    width = signal.shape[1]
    if width < table.length or (width > table.length and not crop and not table.variable):
        raise InvalidInputError(
            f"{path}: signal rows have {width} positions but the sequences have {table.length}"
        )
    return signal[:, : table.length]
