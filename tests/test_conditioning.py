"""Conditions (label, value, signal): hiding for guidance, embeddings, and that a tiny model
learns each of them; variable length through the end/pad category."""

from __future__ import annotations

import json
import math

import pytest
import torch

from seqflow.config import ModelConfig, TrainConfig
from seqflow.flow import FlowMatching, make_coupling
from seqflow.geometry import PositiveSphere
from seqflow.models import Condition, Standardizer, build_model
from seqflow.models.conditioning import ValueEmbedding, signal_features
from seqflow.sampling import Guide, GuidedField, decode, generate
from seqflow.training import SequenceTask, Trainer, TrainingSet

CPU = torch.device("cpu")
TINY = ModelConfig(arch="cnn", hidden=32, depth=2, kernel_size=3, dilations=(1,), time_dim=16)


def batch_cond(b: int = 6, length: int = 5, channels: int = 2) -> Condition:
    g = torch.Generator().manual_seed(0)
    return Condition(
        labels=torch.arange(b) % 3,
        values=torch.randn(b, generator=g),
        signal=torch.randn(b, length, channels, generator=g),
    )


# --- Condition --------------------------------------------------------------------------------


def test_drop_hides_only_the_marked_kind_and_rows():
    cond = batch_cond()
    hide = torch.tensor([True, False, True, False, False, False])
    out = cond.drop(3, labels=hide, values=None, signal=~hide)
    assert out.labels.tolist() == [3, 1, 3, 0, 1, 2]
    assert torch.equal(out.values, cond.values)
    assert torch.isnan(out.signal[~hide]).all()
    assert torch.equal(out.signal[hide], cond.signal[hide])


def test_drop_at_random_rate_and_independence():
    n = 20_000
    cond = Condition(labels=torch.zeros(n, dtype=torch.long), values=torch.zeros(n))
    out = cond.drop_at_random(0.3, 1, torch.Generator().manual_seed(0))
    hid_label, hid_value = out.labels == 1, torch.isnan(out.values)
    assert abs(hid_label.float().mean() - 0.3) < 0.02
    assert abs(hid_value.float().mean() - 0.3) < 0.02
    # independent kinds: both hidden about 0.3 * 0.3 of the time, not 0.3
    assert abs((hid_label & hid_value).float().mean() - 0.09) < 0.015


def test_value_embedding_nan_means_absent_and_keeps_gradients_finite():
    emb = ValueEmbedding(8)
    torch.nn.init.normal_(emb.absent)
    values = torch.tensor([0.5, math.nan, -1.0])
    out = emb(values, 3, CPU)
    torch.testing.assert_close(out[1], emb.absent)
    assert (out[0] - out[2]).abs().max() > 1e-4
    torch.testing.assert_close(emb(None, 2, CPU), emb.absent.expand(2, -1))
    out.square().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in emb.parameters())


def test_signal_features_flag_and_zeroes_absent_rows():
    signal = torch.randn(3, 4, 2)
    signal[1] = math.nan
    feats = signal_features(signal, 3, 4, 2, CPU, torch.float32)
    assert feats.shape == (3, 4, 3)
    assert feats[[0, 2], :, 2].eq(1).all() and feats[1].eq(0).all()
    torch.testing.assert_close(feats[0, :, :2], signal[0])
    assert signal_features(None, 2, 4, 2, CPU, torch.float32).eq(0).all()


@torch.no_grad()
@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_every_condition_changes_the_field_and_none_equals_null(arch):
    cfg = ModelConfig(arch=arch, hidden=16, depth=1, heads=2, kernel_size=3, time_dim=16)
    torch.manual_seed(0)
    model = build_model(cfg, vocab=4, length=5, num_labels=3, value=True, signal_channels=2)
    for p in model.parameters():  # zero-initialised output layers would hide the conditions
        p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(1, 5, 4)
    x = (x / x.norm(dim=-1, keepdim=True)).expand(6, -1, -1)
    t = torch.full((6,), 0.3)
    cond = batch_cond()
    v = model(x, t, cond)
    for kind in ("labels", "values", "signal"):
        hidden = cond.drop(3, **{k: torch.ones(6, dtype=torch.bool) if k == kind else None
                                 for k in ("labels", "values", "signal")})  # fmt: skip
        assert (model(x, t, hidden) - v).abs().max() > 1e-4, kind
    every = torch.ones(6, dtype=torch.bool)
    hidden = cond.drop(3, labels=every, values=every, signal=every)
    torch.testing.assert_close(model(x, t, None), model(x, t, hidden))


def test_guided_field_is_the_cfg_mixture():
    torch.manual_seed(0)
    model = build_model(TINY, vocab=4, length=5, value=True).eval()
    for p in model.parameters():
        p.data.add_(0.05 * torch.randn_like(p))
    x = torch.rand(3, 5, 4)
    x = x / x.norm(dim=-1, keepdim=True)
    t = torch.full((3,), 0.5)
    cond = Condition(values=torch.tensor([1.0, -1.0, 0.0]))
    with torch.no_grad():
        v_c, v_u = model(x, t, cond), model(x, t, None)
        field = GuidedField(model, PositiveSphere())
        mixed = v_u + 2.5 * (v_c - v_u)
        torch.testing.assert_close(field(x, t, Guide(values=cond.values, weight=2.5)), mixed)
        torch.testing.assert_close(field(x, t, Guide(values=cond.values, weight=0.0)), v_u)


# --- decoding with an end/pad category --------------------------------------------------------


