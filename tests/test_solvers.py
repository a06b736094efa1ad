"""ODE solvers on the product of spheres, checked against fields with closed-form flows.

Reference flow: ``v(x, t) = a'(t) log_x(y)`` for a fixed point y. Along the geodesic from x_0
to y the remaining distance d obeys ``d' = -a'(t) d``, so the exact solution is
``x(t) = exp_{x_0}((1 - e^{-(a(t) - a(0))}) log_{x_0}(y))``. With ``a(t) = t`` (autonomous) or
``a(t) = t**2`` (time-dependent, checks that stages get the right times), x(1) is
``exp_{x_0}((1 - 1/e) log_{x_0}(y))``.
"""

from __future__ import annotations

import math

import pytest
import torch

import sphere_reference as ref
from fields import integrate
from seqflow.errors import ConfigError
from seqflow.geometry import PositiveSphere
from seqflow.sampling.solvers import SOLVERS

M = PositiveSphere
FIXED = ("euler", "midpoint", "rk4")
DTYPES = [torch.float32, torch.float64]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def problem(dtype=torch.float64, shape=(3, 2, 4)):
    x_0 = M.sample_prior(shape, generator=gen(0), dtype=dtype)
    y = M.sample_prior(shape, generator=gen(1), dtype=dtype)
    exact = M.exp(x_0, (1 - math.exp(-1)) * ref.log(x_0, y))
    return x_0, y, exact


def autonomous(y):
    return lambda x, t: ref.log(x, y)


def time_dependent(y):
    return lambda x, t: 2 * t.to(x.dtype)[:, None, None] * ref.log(x, y)


FIELDS = {"autonomous": autonomous, "time-dependent": time_dependent}


def error(solver: str, field, x_0, exact, steps: int) -> float:
    return float(
        (integrate(field, x_0, geometry=PositiveSphere(), steps=steps, solver=solver) - exact)
        .abs()
        .max()
    )


def test_unknown_solver_raises():
    x_0, y, _ = problem()
    with pytest.raises(ConfigError, match="heun"):
        integrate(autonomous(y), x_0, geometry=PositiveSphere(), steps=4, solver="heun")


def test_reference_solution_is_a_solution():
    """The closed form used below solves dx/dt = log_x(y) (central difference in t)."""
    x_0, y, _ = problem()

    def x(t: float):
        return M.exp(x_0, (1 - math.exp(-t)) * ref.log(x_0, y))

    h = 1e-5
    for t in (0.2, 0.6, 1.0):
        torch.testing.assert_close(
            (x(t + h) - x(t - h)) / (2 * h), ref.log(x(t), y), atol=1e-8, rtol=0
        )


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("field", list(FIELDS))
def test_solvers_converge_to_the_exact_flow(solver, field):
    x_0, y, exact = problem()
    tol = {"euler": 0.05, "midpoint": 2e-3, "rk4": 2e-3, "dopri5": 1e-4}[solver]
    assert error(solver, FIELDS[field](y), x_0, exact, steps=8) < tol


@pytest.mark.parametrize("field", list(FIELDS))
@pytest.mark.parametrize("steps", [4, 8])
def test_higher_order_beats_euler_at_equal_steps(field, steps):
    x_0, y, exact = problem()
    f = FIELDS[field](y)
    e = {s: error(s, f, x_0, exact, steps) for s in SOLVERS}
    assert e["midpoint"] < e["euler"] / 4
    assert e["rk4"] < e["euler"] / 4
    assert e["dopri5"] < e["midpoint"]


@pytest.mark.parametrize(("solver", "order"), [("euler", 1), ("midpoint", 2), ("rk4", 4)])
@pytest.mark.parametrize("field", list(FIELDS))
def test_convergence_order(solver, order, field):
    """Halving the step divides the global error by about 2**order (steps 8 -> 16 -> 32)."""
    x_0, y, exact = problem()
    f = FIELDS[field](y)
    errs = [error(solver, f, x_0, exact, n) for n in (8, 16, 32)]
    rates = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(order - 0.3 <= r <= order + 0.6 for r in rates), f"{solver}: rates {rates}"


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("steps", [1, 2, 5])
def test_end_points_stay_on_the_orthant(solver, dtype, steps):
    """A field that overshoots a vertex (speed 4 d) would leave the orthant without projection."""
    x_0, _, _ = problem(dtype)
    vertex = torch.nn.functional.one_hot(torch.tensor([[0, 1], [2, 3], [3, 3]]), 4).to(dtype)

    def field(x, t):
        return 4 * ref.log(x, vertex)

    x_1 = integrate(field, x_0, geometry=PositiveSphere(), steps=steps, solver=solver)
    assert x_1.shape == x_0.shape and x_1.dtype == dtype
    assert torch.isfinite(x_1).all() and (x_1 >= 0).all()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(x_1.norm(dim=-1), torch.ones(3, 2, dtype=dtype), atol=tol, rtol=0)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_component_of_the_field_is_ignored(solver, dtype):
    """Only the tangent part of the field moves the point: adding c(x) x changes nothing."""
    x_0, y, _ = problem(dtype)

    def tangent(x, t):
        return ref.log(x, y)

    def with_normal(x, t):
        return ref.log(x, y) + (3.0 + t.to(x.dtype))[:, None, None] * x

    a = integrate(tangent, x_0, geometry=PositiveSphere(), steps=4, solver=solver)
    b = integrate(with_normal, x_0, geometry=PositiveSphere(), steps=4, solver=solver)
    tol = 1e-5 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(a, b, atol=tol, rtol=0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_zero_field_and_fixed_point(solver):
    x_0, _, _ = problem()
    torch.testing.assert_close(
        integrate(
            lambda x, t: torch.zeros_like(x), x_0, geometry=PositiveSphere(), steps=3, solver=solver
        ),
        x_0,
    )
    # y is a fixed point of v = log_x(y)
    torch.testing.assert_close(
        integrate(autonomous(x_0), x_0, geometry=PositiveSphere(), steps=3, solver=solver), x_0
    )


@pytest.mark.parametrize("steps", [1, 4, 7])
def test_fixed_step_times(steps):
    """Fixed-step solvers evaluate the field at t = i / steps (plus stage offsets), per sample."""
    x_0, y, _ = problem()
    seen: dict[str, list[float]] = {s: [] for s in FIXED}
    for solver in FIXED:

        def field(x, t, solver=solver):
            assert t.shape == (x.shape[0],) and bool((t == t[0]).all())
            seen[solver].append(float(t[0]))
            return ref.log(x, y)

        integrate(field, x_0, geometry=PositiveSphere(), steps=steps, solver=solver)
    h = 1.0 / steps
    grid = [i * h for i in range(steps)]
    assert seen["euler"] == pytest.approx(grid)
    assert seen["midpoint"] == pytest.approx([s for g in grid for s in (g, g + h / 2)])
    assert seen["rk4"] == pytest.approx([s for g in grid for s in (g, g + h / 2, g + h / 2, g + h)])
