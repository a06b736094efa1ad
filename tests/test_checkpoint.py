"""Checkpoints: model files rebuild the model alone, resume states round-trip, writes are atomic."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from seqflow import io_utils
from seqflow._version import __version__
from seqflow.checkpoint import (
    FORMAT_VERSION,
    MODEL_FILE,
    ModelMeta,
    load_model,
    load_state,
    resolve_checkpoint,
    save_model,
    save_state,
)
from seqflow.config import Config
from seqflow.errors import CheckpointError
from seqflow.io_utils import CHECKSUM_KEY, file_checksum
from seqflow.models import Condition, Standardizer, build_model, build_velocity_field

DNA = {"name": "dna", "letters": "ACGT"}
PROTEIN = {"name": "protein", "letters": "ACDEFGHIKLMNPQRSTVWY"}
LENGTH = 12


def tiny_config(arch: str) -> Config:
    return Config().with_overrides(
        {
            "model.arch": arch,
            "model.hidden": 16,
            "model.depth": 2,
            "model.kernel_size": 3,
            "model.heads": 2,
            "model.time_dim": 16,
        }
    )


def make_checkpoint(path: Path, arch: str = "cnn", labels: tuple[str, ...] = ("a", "b")):
    """Save a model whose raw and EMA weights differ; return (model, ema_model, meta)."""
    cfg = tiny_config(arch)
    alphabet = DNA if arch == "cnn" else PROTEIN
    vocab = len(alphabet["letters"])
    torch.manual_seed(0)
    model = build_model(cfg.model, vocab=vocab, length=LENGTH, num_labels=len(labels))
    ema = build_model(cfg.model, vocab=vocab, length=LENGTH, num_labels=len(labels))
    with torch.no_grad():  # the zero-initialised output convolutions must matter too
        for p, q in zip(model.parameters(), ema.parameters(), strict=True):
            p.add_(0.1 * torch.randn_like(p))
            q.add_(0.1 * torch.randn_like(q))
    meta = ModelMeta(config=cfg, alphabet=alphabet, labels=labels, length=LENGTH, step=42)
    save_model(path, model.state_dict(), ema.state_dict(), meta)
    return model.eval(), ema.eval(), meta


def probe(model, vocab: int, labels: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, LENGTH, vocab, generator=g)
    x = x / x.norm(dim=-1, keepdim=True)
    t = torch.rand(3, generator=g)
    y = torch.tensor([0, 1, 2]) if labels else None
    with torch.no_grad():
        return model(x, t, Condition(labels=y))


def checkpoint_error(fn, *args, **kwargs) -> str:
    """Call ``fn`` expecting a CheckpointError; return its one-line message."""
    with pytest.raises(CheckpointError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- model files ------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "vocab"), [("cnn", 4), ("transformer", 20)])
def test_load_model_rebuilds_identical_model(tmp_path, arch, vocab):
    path = tmp_path / MODEL_FILE
    model, ema, meta = make_checkpoint(path, arch)
    loaded_ema, loaded_meta = load_model(path)
    loaded_raw, _ = load_model(path, weights="model")
    assert not loaded_ema.training
    assert torch.equal(probe(loaded_ema, vocab), probe(ema, vocab))
    assert torch.equal(probe(loaded_raw, vocab), probe(model, vocab))
    assert not torch.equal(probe(loaded_ema, vocab), probe(loaded_raw, vocab))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded_raw.state_dict()[key], value)
    assert loaded_meta == meta
    assert loaded_meta.vocab == vocab


def test_load_model_accepts_a_run_folder(tmp_path):
    _, ema, _ = make_checkpoint(tmp_path / MODEL_FILE)
    loaded, meta = load_model(tmp_path)
    assert torch.equal(probe(loaded, 4), probe(ema, 4))
    assert meta.step == 42
    assert resolve_checkpoint(tmp_path) == tmp_path / MODEL_FILE


def test_unconditional_model_round_trip(tmp_path):
    path = tmp_path / MODEL_FILE
    _, ema, _ = make_checkpoint(path, labels=())
    loaded, meta = load_model(path)
    assert meta.labels == ()
    assert loaded.num_labels == 0
    assert torch.equal(probe(loaded, 4, labels=False), probe(ema, 4, labels=False))


def test_metadata_holds_versions_config_alphabet_labels(tmp_path):
    path = tmp_path / MODEL_FILE
    _, _, meta = make_checkpoint(path)
    with safe_open(str(path), framework="pt") as handle:
        header = handle.metadata()
        keys = set(handle.keys())
    assert header["format"] == "seqflow"
    assert int(header["format_version"]) == FORMAT_VERSION
    assert header["seqflow_version"] == __version__
    assert Config.from_dict(json.loads(header["config"])) == meta.config
    assert json.loads(header["alphabet"]) == DNA
    assert json.loads(header["labels"]) == ["a", "b"]
    assert int(header["length"]) == LENGTH
    assert int(header["step"]) == 42
    assert keys and all(k.startswith(("model.", "ema.")) for k in keys)
    assert {k.removeprefix("model.") for k in keys if k.startswith("model.")} == {
        k.removeprefix("ema.") for k in keys if k.startswith("ema.")
    }


def test_checkpoint_files_respect_umask(tmp_path):
    path = tmp_path / MODEL_FILE
    make_checkpoint(path)
    save_state(tmp_path / "state.safetensors", {"step": 1})
    umask = os.umask(0)
    os.umask(umask)
    for file in (path, tmp_path / "state.safetensors"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~umask


# --- damaged and foreign files ----------------------------------------------------------------


def test_missing_file_and_empty_run_folder(tmp_path):
    assert "no such" in checkpoint_error(load_model, tmp_path / "nope.safetensors")
    empty = tmp_path / "run"
    empty.mkdir()
    message = checkpoint_error(load_model, empty)
    assert str(empty) in message
    assert MODEL_FILE in message


def test_non_safetensors_file(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("these are not weights\n")
    message = checkpoint_error(load_model, path)
    assert str(path) in message


def test_truncated_file(tmp_path):
    path = tmp_path / MODEL_FILE
    make_checkpoint(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert str(path) in checkpoint_error(load_model, path)


def test_safetensors_without_seqflow_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    message = checkpoint_error(load_model, path)
    assert str(path) in message
    assert "not a seqflow checkpoint" in message


def rewrite_metadata(path: Path, **changes: str) -> None:
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
    metadata.update(changes)
    metadata[CHECKSUM_KEY] = file_checksum(tensors, metadata)  # damaged, yet signed: the parser
    save_file(tensors, str(path), metadata)


def test_newer_format_version(tmp_path):
    path = tmp_path / MODEL_FILE
    make_checkpoint(path)
    rewrite_metadata(path, format_version=str(FORMAT_VERSION + 1))
    message = checkpoint_error(load_model, path)
    assert str(path) in message
    assert "newer" in message
    assert "upgrade" in message


@pytest.mark.parametrize(
    "changes",
    [
        {"format_version": "one"},
        {"config": "{not json"},
        {"config": json.dumps({"model": {"hiden": 3}})},
        {"alphabet": json.dumps({"letters": "A"})},
        {"length": "long"},
        {"variable_length": '"yes"'},
        {"value": json.dumps({"mean": [0.0], "std": [0.0]})},
        {"signal": json.dumps({"mean": [0.0, 1.0], "std": [1.0]})},
        {"signal": "[1, 2"},
    ],
)
def test_damaged_metadata(tmp_path, changes):
    path = tmp_path / MODEL_FILE
    make_checkpoint(path)
    rewrite_metadata(path, **changes)
    assert str(path) in checkpoint_error(load_model, path)


def test_weights_that_do_not_match_the_metadata(tmp_path):
    path = tmp_path / MODEL_FILE
    make_checkpoint(path)
    cfg = json.loads(safe_open(str(path), framework="pt").metadata()["config"])
    cfg["model"]["hidden"] = 8
    rewrite_metadata(path, config=json.dumps(cfg))
    message = checkpoint_error(load_model, path)
    assert str(path) in message
    assert "do not match" in message


# --- resume state -----------------------------------------------------------------------------


def assert_same_structure(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor)
        assert a.dtype == b.dtype
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict)
        assert list(a) == list(b)  # keys and their order
        assert [type(k) for k in a] == [type(k) for k in b]  # int keys stay int
        for key in a:
            assert_same_structure(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, list)
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_structure(x, y)
    else:
        assert type(a) is type(b)
        assert a == b


def test_state_round_trip_of_nested_values(tmp_path):
    state = {
        "step": 17,
        "lr": 1.5e-3,
        "nothing": None,
        "flag": True,
        "name": "run",
        "weights": {"a.weight": torch.randn(3, 4), "a.bias": torch.zeros(4, dtype=torch.float64)},
        "generator": torch.Generator().manual_seed(5).get_state(),
        "order": torch.randperm(10),
        "scalar": torch.tensor(2.5),
        "list": [1, 2.0, None, torch.arange(3), [torch.ones(2), "x"]],
        "by_index": {0: {"exp_avg": torch.ones(2)}, 1: {"exp_avg": torch.full((2,), 2.0)}},
        "empty": {},
        "empty_list": [],
    }
    path = tmp_path / "state.safetensors"
    save_state(path, state)
    assert_same_structure(state, load_state(path))


def test_state_keys_that_print_alike_stay_apart(tmp_path):
    state = {1: torch.zeros(2), "1": torch.ones(2), "a/b": torch.full((2,), 2.0), "a": {"b": None}}
    state["a"]["b"] = torch.full((2,), 3.0)
    path = tmp_path / "state.safetensors"
    save_state(path, state)
    assert_same_structure(state, load_state(path))


def test_optimizer_state_round_trip(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(5, 3)).square().sum().backward()
        opt.step()
        sched.step()
    path = tmp_path / "state.safetensors"
    save_state(path, {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()})
    loaded = load_state(path)
    assert sorted(loaded["optimizer"]["state"]) == [0, 1, 2, 3]
    assert_same_structure(opt.state_dict()["state"], loaded["optimizer"]["state"])

    clone = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    clone.load_state_dict(net.state_dict())
    opt2 = torch.optim.AdamW(clone.parameters(), lr=1e-2)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1.0 / (1 + s))
    opt2.load_state_dict(loaded["optimizer"])
    sched2.load_state_dict(loaded["scheduler"])
    x = torch.randn(5, 3)
    for o, s, n in ((opt, sched, net), (opt2, sched2, clone)):
        o.zero_grad()
        n(x).square().sum().backward()
        o.step()
        s.step()
    for p, q in zip(net.parameters(), clone.parameters(), strict=True):
        assert torch.equal(p, q)


def test_load_state_rejects_a_model_file(tmp_path):
    path = tmp_path / MODEL_FILE
    make_checkpoint(path)
    message = checkpoint_error(load_state, path)
    assert str(path) in message
    assert "training state" in message


def test_load_state_rejects_garbage(tmp_path):
    path = tmp_path / "state.safetensors"
    path.write_bytes(b"\x00" * 100)
    assert str(path) in checkpoint_error(load_state, path)


# --- atomic writes ----------------------------------------------------------------------------


def test_save_leaves_no_temporary_files(tmp_path):
    make_checkpoint(tmp_path / MODEL_FILE)
    make_checkpoint(tmp_path / MODEL_FILE)  # overwrite
    save_state(tmp_path / "state.safetensors", {"step": 1, "x": torch.ones(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILE, "state.safetensors"]


def test_failing_save_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / MODEL_FILE
    _, ema, meta = make_checkpoint(path)
    before = path.read_bytes()

    def broken_save_file(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(io_utils, "save_file", broken_save_file)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, ema.state_dict(), ema.state_dict(), meta)
    with pytest.raises(OSError, match="disk full"):
        save_state(tmp_path / "state.safetensors", {"step": 1})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_FILE]
    monkeypatch.undo()
    loaded, _ = load_model(path)
    assert torch.equal(probe(loaded, 4), probe(ema, 4))


# --- conditions and variable length -----------------------------------------------------------


def test_conditional_variable_length_model_round_trip(tmp_path):
    cfg = tiny_config("cnn")
    meta = ModelMeta(
        config=cfg, alphabet=DNA, labels=("a", "b"), length=LENGTH, step=3,
        variable_length=True, value=Standardizer((1.5,), (2.0,), "activity"),
        signal=Standardizer((0.0, 1.0), (1.0, 3.0), "cage.npy"),
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_velocity_field(meta)
    assert meta.vocab == 5 and meta.pad == 4 and model.signal_channels == 2
    save_model(tmp_path / MODEL_FILE, model.state_dict(), model.state_dict(), meta)
    loaded, back = load_model(tmp_path)
    assert back == meta
    x = torch.rand(2, LENGTH, 5)
    x = x / x.norm(dim=-1, keepdim=True)
    cond = Condition(torch.tensor([0, 1]), torch.tensor([0.3, -1.0]), torch.randn(2, LENGTH, 2))
    with torch.no_grad():
        t = torch.tensor([0.2, 0.7])
        torch.testing.assert_close(loaded(x, t, cond), model.eval()(x, t, cond))


def test_format_1_files_read_as_unconditional_fixed_length(tmp_path):
    path = tmp_path / MODEL_FILE
    make_checkpoint(path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
    for key in ("variable_length", "value", "signal"):
        del metadata[key]
    metadata["format_version"] = "1"
    del metadata[CHECKSUM_KEY]  # format 1 files carry a checksum of their tensors, or none
    save_file(load_file(str(path)), str(path), metadata)
    with pytest.warns(UserWarning, match="format 1 file of an older seqflow"):
        _, meta = load_model(path)
    assert not meta.variable_length and meta.value is None and meta.signal is None
