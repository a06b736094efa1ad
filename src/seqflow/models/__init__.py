"""Velocity networks: dilated CNN and transformer backbones with time and condition inputs."""

from seqflow.models.conditioning import Condition
from seqflow.models.set_transformer import SetVelocityField
from seqflow.models.velocity import VelocityField, build_model, count_parameters, resolve_arch

__all__ = [
    "Condition",
    "SetVelocityField",
    "VelocityField",
    "build_model",
    "count_parameters",
    "resolve_arch",
]
