"""Manifolds on which seqflow's flows run (tensors ``(batch, length, vocab)``)."""

from seqflow.geometry.sphere import EPS, PathSample, PositiveSphere

__all__ = ["EPS", "PathSample", "PositiveSphere"]
