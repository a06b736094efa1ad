"""Velocity networks: dilated CNN and transformer backbones with time/label conditioning."""

from seqflow.models.velocity import VelocityField, build_model, count_parameters, resolve_arch

__all__ = ["VelocityField", "build_model", "count_parameters", "resolve_arch"]
