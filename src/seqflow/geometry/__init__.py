"""Geometries on which seqflow's flows run (tensors ``(batch, length, vocab)``)."""

from seqflow.geometry.base import Denoiser, Geometry, PosteriorMixture, sum_zero
from seqflow.geometry.dirichlet import DirichletPath
from seqflow.geometry.egeodesic import EGeodesic
from seqflow.geometry.simplex import LinearSimplex
from seqflow.geometry.sphere import EPS, PathSample, PositiveSphere, sphere_tangent

GEOMETRIES = ("fisher", "simplex", "egeodesic", "dirichlet")
"""Names accepted by ``flow.geometry``."""


def make_geometry(name: str, *, smoothing: float = 0.1, tau_max: float = 8.0) -> Geometry:
    """The geometry called ``name`` (see :data:`GEOMETRIES`)."""
    if name == "fisher":
        return PositiveSphere()
    if name == "simplex":
        return LinearSimplex()
    if name == "egeodesic":
        return EGeodesic(smoothing=smoothing)
    if name == "dirichlet":
        return DirichletPath(tau_max=tau_max)
    raise ValueError(f"unknown geometry {name!r}; choose one of {GEOMETRIES}")


__all__ = [
    "EPS",
    "GEOMETRIES",
    "Denoiser",
    "DirichletPath",
    "EGeodesic",
    "Geometry",
    "LinearSimplex",
    "PathSample",
    "PositiveSphere",
    "PosteriorMixture",
    "make_geometry",
    "sphere_tangent",
    "sum_zero",
]
