"""Library-level flow matching: a whole library (a set of S sequences) is one training item.

Wasserstein flow matching (Haviv, Pooladian, Pe'er, Amos 2025, arXiv 2411.00698, ICML 2025):
a library is an empirical distribution, a point cloud of S points on the product of spheres
(each sequence one-hot, ``(S, L, V)``). The source is a cloud of S prior points; the pair
(x_0, x_1) of clouds is coupled by the optimal assignment of points under the squared
Fisher-Rao cost summed over positions (the W_2 optimal plan between two uniform empirical
measures of equal size is a permutation; WFM Sec. 3), and each point moves along its own sphere
geodesic to its partner, all points with one shared time t: the whole cloud travels the
Wasserstein geodesic between the two measures (WFM Eq. 7).

Optionally the libraries of a minibatch are first paired with the prior clouds by an outer
exact OT on a cheap distance between clouds (see :func:`cloud_summary`), the minibatch-OT
analogue on the space of measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.flow.coupling import COUPLINGS, ExactOTCoupling, grouped_permutation, make_coupling
from seqflow.flow.fisher import flow_matching_loss
from seqflow.geometry import Geometry, PositiveSphere

OUTER_COUPLINGS = ("none", "exact")


@dataclass(frozen=True)
class LibraryBatch:
    """One minibatch of library regression targets.

    Attributes:
        x_t: point clouds on the path, shape ``(batch, size, length, vocab)``.
        t: one time per library, shape ``(batch,)``.
        u_t: target velocities at ``x_t``, shape ``(batch, size, length, vocab)``.
    """

    x_t: Tensor
    t: Tensor
    u_t: Tensor


def inner_coupling(
    x_0: Tensor,
    tokens: Tensor,
    geometry: Geometry | None = None,
    *,
    method: str = "exact",
    generator: torch.Generator | None = None,
    sinkhorn_reg: float = 0.05,
) -> Tensor:
    """The assignment of one prior cloud to one library under the geometry's OT cost.

    ``exact`` is the optimal assignment (equal to the ``ot.emd`` plan between the two uniform
    empirical measures), ``sinkhorn`` an entropic plan sampled into a permutation without
    replacement (for large S), ``independent`` the identity.

    Args:
        x_0: prior points of the cloud, shape ``(size, length, vocab)``.
        tokens: the library's sequences, shape ``(size, length)``, integer.
        geometry: the flow's geometry (default: the Fisher sphere, whose cost is the squared
            geodesic distance summed over positions).
        method: one of ``independent``, ``exact``, ``sinkhorn``.
        generator: CPU generator for the randomness of ``sinkhorn``.
        sinkhorn_reg: entropic regularisation relative to the mean cost.

    Returns:
        ``perm`` of shape ``(size,)``: ``x_0[perm[j]]`` is paired with ``tokens[j]``.
    """
    coupling = make_coupling(method, sinkhorn_reg=sinkhorn_reg)
    size = tokens.shape[0]
    if x_0.shape[0] != size:
        raise ValueError(f"x_0 has {x_0.shape[0]} points for a library of {size} sequences")
    m = geometry if geometry is not None else PositiveSphere()
    cost = m.cost_onehot(x_0, tokens) if coupling.needs_cost else None
    return coupling.permutation(cost, size, generator)


def cloud_summary(p: Tensor) -> Tensor:
    """``sqrt`` of the mean composition of each cloud, flattened: shape ``(batch, L * V)``.

    The squared Euclidean distance of two summaries is (twice) the squared Hellinger distance
    between the clouds' per-position mean compositions, summed over positions: a cheap
    distance between libraries that sees their average letters, not their spread.

    Args:
        p: probabilities of every point, shape ``(batch, size, length, vocab)``.
    """
    return p.mean(dim=1).clamp_min(0.0).sqrt().flatten(1)


class LibraryFlow:
    """Prior clouds, the per-library coupling, the shared-time path and the loss.

    Args:
        vocab: alphabet size V.
        geometry: where every point moves (default: the Fisher sphere); a denoiser geometry
            (no prior points to pair) is refused.
        inner: coupling of the points of one cloud with one library: ``exact``, ``sinkhorn``
            or ``independent``.
        outer: ``none`` keeps the draw order of the prior clouds; ``exact`` pairs the clouds
            with the libraries of a minibatch by optimal assignment on :func:`cloud_summary`
            (within label groups when labels are given).
        sinkhorn_reg: entropic regularisation of the ``sinkhorn`` inner coupling.
    """

    def __init__(
        self,
        vocab: int,
        geometry: Geometry | None = None,
        *,
        inner: str = "exact",
        outer: str = "none",
        sinkhorn_reg: float = 0.05,
    ) -> None:
        self.geometry: Geometry = geometry if geometry is not None else PositiveSphere()
        if self.geometry.denoiser:
            raise ConfigError(
                f"flow.geometry: library mode needs prior points, which the "
                f"{self.geometry.name} geometry's paths do not start from"
            )
        if inner not in COUPLINGS:
            raise ConfigError(
                f"flow.coupling: unknown coupling {inner!r}; choose one of {COUPLINGS}"
            )
        if outer not in OUTER_COUPLINGS:
            raise ConfigError(
                f"flow.outer: unknown outer coupling {outer!r}; choose one of {OUTER_COUPLINGS}"
            )
        make_coupling(inner, sinkhorn_reg=sinkhorn_reg)  # validates sinkhorn_reg
        self.vocab = vocab
        self.inner = inner
        self.outer = outer
        self.sinkhorn_reg = sinkhorn_reg

    def prior(
        self, shape: tuple[int, int, int], *, generator: torch.Generator, device: torch.device
    ) -> Tensor:
        """Prior clouds, shape ``(*shape, vocab)`` for ``shape = (batch, size, length)``."""
        return self.geometry.sample_prior([*shape, self.vocab], generator=generator, device=device)

    def couple(
        self,
        tokens: Tensor,
        *,
        generator: torch.Generator,
        groups: Tensor | None = None,
        x_0: Tensor | None = None,
    ) -> Tensor:
        """Draw prior clouds (unless given) and pair them with the libraries, point by point.

        Args:
            tokens: libraries, shape ``(batch, size, length)``, integer.
            generator: generator on the tokens' device for x_0 and the couplings.
            groups: label per library, shape ``(batch,)``: the outer coupling stays within a
                group; None for unlabelled libraries.
            x_0: prior clouds, shape ``(batch, size, length, vocab)``; None draws them.

        Returns:
            x_0 with ``x_0[b, j]`` paired to ``tokens[b, j]``, shape ``(batch, size, length,
            vocab)``.
        """
        batch, size, length = tokens.shape
        if x_0 is None:
            x_0 = self.prior((batch, size, length), generator=generator, device=tokens.device)
        cpu_generator = generator if generator.device.type == "cpu" else None
        if self.outer == "exact":
            cost = torch.cdist(
                cloud_summary(self.geometry.to_simplex(x_0)),
                cloud_summary(self.geometry.embed(tokens, self.vocab, x_0.dtype)),
            ).square()
            outer = grouped_permutation(ExactOTCoupling(), cost, groups, cpu_generator)
            x_0 = x_0[outer.to(tokens.device)]
        perms = [
            inner_coupling(
                x_0[b], tokens[b], self.geometry, method=self.inner, generator=cpu_generator,
                sinkhorn_reg=self.sinkhorn_reg,
            )
            for b in range(batch)
        ]  # fmt: skip
        perm = torch.stack(perms).to(tokens.device)  # (batch, size)
        return torch.gather(x_0, 1, perm[:, :, None, None].expand_as(x_0))

    def path(self, x_0: Tensor, tokens: Tensor, t: Tensor) -> LibraryBatch:
        """Targets on the geodesics from every prior point to its library sequence.

        Args:
            x_0: coupled prior clouds, shape ``(batch, size, length, vocab)``.
            tokens: libraries, shape ``(batch, size, length)``.
            t: one time per library, shape ``(batch,)``: the whole cloud moves together.
        """
        x_1 = self.geometry.embed(tokens, self.vocab, x_0.dtype)
        p = self.geometry.interpolate(x_0, x_1, t)
        return LibraryBatch(x_t=p.x_t, t=t, u_t=p.u_t)

    def targets(
        self, tokens: Tensor, *, generator: torch.Generator, groups: Tensor | None = None
    ) -> LibraryBatch:
        """Couple, draw ``t ~ U(0, 1)`` per library and return the path targets."""
        x_0 = self.couple(tokens, generator=generator, groups=groups)
        t = torch.rand(tokens.shape[0], generator=generator, device=tokens.device)
        return self.path(x_0, tokens, t)

    def loss(self, v: Tensor, u_t: Tensor) -> Tensor:
        """Flow-matching regression: squared error summed over positions and letters, mean over
        the points of all libraries (the per-sequence scale of :class:`FisherFlow`).

        Args:
            v: predicted velocities, shape ``(batch, size, length, vocab)``; u_t: targets, same.
        """
        return flow_matching_loss(v.flatten(0, 1), u_t.flatten(0, 1))
