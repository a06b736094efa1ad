"""The positive orthant of the product of L unit spheres, with the Fisher-Rao geometry.

A categorical distribution ``p`` on K letters maps to ``x = sqrt(p)`` on the unit sphere
``S^{K-1}``; the Fisher-Rao metric on the simplex is (four times) the round metric there
(Davis et al. 2024, arXiv 2405.14664, Sec. 3). A sequence is a point ``(batch, length, vocab)``
on the product of L such spheres; operations act on the last axis, distances add up.

Numerical safety: ``acos`` is clamped, and every ``sin(a) / sin(b)`` ratio switches to its
small-angle limit below a dtype-keyed tolerance (``EPS``) through ``torch.where`` with a safe
denominator, so gradients and values stay finite at one-hot points. The methods compile with
``torch.jit.script`` (``seqflow export`` ships this very code): keep them free of ``finfo``,
dtype dicts, ``*`` unpacking and keyword-only arguments.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

EPS: dict[torch.dtype, float] = {
    torch.float16: 1e-3,
    torch.bfloat16: 1e-3,
    torch.float32: 1e-4,
    torch.float64: 1e-7,
}
T_MAX = 1.0 - 1e-3
"""The latest time a posterior-mixture field is evaluated at: ``v = E[log_x(x_1)] / (1 - t)``
is singular at ``t = 1``, so samplers and the final decode read it at ``t <= T_MAX``."""


def _eps(x: Tensor) -> float:
    """``EPS[x.dtype]`` (1e-4 for other dtypes); TorchScript has no dict keyed by dtype."""
    if x.dtype == torch.float64:
        return 1e-7
    if x.dtype == torch.float16 or x.dtype == torch.bfloat16:
        return 1e-3
    return 1e-4


def _tiny(x: Tensor) -> float:
    """``torch.finfo(x.dtype).tiny``, written out because TorchScript has no ``finfo``."""
    if x.dtype == torch.float64:
        return 2.2250738585072014e-308
    if x.dtype == torch.float16:
        return 6.103515625e-05
    return 1.1754943508222875e-38  # float32 and bfloat16


def _norm(x: Tensor) -> Tensor:
    """Euclidean norm over the last axis, shape ``(..., 1)`` (in a form TorchScript accepts)."""
    return torch.linalg.vector_norm(x, dim=-1, keepdim=True)


def _angle(x: Tensor, y: Tensor) -> Tensor:
    """Geodesic angle between unit vectors, shape ``(..., 1)``, in ``[0, pi]``.

    ``2 atan2(|x - y|, |x + y|)`` equals ``acos(<x, y>)`` for unit vectors but stays accurate
    for tiny angles (``acos`` of a rounded 1 loses about sqrt(eps)) and has finite gradients
    at ``x == y``, where the derivative of ``acos`` is infinite.
    """
    return 2.0 * torch.atan2(_norm(x - y), _norm(x + y))


def _sin_ratio(a: Tensor, theta: Tensor) -> Tensor:
    """``sin(a * theta) / sin(theta)`` with the limit ``a`` as ``theta -> 0``."""
    small = theta < _eps(theta)
    safe = torch.where(small, torch.ones_like(theta), theta)
    return torch.where(small, a * torch.ones_like(theta), torch.sin(a * safe) / torch.sin(safe))


def _theta_over_sin(theta: Tensor) -> Tensor:
    """``theta / sin(theta)`` with the limit 1 as ``theta -> 0``."""
    small = theta < _eps(theta)
    safe = torch.where(small, torch.ones_like(theta), theta)
    return torch.where(small, torch.ones_like(theta), safe / torch.sin(safe))


def sphere_tangent(x: Tensor, v: Tensor) -> Tensor:
    """``v - <x, v> x``: ambient vectors ``v`` (..., K) projected onto the sphere's tangent
    space at ``x`` (..., K); a function, which scripted models call without the class."""
    return v - (x * v).sum(dim=-1, keepdim=True) * x


def per_row(t: Tensor, like: Tensor) -> Tensor:
    """Times ``(batch,)`` reshaped to broadcast against ``like`` ``(batch, ...)``, in its dtype."""
    return t.reshape([-1] + [1] * (like.dim() - 1)).to(like.dtype)


def flat_onehot(tokens: Tensor, vocab: int, like: Tensor) -> Tensor:
    """``onehot(tokens)`` of integer ``tokens`` (B1, L) reshaped to ``(B1, L * vocab)`` with
    ``like``'s dtype and device: every OT cost is linear in it, ``C = A @ flat_onehot(...).T``."""
    length = tokens.shape[1]
    index = tokens.long() + torch.arange(length, device=tokens.device) * vocab  # (B1, L)
    return like.new_zeros(tokens.shape[0], length * vocab).scatter_(1, index, 1.0)


class PathSample(NamedTuple):
    """A point ``x_t`` (batch, length, vocab) on a conditional path and its velocity
    ``u_t = d x_t / dt``, same shape (a NamedTuple: TorchScript reads it)."""

    x_t: Tensor
    u_t: Tensor


