"""Library mode (Wasserstein flow matching on clouds of sequences): coupling, path, set model,
trainer, sampler, and learning single-motif libraries."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import ot
import pytest
import torch

import sphere_reference as ref
from seqflow.checkpoint import load_state, save_state
from seqflow.config import TrainConfig
from seqflow.data.motifs import motif_purity, read_jaspar, synthetic_libraries
from seqflow.errors import ConfigError, InvalidInputError
from seqflow.flow import FlowMatching, LibraryCoupling, make_coupling
from seqflow.geometry import PositiveSphere
from seqflow.models import Condition, SetVelocityField
from seqflow.sampling import generate
from seqflow.training import LibrarySet, LibraryTask, Trainer

JASPAR = Path(__file__).parent / "data" / "jaspar_motifs.jaspar"
SPHERE = PositiveSphere()
CPU = torch.device("cpu")


def library_flow(inner: str = "exact", outer: str = "none") -> LibraryCoupling:
    return LibraryCoupling(FlowMatching(make_coupling(inner), 4), outer)


def pairing(paired: torch.Tensor, x_0: torch.Tensor) -> torch.Tensor:
    """``perm`` with ``paired[j] == x_0[perm[j]]`` (every row of ``paired`` is one of ``x_0``)."""
    match = (paired.flatten(1)[:, None, :] == x_0.flatten(1)[None, :, :]).all(-1)
    assert torch.equal(match.sum(1), torch.ones(len(paired), dtype=torch.long))
    return match.long().argmax(1)


def tiny_model(length: int, num_labels: int = 0, arch: str = "cnn") -> SetVelocityField:
    return SetVelocityField(
        4, max_length=length, hidden=16, heads=2, point_layers=1, set_layers=1, depth=2,
        kernel_size=3, dilations=(1, 2), num_labels=num_labels, arch=arch,
    )  # fmt: skip


# --- inner coupling ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 5, 16])
@pytest.mark.parametrize("seed", [0, 1])
def test_inner_coupling_is_the_emd_plan(size, seed):
    g = torch.Generator().manual_seed(seed)
    x_0 = SPHERE.sample_prior((size, 7, 4), generator=g, dtype=torch.float64)
    tokens = torch.randint(4, (size, 7), generator=g)
    paired = library_flow().couple(tokens[None], generator=g, x_0=x_0[None])[0]
    perm = pairing(paired, x_0)
    assert sorted(perm.tolist()) == list(range(size))
    cost = SPHERE.cost_onehot(x_0, tokens).numpy()
    w = np.full(size, 1.0 / size)
    emd = ot.emd(w, w, cost)
    plan = np.zeros((size, size))
    plan[perm.numpy(), np.arange(size)] = 1.0 / size
    assert np.allclose(plan, emd)  # costs of random points are distinct: a unique optimum
    assert float((plan * cost).sum()) == pytest.approx(float((emd * cost).sum()), rel=1e-12)


def test_the_cost_is_the_squared_fisher_rao_distance_summed_over_positions():
    g = torch.Generator().manual_seed(3)
    x_0 = SPHERE.sample_prior((4, 5, 4), generator=g, dtype=torch.float64)
    tokens = torch.randint(4, (4, 5), generator=g)
    cost = SPHERE.cost_onehot(x_0, tokens)
    x_1 = SPHERE.embed(tokens, 4, torch.float64)
    for i in range(4):
        for j in range(4):
            naive = sum(ref.dist(x_0[i, ll], x_1[j, ll]) ** 2 for ll in range(5))
            assert cost[i, j].item() == pytest.approx(float(naive), rel=1e-10)


def test_sinkhorn_inner_coupling_is_a_seeded_permutation():
    g = torch.Generator().manual_seed(0)
    x_0 = SPHERE.sample_prior((32, 6, 4), generator=g)
    tokens = torch.randint(4, (32, 6), generator=g)
    flow = library_flow("sinkhorn")
    a, b = (
        pairing(flow.couple(tokens[None], generator=torch.Generator().manual_seed(1),
                            x_0=x_0[None])[0], x_0)
        for _ in range(2)
    )  # fmt: skip
    assert sorted(a.tolist()) == list(range(32))
    assert torch.equal(a, b)


def test_couple_pairs_every_library_optimally():
    flow = library_flow(outer="exact")
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(4, (3, 8, 6), generator=g)
    x_0 = flow.flow.prior((3, 8, 6), generator=g, device=CPU)
    paired = flow.couple(tokens, generator=g, x_0=x_0)
    assert paired.shape == x_0.shape
    # every prior point is used exactly once, and each cloud is optimally assigned
    assert torch.equal(paired.flatten(0, 1).sort(dim=0).values,
                       x_0.flatten(0, 1).sort(dim=0).values)  # fmt: skip
    for b in range(3):
        again = library_flow().couple(tokens[b][None], generator=g, x_0=paired[b][None])[0]
        assert torch.equal(again, paired[b])  # already optimal: the assignment keeps it


def test_library_coupling_refuses_bad_options():
    with pytest.raises(ConfigError):
        library_flow(inner="nearest")
    with pytest.raises(ConfigError):
        library_flow(outer="sinkhorn")
    from seqflow.geometry import DirichletPath

    dirichlet = FlowMatching(make_coupling("independent"), 4, geometry=DirichletPath())
    with pytest.raises(ConfigError, match="library mode needs prior points"):
        LibraryCoupling(dirichlet)


# --- path -------------------------------------------------------------------------------------


def test_path_ends_at_the_prior_and_at_the_library():
    coupling = library_flow()
    flow = coupling.flow
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, (2, 5, 6), generator=g)
    x_0 = coupling.couple(tokens, generator=g).double()
    start = flow.path(x_0, tokens, torch.zeros(2, dtype=torch.float64))
    end = flow.path(x_0, tokens, torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(start.x_t, x_0)
    torch.testing.assert_close(end.x_t, SPHERE.embed(tokens, 4, torch.float64))
    assert start.x_t.shape == start.u_t.shape == (2, 5, 6, 4)


def test_velocity_is_the_time_derivative_with_one_time_per_library():
    coupling = library_flow()
    flow = coupling.flow
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(4, (3, 4, 5), generator=g)
    x_0 = coupling.couple(tokens, generator=g).double()
    t = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    h = 1e-6
    fd = (flow.path(x_0, tokens, t + h).x_t - flow.path(x_0, tokens, t - h).x_t) / (2 * h)
    torch.testing.assert_close(flow.path(x_0, tokens, t).u_t, fd, atol=1e-6, rtol=1e-6)
    # every point of a cloud sits at its library's time on its own geodesic
    for b in range(3):
        for s in range(4):
            one = SPHERE.interpolate(x_0[b, s][None], SPHERE.embed(tokens[b, s][None], 4,
                                  torch.float64), t[b : b + 1])  # fmt: skip
            torch.testing.assert_close(flow.path(x_0, tokens, t).x_t[b, s], one.x_t[0])


# --- the set model ----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_model_is_permutation_equivariant_and_tangent(arch):
    torch.manual_seed(0)
    model = tiny_model(6, num_labels=3, arch=arch).double().eval()
    with torch.no_grad():  # zero-initialised output layers would hide the set path
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    g = torch.Generator().manual_seed(0)
    x = SPHERE.sample_prior((2, 7, 6, 4), generator=g, dtype=torch.float64)
    t = torch.tensor([0.3, 0.9], dtype=torch.float64)
    labels = torch.tensor([1, 3])
    perm = torch.randperm(7, generator=g)
    with torch.no_grad():
        v = model(x, t, labels)
        v_perm = model(x[:, perm], t, labels)
    assert v.shape == x.shape
    torch.testing.assert_close(v_perm, v[:, perm], atol=1e-12, rtol=1e-10)
    torch.testing.assert_close((v * x).sum(-1), torch.zeros(2, 7, 6, dtype=torch.float64),
                               atol=1e-12, rtol=0)  # fmt: skip
    # the cloud matters: a point's velocity changes when the other points change
    other = x.clone()
    other[:, 1:] = SPHERE.sample_prior((2, 6, 6, 4), generator=g, dtype=torch.float64)
    with torch.no_grad():
        assert not torch.allclose(model(other, t, labels)[:, 0], v[:, 0])


def test_loss_is_invariant_to_shuffling_the_points():
    torch.manual_seed(0)
    model = tiny_model(6).double().eval()
    coupling = library_flow()
    flow = coupling.flow
    g = torch.Generator().manual_seed(4)
    tokens = torch.randint(4, (2, 8, 6), generator=g)
    x_0 = coupling.couple(tokens, generator=g).double()
    t = torch.tensor([0.25, 0.75], dtype=torch.float64)
    perm = torch.randperm(8, generator=g)
    with torch.no_grad():
        a = flow.path(x_0, tokens, t)
        b = flow.path(x_0[:, perm], tokens[:, perm], t)
        loss_a = flow.loss(model(a.x_t, t), a.u_t)
        loss_b = flow.loss(model(b.x_t, t), b.u_t)
    assert loss_a.item() == pytest.approx(loss_b.item(), rel=1e-10)


# --- trainer and sampler ----------------------------------------------------------------------


def toy_libraries(labelled: bool) -> LibrarySet:
    g = torch.Generator().manual_seed(0)
    libs = [torch.randint(4, (n, 6), generator=g) for n in (8, 12, 10, 9, 16)]
    labels = torch.tensor([0, 1, 0, 1, 1]) if labelled else None
    return LibrarySet(libs, labels, ("a", "b") if labelled else ())


def make_trainer(data: LibrarySet, *, init_seed: int = 0, steps: int = 12, **train_kw) -> Trainer:
    settings = dict(
        steps=steps, batch_size=3, lr=3e-3, warmup_steps=2, ema_decay=0.9, log_every=3,
        checkpoint_every=6, seed=3, device="cpu",
    )  # fmt: skip
    cfg = TrainConfig(**{**settings, **train_kw})
    torch.manual_seed(init_seed)
    model = tiny_model(6, num_labels=len(data.label_names))
    task = LibraryTask(library_flow(outer="exact"), cfg, data, size=8)
    return Trainer(model, task, cfg, cond_dropout=0.5, device=CPU)


class _Interrupt(Exception):
    pass


def test_trainer_resumes_bit_exactly(tmp_path):
    data = toy_libraries(labelled=True)
    reference = make_trainer(data)
    reports = []
    last = reference.run(on_progress=reports.append)
    assert [r.step for r in reports] == [3, 6, 9, 12]
    assert all(r.loss is not None and math.isfinite(r.loss) for r in reports)

    path = tmp_path / "state.safetensors"

    def save_and_stop(tr: Trainer) -> None:
        save_state(path, tr.state_dict())
        raise _Interrupt

    interrupted = make_trainer(data)
    with pytest.raises(_Interrupt):
        interrupted.run(on_checkpoint=save_and_stop)
    assert interrupted.step == 6

    resumed = make_trainer(data, init_seed=99)
    resumed.load_state_dict(load_state(path))
    resumed_reports = []
    resumed_last = resumed.run(on_progress=resumed_reports.append)
    for name, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
    for name, value in reference.ema.state_dict().items():
        assert torch.equal(value, resumed.ema.state_dict()[name]), f"ema {name}"
    assert resumed_last.loss == last.loss
    assert [r.loss for r in resumed_reports] == [r.loss for r in reports[2:]]


def test_trainer_is_deterministic():
    data = toy_libraries(labelled=False)
    a, b = make_trainer(data, steps=4), make_trainer(data, steps=4)
    assert a.run().loss == b.run().loss
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name]), name


def test_trainer_refuses_libraries_smaller_than_the_set():
    data = LibrarySet([torch.zeros(4, 6, dtype=torch.long)])
    with pytest.raises(InvalidInputError):
        make_trainer(data)


def test_a_library_state_of_the_old_library_trainer_resumes():
    """A state written by the library trainer before the one loop (its draws' generator as
    ``data_generator`` at the top level, ``skipped`` a number, no ``batches``/``bad_run``)
    continues exactly as the same state in today's form."""
    data = toy_libraries(labelled=True)
    trainer = make_trainer(data, steps=3)
    trainer.run()
    state = copy.deepcopy(trainer.state_dict())  # loaded optimiser moments share memory
    old = {k: v for k, v in state.items() if k not in ("batches", "bad_run", "skipped")}
    old.update(data_generator=state["batches"]["generator"], skipped=0)
    a, b = make_trainer(data, init_seed=5), make_trainer(data, init_seed=6)
    a.load_state_dict(state)
    b.load_state_dict(copy.deepcopy(old))
    assert a.run().loss == b.run().loss
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name]), name


