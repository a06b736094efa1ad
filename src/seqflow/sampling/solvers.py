"""ODE solvers on a flow's geometry: integrate dx/dt = v(x, t) from t=0 to t=1.

The geometry (default: the Fisher sphere) says how a step moves and how points are put back
in the domain; on the sphere, fixed-step solvers move along geodesics with the exponential map
and project back onto the positive orthant after every step (Davis et al. 2024 sample with
Euler steps on the sphere); on flat charts (simplex, T_0) a step is a straight move followed by
the chart's projection. Below, "exp" and "normalise" stand for the geometry's own:

- ``euler``: ``x <- exp_x(h v(x, t))``.
- ``midpoint``: the velocity at the geodesic midpoint (tangent there), brought back to the
  tangent space at x by orthogonal projection, then one full exponential-map step.
- ``rk4``: the classical four-stage scheme on the ambient ODE ``dy/dt = P_{y/|y|} v(y/|y|, t)``
  (whose exact flow stays on the sphere), projected to the orthant after each step.
- ``dopri5``: torchdiffeq's adaptive Dormand-Prince in the ambient space with the field evaluated
  at ``x / |x|`` and projected onto its tangent space; the result is projected to the orthant.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.geometry import Geometry, PositiveSphere

VectorField = Callable[[Tensor, Tensor], Tensor]
Constraint = Callable[[Tensor, float], Tensor]
"""``constrain(x, t)``: the state after a step that ends at time ``t`` (e.g. clamped positions)."""
FIXED_STEP_SOLVERS = ("euler", "midpoint", "rk4")
SOLVERS = ("euler", "midpoint", "rk4", "dopri5")

_SPHERE = PositiveSphere()


def integrate(
    field: VectorField,
    x_0: Tensor,
    *,
    steps: int,
    solver: str = "euler",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    constrain: Constraint | None = None,
    geometry: Geometry | None = None,
) -> Tensor:
    """Solve the flow from ``x_0`` at t=0 to t=1.

    Args:
        field: ``field(x, t)`` with x ``(batch, length, vocab)`` and t ``(batch,)`` returning
            velocities of x's shape.
        x_0: start points on the positive orthant, shape ``(batch, length, vocab)``.
        steps: number of fixed steps (ignored by ``dopri5`` except as its first step size).
        solver: one of ``euler``, ``midpoint``, ``rk4``, ``dopri5``.
        constrain: applied to the state after every step with the step's end time (fixed-step
            solvers only), e.g. to clamp positions to given letters during integration.
        geometry: the flow's geometry (default: the Fisher sphere).

    Returns:
        End points on the positive orthant, shape of ``x_0``.
    """
    if solver not in SOLVERS:
        raise ConfigError(f"sample.solver: unknown solver {solver!r}; choose one of {SOLVERS}")
    m = geometry if geometry is not None else _SPHERE
    if solver == "dopri5":
        if constrain is not None:
            raise ConfigError(
                "sample.solver: dopri5 cannot hold positions fixed during integration; "
                f"choose one of {FIXED_STEP_SOLVERS}"
            )
        return _dopri5(field, x_0, steps=steps, rtol=rtol, atol=atol, geometry=m)
    h = 1.0 / steps
    batch = x_0.shape[0]
    x = x_0
    for i in range(steps):
        t = torch.full((batch,), i * h, device=x.device, dtype=x.dtype)
        x = _STEPPERS[solver](field, x, t, h, m)
        if constrain is not None:
            x = constrain(x, (i + 1) * h)
    return x


def _euler(field: VectorField, x: Tensor, t: Tensor, h: float, m: Geometry) -> Tensor:
    return m.step(x, field(x, t), h)


def _midpoint(field: VectorField, x: Tensor, t: Tensor, h: float, m: Geometry) -> Tensor:
    x_mid = m.step(x, field(x, t), h / 2)
    v_mid = m.proj_tangent(x_mid, field(x_mid, t + h / 2))
    return m.step(x, v_mid, h)


def _ambient(field: VectorField, y: Tensor, t: Tensor, m: Geometry) -> Tensor:
    """The field at the normalised ``y``, tangent there: the ODE in the ambient space."""
    x = m.normalize(y)
    return m.proj_tangent(x, field(x, t))


def _rk4(field: VectorField, x: Tensor, t: Tensor, h: float, m: Geometry) -> Tensor:
    # Classical RK4 on the ambient ODE whose flow preserves the sphere (the field is tangent at
    # the normalised point), then one projection: fourth order, unlike stage-wise projection.
    k1 = _ambient(field, x, t, m)
    k2 = _ambient(field, x + h / 2 * k1, t + h / 2, m)
    k3 = _ambient(field, x + h / 2 * k2, t + h / 2, m)
    k4 = _ambient(field, x + h * k3, t + h, m)
    return m.to_domain(x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))


_STEPPERS = {"euler": _euler, "midpoint": _midpoint, "rk4": _rk4}


def _dopri5(
    field: VectorField, x_0: Tensor, *, steps: int, rtol: float, atol: float, geometry: Geometry
) -> Tensor:
    from torchdiffeq import odeint

    batch = x_0.shape[0]

    def rhs(t: Tensor, x: Tensor) -> Tensor:
        y = geometry.normalize(x)
        tt = t.to(x.dtype).expand(batch)
        return geometry.proj_tangent(y, field(y, tt))

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
    return geometry.to_domain(x_1)
