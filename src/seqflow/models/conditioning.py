"""Conditions a velocity field can take, and their embeddings.

Three kinds, any combination:

- a class label per sequence, ``labels`` ``(batch,)`` int64; the index ``num_labels`` means
  "no label";
- a scalar value per sequence (e.g. measured activity, standardised), ``values`` ``(batch,)``;
  NaN means "no value";
- a per-position signal track (e.g. a CAGE profile), ``signal`` ``(batch, length, channels)``,
  standardised; a sequence whose signal is all NaN has "no signal".

"No condition" is what classifier-free guidance (Ho and Salimans 2022) needs: the model is
trained with conditions hidden at random (:meth:`Condition.drop`) and sampled as the mixture
``v_u + w (v_c - v_u)`` of its conditional and unconditional fields. Each kind is hidden
independently, so a model of several kinds also learns every partial combination (e.g. a label
without a value) and can be sampled with only some of them given.

Values and signals reach the model standardised (:class:`Standardizer`, fitted on the training
rows and kept in the checkpoint so that sampling uses the same scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Condition:
    """The conditions of one batch (each None when the model does not take it).

    Attributes:
        labels: class indices, shape ``(batch,)``, int64.
        values: standardised scalars, shape ``(batch,)``, float; NaN = absent.
        signal: standardised tracks, shape ``(batch, length, channels)``; NaN = absent.
    """

    labels: Tensor | None = None
    values: Tensor | None = None
    signal: Tensor | None = None

    @property
    def empty(self) -> bool:
        """True when no condition is set."""
        return self.labels is None and self.values is None and self.signal is None

    def to(self, device: torch.device, non_blocking: bool = False) -> Condition:
        """The same conditions on ``device``."""
        return Condition(
            *(t.to(device, non_blocking=non_blocking) if t is not None else None for t in self)
        )

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.labels, self.values, self.signal))

    def select(self, idx: Tensor | slice) -> Condition:
        """Rows ``idx`` of every condition."""
        return Condition(*(t[idx] if t is not None else None for t in self))

    def drop(
        self, num_labels: int, *, labels: Tensor | None, values: Tensor | None,
        signal: Tensor | None,
    ) -> Condition:  # fmt: skip
        """Hide conditions: each mask (batch,) bool marks the sequences whose condition of
        that kind is hidden (None: keep them all)."""
        y, v, s = self.labels, self.values, self.signal
        if y is not None and labels is not None:
            y = torch.where(labels, torch.full_like(y, num_labels), y)
        if v is not None and values is not None:
            v = torch.where(values, torch.full_like(v, math.nan), v)
        if s is not None and signal is not None:
            s = torch.where(signal[:, None, None], torch.full_like(s, math.nan), s)
        return Condition(y, v, s)

    def drop_at_random(
        self,
        p: float,
        num_labels: int,
        generator: torch.Generator,
        *,
        total: int | None = None,
        rows: slice | None = None,
    ) -> Condition:
        """Hide each present kind of condition independently with probability ``p`` per
        sequence (one uniform draw of shape (batch,) per present kind, in a fixed order).

        Args:
            total, rows: under data parallelism, draw for the ``total`` sequences of the
                global batch and keep this rank's ``rows`` (the same masks on any number of
                ranks); None draws for this batch alone.
        """
        masks: list[Tensor | None] = []
        for t in self:
            if t is None:
                masks.append(None)
                continue
            n = t.shape[0] if total is None else total
            u = torch.rand(n, generator=generator, device=t.device)
            masks.append((u if rows is None else u[rows]) < p)
        return self.drop(num_labels, labels=masks[0], values=masks[1], signal=masks[2])


class LabelEmbedding(nn.Module):
    """Class-label embedding with an extra "no label" row used for classifier-free guidance.

    Rows start at std 1, the scale of the time embedding they are added to: at a small init the
    label barely modulates FiLM and a CPU-budget run learns the labels more slowly (label accuracy
    0.27 -> 0.32 on the DHS benchmark, ``benchmarks/quality_budget_findings.md``).

    Args:
        num_labels: number of classes C; index C means "unconditional".
        dim: embedding width.
    """

    def __init__(self, num_labels: int, dim: int) -> None:
        super().__init__()
        self.num_labels = num_labels
        self.table = nn.Embedding(num_labels + 1, dim)
        nn.init.normal_(self.table.weight, std=1.0)

    def forward(self, labels: Tensor | None, batch: int, device: torch.device) -> Tensor:
        """Embed ``labels`` (batch,) into ``(batch, dim)``; None means unconditional."""
        if labels is None:
            labels = torch.full((batch,), self.num_labels, dtype=torch.long, device=device)
        return self.table(labels)


class ValueEmbedding(nn.Module):
    """A standardised scalar -> ``(batch, dim)``: Fourier features and an MLP, with a learned
    "no value" vector for NaN entries.

    Args:
        dim: embedding width (even).
        scale: standard deviation of the random frequencies (values are standardised, so 1-2
            covers them).
    """

    if TYPE_CHECKING:  # for mypy; TorchScript cannot read a string class annotation
        w: Tensor

    def __init__(self, dim: int, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("w", torch.randn(dim // 2) * scale, persistent=True)
        self.mlp = nn.Sequential(nn.Linear(dim + 1, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.absent = nn.Parameter(torch.zeros(dim))

    def forward(self, values: Tensor | None, batch: int, device: torch.device) -> Tensor:
        """Embed ``values`` (batch,) into ``(batch, dim)``; None or NaN means "no value"."""
        if values is None:
            return self.absent.expand(batch, -1)
        present = ~torch.isnan(values)
        v = torch.where(present, values, torch.zeros_like(values)).float()
        angle = 2 * math.pi * v[:, None] * self.w[None, :]
        emb = self.mlp(torch.cat([angle.sin(), angle.cos(), v[:, None]], dim=-1))
        return torch.where(present[:, None], emb, self.absent.to(emb.dtype).expand_as(emb))


def signal_features(
    signal: Tensor | None,
    batch: int,
    length: int,
    channels: int,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Per-position input channels for a signal: the track (0 where absent) and a presence flag.

    Args:
        signal: ``(batch, length, channels)`` with all-NaN rows for "no signal", or None.

    Returns:
        ``(batch, length, channels + 1)``: the signal with NaN set to 0, then 1 where present.
    """
    if signal is None:
        return torch.zeros(batch, length, channels + 1, device=device, dtype=dtype)
    present = ~torch.isnan(signal[:, :1, :1])
    track = torch.nan_to_num(signal, nan=0.0).to(dtype)
    flag = present.to(dtype).expand(-1, signal.shape[1], 1)
    return torch.cat([track, flag], dim=-1)


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / std`` per channel, with the statistics of the training data.

    Attributes:
        mean: per-channel means (one entry for a scalar value).
        std: per-channel standard deviations (> 0).
        name: where the numbers came from (a column or file name), for messages and headers.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str = ""

    @classmethod
    def fit(cls, x: Tensor, name: str = "") -> Standardizer:
        """Statistics of ``x``, shape ``(N,)`` or ``(N, ..., C)`` (channels last)."""
        flat = x.double().reshape(-1, 1 if x.ndim == 1 else x.shape[-1])
        mean = flat.mean(dim=0)
        std = flat.std(dim=0, correction=0) if flat.shape[0] > 1 else torch.ones_like(mean)
        std = torch.where(std > 1e-12, std, torch.ones_like(std))
        return cls(tuple(mean.tolist()), tuple(std.tolist()), name)

    @property
    def channels(self) -> int:
        """Number of channels."""
        return len(self.mean)

    def apply(self, x: Tensor) -> Tensor:
        """Standardise ``x`` (channels last, or ``(N,)`` for one channel), as float32."""
        mean = torch.tensor(self.mean, dtype=torch.float64)
        std = torch.tensor(self.std, dtype=torch.float64)
        if x.ndim == 1:
            mean, std = mean[0], std[0]
        return ((x.double() - mean) / std).float()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"mean": list(self.mean), "std": list(self.std), "name": self.name}

    @classmethod
    def from_dict(cls, data: Any) -> Standardizer:
        """Inverse of :meth:`to_dict`; ValueError on bad content."""
        if not isinstance(data, dict):
            raise ValueError("standardizer must be a mapping")
        mean = tuple(float(v) for v in data["mean"])
        std = tuple(float(v) for v in data["std"])
        if not mean or len(mean) != len(std) or min(std) <= 0:
            raise ValueError("standardizer needs equal-length mean and positive std")
        return cls(mean, std, str(data.get("name", "")))