def test_max_bad_steps_stops_a_diverging_library_run(monkeypatch):
    """From step 4 on every loss is NaN: the steps are skipped (weights of step 3 kept) and
    the run stops at the first report with ``max_bad_steps`` bad steps in a row."""
    from seqflow.training import TrainingDivergedError

    real, calls = FlowMatching.loss, [0]

    def nan_from_step_4(self, v, u_t):
        calls[0] += 1
        loss = real(self, v, u_t)
        return loss * float("nan") if calls[0] >= 4 else loss

    monkeypatch.setattr(FlowMatching, "loss", nan_from_step_4)
    trainer = make_trainer(toy_libraries(labelled=True), steps=30, max_bad_steps=4)
    saved = []
    with pytest.raises(TrainingDivergedError, match="6 steps in a row up to step 9"):
        trainer.run(on_checkpoint=lambda tr: saved.append(
            {k: v.clone() for k, v in tr.model.state_dict().items()}
        ))  # fmt: skip
    assert trainer.step == 9 and int(trainer.skipped) == 6
    assert len(saved) == 1  # step 6 (its weights are those of step 3)
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, saved[0][name]), name


def test_a_library_step_reads_nothing_back_from_the_device(monkeypatch):
    """No ``bool``/``float``/``int``/``item`` of a tensor during a training step (each is a
    host sync on a GPU): the skip of a bad step and the loss stay on the device."""
    trainer = make_trainer(toy_libraries(labelled=True), steps=4)
    trainer.train_step()  # the first step builds the optimiser state

    def sync(self, *args):
        raise AssertionError("host sync")

    for name in ("__bool__", "__float__", "__int__", "item"):
        monkeypatch.setattr(torch.Tensor, name, sync)
    losses = [trainer.train_step() for _ in range(3)]
    monkeypatch.undo()
    assert all(math.isfinite(float(x)) for x in losses)


