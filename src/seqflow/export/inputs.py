"""Random velocity-field inputs by name, to trace an export and to check it against the model.

Names are those of the ONNX graph: ``x``, ``t``, then ``label``, ``value`` and ``signal`` when
the model takes them (:func:`velocity_kwargs` maps them to ``VelocityField.velocity``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from seqflow.geometry import PositiveSphere
from seqflow.models import VelocityField

_KWARGS = {"label": "labels", "value": "values", "signal": "signal"}


def input_names(field: VelocityField) -> tuple[str, ...]:
    """The inputs ``field`` takes, in order."""
    taken = {
        "label": field.labels is not None,
        "value": field.values is not None,
        "signal": field.signal_channels > 0,
    }
    return ("x", "t", *(name for name, takes in taken.items() if takes))


def velocity_inputs(
    field: VelocityField, *, length: int, vocab: int, batch: int, seed: int = 0
) -> dict[str, Tensor]:
    """Random CPU inputs for ``field`` by name: ``x`` (batch, length, vocab) prior points, ``t``
    (batch,) in [0, 1], and those conditions it takes, ``label`` (batch,) int64, ``value``
    (batch,), ``signal`` (batch, length, channels), the last row "none" in each."""
    g = torch.Generator().manual_seed(seed)
    out = {
        "x": PositiveSphere.sample_prior([batch, length, vocab], g),
        "t": torch.rand(batch, generator=g),
    }
    names = input_names(field)
    if "label" in names:
        out["label"] = torch.randint(0, field.num_labels, (batch,), generator=g)
        out["label"][-1] = field.num_labels
    if "value" in names:
        out["value"] = torch.randn(batch, generator=g)
        out["value"][-1] = math.nan
    if "signal" in names:
        out["signal"] = torch.randn(batch, length, field.signal_channels, generator=g)
        out["signal"][-1] = math.nan
    return out


def velocity_kwargs(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """The conditions of ``inputs`` as keyword arguments of ``VelocityField.velocity``."""
    return {_KWARGS[name]: value for name, value in inputs.items() if name in _KWARGS}
