"""Small pre-norm transformer velocity backbone (default for protein-sized alphabets).

Tokens are the per-position sphere coordinates projected to ``hidden`` width plus a learned
position embedding; the condition (time and label) modulates every layer through adaptive
layer norm (scale and shift from the condition, as in DiT; Peebles and Xie 2023).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class AdaLayer(nn.Module):
    """Pre-norm self-attention + MLP block with condition-dependent scale/shift/gates."""

    def __init__(self, hidden: int, heads: int, cond_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden)
        )
        self.mod = nn.Linear(cond_dim, 6 * hidden)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        """h: ``(batch, length, hidden)``; c: ``(batch, cond_dim)``."""
        s1, b1, g1, s2, b2, g2 = self.mod(c)[:, None, :].chunk(6, dim=-1)
        z = self.norm1(h) * (1 + s1) + b1
        h = h + (1 + g1) * self.attn(z, z, z, need_weights=False)[0]
        z = self.norm2(h) * (1 + s2) + b2
        return h + (1 + g2) * self.mlp(z)


class TransformerNet(nn.Module):
    """Map ``x_t`` (batch, length, vocab) and a condition to an ambient vector field.

    Args:
        vocab: alphabet size K.
        max_length: longest sequence the position embedding covers.
        hidden: model width; heads: attention heads; depth: layers.
        cond_dim: width of the condition embedding.
        extra_channels: per-position input channels beside x (e.g. a signal track and its
            presence flag), concatenated to x before the input projection.
    """

    def __init__(
        self,
        vocab: int,
        *,
        max_length: int,
        hidden: int,
        depth: int,
        heads: int,
        cond_dim: int,
        extra_channels: int = 0,
    ) -> None:
        super().__init__()
        self.inp = nn.Linear(vocab + extra_channels, hidden)
        self.pos = nn.Parameter(torch.randn(max_length, hidden) * 0.02)
        self.layers = nn.ModuleList(AdaLayer(hidden, heads, cond_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: Tensor, c: Tensor, extra: Tensor | None = None) -> Tensor:
        """x: ``(batch, length, vocab)``; c: ``(batch, cond_dim)``; extra: ``(batch, length,
        extra_channels)`` or None; returns x's shape."""
        inp = x if extra is None else torch.cat([x, extra.to(x.dtype)], dim=-1)
        h = self.inp(inp) + self.pos[: x.shape[1]]
        for layer in self.layers:
            h = layer(h, c)
        return self.head(self.norm(h))
