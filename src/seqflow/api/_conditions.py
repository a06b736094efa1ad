"""The conditions asked on the command line, checked against a model by
:mod:`seqflow.sampling.conditions` (the checks the exported sampler runs too) and turned into
input errors that name the option."""

from __future__ import annotations

import torch
from torch import Tensor

from seqflow import sampling
from seqflow.checkpoint import ModelMeta
from seqflow.errors import InvalidInputError
from seqflow.models import Condition


def label_index(meta: ModelMeta, label: str | None) -> int | None:
    """The class index of ``label`` (None: no label), checked against the model's classes."""
    if label is None:
        return None
    try:
        return sampling.label_index(list(meta.labels), label)
    except ValueError as err:
        raise InvalidInputError(f"--{err}") from None


def standardised_value(meta: ModelMeta, value: float | None) -> float | None:
    """The standardised value the model takes, or None."""
    if value is None:
        return None
    mean = meta.value.mean[0] if meta.value else None
    std = meta.value.std[0] if meta.value else None
    try:
        return sampling.standardise_value(value, mean, std)
    except ValueError as err:
        raise InvalidInputError(f"--{err}") from None


def condition(label: int | None, value: float | None, signal: Tensor | None) -> Condition | None:
    """The model's conditions: a label index and a standardised value (one row, or one per
    row of ``signal``, shape ``(rows, length, channels)``), or None without any."""
    if label is None and value is None and signal is None:
        return None
    rows = signal.shape[0] if signal is not None else 1
    return Condition(
        labels=torch.full((rows,), label, dtype=torch.long) if label is not None else None,
        values=torch.full((rows,), value, dtype=torch.float32) if value is not None else None,
        signal=signal,
    )
