"""The interface every flow geometry implements.

A geometry fixes where the points of a flow live (a chart of the product of L probability
simplices), the prior, the conditional path, the pairwise OT cost and how a solver moves. The
trainer, coupling, sampler and checkpoint only talk to this interface, so a geometry is one
small module (Riemannian flow matching, Chen and Lipman 2024).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from seqflow.geometry.sphere import PathSample


class Geometry(Protocol):
    """A chart of the product of simplices with a prior, paths, a cost and a retraction.

    Points are tensors ``(batch, length, vocab)``. ``tangent`` names the tangent spaces the
    velocity network projects onto: ``sphere`` (``v - <x, v> x``) or ``sum_zero`` (``v -
    mean(v)``, the tangent space of the simplex and the mean-free logit space T_0), or
    ``none`` for a denoiser. ``denoiser``: the model predicts the letters (cross-entropy) and
    the geometry turns its output into a velocity (Dirichlet FM); otherwise the model
    regresses the path's velocity.

    Implementations are parameter-free ``nn.Module`` subclasses whose sampling methods compile
    with TorchScript (``seqflow export`` scripts them inside the sampler).
    """

    name: str
    tangent: str
    denoiser: bool

    def sample_prior(
        self,
        shape: list[int],
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Prior points, shape ``shape = (batch, length, vocab)``."""

    def embed(self, tokens: Tensor, vocab: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """Data tokens ``(batch, length)`` as points ``(batch, length, vocab)``."""

    def interpolate(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        """``x_t`` and its velocity ``u_t`` on the conditional path, t of shape ``(batch,)``."""

    def cost_onehot(self, x_0: Tensor, tokens: Tensor) -> Tensor:
        """Pairwise cost from prior points ``(B0, L, K)`` to data tokens ``(B1, L)``:
        ``(B0, B1)``, the squared distance of the geometry summed over positions."""

    def proj_tangent(self, x: Tensor, v: Tensor) -> Tensor:
        """Tangent part of ambient vectors ``v`` at ``x``."""

    def step(self, x: Tensor, v: Tensor, h: float) -> Tensor:
        """Move from ``x`` along velocity ``v`` for time ``h`` and stay in the domain."""

    def normalize(self, y: Tensor) -> Tensor:
        """An ambient point (e.g. a Runge-Kutta stage) put back on the chart."""

    def to_domain(self, y: Tensor) -> Tensor:
        """The final projection of a solver's end point into the domain."""

    def to_simplex(self, x: Tensor) -> Tensor:
        """Probabilities ``(..., K)`` of points ``x``."""

    def letters(self, x: Tensor) -> Tensor:
        """The float32 distribution ``(..., K)`` of the letter a point ``x`` stands for."""


class PosteriorMixture(Protocol):
    """A geometry whose velocity can be read from a posterior over the vertices (the denoiser
    geometries; the sphere and the simplex with ``flow.target: denoiser``)."""

    def velocity(self, x: Tensor, t: Tensor, logits: Tensor) -> Tensor:
        """The marginal velocity at ``x`` (batch, length, vocab), times ``t`` (batch,), from
        the logits of ``p(x_1 | x_t)`` (same shape as ``x``)."""


class Denoiser(Geometry, PosteriorMixture, Protocol):
    """A geometry whose model predicts letters (``denoiser = True``, e.g. Dirichlet FM): its
    training points are drawn around the data, and its velocity is read from the logits."""

    def sample_path(self, x_1: Tensor, t: Tensor, generator: torch.Generator | None) -> Tensor:
        """Points ``x_t`` drawn on the path towards data points ``x_1``, t of shape ``(batch,)``."""


def sum_zero(v: Tensor) -> Tensor:
    """``v - mean(v)`` over the last axis: the tangent space of the simplex (and T_0)."""
    return v - v.mean(dim=-1, keepdim=True)
