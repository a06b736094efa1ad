"""PositiveSphere: charts, projections, exp/log, geodesics, prior law, pairwise OT costs.

Every check compares with a closed form or an independent re-implementation (plain Python
loops, finite differences, scipy's Beta law), on tiny shapes ``(batch, length, vocab)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import sphere_reference as ref
from seqflow.geometry import EPS, PathSample, PositiveSphere

M = PositiveSphere
DTYPES = [torch.float32, torch.float64]
SHAPES = [(1, 1, 2), (3, 2, 4), (2, 5, 20)]
TOL = {torch.float32: 2e-5, torch.float64: 1e-10}
TIMES = [0.0, 0.1, 0.37, 0.5, 0.9, 1.0]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def points(shape, dtype, seed=0) -> torch.Tensor:
    """Uniform points on the positive orthant, shape ``shape``."""
    return M.sample_prior(shape, generator=gen(seed), dtype=dtype)


def one_hot(tokens: torch.Tensor, k: int, dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(tokens.long(), k).to(dtype)


def inner(x, y):
    return (x * y).sum(-1)


def assert_on_orthant(x, tol):
    assert torch.isfinite(x).all()
    assert (x >= 0).all()
    torch.testing.assert_close(x.norm(dim=-1), torch.ones_like(x[..., 0]), atol=tol, rtol=0)


# --- charts and projections -------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_simplex_round_trip(dtype, shape):
    p = torch.distributions.Dirichlet(torch.ones(shape[-1], dtype=dtype)).sample(shape[:-1])
    x = ref.from_simplex(p)
    assert_on_orthant(x, TOL[dtype])
    torch.testing.assert_close(M.to_simplex(x), p, atol=TOL[dtype], rtol=0)
    x_back = points(shape, dtype)
    torch.testing.assert_close(
        ref.from_simplex(M.to_simplex(x_back)), x_back, atol=TOL[dtype], rtol=0
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_to_simplex_renormalises_and_squares(dtype):
    x = torch.tensor([[[3.0, 4.0, 0.0]]], dtype=dtype)
    expected = torch.tensor([[[9.0, 16.0, 0.0]]], dtype=dtype) / 25.0
    torch.testing.assert_close(M.to_simplex(x), expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_proj_tangent_orthogonal_and_idempotent(dtype, shape):
    x = points(shape, dtype)
    v = torch.randn(shape, generator=gen(1), dtype=dtype)
    w = M.proj_tangent(x, v)
    torch.testing.assert_close(inner(w, x), torch.zeros_like(x[..., 0]), atol=TOL[dtype], rtol=0)
    torch.testing.assert_close(M.proj_tangent(x, w), w, atol=TOL[dtype], rtol=0)
    # the removed part is along x: v - w is parallel to x
    torch.testing.assert_close(v - w, inner(v, x)[..., None] * x, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_proj_orthant(dtype, shape):
    v = torch.randn(shape, generator=gen(2), dtype=dtype)
    v[..., 0] = v[..., 0].abs() + 0.1  # at least one positive entry per sphere
    y = M.to_domain(v)
    assert_on_orthant(y, TOL[dtype])
    expected = v.clamp_min(0) / v.clamp_min(0).norm(dim=-1, keepdim=True)
    torch.testing.assert_close(y, expected, atol=TOL[dtype], rtol=0)
    x = points(shape, dtype)
    torch.testing.assert_close(M.to_domain(x), x, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [2, 4, 20])
def test_proj_orthant_without_positive_entry_is_uniform(dtype, k):
    v = torch.stack([-torch.rand(k, generator=gen(3), dtype=dtype), torch.zeros(k, dtype=dtype)])
    y = M.to_domain(v[:, None, :])
    torch.testing.assert_close(y, torch.full_like(y, k**-0.5))


# --- exp and log ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_exp_log_round_trip_and_norm(dtype, shape):
    x, y = points(shape, dtype, 0), points(shape, dtype, 1)
    v = ref.log(x, y)
    torch.testing.assert_close(inner(v, x), torch.zeros_like(x[..., 0]), atol=TOL[dtype], rtol=0)
    torch.testing.assert_close(M.exp(x, v), y, atol=10 * TOL[dtype], rtol=0)
    torch.testing.assert_close(v.norm(dim=-1), ref.dist(x, y), atol=TOL[dtype], rtol=0)
    torch.testing.assert_close(ref.log(x, x), torch.zeros_like(x), atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_closed_form_on_a_circle(dtype):
    """On S^1: exp_(1,0)(a (0,1)) = (cos a, sin a)."""
    a = torch.tensor([0.0, 1e-9, 0.3, 1.2], dtype=dtype)
    x = torch.tensor([1.0, 0.0], dtype=dtype).expand(4, 2)[:, None, :]
    v = torch.stack([torch.zeros_like(a), a], dim=-1)[:, None, :]
    expected = torch.stack([a.cos(), a.sin()], dim=-1)[:, None, :]
    torch.testing.assert_close(M.exp(x, v), expected, atol=TOL[dtype], rtol=0)
    torch.testing.assert_close(
        ref.dist(x, expected), a[:, None], atol=1e-3 if dtype == torch.float32 else 1e-7, rtol=0
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_dist_closed_forms(dtype):
    k = 5
    e = torch.eye(k, dtype=dtype)[:, None, :]
    u = torch.full((k, 1, k), k**-0.5, dtype=dtype)
    # two distinct vertices are pi/2 apart; a vertex and the centre acos(1/sqrt(K)) apart
    torch.testing.assert_close(
        ref.dist(e, e.roll(1, 0)), torch.full((k, 1), math.pi / 2, dtype=dtype)
    )
    torch.testing.assert_close(ref.dist(e, u), torch.full((k, 1), math.acos(k**-0.5), dtype=dtype))


# --- geodesic path ------------------------------------------------------------------------------
def geodesic_at(x_0, x_1, t: float) -> PathSample:
    return M.interpolate(x_0, x_1, torch.full((x_0.shape[0],), t, dtype=x_0.dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_geodesic_endpoints(dtype, shape):
    x_0, x_1 = points(shape, dtype, 0), points(shape, dtype, 1)
    torch.testing.assert_close(geodesic_at(x_0, x_1, 0.0).x_t, x_0, atol=TOL[dtype], rtol=0)
    torch.testing.assert_close(geodesic_at(x_0, x_1, 1.0).x_t, x_1, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("t", TIMES)
def test_geodesic_invariants(dtype, shape, t):
    """Unit norm, orthant, tangency, constant speed, distances split as t : 1-t, exp/log form."""
    x_0, x_1 = points(shape, dtype, 0), points(shape, dtype, 1)
    tol = TOL[dtype]
    path = geodesic_at(x_0, x_1, t)
    d = ref.dist(x_0, x_1)
    assert_on_orthant(path.x_t, tol)
    torch.testing.assert_close(inner(path.u_t, path.x_t), torch.zeros_like(d), atol=tol, rtol=0)
    torch.testing.assert_close(path.u_t.norm(dim=-1), d, atol=tol, rtol=0)
    # x_t = exp_{x_0}(t log_{x_0} x_1)
    torch.testing.assert_close(path.x_t, M.exp(x_0, t * ref.log(x_0, x_1)), atol=10 * tol, rtol=0)
    # arc length splits as t d and (1 - t) d (acos is imprecise near 0 in float32)
    atol = 1e-3 if dtype == torch.float32 else 1e-7
    torch.testing.assert_close(ref.dist(x_0, path.x_t), t * d, atol=atol, rtol=0)
    torch.testing.assert_close(ref.dist(path.x_t, x_1), (1 - t) * d, atol=atol, rtol=0)
    # remaining displacement: log_{x_t}(x_1) = (1 - t) u_t
    torch.testing.assert_close(ref.log(path.x_t, x_1), (1 - t) * path.u_t, atol=atol, rtol=0)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("t", [0.05, 0.3, 0.5, 0.8, 0.95])
def test_geodesic_velocity_is_central_difference(shape, t):
    dtype, h = torch.float64, 1e-5
    x_0, x_1 = points(shape, dtype, 0), points(shape, dtype, 1)
    fd = (geodesic_at(x_0, x_1, t + h).x_t - geodesic_at(x_0, x_1, t - h).x_t) / (2 * h)
    torch.testing.assert_close(geodesic_at(x_0, x_1, t).u_t, fd, atol=1e-8, rtol=0)


def test_geodesic_per_sample_times():
    """t has shape (batch,); sample b of the batch uses t[b] for all its positions."""
    x_0, x_1 = points((3, 2, 4), torch.float64, 0), points((3, 2, 4), torch.float64, 1)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    path = M.interpolate(x_0, x_1, t)
    for b in range(3):
        one = geodesic_at(x_0[b : b + 1], x_1[b : b + 1], float(t[b]))
        torch.testing.assert_close(path.x_t[b], one.x_t[0])
        torch.testing.assert_close(path.u_t[b], one.u_t[0])


@pytest.mark.parametrize("shape", [(2, 1, 3), (1, 3, 4)])
def test_geodesic_gradcheck_generic_points(shape):
    x_0 = points(shape, torch.float64, 0).requires_grad_()
    x_1 = points(shape, torch.float64, 1).requires_grad_()
    t = torch.full((shape[0],), 0.3, dtype=torch.float64, requires_grad=True)

    def f(a, b, s):
        p = M.interpolate(a, b, s)
        return p.x_t, p.u_t

    assert torch.autograd.gradcheck(f, (x_0, x_1, t))


# --- stability at the boundary -----------------------------------------------------------------
def boundary_pairs(dtype):
    """Pairs (x_0, x_1) of shape (4, 2, 4) at one-hot points, equal points, near-one-hot."""
    k = 4
    tok = torch.tensor([[0, 1], [2, 3], [1, 1], [3, 0]])
    vertex = one_hot(tok, k, dtype)
    other = one_hot((tok + 1) % k, k, dtype)
    generic = points((4, 2, k), dtype, 5)
    p_near = torch.full((4, 2, k), 1e-12, dtype=torch.float64)
    p_near = torch.where(vertex.bool(), 1 - (k - 1) * 1e-12, p_near)
    near = ref.from_simplex(p_near).to(dtype)
    return {
        "vertex-vertex-same": (vertex, vertex.clone()),
        "vertex-vertex-other": (vertex, other),
        "generic-same": (generic, generic.clone()),
        "generic-vertex": (generic, vertex),
        "vertex-generic": (vertex, generic),
        "near-vertex": (near, vertex),
        "vertex-near": (vertex, near),
        "near-near": (near, near.clone()),
    }


CASES = list(boundary_pairs(torch.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_values_finite_at_boundary(dtype, case):
    x_0, x_1 = boundary_pairs(dtype)[case]
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    # acos cannot resolve angles below acos(1 - ulp): ~3.5e-4 in float32, ~1.5e-8 in float64
    dist_tol = 1e-3 if dtype == torch.float32 else 1e-7
    for t in TIMES:
        path = geodesic_at(x_0, x_1, t)
        assert_on_orthant(path.x_t, tol)
        assert torch.isfinite(path.u_t).all()
        torch.testing.assert_close(path.u_t.norm(dim=-1), ref.dist(x_0, x_1), atol=dist_tol, rtol=0)
        torch.testing.assert_close(
            inner(path.u_t, path.x_t), torch.zeros_like(x_0[..., 0]), atol=tol, rtol=0
        )
    v = ref.log(x_0, x_1)
    assert torch.isfinite(v).all()
    assert torch.isfinite(ref.dist(x_0, x_1)).all()
    y = M.exp(x_0, v)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, x_1, atol=10 * tol, rtol=0)
    torch.testing.assert_close(M.exp(x_0, torch.zeros_like(x_0)), x_0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_near_one_hot_distance(dtype):
    """1e-12 of mass off a vertex: d = acos(sqrt(1 - 3e-12)) ~ sqrt(3e-12), finite and small."""
    near, vertex = boundary_pairs(dtype)["near-vertex"]
    d = ref.dist(near, vertex)
    exact = math.acos(math.sqrt(1 - 3e-12))
    atol = 1e-3 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(d, torch.full_like(d, exact), atol=atol, rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_gradients_finite_at_boundary(dtype, case):
    """Autograd through geodesic (and log, exp) stays finite, also at x_0 == x_1.

    x_t and u_t are smooth functions of (x_0, x_1, t) wherever x_0 is not antipodal to x_1, so
    the gradient exists everywhere on the orthant, including x_0 == x_1.
    """
    a0, a1 = boundary_pairs(dtype)[case]
    x_0, x_1 = a0.clone().requires_grad_(), a1.clone().requires_grad_()
    t = torch.full((x_0.shape[0],), 0.3, dtype=dtype, requires_grad=True)
    path = M.interpolate(x_0, x_1, t)
    (path.x_t.square().sum() + (path.u_t * torch.arange(4, dtype=dtype)).sum()).backward()
    for name, g in (("x_0", x_0.grad), ("x_1", x_1.grad), ("t", t.grad)):
        assert torch.isfinite(g).all(), f"non-finite d/d{name} through geodesic ({case})"
    x_0, x_1 = a0.clone().requires_grad_(), a1.clone().requires_grad_()
    M.exp(x_0, ref.log(x_0, x_1)).sum().backward()
    assert torch.isfinite(x_0.grad).all() and torch.isfinite(x_1.grad).all(), "exp(log) grad"


def test_eps_table_is_dtype_keyed():
    assert EPS[torch.float64] < EPS[torch.float32]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_scriptable_tolerances_equal_the_table_and_finfo(dtype):
    """``_eps`` and ``_tiny`` are written as if-chains for TorchScript; they must agree with
    the ``EPS`` table and ``torch.finfo``."""
    from seqflow.geometry.sphere import _eps, _tiny

    x = torch.zeros(1, dtype=dtype)
    assert _eps(x) == EPS[dtype] and _tiny(x) == torch.finfo(dtype).tiny


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_sampling_methods_compile_with_torchscript_and_agree():
    class Steps(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = M()

        def forward(self, x: torch.Tensor, v: torch.Tensor, seed: int) -> list[torch.Tensor]:
            y = self.m.step(x, v, 0.1)
            g = torch.Generator()
            g.manual_seed(seed)
            p = self.m.interpolate(x, y, torch.full([3], 0.3)).x_t
            return [y, self.m.to_simplex(y), self.m.sample_prior([2, 3, 4], g), p]

    x, v = points((3, 4, 5), torch.float32), torch.randn(3, 4, 5)
    steps = Steps()
    for a, b in zip(torch.jit.script(steps)(x, v, 3), steps(x, v, 3), strict=True):
        assert torch.equal(a, b)


# --- prior -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [2, 4, 20])
def test_sample_prior_law(dtype, k):
    """p = x**2 ~ Dirichlet(1/2): each p_k ~ Beta(1/2, (K-1)/2); mean and variance closed form."""
    n = 20000
    x = M.sample_prior((n, 1, k), generator=gen(7), dtype=dtype)
    assert x.shape == (n, 1, k) and x.dtype == dtype
    assert (x > 0).all()
    assert_on_orthant(x, TOL[dtype] * 5)
    p = x.square().double().reshape(n, k)
    var = (1 / k) * (1 - 1 / k) / (k / 2 + 1)
    torch.testing.assert_close(
        p.mean(0), torch.full((k,), 1 / k).double(), atol=5 * math.sqrt(var / n), rtol=0
    )
    excess_kurtosis = float(stats.beta(0.5, (k - 1) / 2).stats(moments="k"))
    var_sd = var * math.sqrt((excess_kurtosis + 2) / n)  # sd of the sample variance
    torch.testing.assert_close(p.var(0), torch.full((k,), var).double(), atol=5 * var_sd, rtol=0)
    # E[x_k] = E[sqrt(p_k)] = Gamma(K/2) / (Gamma(1/2) Gamma((K+1)/2))
    ex = math.exp(math.lgamma(k / 2) - math.lgamma(0.5) - math.lgamma((k + 1) / 2))
    sd = math.sqrt(1 / k - ex**2)
    torch.testing.assert_close(
        x.double().reshape(n, k).mean(0),
        torch.full((k,), ex).double(),
        atol=5 * sd / math.sqrt(n),
        rtol=0,
    )
    # the whole marginal law (Kolmogorov-Smirnov against Beta(1/2, (K-1)/2))
    assert stats.kstest(p[:, 0].numpy(), stats.beta(0.5, (k - 1) / 2).cdf).pvalue > 1e-3


def test_sample_prior_reproducible():
    a = M.sample_prior((3, 4, 5), generator=gen(11))
    b = M.sample_prior((3, 4, 5), generator=gen(11))
    assert torch.equal(a, b)
    assert not torch.equal(a, M.sample_prior((3, 4, 5), generator=gen(12)))


# --- pairwise costs -----------------------------------------------------------------------------
def naive_cost(x_0: torch.Tensor, x_1: torch.Tensor) -> np.ndarray:
    """C[i, j] = sum_l acos(<x_0[i, l], x_1[j, l]>)**2 with Python loops in float64."""
    a, b = x_0.double().numpy(), x_1.double().numpy()
    c = np.zeros((a.shape[0], b.shape[0]))
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            for pos in range(a.shape[1]):
                ip = min(1.0, max(-1.0, float(sum(a[i, pos] * b[j, pos]))))
                c[i, j] += math.acos(ip) ** 2
    return c


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("b0", "b1", "length", "k"), [(3, 5, 4, 4), (4, 4, 1, 2), (2, 3, 6, 20)])
def test_cost_onehot_equals_naive_loop(dtype, b0, b1, length, k):
    x_0 = points((b0, length, k), dtype, 0)
    tokens = torch.randint(0, k, (b1, length), generator=gen(3))
    x_1 = one_hot(tokens, k, dtype)
    atol = 2e-4 if dtype == torch.float32 else 1e-10
    fast = M.cost_onehot(x_0, tokens)
    assert fast.shape == (b0, b1)
    torch.testing.assert_close(fast, ref.sq_dist_matrix(x_0, x_1), atol=atol, rtol=0)
    i, j = b0 - 1, b1 - 1  # per-pair consistency with the geodesic distance
    torch.testing.assert_close(fast[i, j], ref.dist(x_0[i], x_1[j]).square().sum(), atol=atol,
                               rtol=0)  # fmt: skip
    torch.testing.assert_close(
        fast, torch.from_numpy(naive_cost(x_0, x_1)).to(dtype), atol=atol, rtol=0
    )
    torch.testing.assert_close(M.cost_onehot(x_0, tokens.to(torch.uint8)), fast)


# --- properties -----------------------------------------------------------------------------------
def _sphere_point(draw, k: int) -> torch.Tensor:
    w = draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k).filter(lambda v: sum(v) > 1e-3))
    x = torch.tensor(w, dtype=torch.float64)
    return (x / x.norm())[None, None, :]


@st.composite
def pairs(draw):
    k = draw(st.integers(2, 8))
    return _sphere_point(draw, k), _sphere_point(draw, k)


@settings(max_examples=50, deadline=None)
@given(pairs())
def test_property_exp_log_round_trip(xy):
    x, y = xy
    v = ref.log(x, y)
    assert torch.isfinite(v).all()
    assert abs(float(inner(v, x))) < 1e-9
    torch.testing.assert_close(M.exp(x, v), y, atol=1e-6, rtol=0)
    torch.testing.assert_close(v.norm(dim=-1), ref.dist(x, y), atol=1e-6, rtol=0)
    assert float(ref.dist(x, y)) <= math.pi / 2 + 1e-12  # the orthant has diameter pi / 2


@settings(max_examples=50, deadline=None)
@given(pairs(), st.floats(0.0, 1.0))
def test_property_geodesic(xy, t):
    x_0, x_1 = xy
    path = geodesic_at(x_0, x_1, t)
    d = ref.dist(x_0, x_1)
    assert_on_orthant(path.x_t, 1e-9)
    assert abs(float(inner(path.u_t, path.x_t))) < 1e-9
    torch.testing.assert_close(ref.dist(x_0, path.x_t), t * d, atol=1e-6, rtol=0)
    torch.testing.assert_close(path.x_t, M.exp(x_0, t * ref.log(x_0, x_1)), atol=1e-6, rtol=0)
    torch.testing.assert_close(path.u_t.norm(dim=-1), d, atol=1e-7, rtol=0)
