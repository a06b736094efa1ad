"""Library-level flow matching: a whole library (a set of S sequences) is one training item.

Wasserstein flow matching (Haviv, Pooladian, Pe'er, Amos 2025, arXiv 2411.00698, ICML 2025):
a library is an empirical distribution, a cloud of S one-hot points ``(S, L, V)``. A cloud of S
prior points is paired with it by the optimal assignment under the geometry's cost (the W_2
plan between uniform empirical measures of equal size is a permutation; WFM Sec. 3), and each
point moves along its own path with its cloud's time t: the cloud travels the Wasserstein
geodesic (WFM Eq. 7). :class:`~seqflow.flow.FlowMatching` draws prior clouds and builds their
path and loss as of sequences; this module adds the pairing: the flow's coupling inside each
library, and optionally an outer exact OT of the libraries of a minibatch with the prior clouds
on a cheap distance between clouds (:func:`cloud_summary`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.flow.coupling import ExactOTCoupling, grouped_permutation
from seqflow.flow.matching import FlowMatching

OUTER_COUPLINGS = ("none", "exact")


def cloud_summary(p: Tensor) -> Tensor:
    """``sqrt`` of the mean composition of each cloud of probabilities ``p`` (batch, size,
    length, vocab), flattened to ``(batch, L * V)``: the squared distance of two summaries is
    (twice) the squared Hellinger distance between the clouds' mean compositions."""
    return p.mean(dim=1).clamp_min(0.0).sqrt().flatten(1)


class LibraryCoupling:
    """Pairs prior clouds with libraries, point by point.

    Args:
        flow: the flow of one sequence (not a denoiser); its coupling pairs the points of one
            cloud with the sequences of one library.
        outer: ``none`` keeps the draw order of the prior clouds; ``exact`` pairs the clouds
            with the libraries by optimal assignment on :func:`cloud_summary` (within labels).
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
        """:meth:`FlowMatching.couple <seqflow.flow.FlowMatching.couple>` for libraries
        ``tokens`` (batch, size, length) and prior clouds ``x_0`` (batch, size, length, vocab);
        ``groups``: label per library ``(batch,)``, for the outer coupling."""
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
