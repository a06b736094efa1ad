"""ODE solvers on a flow's geometry: integrate dx/dt = v(x, t) from t=0 to t=1.

A step is the geometry's (on the sphere an exponential-map step projected back onto the
positive orthant, as Davis et al. 2024 sample; on flat charts a straight move and the chart's
projection); "exp" and "normalise" below stand for the geometry's own:

- ``euler``: ``x <- exp_x(h v(x, t))``.
- ``midpoint``: the velocity at the geodesic midpoint, projected onto the tangent space at x,
  then one full step.
- ``rk4``: the classical four-stage scheme on the ambient ODE ``dy/dt = P_{y/|y|} v(y/|y|, t)``
  (whose exact flow stays on the sphere), projected to the domain after each step.
- ``dopri5``: torchdiffeq's adaptive Dormand-Prince on the same ambient ODE, in Python only.

:class:`FixedStepSolver` is a TorchScript-compatible module (``seqflow export`` scripts it).
Fixed positions (templates) are put back after every step on the conditional path the model was
trained on, ``x_t = interpolate(x_0, e_a, t)`` (Davis et al. 2024, Sec. 3), so the free
positions see their context as in training and each fixed position reaches its letter at t = 1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqflow.errors import ConfigError
from seqflow.geometry import Geometry
from seqflow.sampling.field import Guide

FIXED_STEP_SOLVERS = ("euler", "midpoint", "rk4")
SOLVERS = ("euler", "midpoint", "rk4", "dopri5")
UNGUIDED = Guide()  # no conditions, guidance weight 1


class FixedStepSolver(nn.Module):
    """The fixed-step solvers over ``field(x, t, guide)`` (velocities of x's shape) on
    ``geometry``."""

    def __init__(self, field: nn.Module, geometry: Geometry) -> None:
        super().__init__()
        self.field = field
        self.geometry = geometry

    def forward(
        self, x_0: Tensor, guide: Guide, steps: int, method: str, fixed: Tensor | None = None
    ) -> Tensor:
        """Solve from ``x_0`` (batch, ..., vocab) at t=0 to t=1 in ``steps`` steps of
        ``method`` (euler, midpoint or rk4); ``guide`` goes to the field; ``fixed``: category
        per position ``(length,)`` int64, -1 where free (None: all free)."""
        h = 1.0 / steps
        batch = x_0.shape[0]
        cols = torch.zeros(0, dtype=torch.long, device=x_0.device)
        x_0f, x_1f = x_0, x_0
        if fixed is not None:
            where = fixed >= 0
            cols = torch.nonzero(where).flatten().to(x_0.device)
            x_0f = x_0[:, cols]
            x_1f = self.geometry.embed(fixed[where].to(x_0.device)[None], x_0.shape[-1],
                                       x_0.dtype).expand_as(x_0f)  # fmt: skip
        x = x_0
        for i in range(steps):
            t = torch.full([batch], i * h, device=x.device, dtype=x.dtype)
            if method == "euler":
                x = self.geometry.step(x, self.field(x, t, guide), h)
            elif method == "midpoint":
                x_mid = self.geometry.step(x, self.field(x, t, guide), h / 2)
                v_mid = self.geometry.proj_tangent(x_mid, self.field(x_mid, t + h / 2, guide))
                x = self.geometry.step(x, v_mid, h)
            else:
                # Classical RK4 on the ambient ODE whose flow preserves the sphere (the field is
                # tangent at the normalised point), then one projection: fourth order.
                k1 = self._ambient(x, t, guide)
                k2 = self._ambient(x + h / 2 * k1, t + h / 2, guide)
                k3 = self._ambient(x + h / 2 * k2, t + h / 2, guide)
                k4 = self._ambient(x + h * k3, t + h, guide)
                x = self.geometry.to_domain(x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
            if fixed is not None:
                times = torch.full([batch], (i + 1) * h, device=x.device, dtype=x.dtype)
                x[:, cols] = self.geometry.interpolate(x_0f, x_1f, times).x_t
        return x

    def _ambient(self, y: Tensor, t: Tensor, guide: Guide) -> Tensor:
        """The field at the normalised ``y``, tangent there: the ODE in the ambient space."""
        x = self.geometry.normalize(y)
        return self.geometry.proj_tangent(x, self.field(x, t, guide))


def integrate(
    field: nn.Module,
    x_0: Tensor,
    *,
    geometry: Geometry,
    steps: int,
    solver: str = "euler",
    guide: Guide = UNGUIDED,
    fixed: Tensor | None = None,
) -> Tensor:
    """Solve the flow from ``x_0`` (batch, ..., vocab) at t=0 to t=1 with any solver; returns
    end points in the geometry's domain, shape of ``x_0``.

    Args:
        field: a field module ``field(x, t, guide)``, t of shape ``(batch,)``.
        steps: number of fixed steps (``dopri5``: its first step is ``1 / steps``).
        solver: one of :data:`SOLVERS`.
        guide: conditions and guidance weight for the field.
        fixed: category per position ``(length,)``, -1 where free (fixed-step solvers only).
    """
    if solver not in SOLVERS:
        raise ConfigError(f"sample.solver: unknown solver {solver!r}; choose one of {SOLVERS}")
    if solver != "dopri5":
        return FixedStepSolver(field, geometry)(x_0, guide, steps, solver, fixed)
    if fixed is not None:
        raise ConfigError(
            "sample.solver: dopri5 cannot hold positions fixed during integration; "
            f"choose one of {FIXED_STEP_SOLVERS}"
        )
    from torchdiffeq import odeint

    batch, ambient = x_0.shape[0], FixedStepSolver(field, geometry)._ambient

    def rhs(t: Tensor, x: Tensor) -> Tensor:
        return ambient(x, t.to(x.dtype).expand(batch), guide)

    grid = torch.tensor([0.0, 1.0], device=x_0.device, dtype=x_0.dtype)
    x_1 = odeint(rhs, x_0, grid, method="dopri5", rtol=1e-5, atol=1e-5,
                 options={"first_step": 1.0 / steps})[-1]  # fmt: skip
    return geometry.to_domain(x_1)
