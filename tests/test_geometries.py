"""Every geometry behind one interface: path endpoints, the target velocity as the path's
derivative, points in the domain at one-hot ends, the OT cost against a direct loop, the
e-geodesic identity, a joint distribution no per-position product can give, and the run
folder round trip (fit, sample, export) with ``flow.geometry``."""

from __future__ import annotations

import pytest
import torch

from seqflow import api
from seqflow.checkpoint import load_model
from seqflow.config import ModelConfig, TrainConfig
from seqflow.export import load_scripted
from seqflow.flow import FlowMatching, make_coupling
from seqflow.geometry import (
    GEOMETRIES,
    DirichletPath,
    EGeodesic,
    LinearSimplex,
    make_geometry,
    sum_zero,
)
from seqflow.geometry.dirichlet import (
    _read_table,
    coefficient_table,
    flow_coefficient,
    gamma_at_least_one,
)
from seqflow.models import build_model
from seqflow.sampling import generate
from seqflow.training import SequenceTask, Trainer, TrainingSet

B, L, K = 5, 3, 4


def points(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prior points, data tokens and data points in float64."""
    m = make_geometry(name)
    g = torch.Generator().manual_seed(seed)
    x_0 = m.sample_prior((B, L, K), generator=g, dtype=torch.float64)
    tokens = torch.randint(0, K, (B, L), generator=g)
    return x_0, tokens, m.embed(tokens, K, torch.float64)


def in_domain(name: str, x: torch.Tensor) -> bool:
    if not torch.isfinite(x).all():
        return False
    if name == "fisher":
        return bool((x >= 0).all() and torch.allclose(x.norm(dim=-1), torch.ones(()).double()))
    if name in ("simplex", "dirichlet"):
        return bool((x >= 0).all() and torch.allclose(x.sum(-1), torch.ones(()).double()))
    return bool(torch.allclose(x.sum(-1), torch.zeros(()).double(), atol=1e-9))  # T_0


@pytest.mark.parametrize("name", GEOMETRIES)
def test_path_endpoints_and_domain(name):
    m = make_geometry(name)
    x_0, _, x_1 = points(name)
    assert in_domain(name, x_0) and in_domain(name, x_1)
    zero, one = torch.zeros(B).double(), torch.ones(B).double()
    if name == "dirichlet":  # a path of distributions: its mean runs from uniform towards x_1
        torch.testing.assert_close(m.interpolate(x_0, x_1, zero).x_t, torch.full_like(x_0, 1 / K))
        tau = m.tau_max
        torch.testing.assert_close(m.interpolate(x_0, x_1, one).x_t, (1 + tau * x_1) / (K + tau))
    else:
        torch.testing.assert_close(m.interpolate(x_0, x_1, zero).x_t, x_0)
        torch.testing.assert_close(m.interpolate(x_0, x_1, one).x_t, x_1)
    for t in (0.0, 1e-9, 0.3, 0.999999, 1.0):
        x_t = m.interpolate(x_0, x_1, torch.full((B,), t).double()).x_t
        assert in_domain(name, x_t), (name, t)
    p = m.to_simplex(x_1)
    assert torch.allclose(p.sum(-1), torch.ones(()).double())


@pytest.mark.parametrize("name", GEOMETRIES)
@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_target_velocity_is_the_paths_derivative(name, t):
    m = make_geometry(name)
    x_0, _, x_1 = points(name, seed=1)
    h = 1e-6
    at = lambda s: m.interpolate(x_0, x_1, torch.full((B,), s, dtype=torch.float64)).x_t  # noqa: E731
    finite = (at(t + h) - at(t - h)) / (2 * h)
    torch.testing.assert_close(
        m.interpolate(x_0, x_1, torch.full((B,), t, dtype=torch.float64)).u_t,
        finite,
        atol=1e-6,
        rtol=1e-6,
    )


@pytest.mark.parametrize("name", GEOMETRIES)
def test_cost_equals_a_direct_loop(name):
    m = make_geometry(name)
    x_0, tokens, x_1 = points(name, seed=2)
    cost = m.cost_onehot(x_0, tokens)
    naive = torch.zeros(B, B, dtype=torch.float64)
    for i in range(B):
        for j in range(B):
            for pos in range(L):
                if name == "fisher":
                    inner = (x_0[i, pos] * x_1[j, pos]).sum().clamp(-1, 1)
                    naive[i, j] += torch.acos(inner) ** 2
                else:
                    naive[i, j] += ((x_0[i, pos] - x_1[j, pos]) ** 2).sum()
    torch.testing.assert_close(cost, naive)


def test_egeodesic_is_the_normalised_geometric_mean():
    m = EGeodesic(smoothing=0.2)
    g = torch.Generator().manual_seed(3)
    p_0 = torch.softmax(torch.randn(B, L, K, generator=g, dtype=torch.float64), -1)
    p_1 = torch.softmax(3 * torch.randn(B, L, K, generator=g, dtype=torch.float64), -1)
    v_0, v_1 = sum_zero(p_0.log()), sum_zero(p_1.log())  # the lift to T_0
    for t in (0.0, 0.25, 0.7, 1.0):
        got = m.to_simplex(m.interpolate(v_0, v_1, torch.full((B,), t).double()).x_t)
        geo = p_0 ** (1 - t) * p_1**t
        torch.testing.assert_close(got, geo / geo.sum(-1, keepdim=True))
    # a smoothed vertex: (1 - eps) e_k + eps / K, lifted to a (e_k - 1/K)
    tokens = torch.tensor([[2, 0, 1]])
    p = m.to_simplex(m.embed(tokens, K, torch.float64))
    expect = 0.8 * torch.nn.functional.one_hot(tokens, K).double() + 0.2 / K
    torch.testing.assert_close(p, expect)


def test_priors():
    g = torch.Generator().manual_seed(4)
    p = LinearSimplex.sample_prior((20000, 1, K), generator=g, dtype=torch.float64)
    # Dirichlet(1): mean 1/K, variance (K - 1) / (K^2 (K + 1))
    torch.testing.assert_close(p.mean(0).squeeze(), torch.full((K,), 1 / K).double(), atol=5e-3,
                               rtol=0)  # fmt: skip
    var = (K - 1) / (K**2 * (K + 1))
    assert abs(float(p.var(0).mean()) - var) < 3e-3
    v = EGeodesic().sample_prior((7, L, K), generator=g)
    torch.testing.assert_close(v, sum_zero(v))


def test_dirichlet_coefficient_matches_an_independent_computation():
    """C(x, tau) = -dI_x(a, b)/da B(a, b) / ((1 - x)^b x^tau), a = tau + 1, b = K - 1, with
    the derivative taken by mpmath at 400 digits (K = 160 cancels far beyond float64)."""
    mpmath = pytest.importorskip("mpmath")

    def exact(x: float, tau: float, k: int) -> float:
        with mpmath.workdps(400):
            a, b, xm = mpmath.mpf(tau) + 1, k - 1, mpmath.mpf(x)
            d_inc = mpmath.diff(lambda s: mpmath.betainc(s, b, 0, xm, regularized=True), a)
            return float(-d_inc * mpmath.beta(a, b) / ((1 - xm) ** b * xm ** mpmath.mpf(tau)))

    xs = [0.002, 0.05, 0.2, 0.45, 0.55, 0.8]
    for k in (2, 4, 21, 160):
        for tau in (0.0, 0.7, 7.5):
            x = torch.zeros(len(xs), k, dtype=torch.float64)
            x[:, 0] = torch.tensor(xs, dtype=torch.float64)
            got = flow_coefficient(x, torch.tensor(tau, dtype=torch.float64))[:, 0]
            want = torch.tensor([exact(v, tau, k) for v in xs], dtype=torch.float64)
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-12, msg=f"K={k} tau={tau}")


def test_tabulated_dirichlet_coefficient_matches_the_series():
    """The sampler's table (linear in logit(x)) against the series on every entry, over the
    whole clamp range, for mixed times (one table row each) and for K up to 160."""
    g = torch.Generator().manual_seed(5)
    for k in (2, 21, 160):
        x = torch.rand(48, 3, k, generator=g, dtype=torch.float64) ** 6
        x[0, 0, :2] = torch.tensor([1e-12, 1.0 - 1e-12], dtype=torch.float64)  # past the clamp
        x[1, 0, :2] = torch.tensor([0.5, 1.0 - 1e-7], dtype=torch.float64)
        tau = torch.rand(48, 1, 1, generator=g, dtype=torch.float64) * 8.0
        tau[24:] = 2.5  # many rows share a time
        want = flow_coefficient(x, tau)
        times, row = torch.unique(tau.reshape(-1), return_inverse=True)
        got = _read_table(x, coefficient_table(k, times), row)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-12, msg=f"K={k}")


def test_dirichlet_velocity_of_a_large_batch_equals_the_series_velocity():
    """A batch large enough for the sampler to read the coefficient off a table gives the
    velocity of the series formula (components cancel in ``pc - x sum(pc)``, so the tolerance
    has an absolute part: 1e-7 against velocities of order 0.1)."""
    m = DirichletPath(tau_max=8.0)
    g = torch.Generator().manual_seed(6)
    x = torch.distributions.Dirichlet(torch.ones(40, dtype=torch.float64)).sample((64, 4))
    logits = torch.randn(64, 4, 40, generator=g, dtype=torch.float64) * 3
    for t in (0.05, 0.6):
        tt = torch.full((64,), t, dtype=torch.float64)
        pc = torch.softmax(logits, -1) * flow_coefficient(x, tt.reshape(-1, 1, 1) * 8.0)
        want = 8.0 * (pc - x * pc.sum(-1, keepdim=True))
        got = m.velocity(x, tt, logits)
        assert float(want.abs().amax()) > 0.05
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)


def test_dirichlet_velocity_for_two_letters_in_closed_form():
    """K = 2: Dir(1 + tau, 1) has CDF x^(1 + tau), so the quantile flow is dx/dtau =
    -x log x / (1 + tau); a denoiser sure of letter 0 must give exactly that (times tau_max)."""
    m = DirichletPath(tau_max=5.0)
    x0 = torch.tensor([0.1, 0.4, 0.75, 0.9], dtype=torch.float64)
    x = torch.stack([x0, 1 - x0], -1)[:, None, :]  # (4, 1, 2)
    logits = torch.tensor([60.0, -60.0]).double().expand(4, 1, 2)
    for t in (0.0, 0.3, 0.9):
        tau = 5.0 * t
        v = m.velocity(x, torch.full((4,), t, dtype=torch.float64), logits)[:, 0, 0]
        torch.testing.assert_close(v, 5.0 * (-x0 * x0.log() / (1 + tau)))


def test_dirichlet_path_draws_have_the_dirichlet_moments():
    g = torch.Generator().manual_seed(0)
    for alpha in (1.0, 3.0, 9.5):
        draws = gamma_at_least_one(torch.full((40000,), alpha, dtype=torch.float64), g)
        assert abs(float(draws.mean()) - alpha) < 0.03 * alpha
        assert abs(float(draws.var()) - alpha) < 0.06 * alpha
    again = gamma_at_least_one(torch.full((5,), 2.0), torch.Generator().manual_seed(3))
    assert torch.equal(again, gamma_at_least_one(torch.full((5,), 2.0),
                                                 torch.Generator().manual_seed(3)))  # fmt: skip
    m = DirichletPath(tau_max=6.0)
    x_1 = torch.nn.functional.one_hot(torch.zeros(30000, 1, dtype=torch.long), K).double()
    x = m.sample_path(x_1, torch.full((30000,), 0.5, dtype=torch.float64), g)
    assert in_domain("dirichlet", x)
    tau = 3.0  # Dir(1 + tau, 1, 1, 1): mean (1 + tau) / (K + tau) for the letter
    assert abs(float(x[:, 0, 0].mean()) - (1 + tau) / (K + tau)) < 0.005
    assert abs(float(x[:, 0, 1].mean()) - 1 / (K + tau)) < 0.005


def test_dirichlet_takes_no_ot_coupling():
    from seqflow.config import FlowConfig
    from seqflow.errors import ConfigError

    with pytest.raises(ConfigError, match="independent"):
        FlowConfig(geometry="dirichlet")  # the default coupling is exact
    with pytest.raises(ConfigError, match="nothing to pair"):
        FlowMatching(make_coupling("exact"), K, geometry=DirichletPath())
    assert FlowConfig(geometry="dirichlet", coupling="independent").tau_max == 8.0


@pytest.mark.parametrize("name", GEOMETRIES)
def test_a_joint_distribution_a_product_cannot_give(name):
    """Length 2, 2 letters, P(x_1 = x_2) = 0.9: independent positions would give 0.5 (Boll et
    al. 2024: averaging over the prior makes a factorised flow represent a coupled joint)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 2, (4000,), generator=g)
    b = torch.where(torch.rand(4000, generator=g) < 0.9, a, 1 - a)
    m = make_geometry(name)
    model_cfg = ModelConfig(arch="cnn", hidden=32, depth=2, kernel_size=3, dilations=(1,),
                            time_dim=16)  # fmt: skip
    net = build_model(model_cfg, vocab=2, length=2, tangent=m.tangent)
    steps = 800 if name == "dirichlet" else 300  # a denoiser learns the coupling more slowly
    cfg = TrainConfig(steps=steps, batch_size=128, lr=3e-3, warmup_steps=20, ema_decay=0.99,
                      log_every=steps, eval_every=10**9, checkpoint_every=10**9, seed=0,
                      device="cpu", precision="fp32")  # fmt: skip
    coupling = "independent" if name == "dirichlet" else "exact"
    task = SequenceTask(
        FlowMatching(make_coupling(coupling), 2, geometry=m),
        cfg,
        TrainingSet(tokens=torch.stack([a, b], 1)),
        device=torch.device("cpu"),
    )
    trainer = Trainer(net, task, cfg, cond_dropout=0.0, device=torch.device("cpu"))
    trainer.run()
    trainer.ema.copy_to(trainer.ema_model)
    out = torch.cat(list(generate(trainer.ema_model, n=2000, length=2, vocab=2, steps=20,
                                  geometry=m, seed=1)))  # fmt: skip
    same = float((out[:, 0] == out[:, 1]).float().mean())
    assert same >= 0.85, same


