"""The velocity field v_theta(x_t, t, y): backbone + condition embeddings + tangent projection."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqflow.config import ModelConfig
from seqflow.geometry import sphere_tangent
from seqflow.models.cnn import DilatedConvNet
from seqflow.models.conditioning import (
    Condition,
    LabelEmbedding,
    ValueEmbedding,
    signal_features,
)
from seqflow.models.embedding import GaussianFourierTime
from seqflow.models.transformer import TransformerNet

CNN_MAX_VOCAB = 8
TANGENTS = ("sphere", "sum_zero", "none")


class VelocityField(nn.Module):
    """A time- and condition-dependent vector field tangent to the flow's geometry.

    Args:
        backbone: maps ``(x, c, extra)`` with x ``(batch, length, vocab)``, c ``(batch,
            cond_dim)`` and extra ``(batch, length, signal_channels + 1)`` or None to an
            ambient vector of x's shape.
        time: time embedding ``(batch,) -> (batch, cond_dim)``.
        labels: label embedding, or None when the model takes no class label.
        values: scalar-value embedding, or None when the model takes no value.
        signal_channels: channels of the per-position signal the model takes (0: none).
        tangent: the tangent spaces the output is projected onto: ``sphere`` (``v - <x, v> x``,
            the Fisher sphere), ``sum_zero`` (``v - mean(v)``: the simplex and T_0) or
            ``none`` (raw output: the logits of a denoiser, Dirichlet FM).
    """

    def __init__(
        self,
        backbone: nn.Module,
        time: GaussianFourierTime,
        labels: LabelEmbedding | None = None,
        values: ValueEmbedding | None = None,
        signal_channels: int = 0,
        tangent: str = "sphere",
    ) -> None:
        super().__init__()
        if tangent not in TANGENTS:
            raise ValueError(f"tangent must be one of {TANGENTS}, got {tangent!r}")
        self.backbone = backbone
        self.time = time
        self.labels = labels
        self.values = values
        self.signal_channels = signal_channels
        self.sum_zero = tangent == "sum_zero"
        self.raw = tangent == "none"

    @property
    def num_labels(self) -> int:
        """Number of classes (0 for a model without labels)."""
        return self.labels.num_labels if self.labels is not None else 0

    @property
    def conditional(self) -> bool:
        """Whether the model takes any condition."""
        return self.labels is not None or self.values is not None or self.signal_channels > 0

    @torch.jit.unused
    def forward(self, x_t: Tensor, t: Tensor, cond: Condition | None = None) -> Tensor:
        """Velocity at ``x_t``.

        Args:
            x_t: points, shape ``(batch, length, vocab)``.
            t: times, shape ``(batch,)``.
            cond: the batch's conditions; None (or a missing part) means unconditional.

        Returns:
            Tangent vectors at ``x_t``, shape ``(batch, length, vocab)``.
        """
        cond = cond or Condition()
        return self.velocity(x_t, t, cond.labels, cond.values, cond.signal)

    @torch.jit.export
    def velocity(
        self,
        x_t: Tensor,
        t: Tensor,
        labels: Tensor | None = None,
        values: Tensor | None = None,
        signal: Tensor | None = None,
    ) -> Tensor:
        """:meth:`forward` with the conditions as separate tensors: the form TorchScript
        compiles (``seqflow export``), since it cannot take a :class:`Condition`.

        Args:
            x_t: points, shape ``(batch, length, vocab)``.
            t: times, shape ``(batch,)``.
            labels: class indices ``(batch,)`` int64 (``num_labels`` = none), or None.
            values: standardised values ``(batch,)`` (NaN = none), or None.
            signal: standardised tracks ``(batch, length, channels)`` (all-NaN = none), or None.

        Returns:
            Tangent vectors at ``x_t``, shape ``(batch, length, vocab)``.
        """
        batch, length, _ = x_t.shape
        c = self.time(t)
        if self.labels is not None:
            c = c + self.labels(labels, batch, x_t.device)
        if self.values is not None:
            c = c + self.values(values, batch, x_t.device)
        if self.signal_channels > 0:
            extra = signal_features(
                signal, batch, length, self.signal_channels, x_t.device, x_t.dtype
            )
            v = self.backbone(x_t, c, extra)
        else:
            v = self.backbone(x_t, c)
        v = v.to(x_t.dtype)
        if self.raw:
            return v
        if self.sum_zero:
            return v - v.mean(dim=-1, keepdim=True)
        return sphere_tangent(x_t, v)


def resolve_arch(cfg: ModelConfig, vocab: int) -> str:
    """The backbone name ``arch: auto`` stands for with this alphabet size."""
    if cfg.arch != "auto":
        return cfg.arch
    return "cnn" if vocab <= CNN_MAX_VOCAB else "transformer"


def make_backbone(
    arch: str, vocab: int, *, max_length: int, hidden: int, depth: int, heads: int,
    kernel_size: int, dilations: tuple[int, ...], cond_dim: int, extra_channels: int = 0,
) -> nn.Module:  # fmt: skip
    """The per-sequence backbone ``arch``: :class:`DilatedConvNet` (``cnn``, which ignores
    ``heads``) or :class:`TransformerNet` (``transformer``, which ignores the convolutions)."""
    if arch == "cnn":
        return DilatedConvNet(
            vocab, hidden=hidden, depth=depth, kernel_size=kernel_size, dilations=dilations,
            cond_dim=cond_dim, max_length=max_length, extra_channels=extra_channels,
        )  # fmt: skip
    return TransformerNet(
        vocab, max_length=max_length, hidden=hidden, depth=depth, heads=heads,
        cond_dim=cond_dim, extra_channels=extra_channels,
    )  # fmt: skip


def build_model(
    cfg: ModelConfig,
    *,
    vocab: int,
    length: int,
    num_labels: int = 0,
    value: bool = False,
    signal_channels: int = 0,
    tangent: str = "sphere",
) -> VelocityField:
    """Build the velocity field a config describes (same result for the same seed).

    Args:
        vocab: categories per position (letters, plus the end/pad category of variable-length
            data).
        length: the longest sequence.
        num_labels: classes of the label condition (0: none).
        value: whether the model takes a scalar value.
        signal_channels: channels of a per-position signal (0: none).
        tangent: ``sphere`` or ``sum_zero``, the geometry's tangent spaces (see
            :class:`VelocityField`).
    """
    backbone = make_backbone(
        resolve_arch(cfg, vocab), vocab, max_length=length, hidden=cfg.hidden, depth=cfg.depth,
        heads=cfg.heads, kernel_size=cfg.kernel_size, dilations=cfg.dilations,
        cond_dim=cfg.time_dim, extra_channels=signal_channels + 1 if signal_channels else 0,
    )  # fmt: skip
    time = GaussianFourierTime(cfg.time_dim, cfg.time_scale)
    labels = LabelEmbedding(num_labels, cfg.time_dim) if num_labels > 0 else None
    values = ValueEmbedding(cfg.time_dim) if value else None
    return VelocityField(backbone, time, labels, values, signal_channels, tangent)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["Condition", "VelocityField", "build_model", "count_parameters", "resolve_arch"]
