"""Dilated residual 1-D CNN velocity backbone (default for DNA/RNA-sized alphabets).

A stack of residual blocks whose dilations cycle through a short schedule, so the receptive
field grows geometrically with depth at linear cost, as in the DNA models of Avdeyev et al. 2023
(DDSM) and Stark et al. 2024 (Dirichlet FM). Each block is modulated by the condition (time and
label) through a per-channel scale and shift (FiLM; Perez et al. 2018).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ResidualBlock(nn.Module):
    """``x + W2 gelu(FiLM(conv_dilated(norm(x)), c))``; output conv zero-initialised."""

    def __init__(self, hidden: int, kernel_size: int, dilation: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, hidden)
        self.conv = nn.Conv1d(
            hidden, hidden, kernel_size, dilation=dilation, padding=dilation * (kernel_size // 2)
        )
        self.film = nn.Linear(cond_dim, 2 * hidden)
        self.out = nn.Conv1d(hidden, hidden, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]  # Conv1d has a bias here

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        """h: features ``(batch, hidden, length)``; c: condition ``(batch, cond_dim)``."""
        scale, shift = self.film(c)[:, :, None].chunk(2, dim=1)
        z = self.conv(self.norm(h)) * (1 + scale) + shift
        return h + self.out(nn.functional.gelu(z))


class DilatedConvNet(nn.Module):
    """Map ``x_t`` (batch, length, vocab) and a condition to an ambient vector field.

    Args:
        vocab: alphabet size K.
        hidden: channels.
        depth: number of residual blocks.
        kernel_size: odd convolution width.
        dilations: dilation schedule, cycled over the blocks.
        cond_dim: width of the condition embedding.
        extra_channels: per-position input channels beside x (e.g. a signal track and its
            presence flag), concatenated to x before the input projection.
        max_length: longest sequence; a learned per-position embedding of this length is added
            to the input features, so aligned data (letters fixed at given positions, e.g. around
            a TSS) is learnable; convolutions alone only see position through the padding.
    """

    def __init__(
        self,
        vocab: int,
        *,
        hidden: int,
        depth: int,
        kernel_size: int,
        dilations: tuple[int, ...],
        cond_dim: int,
        max_length: int,
        extra_channels: int = 0,
    ) -> None:
        super().__init__()
        self.inp = nn.Conv1d(vocab + extra_channels, hidden, 1)
        self.pos = nn.Parameter(torch.randn(hidden, max_length) * 0.02)
        self.blocks = nn.ModuleList(
            ResidualBlock(hidden, kernel_size, dilations[i % len(dilations)], cond_dim)
            for i in range(depth)
        )
        self.norm = nn.GroupNorm(1, hidden)
        self.head = nn.Conv1d(hidden, vocab, 1)

    def forward(self, x: Tensor, c: Tensor, extra: Tensor | None = None) -> Tensor:
        """x: ``(batch, length, vocab)``; c: ``(batch, cond_dim)``; extra: ``(batch, length,
        extra_channels)`` or None; returns x's shape."""
        inp = x if extra is None else torch.cat([x, extra.to(x.dtype)], dim=-1)
        h = self.inp(inp.transpose(1, 2)) + self.pos[:, : x.shape[1]]
        for block in self.blocks:
            h = block(h, c)
        return self.head(nn.functional.gelu(self.norm(h))).transpose(1, 2)