@pytest.mark.parametrize("name", ["fisher", "simplex", "egeodesic", "dirichlet"])
def test_fit_sample_and_export_with_a_geometry(name, tmp_path, tiny_fasta, tiny_fit_kwargs):
    kwargs = dict(tiny_fit_kwargs)
    kwargs["overrides"] = [*kwargs["overrides"], f"flow.geometry={name}"]
    if name != "dirichlet":  # each geometry's velocity here; denoisers: tests/test_denoiser.py
        kwargs["overrides"].append("flow.target=velocity")
    result = api.fit(tiny_fasta, out=tmp_path / "run", **kwargs)
    model, meta = load_model(result.run_dir)
    assert meta.config.flow.geometry == name
    assert model.raw if name == "dirichlet" else model.sum_zero or name == "fisher"
    out = api.sample(result.run_dir, n=20, output=tmp_path / "s.fa", device="cpu",
                     template="ACGT" + "N" * 20)  # fmt: skip
    assert all(len(s) == 24 and s.startswith("ACGT") for s in out.sequences)
    assert set("".join(out.sequences)) <= set("ACGT")
    x = torch.rand(3, 24, 4)
    v = model(x, torch.rand(3))
    if name in ("simplex", "egeodesic"):  # a velocity in the sum-zero tangent space
        torch.testing.assert_close(v.sum(-1), torch.zeros(3, 24), atol=1e-5, rtol=0)
    scripted = api.export(result.run_dir, format="torchscript", output=tmp_path / "m.pt")
    assert scripted.sequences_checked > 0
    loaded = load_scripted(scripted.output)
    for solver, decode in (("euler", "argmax"), ("midpoint", "sample"), ("rk4", "argmax")):
        want = api.sample(result.run_dir, n=7, seed=3, steps=6, solver=solver, decode=decode,
                          batch_size=4, output=tmp_path / "c.fa", device="cpu")  # fmt: skip
        got = loaded.sample_sequences(7, seed=3, steps=6, solver=solver, decode=decode,
                                      batch_size=4)  # fmt: skip
        assert got == list(want.sequences), (solver, decode)
    bundle = api.export(result.run_dir, format="safetensors", output=tmp_path / "m.safetensors")
    again = api.sample(bundle.output, n=20, output=tmp_path / "t.fa", device="cpu",
                       template="ACGT" + "N" * 20)  # fmt: skip
    assert again.sequences == out.sequences