def test_decode_with_pad_ends_at_first_pad_and_never_starts_empty():
    pad = 4
    p = torch.full((2, 6, 5), 0.01)
    # row 0: pad wins at position 0 (must not end there) and at 3; letter again at 4
    for pos, k in enumerate([4, 1, 2, 4, 0, 4]):
        p[0, pos, k] = 1.0
    p[0, 0, 3] = 0.5  # the best letter at position 0
    for pos, k in enumerate([0, 1, 2, 3, 0, 1]):
        p[1, pos, k] = 1.0
    x_1 = (p / p.sum(-1, keepdim=True)).sqrt()
    tokens = decode(PositiveSphere.to_simplex(x_1), "argmax", pad=pad)
    assert tokens[0].tolist() == [3, 1, 2, 4, 4, 4]
    assert tokens[1].tolist() == [0, 1, 2, 3, 0, 1]
    sampled = decode(PositiveSphere.to_simplex(x_1), "sample", torch.Generator().manual_seed(0),
                     pad=pad)  # fmt: skip
    ended = (sampled == pad).cummax(dim=1).values
    assert torch.equal(sampled == pad, ended) and (sampled[:, 0] != pad).all()


# --- learning each condition ------------------------------------------------------------------


def train(tokens, cond, vocab, *, steps, num_labels=0, value=False, channels=0, seed=0):
    torch.manual_seed(seed)
    model = build_model(TINY, vocab=vocab, length=tokens.shape[1], num_labels=num_labels,
                        value=value, signal_channels=channels)  # fmt: skip
    cfg = TrainConfig(steps=steps, batch_size=64, lr=5e-3, warmup_steps=10, ema_decay=0.9,
                      log_every=steps, eval_every=10**6, checkpoint_every=10**6, seed=seed,
                      device="cpu")  # fmt: skip
    task = SequenceTask(FlowMatching(make_coupling("exact"), vocab), cfg,
                        TrainingSet(tokens, cond), device=CPU)  # fmt: skip
    trainer = Trainer(model, task, cfg, cond_dropout=0.2, device=CPU)
    trainer.run()
    trainer.ema.copy_to(trainer.ema_model)
    return trainer.ema_model


def test_value_condition_is_learned():
    """Value +1 -> all A, value -1 -> all T: sampling at +1 / -1 gives mostly A / mostly T."""
    n = 512
    values = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)
    tokens = torch.where(values[:, None] > 0, 0, 3).expand(n, 6).to(torch.uint8)
    model = train(tokens, Condition(values=values), 4, steps=150, value=True)
    for v, letter in ((1.0, 0), (-1.0, 3)):
        out = torch.cat(list(generate(model, geometry=PositiveSphere(),
                                      n=200, length=6, vocab=4, steps=20,
                                      cond=Condition(values=torch.tensor([v])))))  # fmt: skip
        assert (out == letter).float().mean() > 0.9, (v, (out == letter).float().mean())


def test_signal_condition_places_letters():
    """A one-hot signal marks where the G is (A elsewhere): generated Gs follow the signal."""
    n, length = 768, 8
    where = torch.arange(n) % length
    signal = torch.nn.functional.one_hot(where, length).float()[..., None]
    tokens = torch.zeros(n, length, dtype=torch.uint8)
    tokens[torch.arange(n), where] = 2
    model = train(tokens, Condition(signal=signal), 4, steps=250, channels=1)
    test_where = torch.arange(64) % length
    test_signal = torch.nn.functional.one_hot(test_where, length).float()[..., None]
    out = torch.cat(list(generate(model, geometry=PositiveSphere(),
                                  n=64, length=length, vocab=4, steps=20,
                                  cond=Condition(signal=test_signal))))  # fmt: skip
    hits = (out[torch.arange(64), test_where] == 2).float().mean()
    assert hits > 0.8, hits


def test_variable_length_is_learned_without_pad_leaks():
    """Lengths 2..7 with probabilities 1:2:3:3:2:1 of runs of one letter: generated lengths
    follow the distribution (total variation < 0.15) and the pad never appears mid-sequence."""
    pad, max_len = 4, 7
    weights = torch.tensor([1.0, 2, 3, 3, 2, 1])
    n = 1024
    g = torch.Generator().manual_seed(1)
    lengths = 2 + torch.multinomial(weights, n, replacement=True, generator=g)
    letters = torch.randint(0, 4, (n,), generator=g)
    pos = torch.arange(max_len)[None, :]
    tokens = torch.where(pos < lengths[:, None], letters[:, None], pad).to(torch.uint8)
    model = train(tokens, Condition(), 5, steps=300)
    out = torch.cat(
        list(
            generate(
                model, geometry=PositiveSphere(), n=1000, length=max_len, vocab=5, steps=20, pad=pad
            )
        )
    )
    got = (out != pad).sum(1)
    hist = torch.bincount(got, minlength=max_len + 1)[2:].float()
    tv = 0.5 * (hist / hist.sum() - weights / weights.sum()).abs().sum()
    assert (got >= 1).all() and tv < 0.15, (tv, hist)
    ended = (out == pad).cummax(dim=1).values
    assert torch.equal(out == pad, ended)


def test_standardizer_statistics_and_round_trip():
    x = torch.tensor([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    st = Standardizer.fit(x, "cage")
    assert st.mean == pytest.approx((3.0, 10.0)) and st.std[0] == pytest.approx((8 / 3) ** 0.5)
    assert st.std[1] == 1.0  # a constant channel is left unscaled, not divided by zero
    z = st.apply(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-6, rtol=0)
    assert Standardizer.from_dict(json.loads(json.dumps(st.to_dict()))) == st
    scalar = Standardizer.fit(torch.tensor([2.0, 4.0]))
    torch.testing.assert_close(scalar.apply(torch.tensor([3.0, 5.0])), torch.tensor([0.0, 2.0]))
