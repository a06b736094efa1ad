"""Library-level flow matching: a whole library (a set of S sequences) is one training item.

Wasserstein flow matching (Haviv, Pooladian, Pe'er, Amos 2025, arXiv 2411.00698, ICML 2025):
a library is an empirical distribution, a point cloud of S points on the product of spheres
(each sequence one-hot, ``(S, L, V)``). The source is a cloud of S prior points; the pair
(x_0, x_1) of clouds is coupled by the optimal assignment of points under the geometry's cost
summed over positions (the W_2 optimal plan between two uniform empirical measures of equal
size is a permutation; WFM Sec. 3), and each point moves along its own path to its partner,
all points with their cloud's time t: the whole cloud travels the Wasserstein geodesic between
the two measures (WFM Eq. 7).

Everything but the pairing is the sequence flow's: :class:`~seqflow.flow.FlowMatching` draws
prior clouds, builds the path and the loss of clouds as of sequences (one time per item).
This module adds the pairing of clouds: the flow's own coupling applied inside each library,
and optionally an outer exact OT that first pairs the libraries of a minibatch with the prior
clouds on a cheap distance between clouds (see :func:`cloud_summary`), the minibatch-OT
analogue on the space of measures.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.flow.coupling import ExactOTCoupling, grouped_permutation
from seqflow.flow.matching import FlowMatching

OUTER_COUPLINGS = ("none", "exact")


def cloud_summary(p: Tensor) -> Tensor:
    """``sqrt`` of the mean composition of each cloud, flattened: shape ``(batch, L * V)``.

    The squared Euclidean distance of two summaries is (twice) the squared Hellinger distance
    between the clouds' per-position mean compositions, summed over positions: a cheap
    distance between libraries that sees their average letters, not their spread.

    Args:
        p: probabilities of every point, shape ``(batch, size, length, vocab)``.
    """
    return p.mean(dim=1).clamp_min(0.0).sqrt().flatten(1)


class LibraryCoupling:
    """Pairs prior clouds with libraries, point by point.

    Args:
        flow: the flow of one sequence; its coupling (``exact``, ``sinkhorn`` or
            ``independent``) pairs the points of one cloud with the sequences of one library.
            A denoiser geometry (no prior points to pair) and ``flow.target: denoiser`` (the
            set model outputs velocities only) are refused.
        outer: ``none`` keeps the draw order of the prior clouds; ``exact`` pairs the clouds
            with the libraries of a minibatch by optimal assignment on :func:`cloud_summary`
            (within label groups when labels are given).
    """

    def __init__(self, flow: FlowMatching, outer: str = "none") -> None:
        if flow.geometry.denoiser:
            raise ConfigError(
                f"flow.geometry: library mode needs prior points, which the "
                f"{flow.geometry.name} geometry's paths do not start from"
            )
        if flow.denoiser:
            raise ConfigError(
                "flow.target: library mode's set model regresses velocities (it has no "
                "logits readout); set flow.target=velocity with mode: library"
            )
        if outer not in OUTER_COUPLINGS:
            raise ConfigError(
                f"flow.outer: unknown outer coupling {outer!r}; choose one of {OUTER_COUPLINGS}"
            )
        self.flow = flow
        self.outer = outer

    def couple(
        self,
        tokens: Tensor,
        *,
        generator: torch.Generator,
        groups: Tensor | None = None,
        x_0: Tensor | None = None,
    ) -> Tensor:
        """Draw prior clouds (unless given) and pair them with the libraries.

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
        flow = self.flow
        if x_0 is None:
            x_0 = flow.prior(tuple(tokens.shape), generator=generator, device=tokens.device)
        if self.outer == "exact":
            cost = torch.cdist(
                cloud_summary(flow.geometry.to_simplex(x_0)),
                cloud_summary(flow.geometry.embed(tokens, flow.vocab, x_0.dtype)),
            ).square()
            outer = grouped_permutation(ExactOTCoupling(), cost, groups, generator)
            x_0 = x_0[outer.to(tokens.device)]
        pairs = zip(tokens, x_0, strict=True)  # the flow's coupling inside every library
        return torch.stack([flow.couple(lib, generator=generator, x_0=x) for lib, x in pairs])
