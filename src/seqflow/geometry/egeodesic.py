"""E-geodesic flow matching on the assignment manifold (Boll, Gonzalez-Alvarado and Schnoerr
2024, arXiv 2402.07846).

The assignment manifold is the product of open simplices with the Fisher-Rao metric; its
e-connection (exponential-family) geodesics are straight lines in mean-free logit coordinates:
a point ``p`` lifts to ``V = log p - mean(log p)`` in ``T_0 = {V : sum_k V_k = 0}`` and back by
``p = softmax(V)``, so ``softmax((1 - t) V_0 + t V_1)`` is the normalised ``p_0^(1-t) p_1^t``.
Flows run in T_0, where the path is linear with constant velocity ``u_t = V_1 - V_0``, sampling
is Euler in T_0 and decoding is argmax (Boll et al., Sec. 3-4). One-hot data are smoothed to
``(1 - eps) e_k + eps / K`` (a vertex has no logits), and the prior is a standard normal
projected to T_0. As Boll et al. stress, the velocity field couples positions, so averaging
over the factorised prior represents joint distributions that do not factorise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from seqflow.geometry.base import sum_zero
from seqflow.geometry.simplex import LinearSimplex
from seqflow.geometry.sphere import flat_onehot

DEFAULT_SMOOTHING = 0.1


class EGeodesic(nn.Module):
    """Points are mean-free logits V ``(batch, length, vocab)`` in T_0.

    Args:
        smoothing: ``eps`` of the smoothed one-hot targets, in (0, 1).
    """

    name = "egeodesic"
    tangent = "sum_zero"
    denoiser = False

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING) -> None:
        super().__init__()
        if not 0.0 < smoothing < 1.0:
            raise ValueError(f"smoothing must lie in (0, 1), got {smoothing}")
        self.smoothing = smoothing

    def target_scale(self, vocab: int) -> float:
        """``a = log(p_hi / p_lo)`` of the smoothed vertex, whose lift ``log p - mean(log p)``
        to T_0 is ``a (e_k - 1/K)``."""
        lo = self.smoothing / vocab
        return math.log((1.0 - self.smoothing + lo) / lo)

    def sample_prior(
        self,
        shape: list[int],
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """``P_{T_0}(z)`` with ``z ~ N(0, I)``, shape ``shape``."""
        return sum_zero(torch.randn(shape, generator=generator, device=device, dtype=dtype))

    def embed(self, tokens: Tensor, vocab: int, dtype: torch.dtype = torch.float32) -> Tensor:
        """Lifted smoothed vertices ``a (e_k - 1/K)``, shape ``(batch, length, vocab)``."""
        onehot = torch.nn.functional.one_hot(tokens.long(), vocab).to(dtype)
        return self.target_scale(vocab) * (onehot - 1.0 / vocab)

    interpolate = staticmethod(LinearSimplex.interpolate)  # V_t = (1 - t) V_0 + t V_1 in T_0

    def cost_onehot(self, x_0: Tensor, tokens: Tensor) -> Tensor:
        """``C[i, j] = sum_l |V_0[i, l] - V_1(tokens[j, l])|^2`` in T_0, shape ``(B0, B1)``: one
        matrix product, as ``|V_0 - V_1|^2 = |V_0|^2 + a^2 (1 - 1/K) - 2 a V_0[k]``."""
        b0, length, k = x_0.shape
        a = self.target_scale(k)
        flat = x_0.reshape(b0, length * k)
        onehot = flat_onehot(tokens, k, flat)
        const = flat.square().sum(dim=1) + length * a * a * (1.0 - 1.0 / k)
        return const[:, None] - 2.0 * a * (flat @ onehot.T)

    proj_tangent = staticmethod(LinearSimplex.proj_tangent)  # the mean-free part: T_0

    @staticmethod
    def step(x: Tensor, v: Tensor, h: float) -> Tensor:
        """Euler step in T_0: ``V + h P v``."""
        return x + h * sum_zero(v)

    @staticmethod
    def normalize(y: Tensor) -> Tensor:
        """Back into T_0 (subtract the mean)."""
        return sum_zero(y)

    to_domain = normalize

    @staticmethod
    def to_simplex(x: Tensor) -> Tensor:
        """``softmax(V)``."""
        return torch.softmax(x.float(), dim=-1).to(x.dtype)

    def letters(self, x: Tensor) -> Tensor:
        """``softmax(V)`` with the smoothing undone, ``(p - eps / K)`` clamped at 0 and
        renormalised, so that the smoothed vertex draws ``k`` surely (``argmax`` is unchanged;
        the largest entry is at least ``1 / K > eps / K``, so the sum stays positive)."""
        p = torch.softmax(x.float(), dim=-1)
        p = (p - self.smoothing / x.shape[-1]).clamp_min(0.0)
        return p / p.sum(dim=-1, keepdim=True)
