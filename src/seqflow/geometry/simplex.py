"""Linear flow matching on the probability simplex (the baseline of Stark et al. 2024).

Points are probabilities ``p`` (batch, length, vocab); the prior is Dirichlet(1), uniform on
the simplex; the conditional path is the straight line ``x_t = (1 - t) x_0 + t x_1`` to the
vertex of the data letter with constant velocity ``u_t = x_1 - x_0`` (Lipman et al. 2023's
conditional OT path; Stark et al. 2024, Sec. 3, "linear FM"). Stark et al. point out that its
conditional paths pass through ever smaller faces of the simplex as K grows; it is here as the
baseline every discrete-flow paper compares against.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqflow.geometry.base import sum_zero
from seqflow.geometry.sphere import T_MAX, PathSample, PositiveSphere, _tiny, flat_onehot, per_row


class LinearSimplex(nn.Module):
    """The simplex with the Euclidean metric: straight paths, Dirichlet(1) prior."""

    name = "simplex"
    tangent = "sum_zero"
    denoiser = False

    @staticmethod
    def sample_prior(
        shape: list[int],
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Dirichlet(1, ..., 1) draws (normalised Exp(1) variables), shape ``shape``."""
        e = torch.empty(shape, device=device, dtype=dtype).exponential_(generator=generator)
        return e / e.sum(dim=-1, keepdim=True)

    embed = staticmethod(PositiveSphere.embed)  # one-hot: the vertices of the simplex

    @staticmethod
    def interpolate(x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        """``x_t = (1 - t) x_0 + t x_1`` and ``u_t = x_1 - x_0``; t of shape ``(batch,)``."""
        t = per_row(t, x_0)
        return PathSample(x_t=(1.0 - t) * x_0 + t * x_1, u_t=x_1 - x_0)

    @staticmethod
    def velocity(x: Tensor, t: Tensor, logits: Tensor, t_max: float = T_MAX) -> Tensor:
        """The marginal velocity ``v = (p - x) / (1 - t)`` of straight paths at ``x`` (batch,
        length, vocab) from a posterior ``p = softmax(logits) = E[x_1 | x_t]`` (``logits`` of x's
        shape), as ``u_t = (x_1 - x_t) / (1 - t)``; t ``(batch,)`` capped at ``t_max``."""
        p = torch.softmax(logits.float(), dim=-1).to(x.dtype)
        return (p - x) / (1.0 - per_row(t.clamp(max=t_max), x))

    @staticmethod
    def cost_onehot(x_0: Tensor, tokens: Tensor) -> Tensor:
        """``C[i, j] = sum_l |x_0[i, l] - e_{tokens[j, l]}|^2``, shape ``(B0, B1)``: one matrix
        product, as ``|x - e_k|^2 = |x|^2 + 1 - 2 x_k`` is linear in the one-hot code."""
        b0, length, k = x_0.shape
        flat = x_0.reshape(b0, length * k)
        onehot = flat_onehot(tokens, k, flat)
        return (flat.square().sum(dim=1) + length)[:, None] - 2.0 * (flat @ onehot.T)

    @staticmethod
    def proj_tangent(x: Tensor, v: Tensor) -> Tensor:
        """Sum-zero part of ``v`` (the tangent space of the simplex; ``x`` unused)."""
        return sum_zero(v)

    @staticmethod
    def step(x: Tensor, v: Tensor, h: float) -> Tensor:
        """Euler step ``x + h P v``, then the nearest simplex point (clamp, renormalise)."""
        return LinearSimplex.to_domain(x + h * sum_zero(v))

    @staticmethod
    def normalize(y: Tensor) -> Tensor:
        """Back onto the simplex (:meth:`to_domain`)."""
        return LinearSimplex.to_domain(y)

    @staticmethod
    def to_domain(y: Tensor) -> Tensor:
        """Clamp at 0 and renormalise; a point with no positive entry becomes uniform."""
        y = y.clamp_min(0.0)
        total = y.sum(dim=-1, keepdim=True)
        tiny = _tiny(y)
        return torch.where(
            total > tiny, y / total.clamp_min(tiny), torch.full_like(y, 1.0 / y.shape[-1])
        )

    @staticmethod
    def to_simplex(x: Tensor) -> Tensor:
        """Probabilities: the points themselves, renormalised."""
        return LinearSimplex.to_domain(x)

    @staticmethod
    def letters(x: Tensor) -> Tensor:
        """The distribution decoding draws from: :meth:`to_simplex` in float32."""
        return LinearSimplex.to_simplex(x.float())
