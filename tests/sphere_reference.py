"""Reference maps of the unit sphere that the package does not need (its sampler and flows use
``exp``, ``interpolate`` and ``cost_onehot``): written out here, plainly, to test those against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqflow.geometry.sphere import _theta_over_sin


def dist(x: Tensor, y: Tensor) -> Tensor:
    """Geodesic distance per sphere, ``2 atan2(|x - y|, |x + y|)``, shape ``(...)``."""
    return 2.0 * torch.atan2((x - y).norm(dim=-1), (x + y).norm(dim=-1))


def log(x: Tensor, y: Tensor) -> Tensor:
    """``theta / sin(theta) (y - cos(theta) x)``: the tangent vector at ``x`` pointing to ``y``
    with norm ``dist(x, y)`` (with the package's small-angle-safe ``theta / sin(theta)``)."""
    theta = dist(x, y)[..., None]
    return _theta_over_sin(theta) * (y - torch.cos(theta) * x)


def from_simplex(p: Tensor) -> Tensor:
    """``sqrt(p)``: probabilities to the sphere."""
    return p.clamp_min(0.0).sqrt()


def sq_dist_matrix(x_0: Tensor, x_1: Tensor) -> Tensor:
    """``C[i, j] = sum_l dist(x_0[i, l], x_1[j, l])**2``, shape ``(B0, B1)``."""
    ip = torch.einsum("ilk,jlk->ijl", x_0, x_1).clamp(-1.0, 1.0)
    return torch.acos(ip).square().sum(dim=-1)
