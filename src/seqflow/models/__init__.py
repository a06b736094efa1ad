"""Velocity networks: dilated CNN and transformer backbones with time and condition inputs."""

from seqflow.models.conditioning import Condition, Standardizer
from seqflow.models.factory import (
    ModelSpec,
    build_set_velocity_field,
    build_velocity_field,
    min_weights,
)
from seqflow.models.memory import parameter_count, raise_if_too_big, raise_if_weights_too_big
from seqflow.models.set_transformer import SetVelocityField
from seqflow.models.velocity import VelocityField, build_model, count_parameters, resolve_arch

__all__ = [
    "Condition",
    "ModelSpec",
    "SetVelocityField",
    "Standardizer",
    "VelocityField",
    "build_model",
    "build_set_velocity_field",
    "build_velocity_field",
    "count_parameters",
    "min_weights",
    "parameter_count",
    "raise_if_too_big",
    "raise_if_weights_too_big",
    "resolve_arch",
]
