"""ODE solvers on the product of spheres: integrate dx/dt = v(x, t) from t=0 to t=1.

Fixed-step manifold solvers move along geodesics with the exponential map, and project back onto
the positive orthant after every step (Davis et al. 2024 sample with Euler steps on the sphere):

- ``euler``: ``x <- exp_x(h v(x, t))``.
- ``midpoint``: the velocity at the geodesic midpoint, brought back to the tangent space at x by
  orthogonal projection (a first-order stand-in for parallel transport), then one full step.
- ``rk4``: the classical four-stage scheme with the same projection of stage velocities.
- ``dopri5``: torchdiffeq's adaptive Dormand-Prince in the ambient space with the field evaluated
  at ``x / |x|`` and projected onto its tangent space; the result is projected to the orthant.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.geometry import PositiveSphere

VectorField = Callable[[Tensor, Tensor], Tensor]
SOLVERS = ("euler", "midpoint", "rk4", "dopri5")

_M = PositiveSphere


def _step(x: Tensor, v: Tensor, h: float) -> Tensor:
    return _M.proj_orthant(_M.exp(x, h * _M.proj_tangent(x, v)))


def integrate(
    field: VectorField,
    x_0: Tensor,
    *,
    steps: int,
    solver: str = "euler",
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> Tensor:
    """Solve the flow from ``x_0`` at t=0 to t=1.

    Args:
        field: ``field(x, t)`` with x ``(batch, length, vocab)`` and t ``(batch,)`` returning
            velocities of x's shape.
        x_0: start points on the positive orthant, shape ``(batch, length, vocab)``.
        steps: number of fixed steps (ignored by ``dopri5`` except as its first step size).
        solver: one of ``euler``, ``midpoint``, ``rk4``, ``dopri5``.

    Returns:
        End points on the positive orthant, shape of ``x_0``.
    """
    if solver not in SOLVERS:
        raise ConfigError(f"sample.solver: unknown solver {solver!r}; choose one of {SOLVERS}")
    if solver == "dopri5":
        return _dopri5(field, x_0, steps=steps, rtol=rtol, atol=atol)
    h = 1.0 / steps
    batch = x_0.shape[0]
    x = x_0
    for i in range(steps):
        t = torch.full((batch,), i * h, device=x.device, dtype=x.dtype)
        x = _STEPPERS[solver](field, x, t, h)
    return x


def _euler(field: VectorField, x: Tensor, t: Tensor, h: float) -> Tensor:
    return _step(x, field(x, t), h)


def _midpoint(field: VectorField, x: Tensor, t: Tensor, h: float) -> Tensor:
    v1 = field(x, t)
    x_mid = _step(x, v1, h / 2)
    return _step(x, field(x_mid, t + h / 2), h)


def _rk4(field: VectorField, x: Tensor, t: Tensor, h: float) -> Tensor:
    k1 = _M.proj_tangent(x, field(x, t))
    k2 = _M.proj_tangent(x, field(_step(x, k1, h / 2), t + h / 2))
    k3 = _M.proj_tangent(x, field(_step(x, k2, h / 2), t + h / 2))
    k4 = _M.proj_tangent(x, field(_step(x, k3, h), t + h))
    return _step(x, (k1 + 2 * k2 + 2 * k3 + k4) / 6, h)


_STEPPERS = {"euler": _euler, "midpoint": _midpoint, "rk4": _rk4}


def _dopri5(field: VectorField, x_0: Tensor, *, steps: int, rtol: float, atol: float) -> Tensor:
    from torchdiffeq import odeint

    batch = x_0.shape[0]

    def rhs(t: Tensor, x: Tensor) -> Tensor:
        y = x / x.norm(dim=-1, keepdim=True)
        tt = t.to(x.dtype).expand(batch)
        return _M.proj_tangent(y, field(y, tt))

    grid = torch.tensor([0.0, 1.0], device=x_0.device, dtype=x_0.dtype)
    x_1 = odeint(
        rhs,
        x_0,
        grid,
        method="dopri5",
        rtol=rtol,
        atol=atol,
        options={"first_step": 1.0 / steps},
    )[-1]
    return _M.proj_orthant(x_1)
