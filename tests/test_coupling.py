"""Couplings (independent, exact OT, Sinkhorn, grouped) and the Fisher-Flow targets and loss.

References: ``ot.emd`` on the same cost, brute force over all permutations, the naive
Fisher-Rao cost, and closed forms of the geodesic path.
"""

from __future__ import annotations

import itertools

import numpy as np
import ot
import pytest
import torch

import sphere_reference as ref
from seqflow.errors import ConfigError
from seqflow.flow import (
    COUPLINGS,
    ExactOTCoupling,
    FlowBatch,
    FlowMatching,
    IndependentCoupling,
    SinkhornCoupling,
    flow_matching_loss,
    grouped_permutation,
    make_coupling,
)
from seqflow.geometry import PositiveSphere

M = PositiveSphere


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_cost(b: int, seed: int) -> torch.Tensor:
    """A continuous random cost: its optimal assignment is unique with probability one."""
    return torch.from_numpy(np.random.default_rng(seed).random((b, b)))


def fisher_cost(b: int, length: int, k: int, seed: int) -> torch.Tensor:
    """The real Fisher-Rao cost between uniform prior samples and one-hot data."""
    x_0 = M.sample_prior((b, length, k), generator=gen(seed), dtype=torch.float64)
    tokens = torch.randint(0, k, (b, length), generator=gen(seed + 100))
    return M.cost_onehot(x_0, tokens)


def plan_of(perm: torch.Tensor) -> np.ndarray:
    """The transport plan of a pairing: P[perm[j], j] = 1/B."""
    b = perm.numel()
    plan = np.zeros((b, b))
    plan[perm.numpy(), np.arange(b)] = 1.0 / b
    return plan


def pair_cost(cost: torch.Tensor, perm: torch.Tensor) -> float:
    """Mean cost of the pairs (x_0[perm[j]], x_1[j])."""
    return float(cost[perm, torch.arange(perm.numel())].mean())


def assert_permutation(perm: torch.Tensor, b: int) -> None:
    assert perm.shape == (b,) and perm.dtype == torch.int64
    assert torch.equal(perm.sort().values, torch.arange(b))


# --- independent and exact OT --------------------------------------------------------------
@pytest.mark.parametrize("b", [1, 4, 9])
def test_independent_is_identity(b):
    perm = IndependentCoupling().permutation(None, b, gen())
    assert torch.equal(perm, torch.arange(b))
    assert IndependentCoupling.needs_cost is False


@pytest.mark.parametrize("b", [2, 5, 16, 33])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_plan_equals_ot_emd(b, seed):
    cost = random_cost(b, seed)
    perm = ExactOTCoupling().permutation(cost, b, gen())
    assert_permutation(perm, b)
    w = np.full(b, 1.0 / b)
    reference = ot.emd(w, w, cost.numpy())
    np.testing.assert_allclose(plan_of(perm), reference, atol=1e-12)


@pytest.mark.parametrize("b", [3, 8, 20])
@pytest.mark.parametrize("seed", [0, 1])
def test_exact_cost_equals_ot_emd_with_ties(b, seed):
    """Integer costs have many optimal plans; the optimal value is still unique."""
    cost = torch.from_numpy(np.random.default_rng(seed).integers(0, 3, (b, b)).astype(float))
    perm = ExactOTCoupling().permutation(cost, b, gen())
    assert_permutation(perm, b)
    w = np.full(b, 1.0 / b)
    assert pair_cost(cost, perm) == pytest.approx(ot.emd2(w, w, cost.numpy()), abs=1e-12)


