"""The model a run describes: a velocity field (sequence mode) or a set velocity field (library
mode), built from a checkpoint's metadata (:class:`~seqflow.checkpoint.ModelMeta`) alone."""

from __future__ import annotations

from typing import Protocol

from seqflow.config import Config, ModelConfig
from seqflow.geometry import Geometry
from seqflow.models.conditioning import Standardizer
from seqflow.models.set_transformer import SetVelocityField
from seqflow.models.velocity import VelocityField, build_model, resolve_arch


class ModelSpec(Protocol):
    """What the factory reads from a run's metadata (:class:`~seqflow.checkpoint.ModelMeta`)."""

    @property
    def config(self) -> Config: ...
    @property
    def vocab(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def value(self) -> Standardizer | None: ...
    @property
    def signal(self) -> Standardizer | None: ...
    @property
    def geometry(self) -> Geometry: ...


def build_velocity_field(spec: ModelSpec) -> VelocityField:
    """A freshly initialised model of ``spec``'s architecture (sequence mode)."""
    return build_model(
        spec.config.model, vocab=spec.vocab, length=spec.length, num_labels=len(spec.labels),
        value=spec.value is not None,
        signal_channels=spec.signal.channels if spec.signal is not None else 0,
        tangent="none" if spec.config.flow.target == "denoiser" else spec.geometry.tangent,
    )  # fmt: skip


def build_set_velocity_field(spec: ModelSpec) -> SetVelocityField:
    """A freshly initialised set velocity field (library mode, ``mode: library``)."""
    m, lib = spec.config.model, spec.config.library
    return SetVelocityField(
        spec.vocab, max_length=spec.length, hidden=m.hidden, heads=m.heads,
        point_layers=lib.point_layers, set_layers=lib.set_layers,
        arch=resolve_arch(m, spec.vocab), depth=m.depth, kernel_size=m.kernel_size,
        dilations=m.dilations, num_labels=len(spec.labels), time_scale=m.time_scale,
        tangent=spec.geometry.tangent,
    )  # fmt: skip


def min_weights(cfg: ModelConfig, *, vocab: int, length: int) -> int:
    """A lower bound on the weights of the model ``cfg`` describes:
    ``hidden * (length + depth * hidden + vocab + time_dim)`` (position embedding, a
    hidden-by-hidden map per layer, input and time layers)."""
    return cfg.hidden * (length + cfg.depth * cfg.hidden + vocab + cfg.time_dim)