BF16_TOLERANCE = 0.01
"""Relative difference allowed between the bf16-autocast and fp32 losses of the first six
steps (bf16 keeps 8 bits of mantissa; measured on this toy: at most 8.4e-4)."""


def test_library_mode_trains_under_cpu_bf16_autocast():
    """``train.precision: bf16`` autocasts on a CPU too: the losses of the first steps are
    finite and within ``BF16_TOLERANCE`` of fp32's, and the weights stay fp32."""
    data = toy_libraries(labelled=True)
    losses = {}
    for precision in ("fp32", "bf16"):
        trainer = make_trainer(data, steps=6, log_every=1, precision=precision)
        losses[precision] = [p.loss for p in _reports(trainer)]
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert all(x is not None and math.isfinite(x) for x in losses["bf16"])
    assert losses["bf16"] != losses["fp32"]  # autocast really ran
    for low, full in zip(losses["bf16"], losses["fp32"], strict=True):
        assert low == pytest.approx(full, rel=BF16_TOLERANCE)


def _reports(trainer: Trainer) -> list:
    reports: list = []
    trainer.run(on_progress=reports.append)
    return reports


@pytest.mark.parametrize("guidance", [0.0, 1.0, 2.0])
def test_generate_libraries_is_seeded_and_shaped(guidance):
    torch.manual_seed(0)
    model = tiny_model(6, num_labels=2)
    kw = dict(n=3, size=5, length=6, vocab=4, cond=Condition(labels=torch.tensor([1])),
              guidance=guidance, steps=4, batch_size=2)  # fmt: skip
    a = torch.cat(list(generate(model, geometry=PositiveSphere(), seed=7, **kw)))
    b = torch.cat(list(generate(model, geometry=PositiveSphere(), seed=7, **kw)))
    assert a.shape == (3, 5, 6) and a.dtype == torch.long
    assert torch.equal(a, b)
    assert int(a.min()) >= 0 and int(a.max()) < 4


