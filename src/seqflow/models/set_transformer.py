"""A permutation-equivariant velocity field on point clouds of sequences (library mode).

The Wasserstein flow matching velocity (Haviv et al. 2025, arXiv 2411.00698, Sec. 4) is a
transformer over the points of a cloud with no positional encoding across points, so that
permuting the points permutes the output in the same way. Here each point is itself a sequence
``(length, vocab)`` on the product of spheres, and the field is composed of three parts:

1. a per-point encoder: a 1x1 convolution of the sphere coordinates, a learned position
   embedding over the length, ``point_layers`` FiLM residual convolution blocks, and the mean
   over positions: one token per point;
2. ``set_layers`` transformer blocks over the S point tokens (no positional encoding: they see
   a set), each modulated by the time and library-label embedding (adaptive layer norm);
3. a per-sequence decoder, one of the ordinary velocity backbones (dilated CNN or
   transformer), run on every point with the condition ``time + label + its set token``, then
   projected to the tangent space at the point.

The library label has an extra "no label" row for classifier-free guidance. There is no
dropout and no normalisation across points (GroupNorm and LayerNorm act within one point), so
the map is exactly equivariant up to floating-point summation order.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from seqflow.geometry import sphere_tangent
from seqflow.models.cnn import ResidualBlock
from seqflow.models.conditioning import LabelEmbedding
from seqflow.models.embedding import GaussianFourierTime
from seqflow.models.transformer import AdaLayer
from seqflow.models.velocity import make_backbone

SET_TANGENTS = ("sphere", "sum_zero")
SET_ARCHS = ("cnn", "transformer")


class SetVelocityField(nn.Module):
    """Velocity of every point of a cloud of sequences, given the whole cloud.

    Args:
        vocab: alphabet size V.
        max_length: longest sequence the position embeddings cover.
        hidden: width of every part (and of the time and label embeddings).
        heads: attention heads of the set blocks (and of a transformer decoder).
        point_layers: residual convolution blocks of the per-point encoder.
        set_layers: transformer blocks over the points of a cloud.
        arch: the per-sequence decoder, ``cnn`` (:class:`DilatedConvNet`) or ``transformer``
            (:class:`TransformerNet`).
        depth: blocks of the decoder.
        kernel_size, dilations: convolutions of the encoder and of a ``cnn`` decoder.
        num_labels: classes of the library label (0: unconditional model).
        time_scale: standard deviation of the time embedding's random frequencies.
        tangent: ``sphere`` (``v - <x, v> x`` per position, the Fisher sphere) or ``sum_zero``
            (``v - mean(v)``, the simplex and T_0).
    """

    def __init__(
        self,
        vocab: int,
        *,
        max_length: int,
        hidden: int = 64,
        heads: int = 4,
        point_layers: int = 2,
        set_layers: int = 2,
        arch: str = "cnn",
        depth: int = 4,
        kernel_size: int = 5,
        dilations: tuple[int, ...] = (1, 2, 4),
        num_labels: int = 0,
        time_scale: float = 16.0,
        tangent: str = "sphere",
    ) -> None:
        super().__init__()
        if tangent not in SET_TANGENTS:
            raise ValueError(f"tangent must be one of {SET_TANGENTS}, got {tangent!r}")
        if arch not in SET_ARCHS:
            raise ValueError(f"arch must be one of {SET_ARCHS}, got {arch!r}")
        self.arguments: dict[str, Any] = {
            "vocab": vocab, "max_length": max_length, "hidden": hidden, "heads": heads,
            "point_layers": point_layers, "set_layers": set_layers, "arch": arch,
            "depth": depth, "kernel_size": kernel_size, "dilations": list(dilations),
            "num_labels": num_labels, "time_scale": time_scale, "tangent": tangent,
        }  # fmt: skip
        self.sum_zero = tangent == "sum_zero"
        self.time = GaussianFourierTime(hidden, time_scale)
        self.labels = LabelEmbedding(num_labels, hidden) if num_labels > 0 else None
        self.inp = nn.Conv1d(vocab, hidden, 1)
        self.pos = nn.Parameter(torch.randn(hidden, max_length) * 0.02)
        self.encoder = nn.ModuleList(
            ResidualBlock(hidden, kernel_size, dilations[i % len(dilations)], hidden)
            for i in range(point_layers)
        )
        self.set_layers = nn.ModuleList(AdaLayer(hidden, heads, hidden) for _ in range(set_layers))
        self.to_cond = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden))
        self.decoder = make_backbone(
            arch, vocab, max_length=max_length, hidden=hidden, depth=depth, heads=heads,
            kernel_size=kernel_size, dilations=dilations, cond_dim=hidden,
        )  # fmt: skip

    @property
    def num_labels(self) -> int:
        """Number of library classes (0 for a model without labels)."""
        return self.labels.num_labels if self.labels is not None else 0

    @property
    def conditional(self) -> bool:
        """Whether the model takes a library label."""
        return self.labels is not None

    def velocity(
        self,
        x_t: Tensor,
        t: Tensor,
        labels: Tensor | None = None,
        values: Tensor | None = None,
        signal: Tensor | None = None,
    ) -> Tensor:
        """:meth:`forward` in the form the sampler's guided field calls; a set model takes no
        value or signal (None)."""
        return self(x_t, t, labels)

    def forward(self, x_t: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        """Velocity at every point of every cloud.

        Args:
            x_t: point clouds, shape ``(batch, size, length, vocab)``.
            t: one time per cloud, shape ``(batch,)``.
            labels: library class per cloud, shape ``(batch,)`` int64, where ``num_labels``
                means "no label"; None: unconditional.

        Returns:
            Tangent vectors at ``x_t``, shape ``(batch, size, length, vocab)``.
        """
        batch, size, length, vocab = x_t.shape
        c = self.time(t)  # (B, H)
        if self.labels is not None:
            c = c + self.labels(labels, batch, x_t.device)
        c_points = c.repeat_interleave(size, dim=0)  # (B*S, H): one row per point
        x = x_t.reshape(batch * size, length, vocab)
        h = self.inp(x.transpose(1, 2)) + self.pos[:, :length]  # (B*S, H, L)
        for block in self.encoder:
            h = block(h, c_points)
        z = h.mean(dim=2).reshape(batch, size, -1)  # (B, S, H): one token per point
        for layer in self.set_layers:
            z = layer(z, c)
        context = c_points + self.to_cond(z).reshape(batch * size, -1)
        v = self.decoder(x, context).reshape(x_t.shape).to(x_t.dtype)
        if self.sum_zero:
            return v - v.mean(dim=-1, keepdim=True)
        return sphere_tangent(x_t, v)
