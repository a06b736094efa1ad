"""Check the conditions asked of a model, for ``seqflow sample``, library sampling and the
exported TorchScript sampler. Each raises ``ValueError`` with a message that starts with the
option (``label ...``); the API prefixes ``--`` and raises it as an ``InvalidInputError``.
"""

from __future__ import annotations

import math

import torch


def label_index(known: list[str], label: str) -> int:
    """The index of class ``label`` among the model's classes ``known``."""
    if len(known) == 0:
        raise ValueError(f"label {label}: this model was trained without labels")
    if label not in known:  # the first labels and a count (TorchScript: no errors.listed)
        shown = ", ".join(known[:8])
        if len(known) > 8:
            shown = f"{shown}, ... ({len(known) - 8} more)"
        raise ValueError(f"label {label}: unknown label; the model knows {shown}")
    return known.index(label)


def standardise_value(value: float, mean: float | None, std: float | None) -> float:
    """``(value - mean) / std`` in float64, rounded to float32 as the model's values are, for a
    model trained on a value column of that ``mean`` and ``std`` (None: no value column)."""
    if mean is None or std is None:
        raise ValueError(f"value {value}: this model was trained without a value column")
    if not math.isfinite(value):
        raise ValueError(f"value {value}: must be a finite number")
    raw = torch.tensor([value], dtype=torch.float32).double()
    return float(((raw - mean) / std).float()[0])