def test_the_solvers_integrate_whole_clouds():
    """``integrate`` takes clouds (batch, size, length, vocab) as they are: rk4 on the exact
    field of a known geodesic lands on its end point."""
    from fields import integrate

    g = torch.Generator().manual_seed(0)
    x_0 = SPHERE.sample_prior((2, 3, 4, 4), generator=g, dtype=torch.float64)
    x_1 = SPHERE.sample_prior((2, 3, 4, 4), generator=g, dtype=torch.float64)
    log = ref.log(x_0, x_1)  # constant-speed geodesic: v(x_t, t) = transported log

    def field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert t.shape == (2,)
        return ref.log(x, x_1) / (1 - t).clamp_min(1e-9)[:, None, None, None]

    assert log.shape == x_0.shape
    end = integrate(field, x_0, geometry=PositiveSphere(), steps=50, solver="euler")
    torch.testing.assert_close(end, x_1, atol=1e-6, rtol=0)


# --- learning ---------------------------------------------------------------------------------


def train_motif_libraries(steps: int):
    """Train library mode on 24 single-motif libraries (CTCF, SPI1, HNF4A from JASPAR 2024;
    length 15, 64 sequences each, density 0.9-1) with clouds of S = 16."""
    motifs = read_jaspar(JASPAR)
    chosen = [m for m in motifs if m.name in ("CTCF", "SPI1", "HNF4A")]
    g = torch.Generator().manual_seed(0)
    lib = synthetic_libraries(chosen, n_libraries=24, size=64, length=15,
                              density=(0.9, 1.0), generator=g)  # fmt: skip
    torch.manual_seed(0)
    model = SetVelocityField(4, max_length=15, hidden=32, heads=4, depth=2)
    cfg = TrainConfig(
        steps=steps, batch_size=8, lr=3e-3, warmup_steps=20, ema_decay=0.99, log_every=100,
        checkpoint_every=10**6, seed=0, device="cpu",
    )  # fmt: skip
    task = LibraryTask(library_flow(), cfg, LibrarySet(list(lib.tokens)), size=16)
    trainer = Trainer(model, task, cfg, cond_dropout=0.1, device=CPU)
    trainer.run()
    trainer.ema.copy_to(trainer.ema_model)
    return trainer.ema_model, lib, chosen


