"""Velocity networks: architecture choice, shapes, tangency, conditioning, seeding."""

from __future__ import annotations

import pytest
import torch

from seqflow.config import ModelConfig
from seqflow.geometry import PositiveSphere
from seqflow.models import (
    Condition,
    VelocityField,
    build_model,
    count_parameters,
    resolve_arch,
)
from seqflow.models.cnn import DilatedConvNet
from seqflow.models.transformer import TransformerNet

M = PositiveSphere
TINY = {"hidden": 16, "depth": 2, "kernel_size": 3, "dilations": (1, 2), "heads": 2, "time_dim": 8}
# (arch, vocab): both backbones with both a DNA-sized and a protein-sized alphabet
CASES = [("cnn", 4), ("transformer", 20), ("cnn", 20), ("transformer", 5)]


def tiny_model(arch: str, vocab: int, length: int = 6, num_labels: int = 0, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(
        ModelConfig(arch=arch, **TINY), vocab=vocab, length=length, num_labels=num_labels
    )


def wake(model: VelocityField, seed: int = 1) -> VelocityField:
    """Give the zero-initialised layers (adaLN-zero, FiLM output) random weights, so that the
    condition reaches the output as it does after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model


def inputs(batch: int, length: int, vocab: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x_t = M.sample_prior((batch, length, vocab), generator=g)
    t = torch.rand(batch, generator=g)
    return x_t, t


@pytest.mark.parametrize(
    ("vocab", "expected"),
    [(2, "cnn"), (4, "cnn"), (8, "cnn"), (9, "transformer"), (20, "transformer")],
)
def test_auto_arch_by_vocab(vocab, expected):
    assert resolve_arch(ModelConfig(arch="auto"), vocab) == expected
    backbone = tiny_model("auto", vocab).backbone
    assert isinstance(backbone, DilatedConvNet if expected == "cnn" else TransformerNet)


@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_explicit_arch_is_kept(arch):
    for vocab in (4, 20):
        assert resolve_arch(ModelConfig(arch=arch), vocab) == arch


@pytest.mark.parametrize(("arch", "vocab"), CASES)
@pytest.mark.parametrize("num_labels", [0, 3])
@torch.no_grad()
def test_output_shape_and_tangency(arch, vocab, num_labels):
    model = wake(tiny_model(arch, vocab, num_labels=num_labels))
    x_t, t = inputs(3, 6, vocab)
    labels = torch.tensor([0, 1, 2]) if num_labels else None
    v = model(x_t, t, Condition(labels=labels))
    assert v.shape == x_t.shape and v.dtype == x_t.dtype
    assert torch.isfinite(v).all()
    assert v.abs().max() > 1e-3  # a real field, not zeros
    scale = float(v.norm(dim=-1).max())
    torch.testing.assert_close((v * x_t).sum(-1), torch.zeros(3, 6), atol=1e-5 * scale, rtol=0)
    # shorter sequences than the model was built for also work
    assert model(x_t[:, :4], t, Condition(labels=labels)).shape == (3, 4, vocab)


@pytest.mark.parametrize(("arch", "vocab"), CASES)
@torch.no_grad()
def test_labels_condition_the_output(arch, vocab):
    model = wake(tiny_model(arch, vocab, num_labels=3))
    assert model.num_labels == 3
    x_t, t = inputs(1, 5, vocab)
    x_t, t = x_t.expand(4, -1, -1), t.expand(4)
    v = model(x_t, t, Condition(labels=torch.tensor([0, 1, 2, 3])))  # 3 = "no label"
    for i in range(4):
        for j in range(i):
            assert (v[i] - v[j]).abs().max() > 1e-4, f"labels {i} and {j} give the same field"
    v_none = model(x_t, t, None)
    assert torch.isfinite(v_none).all()
    torch.testing.assert_close(v_none, v[3:4].expand(4, -1, -1))


@pytest.mark.parametrize(("arch", "vocab"), CASES)
@torch.no_grad()
def test_time_conditions_the_output(arch, vocab):
    model = wake(tiny_model(arch, vocab))
    assert model.num_labels == 0 and model.labels is None
    x_t, _ = inputs(1, 5, vocab)
    x_t = x_t.expand(2, -1, -1)
    v = model(x_t, torch.tensor([0.1, 0.7]))
    assert (v[0] - v[1]).abs().max() > 1e-4
    torch.testing.assert_close(model(x_t, torch.tensor([0.1, 0.1])), v[:1].expand(2, -1, -1))


@pytest.mark.parametrize(("arch", "vocab"), CASES)
def test_same_seed_same_weights(arch, vocab):
    a = tiny_model(arch, vocab, num_labels=2, seed=5).state_dict()
    b = tiny_model(arch, vocab, num_labels=2, seed=5).state_dict()
    c = tiny_model(arch, vocab, num_labels=2, seed=6).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize(("arch", "vocab"), [("cnn", 4), ("transformer", 20)])
def test_count_parameters_and_gradients(arch, vocab):
    model = wake(tiny_model(arch, vocab, num_labels=2))
    n = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == n > 0
    x_t, t = inputs(2, 6, vocab)
    model(x_t, t, Condition(labels=torch.tensor([0, 1]))).square().sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
