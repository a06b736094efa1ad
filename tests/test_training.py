"""The training loop: bit-exact resume, deterministic validation, divergence, batch stream,
and learning a known distribution."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch

from seqflow.checkpoint import load_state, save_state
from seqflow.config import ModelConfig, TrainConfig
from seqflow.data import read_sequences
from seqflow.flow import FlowMatching, make_coupling
from seqflow.geometry import PositiveSphere
from seqflow.models import Condition, build_model
from seqflow.sampling import generate
from seqflow.training import (
    SequenceTask,
    Trainer,
    TrainingDivergedError,
    TrainingSet,
    TrainingStopped,
)
from seqflow.training.batches import CoupledBatchStream

CPU = torch.device("cpu")
TINY_MODEL = ModelConfig(
    arch="cnn", hidden=16, depth=2, kernel_size=3, dilations=(1, 2), time_dim=16
)


@pytest.fixture(scope="module")
def labelled(tiny_csv):
    """tiny.csv as (train, valid) with cell-type labels: 56 + 8 sequences of length 24."""
    table = read_sequences(tiny_csv, label_col="cell_type")
    assert table.labels is not None and len(table.label_names) > 1
    train = TrainingSet(tokens=table.tokens[:56], cond=Condition(labels=table.labels[:56]))
    valid = TrainingSet(tokens=table.tokens[56:], cond=Condition(labels=table.labels[56:]))
    return train, valid, len(table.label_names)


def make_trainer(data, *, steps=20, init_seed=0, coupling="exact", **train_kw) -> Trainer:
    train, valid, num_labels = data
    settings = dict(
        steps=steps, batch_size=16, lr=3e-3, warmup_steps=3, ema_decay=0.9, log_every=5,
        eval_every=10, checkpoint_every=10, seed=3, device="cpu",
    )  # fmt: skip
    settings.update(train_kw)
    torch.manual_seed(init_seed)
    model = build_model(TINY_MODEL, vocab=4, length=train.tokens.shape[1], num_labels=num_labels)
    cfg = TrainConfig(**settings)
    task = SequenceTask(FlowMatching(make_coupling(coupling), 4), cfg, train, valid, device=CPU)
    return Trainer(model, task, cfg, cond_dropout=0.5, device=CPU)


def assert_same_weights(a: Trainer, b: Trainer) -> None:
    for name, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[name]), name
    for name, value in a.ema.state_dict().items():
        assert torch.equal(value, b.ema.state_dict()[name]), f"ema {name}"


class _Interrupt(Exception):
    pass


# --- resume -----------------------------------------------------------------------------------


def test_resume_is_bit_exact(labelled, tmp_path):
    """20 steps in one go == 10 steps, state saved to a file, fresh trainer resumed to 20.

    Exact OT coupling, labels and label dropout are on, so the data order, the prior noise, the
    coupling, the times, the dropout mask, AdamW moments, schedule and EMA must all resume.
    """
    reference = make_trainer(labelled)
    reports = []
    last = reference.run(on_progress=reports.append)
    assert reference.step == 20
    assert [r.step for r in reports] == [5, 10, 15, 20]

    path = tmp_path / "state.safetensors"

    def save_and_stop(tr: Trainer) -> None:
        save_state(path, tr.state_dict())
        raise _Interrupt

    interrupted = make_trainer(labelled)
    with pytest.raises(_Interrupt):
        interrupted.run(on_checkpoint=save_and_stop)
    assert interrupted.step == 10

    resumed = make_trainer(labelled, init_seed=99)  # different initial weights
    assert not torch.equal(
        next(iter(resumed.model.parameters())), next(iter(reference.model.parameters()))
    )
    resumed.load_state_dict(load_state(path))
    assert resumed.step == 10
    resumed_reports = []
    resumed_last = resumed.run(on_progress=resumed_reports.append)

    assert resumed.step == 20
    assert_same_weights(reference, resumed)
    assert resumed_last.loss == last.loss
    assert resumed_last.valid_loss == last.valid_loss
    assert [r.loss for r in resumed_reports] == [r.loss for r in reports[2:]]
    assert resumed.lr == reference.lr
    assert torch.equal(resumed.generator.get_state(), reference.generator.get_state())


def test_restart_without_state_differs(labelled):
    """Control for the test above: continuing from step 10 without the saved state differs."""
    reference = make_trainer(labelled)
    reference.run()
    restarted = make_trainer(labelled)
    restarted.step = 10
    restarted.run()
    assert restarted.step == 20
    assert not all(
        torch.equal(v, restarted.model.state_dict()[k])
        for k, v in reference.model.state_dict().items()
    )


def test_same_seed_same_training(labelled):
    a, b = make_trainer(labelled, steps=8), make_trainer(labelled, steps=8)
    a.run()
    b.run()
    assert_same_weights(a, b)


# --- validation -------------------------------------------------------------------------------


def test_validation_loss_is_deterministic(labelled):
    trainer = make_trainer(labelled, steps=6)
    trainer.run()
    first = trainer.validate()
    assert first is not None and math.isfinite(first) and first > 0
    assert trainer.validate() == first
    assert trainer.validate() == first


def test_validation_does_not_disturb_training(labelled):
    """Validating between steps draws no training randomness."""
    a, b = make_trainer(labelled, steps=6), make_trainer(labelled, steps=6)
    for _ in range(6):
        a.train_step()
        b.train_step()
        b.validate()
    assert_same_weights(a, b)


def test_no_valid_set_gives_no_valid_loss(labelled):
    train, _, num_labels = labelled
    trainer = make_trainer((train, None, num_labels), steps=5)
    assert trainer.validate() is None
    assert trainer.run().valid_loss is None


# --- divergence -------------------------------------------------------------------------------


def nan_on(steps: set[int], monkeypatch) -> None:
    """Make the training loss NaN on the given (1-based) calls of ``FlowMatching.loss``."""
    real = FlowMatching.loss
    calls = itertools.count(1)

    def patched(self, v, u_t):
        loss = real(self, v, u_t)
        return loss * float("nan") if next(calls) in steps else loss

    monkeypatch.setattr(FlowMatching, "loss", patched)


def test_nan_steps_are_skipped_without_touching_weights_moments_or_ema(labelled, monkeypatch):
    """Steps 4-6 get a NaN loss: each leaves weights, Adam moments, Adam's step count and the
    EMA exactly as they were, is counted, and training goes on to a finite end."""
    nan_on({4, 5, 6}, monkeypatch)
    trainer = make_trainer(labelled, steps=10, eval_every=100)
    for _ in range(3):
        trainer.train_step()
    before = copy.deepcopy(
        (trainer.model.state_dict(), trainer.optimizer.state_dict()["state"], trainer.ema.shadow)
    )
    for _ in range(3):
        trainer.train_step()
    after = (
        trainer.model.state_dict(),
        trainer.optimizer.state_dict()["state"],
        trainer.ema.shadow,
    )
    for name, value in before[0].items():
        assert torch.equal(value, after[0][name]), name
    for index, moments in before[1].items():
        for key, value in moments.items():
            assert torch.equal(value, after[1][index][key]), (index, key)
    for name, value in before[2].items():
        assert torch.equal(value, after[2][name]), f"ema {name}"
    assert int(trainer.skipped) == 3 and int(trainer.bad_run) == 3
    trainer.train_step()
    assert int(trainer.skipped) == 3 and int(trainer.bad_run) == 0
    changed = [n for n, v in before[0].items() if not torch.equal(v, trainer.model.state_dict()[n])]
    assert changed  # the next good step updates again


def test_skipped_steps_are_reported_and_the_loss_stays_finite(labelled, monkeypatch):
    nan_on({2, 3}, monkeypatch)
    reports = []
    trainer = make_trainer(labelled, steps=10, eval_every=100)
    last = trainer.run(on_progress=reports.append)
    assert [r.skipped for r in reports] == [2, 2]
    assert all(r.loss is not None and math.isfinite(r.loss) for r in reports)
    assert last.step == 10


def test_persistent_nan_stops_with_the_last_good_checkpoint_named(labelled, monkeypatch):
    nan_on(set(range(11, 100)), monkeypatch)  # steps 11 on (call 11 is step 11: no validation yet)
    saved = []
    trainer = make_trainer(labelled, steps=40, max_bad_steps=6, checkpoint_every=10, eval_every=100)
    with pytest.raises(TrainingDivergedError) as info:
        trainer.run(on_checkpoint=lambda tr: saved.append(
            (tr.step, {k: v.clone() for k, v in tr.model.state_dict().items()})
        ))  # fmt: skip
    message = str(info.value)
    assert "\n" not in message
    assert "non-finite" in message and "train.lr" in message
    # detected at the first report with >= 6 bad steps in a row, before its checkpoint
    assert "10 steps in a row up to step 20" in message
    assert "checkpoint of step 10 is the last good one" in message
    assert [s for s, _ in saved] == [10]
    for name, value in saved[0][1].items():  # the skipped steps left the weights of step 10
        assert torch.all(torch.isfinite(value)), name
        assert torch.equal(value, trainer.model.state_dict()[name])


def test_absurd_learning_rate_diverges(labelled):
    trainer = make_trainer(
        labelled, steps=60, lr=1e6, warmup_steps=0, log_every=10, max_bad_steps=5
    )
    with pytest.raises(TrainingDivergedError):
        trainer.run()


def test_stop_request_checkpoints_then_raises(labelled):
    trainer = make_trainer(labelled, steps=40, checkpoint_every=100)
    saved = []

    def progress(p):
        if p.step == 15:
            trainer.request_stop("SIGTERM", 143)

    with pytest.raises(TrainingStopped) as info:
        trainer.run(on_progress=progress, on_checkpoint=lambda tr: saved.append(tr.step))
    assert saved == [15]
    assert info.value.step == 15 and info.value.exit_code == 143
    assert "SIGTERM" in str(info.value) and "step 15" in str(info.value)


# --- the batch stream -------------------------------------------------------------------------


def index_tokens(n: int, length: int = 4) -> torch.Tensor:
    """Tokens whose base-4 digits spell the row index, so a batch reveals which rows it holds."""
    idx = torch.arange(n)
    return torch.stack([(idx // 4**p) % 4 for p in range(length)], dim=1)


def row_ids(tokens: torch.Tensor) -> list[int]:
    weights = torch.tensor([4**p for p in range(tokens.shape[1])])
    return (tokens.long() * weights).sum(1).tolist()


@pytest.mark.parametrize("coupling", ["exact", "independent"])
def test_prefetch_yields_the_same_batches(coupling):
    tokens = index_tokens(50)
    labels = torch.arange(50) % 3
    flow = FlowMatching(make_coupling(coupling), 4)
    cond = Condition(labels=labels)
    eager = CoupledBatchStream(tokens, cond, flow, batch_size=16, seed=5, prefetch=False)
    ahead = CoupledBatchStream(tokens, cond, flow, batch_size=16, seed=5, prefetch=True)
    try:
        for _ in range(10):  # more than three epochs
            a, b = eager.next(), ahead.next()
            assert torch.equal(a.tokens, b.tokens)
            assert torch.equal(a.cond.labels, b.cond.labels)
            assert torch.equal(a.x_0, b.x_0)
        assert eager.state_dict()["cursor"] == ahead.state_dict()["cursor"]
    finally:
        eager.close()
        ahead.close()


def test_stream_state_rebuilds_the_pending_batch():
    tokens = index_tokens(40)
    flow = FlowMatching(make_coupling("exact"), 4)
    stream = CoupledBatchStream(tokens, Condition(), flow, batch_size=16, seed=1, prefetch=True)
    for _ in range(3):
        stream.next()
    state = stream.state_dict()
    expected = [stream.next() for _ in range(4)]
    stream.close()
    other = CoupledBatchStream(tokens, Condition(), flow, batch_size=16, seed=999, prefetch=True)
    other.load_state_dict(state)
    for want in expected:
        got = other.next()
        assert torch.equal(got.tokens, want.tokens)
        assert torch.equal(got.x_0, want.x_0)
    other.close()


@pytest.mark.parametrize(("n", "batch"), [(64, 16), (50, 16), (7, 7)])
def test_epochs_are_without_replacement(n, batch):
    """Each epoch visits every row at most once, and all rows when batch divides n."""
    flow = FlowMatching(make_coupling("independent"), 4)
    stream = CoupledBatchStream(index_tokens(n), Condition(), flow, batch_size=batch, seed=0)
    per_epoch = n // batch
    epochs = []
    for _ in range(4):
        seen = []
        for _ in range(per_epoch):
            seen += row_ids(stream.next().tokens)
        epochs.append(seen)
    stream.close()
    for seen in epochs:
        assert len(seen) == per_epoch * batch
        assert len(set(seen)) == len(seen)
        assert set(seen) <= set(range(n))
        if n % batch == 0:
            assert sorted(seen) == list(range(n))
    if n > batch:
        assert epochs[0] != epochs[1]  # reshuffled


def test_coupled_prior_samples_are_on_the_positive_sphere():
    flow = FlowMatching(make_coupling("exact"), 4)
    stream = CoupledBatchStream(index_tokens(32), Condition(), flow, batch_size=8, seed=0)
    x_0 = stream.next().x_0
    stream.close()
    assert x_0.shape == (8, 4, 4)
    assert (x_0 >= 0).all()
    torch.testing.assert_close(x_0.norm(dim=-1), torch.ones(8, 4))


# --- learning ---------------------------------------------------------------------------------

KL_THRESHOLD = 0.02


def test_learns_per_position_categorical_target():
    """A tiny model learns independent categoricals: per-position KL(target || samples) < 0.02.

    Target: length 4, K = 5, ``p_l = softmax(3 u_l)`` with ``u_l ~ U(0, 1)^5`` (seed 0). The logits
    are scaled by 3 so that the untrained baseline fails clearly: the uniform distribution that an
    untrained flow produces is 0.07-0.29 nats away per position, while ``softmax(u)`` itself would
    be only 0.01-0.03 away (too close to uniform for a 0.02 threshold to mean anything). Training:
    CNN 32x2 (kernel 3), exact OT, 200 steps of 256, lr 3e-3, EMA 0.99; sampling: 8000 sequences,
    20 Euler steps, argmax decoding. Observed max KL 2.4e-3 (sampling noise alone ~3e-4).
    """
    length, vocab = 4, 5
    g = torch.Generator().manual_seed(0)
    target = torch.softmax(3.0 * torch.rand(length, vocab, generator=g, dtype=torch.float64), -1)
    tokens = torch.multinomial(target, 8192, replacement=True, generator=g).T.contiguous()

    def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return (p * (p.log() - q.clamp_min(1e-12).log())).sum(-1)

    uniform_kl = kl(target, torch.full_like(target, 1 / vocab))
    assert uniform_kl.min() > 3 * KL_THRESHOLD  # the test can fail

    torch.manual_seed(0)
    model_cfg = ModelConfig(
        arch="cnn", hidden=32, depth=2, kernel_size=3, dilations=(1,), time_dim=16
    )
    model = build_model(model_cfg, vocab=vocab, length=length, num_labels=0)
    cfg = TrainConfig(
        steps=200, batch_size=256, lr=3e-3, warmup_steps=10, ema_decay=0.99, log_every=100,
        eval_every=1000, checkpoint_every=1000, seed=0, device="cpu",
    )  # fmt: skip
    task = SequenceTask(FlowMatching(make_coupling("exact"), vocab), cfg, TrainingSet(tokens),
                        device=CPU)  # fmt: skip
    trainer = Trainer(model, task, cfg, cond_dropout=0.0, device=CPU)
    trainer.run()
    trainer.ema.copy_to(trainer.ema_model)

    n = 8000
    samples = torch.cat(
        list(generate(trainer.ema_model, geometry=PositiveSphere(),
                      n=n, length=length, vocab=vocab, steps=20, seed=0,
                      batch_size=2000))
    )  # fmt: skip
    assert samples.shape == (n, length)
    freq = torch.stack([torch.bincount(samples[:, i], minlength=vocab) for i in range(length)])
    freq = freq.double() / n
    per_position = kl(target, freq)
    assert per_position.max() < KL_THRESHOLD, per_position.tolist()


def test_cnn_learns_a_motif_at_a_fixed_position():
    """Aligned data: every sequence has ACGTAC at positions 5-10, random letters elsewhere.

    Convolutions only see absolute position through their padding; the CNN's position embedding
    must let it place the motif (random letters would give 4**-6 of exact copies)."""
    torch.manual_seed(0)
    motif = torch.tensor([0, 1, 2, 3, 0, 1], dtype=torch.uint8)
    tokens = torch.randint(0, 4, (512, 16), dtype=torch.uint8)
    tokens[:, 5:11] = motif
    model = build_model(
        ModelConfig(arch="cnn", hidden=32, depth=2, kernel_size=3), vocab=4, length=16,
        num_labels=0,
    )  # fmt: skip
    cfg = TrainConfig(steps=250, batch_size=128, lr=2e-3, warmup_steps=20, log_every=50,
                      eval_every=10**6, ema_decay=0.99)  # fmt: skip
    task = SequenceTask(FlowMatching(make_coupling("exact"), 4), cfg, TrainingSet(tokens),
                        device=CPU)  # fmt: skip
    trainer = Trainer(model, task, cfg, cond_dropout=0.0, device=CPU)
    trainer.run()
    trainer.ema.copy_to(trainer.model)
    out = next(
        generate(trainer.model, geometry=PositiveSphere(), n=256, length=16, vocab=4, steps=30)
    )
    copies = (out[:, 5:11] == motif.long()).all(dim=1).float().mean().item()
    assert copies > 0.7
    elsewhere = torch.bincount(out[:, 12:].flatten(), minlength=4).float() / out[:, 12:].numel()
    assert elsewhere.max() < 0.4  # the random positions stay random


def test_coupling_groups_pair_within_labels_and_value_bins():
    from seqflow.training.batches import VALUE_BINS, coupling_groups

    values = torch.arange(16, dtype=torch.float32)
    labels = torch.arange(16) % 2
    g = coupling_groups(Condition(labels=labels, values=values))
    assert g is not None and len(set(g.tolist())) == 2 * VALUE_BINS
    # same group: same label and same value quartile
    for i in range(16):
        for j in range(16):
            same = labels[i] == labels[j] and i // 4 == j // 4
            assert (g[i] == g[j]) == same
    assert coupling_groups(Condition()) is None
    only_values = coupling_groups(Condition(values=values))
    assert only_values.tolist() == [i // 4 for i in range(16)]


@pytest.mark.slow
def test_compiled_training_step_matches_eager(labelled):
    """``train.compile`` compiles the training forward; its losses equal eager ones to float
    tolerance (a minute or two of compiling on a CPU: slow)."""
    eager = make_trainer(labelled, steps=6, eval_every=100)
    compiled = make_trainer(labelled, steps=6, eval_every=100, compile=True)
    for _ in range(6):
        a, b = eager.train_step(), compiled.train_step()
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


# --- training times and precision -------------------------------------------------------------


@pytest.mark.parametrize("t_early", [0.5, 0.8, 0.2])
def test_training_times_put_the_asked_share_before_one_half(t_early):
    flow = FlowMatching(make_coupling("independent"), 4, t_early=t_early)
    u = (torch.arange(10_000, dtype=torch.float64) + 0.5) / 10_000  # an even grid on (0, 1)
    t = flow.times(u)
    assert ((t >= 0) & (t < 1)).all()
    assert (t.diff() > 0).all()  # monotone: the distribution function's inverse
    assert (t < 0.5).double().mean().item() == pytest.approx(t_early, abs=1e-4)
    early, late = t[t < 0.5], t[t >= 0.5]  # uniform within each half: evenly spaced
    assert torch.allclose(early.diff(), early.diff()[0].expand_as(early.diff()))
    assert torch.allclose(late.diff(), late.diff()[0].expand_as(late.diff()))
    if t_early == 0.5:
        assert torch.equal(t, u)


def test_the_trainer_draws_its_times_through_the_flow(labelled):
    trainer = make_trainer(labelled, steps=2)
    flow = trainer.task.flow
    flow.t_early = 0.9
    drawn, used = [], []
    times, path = flow.times, flow.path
    flow.times = lambda u: drawn.append(u) or times(u)
    flow.path = lambda x_0, tokens, t, g=None: used.append(t) or path(x_0, tokens, t, g)
    trainer.train_step()
    (u,), (t,) = drawn, used
    assert torch.equal(t, FlowMatching.times(flow, u)) and not torch.equal(t, u)


@pytest.mark.parametrize("amx", [True, False])
def test_auto_precision_uses_bf16_on_a_cpu_with_amx_only(labelled, monkeypatch, amx):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    auto = make_trainer(labelled, steps=1)
    with auto.autocast():
        assert torch.is_autocast_enabled("cpu") is amx
        if amx:
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    fp32 = make_trainer(labelled, steps=1, precision="fp32")
    with fp32.autocast():
        assert not torch.is_autocast_enabled("cpu")
