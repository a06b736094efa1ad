"""The memory guards of ``fit``: on a table of sequences (:func:`~seqflow.models.raise_if_too_big`),
run on a fresh read before the token cache is written and again before the model is built; on
library mode's set velocity field, from its weights alone."""

from __future__ import annotations

import torch

from seqflow.api._config import resolve_device
from seqflow.checkpoint import ModelMeta
from seqflow.config import Config
from seqflow.data import SequenceTable
from seqflow.models import (
    build_set_velocity_field,
    count_parameters,
    raise_if_too_big,
    raise_if_weights_too_big,
)


def check_memory(cfg: Config, table: SequenceTable, *, signal_channels: int | None = None) -> None:
    """Refuse (:class:`~seqflow.errors.ConfigError`) a sequence-mode model that cannot train
    on ``table`` in this machine's memory; ``signal_channels`` None takes the table's own."""
    if signal_channels is None:
        signal_channels = table.signal.shape[-1] if table.signal is not None else 0
    raise_if_too_big(
        cfg, vocab=table.alphabet.size + int(table.variable), length=table.length,
        device=resolve_device(cfg.train.device), num_labels=len(table.label_names),
        value=table.values is not None, signal_channels=signal_channels,
    )  # fmt: skip


def check_library_memory(meta: ModelMeta) -> None:
    """Refuse a set velocity field whose weights alone cannot train in this machine's memory;
    the weights are counted on the ``meta`` device, which allocates nothing."""
    with torch.device("meta"):
        parameters = count_parameters(build_set_velocity_field(meta))
    raise_if_weights_too_big(
        parameters, length=meta.length, device=resolve_device(meta.config.train.device)
    )
