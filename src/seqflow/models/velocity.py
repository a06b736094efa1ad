"""The velocity field v_theta(x_t, t, y): backbone + condition embedding + tangent projection."""

from __future__ import annotations

from torch import Tensor, nn

from seqflow.config import ModelConfig
from seqflow.geometry import PositiveSphere
from seqflow.models.cnn import DilatedConvNet
from seqflow.models.embedding import GaussianFourierTime, LabelEmbedding
from seqflow.models.transformer import TransformerNet

CNN_MAX_VOCAB = 8


class VelocityField(nn.Module):
    """A time- and label-conditioned vector field tangent to the product of spheres.

    Args:
        backbone: maps ``(x, c)`` with x ``(batch, length, vocab)``, c ``(batch, cond_dim)``
            to an ambient vector of x's shape.
        time: time embedding ``(batch,) -> (batch, cond_dim)``.
        labels: label embedding, or None for an unconditional model.
    """

    def __init__(
        self, backbone: nn.Module, time: GaussianFourierTime, labels: LabelEmbedding | None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.time = time
        self.labels = labels

    @property
    def num_labels(self) -> int:
        """Number of classes (0 for an unconditional model)."""
        return self.labels.num_labels if self.labels is not None else 0

    def forward(self, x_t: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor:
        """Velocity at ``x_t``.

        Args:
            x_t: points, shape ``(batch, length, vocab)``.
            t: times, shape ``(batch,)``.
            labels: class indices ``(batch,)`` (``num_labels`` = no label), or None.

        Returns:
            Tangent vectors at ``x_t``, shape ``(batch, length, vocab)``.
        """
        c = self.time(t)
        if self.labels is not None:
            c = c + self.labels(labels, x_t.shape[0], x_t.device)
        v = self.backbone(x_t, c)
        return PositiveSphere.proj_tangent(x_t, v.to(x_t.dtype))


def resolve_arch(cfg: ModelConfig, vocab: int) -> str:
    """The backbone name ``arch: auto`` stands for with this alphabet size."""
    if cfg.arch != "auto":
        return cfg.arch
    return "cnn" if vocab <= CNN_MAX_VOCAB else "transformer"


def build_model(cfg: ModelConfig, *, vocab: int, length: int, num_labels: int) -> VelocityField:
    """Build the velocity field a config describes (same result for the same seed)."""
    arch = resolve_arch(cfg, vocab)
    backbone: nn.Module
    if arch == "cnn":
        backbone = DilatedConvNet(
            vocab,
            hidden=cfg.hidden,
            depth=cfg.depth,
            kernel_size=cfg.kernel_size,
            dilations=cfg.dilations,
            cond_dim=cfg.time_dim,
            max_length=length,
        )
    else:
        backbone = TransformerNet(
            vocab,
            max_length=length,
            hidden=cfg.hidden,
            depth=cfg.depth,
            heads=cfg.heads,
            cond_dim=cfg.time_dim,
        )
    time = GaussianFourierTime(cfg.time_dim, cfg.time_scale)
    labels = LabelEmbedding(num_labels, cfg.time_dim) if num_labels > 0 else None
    return VelocityField(backbone, time, labels)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["VelocityField", "build_model", "count_parameters", "resolve_arch"]