@pytest.mark.parametrize("b", [4, 6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_is_brute_force_optimum_on_fisher_cost(b, seed):
    cost = fisher_cost(b, length=3, k=4, seed=seed)
    perm = ExactOTCoupling().permutation(cost, b, gen())
    best = min(pair_cost(cost, torch.tensor(p)) for p in itertools.permutations(range(b)))
    assert pair_cost(cost, perm) == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("b", "length", "k"), [(16, 4, 4), (12, 3, 20)])
def test_exact_lowers_fisher_rao_cost(dtype, b, length, k):
    x_0 = M.sample_prior((b, length, k), generator=gen(4), dtype=dtype)
    tokens = torch.randint(0, k, (b, length), generator=gen(5))
    cost = M.cost_onehot(x_0, tokens)
    perm = ExactOTCoupling().permutation(cost, b, gen())
    assert_permutation(perm, b)
    identity = pair_cost(cost, torch.arange(b))
    assert pair_cost(cost, perm) < identity - 1e-3
    # no single swap of two pairs improves an optimal pairing
    ot_cost = pair_cost(cost, perm)
    for i, j in itertools.combinations(range(b), 2):
        swapped = perm.clone()
        swapped[[i, j]] = perm[[j, i]]
        assert pair_cost(cost, swapped) >= ot_cost - 1e-6


# --- Sinkhorn ---------------------------------------------------------------------------------
@pytest.mark.parametrize("reg", [0.05, 0.1, 10.0])
@pytest.mark.parametrize("b", [1, 7, 24])
def test_sinkhorn_is_a_reproducible_permutation(reg, b):
    cost = fisher_cost(b, 4, 4, seed=1)
    coupling = SinkhornCoupling(reg)
    perm = coupling.permutation(cost, b, gen(3))
    assert_permutation(perm, b)
    assert torch.equal(perm, coupling.permutation(cost, b, gen(3)))


@pytest.mark.parametrize("reg", [0.05, 0.1, 1.0])
def test_sinkhorn_plan_has_uniform_marginals(reg):
    b = 10
    plan = SinkhornCoupling(reg).plan(fisher_cost(b, 4, 4, seed=2))
    np.testing.assert_allclose(plan.sum(0), np.full(b, 1 / b), atol=1e-6)
    np.testing.assert_allclose(plan.sum(1), np.full(b, 1 / b), atol=1e-6)


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")
@pytest.mark.parametrize("reg", [0.002, 0.05, 1.0])
def test_sinkhorn_plan_equals_the_log_domain_solution(reg):
    """The fast plain iterations give POT's log-domain plan; at reg 0.002 they underflow and
    the coupling must fall back to the log domain (and get its plan, finite)."""
    import ot

    b = 32
    cost = fisher_cost(b, 8, 4, seed=5)
    c = cost.double().numpy()
    c = c / c.mean()
    w = np.full(b, 1 / b)
    want = ot.sinkhorn(w, w, c, reg, method="sinkhorn_log", numItermax=1000)
    plan = SinkhornCoupling(reg).plan(cost)
    assert np.isfinite(plan).all()
    np.testing.assert_allclose(plan, want, atol=1e-6 / b)
    if reg >= 0.05:  # at 0.002 neither form converges in 1000 iterations
        np.testing.assert_allclose(plan.sum(0), w, atol=1e-5 / b)


def test_sinkhorn_seed_changes_the_draw_at_large_reg():
    b = 24
    cost = fisher_cost(b, 4, 4, seed=1)
    coupling = SinkhornCoupling(10.0)
    draws = {tuple(coupling.permutation(cost, b, gen(s)).tolist()) for s in range(4)}
    assert len(draws) > 1


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")
def test_sinkhorn_small_reg_approaches_exact():
    """reg = 1e-3 of the mean cost: the mean pair cost closes > 95% of the identity-OT gap."""
    b, gaps = 24, []
    for seed in range(2):
        cost = fisher_cost(b, 6, 4, seed=seed)
        exact = pair_cost(cost, ExactOTCoupling().permutation(cost, b, gen()))
        identity = pair_cost(cost, torch.arange(b))
        for s in range(2):
            sharp = pair_cost(cost, SinkhornCoupling(1e-3).permutation(cost, b, gen(s)))
            blurred = pair_cost(cost, SinkhornCoupling(0.1).permutation(cost, b, gen(s)))
            assert exact - 1e-9 <= sharp
            gaps.append(
                ((sharp - exact) / (identity - exact), (blurred - exact) / (identity - exact))
            )
    sharp_gap, blurred_gap = np.mean(gaps, axis=0)
    assert sharp_gap < 0.05
    assert sharp_gap < blurred_gap


def test_sinkhorn_large_reg_is_near_random():
    """With reg >> 1 the plan is uniform: the mean pair cost is about the mean of C."""
    b = 24
    costs = [fisher_cost(b, 6, 4, seed=s) for s in range(6)]
    blurred = np.mean(
        [pair_cost(c, SinkhornCoupling(1e3).permutation(c, b, gen(s))) for s, c in enumerate(costs)]
    )
    mean_c = np.mean([float(c.mean()) for c in costs])
    exact = np.mean([pair_cost(c, ExactOTCoupling().permutation(c, b, gen())) for c in costs])
    assert abs(blurred - mean_c) < 0.1 * (mean_c - exact)
    plan = SinkhornCoupling(1e3).plan(costs[0])
    np.testing.assert_allclose(plan, np.full((b, b), 1 / b**2), rtol=1e-2)


def test_sinkhorn_rejects_non_positive_reg():
    for reg in (0.0, -1.0, float("nan")):
        with pytest.raises(ConfigError):
            SinkhornCoupling(reg)


# --- groups and factory --------------------------------------------------------------------------
# POT may stop before 1e-9 marginal accuracy at the default reg on tiny groups (marginal error
# below 1e-3); the permutation drawn from the plan is still exact, so the warning is muted here.
@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")
@pytest.mark.parametrize("name", COUPLINGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_permutation_stays_within_groups(name, seed):
    b = 15
    coupling = make_coupling(name)
    groups = torch.randint(0, 3, (b,), generator=gen(seed))
    cost = fisher_cost(b, 3, 4, seed=seed) if coupling.needs_cost else None
    perm = grouped_permutation(coupling, cost, groups, gen(seed))
    assert_permutation(perm, b)
    assert torch.equal(groups[perm], groups)
    if name == "exact":  # optimal within every group
        for g in torch.unique(groups):
            idx = (groups == g).nonzero().squeeze(1)
            sub = cost[idx][:, idx]
            local = ExactOTCoupling().permutation(sub, idx.numel(), gen())
            assert pair_cost(cost[:, idx], perm[idx]) == pytest.approx(
                pair_cost(sub, local), abs=1e-12
            )
    if name == "independent":
        assert torch.equal(perm, torch.arange(b))


def test_grouped_permutation_without_groups_is_the_plain_coupling():
    cost = random_cost(9, 0)
    perm = grouped_permutation(ExactOTCoupling(), cost, None, gen())
    assert torch.equal(perm, ExactOTCoupling().permutation(cost, 9, gen()))
    single = grouped_permutation(ExactOTCoupling(), cost, torch.zeros(9, dtype=torch.long), gen())
    assert torch.equal(single, perm)


def test_make_coupling():
    assert isinstance(make_coupling("independent"), IndependentCoupling)
    assert isinstance(make_coupling("exact"), ExactOTCoupling)
    sinkhorn = make_coupling("sinkhorn", sinkhorn_reg=0.3)
    assert isinstance(sinkhorn, SinkhornCoupling) and sinkhorn.reg == 0.3
    with pytest.raises(ConfigError, match="emd"):
        make_coupling("emd")


# --- flow matching loss and targets --------------------------------------------------------------
def test_flow_matching_loss_closed_form():
    v = torch.zeros(2, 1, 2, dtype=torch.float64, requires_grad=True)
    u = torch.tensor([[[1.0, 2.0]], [[3.0, 0.0]]], dtype=torch.float64)
    loss = flow_matching_loss(v, u)
    assert loss.dtype == torch.float32
    assert float(loss.detach()) == pytest.approx((1 + 4 + 9 + 0) / 2)
    loss.backward()
    torch.testing.assert_close(v.grad, (2 * (v - u) / 2).detach())
    w = torch.randn(3, 4, 5, generator=gen(0))
    u = torch.randn(3, 4, 5, generator=gen(1))
    expected = sum(float(((w[b] - u[b]) ** 2).sum()) for b in range(3)) / 3
    assert float(flow_matching_loss(w, u)) == pytest.approx(expected, rel=1e-6)
    assert float(flow_matching_loss(u, u)) == 0.0


def make_flow(name: str, k: int) -> FlowMatching:
    return FlowMatching(make_coupling(name), vocab=k)


def check_path(x_t, t, u_t, tokens, k, atol):
    """x_t on the orthant, u_t tangent at x_t and pointing at one-hot tokens."""
    b, length = tokens.shape
    ones = torch.ones(b, length, dtype=x_t.dtype)
    assert x_t.shape == u_t.shape == (b, length, k) and t.shape == (b,)
    assert (x_t >= 0).all()
    torch.testing.assert_close(x_t.norm(dim=-1), ones, atol=atol, rtol=0)
    torch.testing.assert_close((x_t * u_t).sum(-1), 0 * ones, atol=atol, rtol=0)
    # log_{x_t}(x_1) = (1 - t) u_t, and |u_t| <= pi / 2 (the diameter of the orthant)
    x_1 = torch.nn.functional.one_hot(tokens, k).to(x_t.dtype)
    torch.testing.assert_close(ref.log(x_t, x_1), (1 - t)[:, None, None] * u_t, atol=2e-3, rtol=0)
    assert (u_t.norm(dim=-1) <= torch.pi / 2 + 1e-5).all()


@pytest.mark.parametrize("name", COUPLINGS)
@pytest.mark.parametrize(("b", "length", "k"), [(6, 5, 4), (4, 3, 20)])
@pytest.mark.parametrize("grouped", [False, True])
def test_fisher_flow_targets_lie_on_the_path(name, b, length, k, grouped):
    tokens = torch.randint(0, k, (b, length), generator=gen(9))
    groups = torch.tensor([0, 1] * (b // 2)) if grouped else None
    flow = make_flow(name, k)

    def targets() -> FlowBatch:
        g = gen(0)
        x_0 = flow.couple(tokens, generator=g, groups=groups)
        return flow.path(x_0, tokens, torch.rand(b, generator=g), g)

    out = targets()
    assert ((out.t >= 0) & (out.t <= 1)).all()
    check_path(out.x_t, out.t, out.u_t, tokens, k, atol=1e-5)
    again = targets()
    assert torch.equal(out.x_t, again.x_t) and torch.equal(out.t, again.t)
    assert torch.equal(out.u_t, again.u_t)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("t", [0.0, 0.25, 0.9, 1.0])
def test_fisher_flow_path_is_the_geodesic(dtype, t):
    b, length, k = 3, 4, 5
    tokens = torch.randint(0, k, (b, length), generator=gen(1))
    x_0 = M.sample_prior((b, length, k), generator=gen(2), dtype=dtype)
    times = torch.full((b,), t, dtype=dtype)
    out = make_flow("independent", k).path(x_0, tokens, times)
    x_1 = torch.nn.functional.one_hot(tokens, k).to(dtype)
    path = M.interpolate(x_0, x_1, times)
    assert torch.equal(out.x_t, path.x_t) and torch.equal(out.u_t, path.u_t)
    assert torch.equal(out.t, times)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    check_path(out.x_t, out.t, out.u_t, tokens, k, atol=tol)
    torch.testing.assert_close(out.u_t.norm(dim=-1), ref.dist(x_0, x_1), atol=tol, rtol=0)
    if t in (0.0, 1.0):
        torch.testing.assert_close(out.x_t, x_0 if t == 0.0 else x_1, atol=tol, rtol=0)


@pytest.mark.filterwarnings("ignore:Sinkhorn did not converge")
@pytest.mark.parametrize("name", COUPLINGS)
@pytest.mark.parametrize("grouped", [False, True])
def test_fisher_flow_couple_permutes_the_prior(name, grouped):
    """couple() returns the prior drawn from the same seed, reordered by the coupling."""
    b, length, k = 8, 5, 4
    tokens = torch.randint(0, k, (b, length), generator=gen(3))
    groups = torch.tensor([0, 1, 1, 2, 0, 2, 1, 0]) if grouped else None
    flow = make_flow(name, k)
    x_0 = flow.couple(tokens, generator=gen(4), groups=groups)
    prior = flow.prior((b, length), generator=gen(4), device=torch.device("cpu"))
    # recover the permutation: x_0[j] == prior[perm[j]]
    match = (x_0[:, None] == prior[None]).flatten(2).all(-1)
    assert torch.equal(match.sum(1), torch.ones(b, dtype=torch.long))
    perm = match.int().argmax(1)
    assert_permutation(perm, b)
    if groups is not None:
        assert torch.equal(groups[perm], groups)
    if name == "independent" and not grouped:
        assert torch.equal(perm, torch.arange(b))
    if name == "exact":
        cost = M.cost_onehot(prior, tokens).double()
        groups_ = groups if groups is not None else torch.zeros(b, dtype=torch.long)
        best = grouped_permutation(ExactOTCoupling(), cost, groups_, gen())
        assert pair_cost(cost, perm) == pytest.approx(pair_cost(cost, best), abs=1e-6)
        if not grouped:
            assert pair_cost(cost, perm) <= pair_cost(cost, torch.arange(b)) + 1e-6


def test_fisher_flow_prior_is_on_the_orthant():
    flow = FlowMatching(IndependentCoupling(), vocab=5)
    x_0 = flow.prior((3, 4), generator=gen(0), device=torch.device("cpu"))
    assert x_0.shape == (3, 4, 5) and (x_0 > 0).all()
    torch.testing.assert_close(x_0.norm(dim=-1), torch.ones(3, 4))