def test_sbcfm_noise_is_the_derivative_of_the_noisy_path():
    """sigma > 0 (egeodesic): x_t = mu_t + sigma sqrt(t(1-t)) eps with u_t its t-derivative
    for the same eps; the mean over eps is the plain path and the noise stays in T_0."""
    m = EGeodesic()
    flow = FlowMatching(make_coupling("independent"), K, geometry=m, sigma=0.7)
    x_0, tokens, x_1 = points("egeodesic", seed=6)

    def at(t: float) -> tuple[torch.Tensor, torch.Tensor]:
        batch = flow.path(x_0, tokens, torch.full((B,), t, dtype=torch.float64),
                          torch.Generator().manual_seed(9))  # fmt: skip
        return batch.x_t, batch.u_t

    h = 1e-6
    for t in (0.2, 0.5, 0.8):
        torch.testing.assert_close(at(t)[1], (at(t + h)[0] - at(t - h)[0]) / (2 * h), atol=1e-5,
                                   rtol=1e-5)  # fmt: skip
        torch.testing.assert_close(at(t)[0].sum(-1), torch.zeros(B, L).double(), atol=1e-9,
                                   rtol=0)  # fmt: skip
    many = FlowMatching(make_coupling("independent"), K, geometry=m, sigma=0.7)
    x0 = x_0[:1].expand(20000, L, K)
    tok = tokens[:1].expand(20000, L)
    batch = many.path(x0, tok, torch.full((20000,), 0.5, dtype=torch.float64),
                      torch.Generator().manual_seed(1))  # fmt: skip
    mu = m.interpolate(x_0[:1], x_1[:1], torch.full((1,), 0.5).double()).x_t[0]
    torch.testing.assert_close(batch.x_t.mean(0), mu, atol=0.02, rtol=0)
    # per-coordinate variance of P_{T_0} eps is 1 - 1/K; times sigma^2 t (1 - t)
    var = float(batch.x_t.var(0).mean())
    assert abs(var - 0.49 * 0.25 * (1 - 1 / K)) < 0.005


def test_sigma_is_only_for_egeodesic():
    from seqflow.config import FlowConfig
    from seqflow.errors import ConfigError

    with pytest.raises(ConfigError, match=r"flow\.sigma"):
        FlowConfig(geometry="fisher", sigma=0.5)
    with pytest.raises(ConfigError, match=r"flow\.sigma"):
        FlowMatching(make_coupling("exact"), K, geometry=LinearSimplex(), sigma=0.1)
    assert FlowConfig(geometry="egeodesic", sigma=0.5).sigma == 0.5
