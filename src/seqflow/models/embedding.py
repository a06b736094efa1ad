"""The time embedding shared by all velocity networks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn


class GaussianFourierTime(nn.Module):
    """Random Fourier features of time followed by a small MLP.

    ``[sin(2 pi t w), cos(2 pi t w)]`` with fixed ``w ~ N(0, scale^2)`` (Tancik et al. 2020;
    as used for time in score-based models, Song et al. 2021).

    Args:
        dim: output width (even).
        scale: standard deviation of the random frequencies.
    """

    if TYPE_CHECKING:  # for mypy; TorchScript cannot read a string class annotation
        w: Tensor

    def __init__(self, dim: int, scale: float = 16.0) -> None:
        super().__init__()
        self.register_buffer("w", torch.randn(dim // 2) * scale, persistent=True)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        """Embed times ``t`` of shape ``(batch,)`` into ``(batch, dim)``."""
        angle = 2 * math.pi * t.float()[:, None] * self.w[None, :]
        return self.mlp(torch.cat([angle.sin(), angle.cos()], dim=-1))