def mean_purity(libraries: torch.Tensor, motifs) -> float:
    values = [motif_purity(x, motifs) for x in libraries]
    return sum(v for v in values if not math.isnan(v)) / sum(not math.isnan(v) for v in values)


def shuffled(libraries: torch.Tensor, seed: int) -> torch.Tensor:
    """The same sequences dealt into libraries at random: independent draws of the pooled
    sequences, what a per-sequence model of the mixed data would give."""
    flat = libraries.flatten(0, 1)
    g = torch.Generator().manual_seed(seed)
    return flat[torch.randperm(flat.shape[0], generator=g)].reshape(libraries.shape)


def test_model_learns_to_use_the_cloud_fast():
    """400 steps (~25 s on one core): the loss of true single-motif clouds is already below
    that of the same sequences dealt into mixed clouds, and generated libraries are purer
    than a mixture."""
    model, lib, motifs = train_motif_libraries(400)
    coupling = library_flow()
    flow = coupling.flow
    real = lib.tokens[:, :16]
    losses = []
    with torch.no_grad():
        for tokens in (real, shuffled(real, 1)):
            x_0 = coupling.couple(tokens, generator=torch.Generator().manual_seed(1))
            total = 0.0
            for t in (0.2, 0.4):
                target = flow.path(x_0, tokens, torch.full((24,), t))
                total += float(flow.loss(model(target.x_t, target.t), target.u_t))
            losses.append(total)
    assert losses[0] < 0.97 * losses[1]
    generated = torch.cat(list(generate(
        model, geometry=PositiveSphere(), n=24, size=16, length=15, vocab=4, steps=20
    )))  # fmt: skip
    assert mean_purity(generated, motifs) > mean_purity(shuffled(lib.tokens[:, :16], 2), motifs)


@pytest.mark.slow
def test_generated_libraries_are_each_dominated_by_one_motif():
    """800 steps (~45 s on one core). Measured: generated purity 0.92; the same generated
    sequences dealt into random libraries 0.66; the training data pooled and dealt 0.47 (an
    equal mixture of 3 motifs)."""
    model, lib, motifs = train_motif_libraries(800)
    generated = torch.cat(list(generate(
        model, geometry=PositiveSphere(), n=24, size=16, length=15, vocab=4, steps=20
    )))  # fmt: skip
    purity = mean_purity(generated, motifs)
    mixed_generated = mean_purity(shuffled(generated, 3), motifs)
    mixed_data = mean_purity(shuffled(lib.tokens[:, :16], 2), motifs)
    assert mixed_data < 0.55
    assert purity > 0.85
    assert purity > mixed_generated + 0.15