class PositiveSphere(nn.Module):
    """Fisher-Rao geometry of categorical distributions via the square-root map: the methods of
    :class:`~seqflow.geometry.Geometry`, plus :meth:`exp`."""

    name = "fisher"
    tangent = "sphere"
    denoiser = False

    @staticmethod
    def sample_prior(
        shape: list[int],
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Uniform samples ``|z| / ||z||``, ``z ~ N(0, I)``, on the positive orthant of
        ``S^{K-1}``, shape ``shape = (..., K)`` (Dirichlet(1/2, ..., 1/2) on the simplex)."""
        z = torch.randn(shape, generator=generator, device=device, dtype=dtype).abs()
        return z / _norm(z).clamp_min(_tiny(z))

    @staticmethod
    def embed(tokens: Tensor, vocab: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """Tokens ``(batch, length)`` as vertices ``e_k`` (one-hot), ``(batch, length, vocab)``."""
        return torch.nn.functional.one_hot(tokens.long(), vocab).to(dtype)

    @staticmethod
    def interpolate(x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        """Point and velocity at times ``t`` (batch,) on the constant-speed geodesic from
        ``x_0`` to ``x_1`` (batch, length, vocab): ``x_t = [sin((1-t) theta) x_0 + sin(t theta)
        x_1] / sin(theta)`` and ``u_t = theta [cos(t theta) x_1 - cos((1-t) theta) x_0] /
        sin(theta)`` in closed form (its norm is ``theta = d(x_0, x_1)``)."""
        t = per_row(t, x_0)
        theta = _angle(x_0, x_1)
        x_t = _sin_ratio(1.0 - t, theta) * x_0 + _sin_ratio(t, theta) * x_1
        k = _theta_over_sin(theta)
        u_t = k * (torch.cos(t * theta) * x_1 - torch.cos((1.0 - t) * theta) * x_0)
        return PathSample(x_t=x_t, u_t=u_t)

    @staticmethod
    def velocity(x: Tensor, t: Tensor, logits: Tensor, t_max: float = T_MAX) -> Tensor:
        """The marginal velocity (tangent at ``x``, x's shape) of geodesic paths from a posterior
        over the vertices.

        On the geodesic to ``e_k``, ``u_t = log_{x_t}(e_k) / (1 - t)`` whatever the prior point,
        so ``v = sum_k p_k log_x(e_k) / (1 - t)`` with ``p = softmax(logits)`` and
        ``log_x(e_k) = theta_k / sin(theta_k) (e_k - x_k x)``, ``x_k = cos(theta_k)``.

        Args:
            x: points on the positive orthant, shape ``(batch, length, vocab)``.
            t: times ``(batch,)``, capped at ``t_max`` (the field is singular at 1).
            logits: the denoiser's output at ``x``, same shape as ``x``.
        """
        p = torch.softmax(logits.float(), dim=-1).to(x.dtype)
        xc = x.clamp(0.0, 1.0)
        sin = ((1.0 - xc) * (1.0 + xc)).clamp_min(0.0).sqrt()
        w = p * _theta_over_sin(torch.atan2(sin, xc))
        v = w - (w * x).sum(dim=-1, keepdim=True) * x
        return v / (1.0 - per_row(t.clamp(max=t_max), x))

    @staticmethod
    def cost_onehot(x_0: Tensor, tokens: Tensor) -> Tensor:
        """Squared Fisher-Rao cost ``C[i, j] = sum_l d(x_0[i, l], e_{tokens[j, l]})**2``, shape
        ``(B0, B1)``, from sources ``x_0`` (B0, L, K) to integer tokens (B1, L).

        ``d(x, e_k) = acos(x_k)``, so ``C = A @ onehot(tokens)^T`` with ``A = acos(x_0)**2``
        flattened to ``(B0, L*K)``: one matrix product, no ``(B0, B1, L)`` intermediate.
        """
        b0, length, k = x_0.shape
        a = torch.acos(x_0.clamp(-1.0, 1.0)).square_().reshape(b0, length * k)
        onehot = flat_onehot(tokens, k, a)
        return a @ onehot.T

    @staticmethod
    def proj_tangent(x: Tensor, v: Tensor) -> Tensor:
        """Project ambient vectors ``v`` (..., K) onto the tangent space at ``x`` (..., K)."""
        return sphere_tangent(x, v)

    @staticmethod
    def exp(x: Tensor, v: Tensor) -> Tensor:
        """Exponential map ``cos(|v|) x + sin(|v|) v / |v|`` at unit ``x`` (..., K) of tangent
        vectors ``v`` (..., K)."""
        n = _norm(v)
        small = n < _eps(n)
        safe = torch.where(small, torch.ones_like(n), n)
        sinc = torch.where(small, 1.0 - n.square() / 6.0, torch.sin(safe) / safe)
        y = torch.cos(n) * x + sinc * v
        return y / _norm(y)

    @staticmethod
    def step(x: Tensor, v: Tensor, h: float) -> Tensor:
        """One exponential-map step ``exp_x(h P_x v)``, projected back to the orthant."""
        return PositiveSphere.to_domain(
            PositiveSphere.exp(x, h * PositiveSphere.proj_tangent(x, v))
        )

    @staticmethod
    def normalize(y: Tensor) -> Tensor:
        """Radial projection ``y / |y|`` of an ambient point onto the sphere."""
        return y / _norm(y)

    @staticmethod
    def to_domain(y: Tensor) -> Tensor:
        """Nearest point of the positive orthant of the unit sphere: clamp at 0, renormalise (no
        positive entry: the uniform point ``1/sqrt(K)``)."""
        y = y.clamp_min(0.0)
        norm = _norm(y)
        uniform = torch.full_like(y, y.shape[-1] ** -0.5)
        tiny = _tiny(y)
        return torch.where(norm > tiny, y / norm.clamp_min(tiny), uniform)

    @staticmethod
    def to_simplex(x: Tensor) -> Tensor:
        """Map sphere points ``x`` (..., K) back to probabilities ``x**2`` (renormalised)."""
        p = x.square()
        return p / p.sum(dim=-1, keepdim=True).clamp_min(_tiny(p))

    @staticmethod
    def letters(x: Tensor) -> Tensor:
        """The distribution decoding draws from: :meth:`to_simplex` in float32."""
        return PositiveSphere.to_simplex(x.float())
