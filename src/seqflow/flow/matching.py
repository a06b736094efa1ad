"""Flow-matching training targets for every geometry: prior, coupling, conditional path, loss.

Davis et al. 2024 (arXiv 2405.14664), Sec. 3-4 (Fisher-Flow, the default geometry): one-hot data
``x_1`` on the positive orthant of the product of spheres, a uniform prior there, and the
network regresses the velocity ``u_t`` of the geodesic from ``x_0`` to ``x_1`` at ``x_t``. Any
:class:`~seqflow.geometry.Geometry` plugs in with its own prior, path and OT cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.flow.coupling import Coupling, grouped_permutation
from seqflow.geometry import Denoiser, Geometry, PositiveSphere

NOISY_GEOMETRIES = ("egeodesic",)  # whose paths may carry SB-CFM noise (flow.sigma > 0)
TARGETS = ("velocity", "denoiser")  # flow.target: the path's velocity, or the posterior of x_1
POSTERIOR_GEOMETRIES = ("fisher", "simplex", "dirichlet")  # that take flow.target: denoiser


@dataclass(frozen=True)
class FlowBatch:
    """One minibatch of regression targets (of sequences, or of clouds of ``size`` sequences).

    Attributes:
        x_t: points on the path, shape ``(batch, length, vocab)`` or ``(batch, size, length,
            vocab)``.
        t: times, shape ``(batch,)``.
        u_t: target velocities at ``x_t``, the shape of ``x_t``.
    """

    x_t: Tensor
    t: Tensor
    u_t: Tensor


class FlowMatching:
    """Compose a geometry (the Fisher sphere by default), its prior and a coupling into
    training targets.

    Args:
        vocab: alphabet size K.
        geometry: where the flow runs (prior, path, OT cost); default the positive sphere.
        sigma: noise of the Brownian-bridge paths of SB-CFM (Tong et al. 2024), ``x_t = mu_t +
            sigma sqrt(t (1 - t)) eps``; 0 keeps the deterministic path. Flat geometries only
            (``egeodesic``): noise would push sphere and simplex points out of their domain.
        target: ``velocity`` (regress ``u_t``) or ``denoiser``: the network returns logits of
            ``p(x_1 | x_t, t)``, trained by cross-entropy against ``x_1``, for a geometry whose
            conditional velocity depends on ``x_1`` only through ``x_t`` (the sphere's
            geodesic, the simplex's line). A denoiser geometry (dirichlet) is one either way.
        t_early: share of the training times drawn from ``[0, 0.5)`` (:meth:`times`); 0.5
            keeps them uniform.
    """

    def __init__(
        self, coupling: Coupling, vocab: int, geometry: Geometry | None = None,
        sigma: float = 0.0, target: str = "velocity", t_early: float = 0.5,
    ) -> None:  # fmt: skip
        self.geometry: Geometry = geometry if geometry is not None else PositiveSphere()
        if target not in TARGETS or (
            target == "denoiser" and self.geometry.name not in POSTERIOR_GEOMETRIES
        ):
            raise ConfigError(
                f"flow.target: {target!r} needs velocity, or denoiser with geometry "
                f"{' or '.join(POSTERIOR_GEOMETRIES)} (not {self.geometry.name})"
            )
        self.target = target
        self.t_early = t_early
        self.coupling = coupling
        self.vocab = vocab
        if sigma < 0 or (sigma > 0 and self.geometry.name not in NOISY_GEOMETRIES):
            raise ConfigError(
                f"flow.sigma: {sigma} needs sigma >= 0, and noise only for the "
                f"{', '.join(NOISY_GEOMETRIES)} geometry (not {self.geometry.name})"
            )
        self.sigma = sigma
        if self.geometry.denoiser and coupling.needs_cost:
            raise ConfigError(
                f"flow.coupling: the {self.geometry.name} geometry's paths start from no prior "
                "point, so there is nothing to pair; use flow.coupling=independent"
            )

    @property
    def denoiser(self) -> bool:
        """True when the network returns logits of ``p(x_1 | x_t)`` (geometry or target)."""
        return self.geometry.denoiser or self.target == "denoiser"

    def times(self, u: Tensor) -> Tensor:
        """Training times from uniform draws ``u`` (batch,): the inverse of the piecewise-linear
        distribution function with ``F(0.5) = t_early``, so a share ``t_early`` of the times
        falls in ``[0, 0.5)``, uniformly within each half (``t = u`` when ``t_early = 0.5``)."""
        m = self.t_early
        if m == 0.5:
            return u
        return torch.where(u < m, 0.5 * u / m, 0.5 + 0.5 * (u - m) / (1.0 - m))

    def prior(
        self, shape: tuple[int, ...], *, generator: torch.Generator, device: torch.device
    ) -> Tensor:
        """Uniform prior samples, shape ``(*shape, vocab)`` for ``shape = (batch, length)`` (or
        ``(batch, size, length)``: clouds)."""
        return self.geometry.sample_prior([*shape, self.vocab], generator=generator, device=device)

    def couple(
        self,
        tokens: Tensor,
        *,
        generator: torch.Generator,
        groups: Tensor | None = None,
        x_0: Tensor | None = None,
    ) -> Tensor:
        """Draw prior samples (unless given) and pair them with the data by the coupling: returns
        x_0 with ``x_0[j]`` paired to ``tokens[j]``.

        Args:
            tokens: data tokens, shape ``(batch, length)``, integer.
            generator: generator on the tokens' device for x_0 and the coupling.
            groups: label per sequence, shape ``(batch,)``; pairs stay within a group.
            x_0: prior samples to pair, shape ``(batch, length, vocab)``; None draws them.
        """
        batch, length = tokens.shape
        if x_0 is None:
            x_0 = self.prior((batch, length), generator=generator, device=tokens.device)
        if not self.coupling.needs_cost and groups is None:
            return x_0
        cost = self.geometry.cost_onehot(x_0, tokens) if self.coupling.needs_cost else None
        perm = grouped_permutation(self.coupling, cost, groups, generator)
        return x_0[perm.to(tokens.device)]

    def path(
        self, x_0: Tensor, tokens: Tensor, t: Tensor, generator: torch.Generator | None = None
    ) -> FlowBatch:
        """Targets on the conditional path from ``x_0`` (batch, length, vocab) to the data
        points of ``tokens`` (batch, length) at times ``t`` (batch,); clouds ``x_0`` (batch,
        size, length, vocab) and ``tokens`` (batch, size, length) move with one time each."""
        x_1 = self.geometry.embed(tokens, self.vocab, x_0.dtype)
        if self.geometry.denoiser:  # the target is the data itself (cross-entropy)
            x_t = cast(Denoiser, self.geometry).sample_path(x_1, t, generator)
            return FlowBatch(x_t=x_t, t=t, u_t=x_1)
        p = self.geometry.interpolate(x_0, x_1, t)
        if self.target == "denoiser":  # cross-entropy against the data at x_t on the path
            return FlowBatch(x_t=p.x_t, t=t, u_t=x_1)
        if self.sigma == 0:
            return FlowBatch(x_t=p.x_t, t=t, u_t=p.u_t)
        # SB-CFM: x_t = mu_t + sigma s(t) eps with s = sqrt(t (1 - t)), u_t = mu_t' + sigma s'(t)
        # eps, s' = (1 - 2t) / (2 s): the derivative of the same noisy path (Tong et al. 2024)
        eps = torch.randn(x_0.shape, generator=generator, device=x_0.device, dtype=x_0.dtype)
        eps = self.geometry.proj_tangent(p.x_t, eps)
        tt = t.reshape(-1, *([1] * (x_0.dim() - 1))).to(x_0.dtype)
        s = (tt * (1.0 - tt)).sqrt().clamp_min(1e-4)
        x_t = p.x_t + self.sigma * s * eps
        u_t = p.u_t + self.sigma * (1.0 - 2.0 * tt) / (2.0 * s) * eps
        return FlowBatch(x_t=x_t, t=t, u_t=u_t)

    def loss(self, v: Tensor, u_t: Tensor) -> Tensor:
        """The training loss of the model's output ``v`` against the batch's ``u_t``: the
        flow-matching regression, or for a denoiser the cross-entropy of the logits ``v`` with
        the one-hot data ``u_t``."""
        if self.denoiser:
            return denoiser_loss(v, u_t)
        return flow_matching_loss(v, u_t)


def denoiser_loss(logits: Tensor, x_1: Tensor) -> Tensor:
    """``-E_seq sum_l log softmax(logits)[x_1]`` for ``logits`` (..., length, vocab) and one-hot
    ``x_1`` of that shape: cross-entropy summed over positions, mean over sequences."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(x_1.float() * log_p).sum(dim=(-2, -1)).mean()


def flow_matching_loss(v: Tensor, u_t: Tensor) -> Tensor:
    """``E_seq sum_{l,k} (v - u_t)^2`` for predicted ``v`` and target ``u_t`` (..., length,
    vocab): squared norm summed over positions, mean over sequences (points of all clouds)."""
    return (v.float() - u_t.float()).square().sum(dim=(-2, -1)).mean()
