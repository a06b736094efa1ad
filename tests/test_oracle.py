"""Oracles: the built-in CNN learns planted signals, round-trips through its file, refuses bad
files and inputs; external TorchScript models match their in-process outputs exactly."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from seqflow._version import __version__
from seqflow.checkpoint import ModelMeta, save_model
from seqflow.config import Config
from seqflow.data import read_sequences
from seqflow.errors import CheckpointError, InvalidInputError
from seqflow.io_utils import CHECKSUM_KEY, file_checksum
from seqflow.models import build_model
from seqflow.oracle import (
    BuiltinOracle,
    ExternalOracle,
    Oracle,
    fit_oracle,
    load_oracle,
    save_oracle,
)
from seqflow.oracle.storage import FORMAT_VERSION

MOTIF = "GATAAG"
LENGTH = 40
TINY = {"hidden": 16, "depth": 1, "kernel_size": 7, "batch_size": 64, "lr": 1e-2}


def one_line(error_type, fn, *args, **kwargs) -> str:
    """Call ``fn`` expecting ``error_type``; return its one-line message."""
    with pytest.raises(error_type) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def random_seqs(rng: np.random.Generator, n: int, length: int) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), length)) for _ in range(n)]


def plant(seq: str, rng: np.random.Generator) -> str:
    p = int(rng.integers(0, len(seq) - len(MOTIF) + 1))
    return seq[:p] + MOTIF + seq[p + len(MOTIF) :]


def gc(seq: str) -> float:
    return (seq.count("G") + seq.count("C")) / len(seq)


@pytest.fixture(scope="module")
def table_path(tmp_path_factory) -> Path:
    """1000 records of 30..40 bp: class ``motif`` holds GATAAG, ``random`` not; value = GC."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("oracle") / "train.csv"
    lines = ["id,sequence,cls,gc"]
    for i in range(1000):
        seq = random_seqs(rng, 1, int(rng.integers(30, LENGTH + 1)))[0]
        seq, cls = (plant(seq, rng), "motif") if i % 2 else (seq, "random")
        lines.append(f"r{i},{seq},{cls},{gc(seq)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def table(table_path):
    return read_sequences(table_path, alphabet="dna", label_col="cls", value_col="gc")


@pytest.fixture(scope="module")
def classifier(table):
    return fit_oracle(table, target="label", steps=400, valid_frac=0.2, seed=0, **TINY)


@pytest.fixture(scope="module")
def regressor(table):
    return fit_oracle(table, target="value", steps=200, valid_frac=0.2, seed=0, **TINY)


# --- built-in oracle: learning ----------------------------------------------------------------


def test_classifier_learns_a_planted_motif(classifier):
    oracle, report = classifier
    assert isinstance(oracle, Oracle)
    assert (report.kind, report.target, report.metric_name) == ("classifier", "label", "accuracy")
    assert (report.n_train, report.n_valid, report.steps) == (800, 200, 400)
    assert report.metric > 0.9
    assert oracle.metric == report.metric
    assert oracle.output_names == ("motif", "random")
    rng = np.random.default_rng(1)
    plain = random_seqs(rng, 100, 36)
    planted = [plant(s, rng) for s in random_seqs(rng, 100, 36)]
    p = oracle.predict(plain + planted, batch_size=32)
    assert p.shape == (200, 2)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    accuracy = ((p[:, 0] > 0.5) == np.repeat([False, True], 100)).mean()
    assert accuracy > 0.9
    assert oracle.embed(plain[:7]).shape == (7, 16)


def test_regressor_learns_gc_content(regressor):
    oracle, report = regressor
    assert (report.kind, report.metric_name, oracle.output_names) == ("regressor", "r2", ("value",))
    assert report.metric > 0.8
    rng = np.random.default_rng(2)
    seqs = [random_seqs(rng, 1, int(n))[0] for n in rng.integers(20, LENGTH + 1, 200)]
    truth = np.array([gc(s) for s in seqs])
    pred = oracle.predict(seqs)
    assert pred.shape == (200, 1)
    r2 = 1 - ((pred[:, 0] - truth) ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    assert r2 > 0.8


def test_fit_is_deterministic_for_a_seed(table):
    seqs = random_seqs(np.random.default_rng(3), 20, 35)
    fits = [fit_oracle(table, steps=15, seed=s, **TINY)[0] for s in (5, 5, 6)]
    a, b, c = (torch.from_numpy(o.predict(seqs)) for o in fits)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(torch.from_numpy(fits[0].embed(seqs)), torch.from_numpy(fits[1].embed(seqs)))


def test_padding_does_not_change_the_output(classifier):
    """Padding rows are left out of every layer and of the pooling."""
    network = classifier[0].network
    x = torch.eye(4)[torch.randint(0, 4, (3, 25), generator=torch.Generator().manual_seed(0))]
    padded = torch.cat([x, torch.zeros(3, 15, 4)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(network(padded), network(x), rtol=1e-5, atol=1e-6)


def test_progress_reports_every_log_every_steps(table):
    seen = []
    fit_oracle(table, steps=25, log_every=10, on_progress=seen.append, **TINY)
    assert [p.step for p in seen] == [10, 20, 25]
    assert all(p.steps == 25 and np.isfinite(p.loss) and p.seconds > 0 for p in seen)


def test_fit_refuses_a_missing_target_or_bad_settings(table_path, table):
    unlabelled = read_sequences(table_path, alphabet="dna")
    assert str(table_path) in one_line(InvalidInputError, fit_oracle, unlabelled, target="label")
    assert str(table_path) in one_line(InvalidInputError, fit_oracle, unlabelled, target="value")
    assert "target" in one_line(InvalidInputError, fit_oracle, table, target="cls")
    assert "valid_frac" in one_line(InvalidInputError, fit_oracle, table, valid_frac=1.0)
    assert "kernel_size" in one_line(InvalidInputError, fit_oracle, table, kernel_size=4)


def test_predict_names_the_bad_sequence(classifier):
    oracle = classifier[0]
    message = one_line(InvalidInputError, oracle.predict, ["ACGT", "ACNT"])
    assert "sequence 1" in message
    assert "'N'" in message
    assert "position 3" in message
    message = one_line(InvalidInputError, oracle.embed, ["A" * (LENGTH + 1)])
    assert f"sequence 0 has length {LENGTH + 1}" in message
    assert "single string" in one_line(InvalidInputError, oracle.predict, "ACGT")
    message = one_line(InvalidInputError, oracle.predict, ["AC", "Aé"])
    assert "sequence 1 has letter 'é' at position 2" in message
    np.testing.assert_array_equal(oracle.predict(["acgtac"]), oracle.predict(["ACGTAC"]))
    assert oracle.predict([]).shape == (0, 2)


# --- built-in oracle: files -------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["classifier", "regressor"])
def test_save_load_round_trip(tmp_path, request, fixture):
    oracle, report = request.getfixturevalue(fixture)
    path = tmp_path / "oracle.safetensors"
    save_oracle(oracle, path)
    assert [p.name for p in tmp_path.iterdir()] == ["oracle.safetensors"]
    loaded = load_oracle(path)
    assert isinstance(loaded, BuiltinOracle)
    seqs = random_seqs(np.random.default_rng(4), 50, 33)
    np.testing.assert_array_equal(loaded.predict(seqs), oracle.predict(seqs))
    np.testing.assert_array_equal(loaded.embed(seqs), oracle.embed(seqs))
    for field in ("kind", "letters", "input_length", "output_names", "config", "metric"):
        assert getattr(loaded, field) == getattr(oracle, field)
    assert (loaded.value_mean, loaded.value_std) == (oracle.value_mean, oracle.value_std)
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["format"] == "seqflow-oracle"
    assert meta["seqflow_version"] == __version__
    assert (meta["kind"], meta["alphabet"], meta["input_length"]) == (report.kind, "ACGT", "40")
    assert json.loads(meta["metric"]) == {"name": report.metric_name, "value": report.metric}
    value = json.loads(meta["value"])
    if report.kind == "regressor":
        assert value == {"mean": oracle.value_mean, "std": oracle.value_std}
        assert 0.3 < value["mean"] < 0.7
    else:
        assert value is None
    assert str(path) in one_line(InvalidInputError, loaded.predict, ["ACGU"])


def rewrite_metadata(path: Path, **changes: str) -> None:
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
    metadata.update(changes)
    metadata[CHECKSUM_KEY] = file_checksum(tensors, metadata)  # damaged, yet signed: the parser
    save_file(tensors, str(path), metadata)


@pytest.fixture
def saved(tmp_path, classifier) -> Path:
    path = tmp_path / "oracle.safetensors"
    save_oracle(classifier[0], path)
    return path


def test_damaged_or_foreign_files_are_refused(tmp_path, saved):
    missing = tmp_path / "nope.safetensors"
    assert "no such oracle file" in one_line(CheckpointError, load_oracle, missing)
    garbage = tmp_path / "notes.safetensors"
    garbage.write_text("these are not weights\n")
    assert str(garbage) in one_line(CheckpointError, load_oracle, garbage)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    assert str(truncated) in one_line(CheckpointError, load_oracle, truncated)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(foreign))
    assert "not a seqflow oracle" in one_line(CheckpointError, load_oracle, foreign)


def test_a_generator_checkpoint_is_not_an_oracle(tmp_path):
    cfg = Config().with_overrides({"model.hidden": 16, "model.depth": 1, "model.time_dim": 16})
    model = build_model(cfg.model, vocab=4, length=12, num_labels=0)
    meta = ModelMeta(config=cfg, alphabet={"name": "dna", "letters": "ACGT"}, labels=(), length=12,
                     step=1)  # fmt: skip
    path = tmp_path / "model.safetensors"
    save_model(path, model.state_dict(), model.state_dict(), meta)
    message = one_line(CheckpointError, load_oracle, path)
    assert str(path) in message
    assert "generator checkpoint" in message


@pytest.mark.parametrize(
    "changes",
    [
        {"format_version": "one"},
        {"kind": "oracle"},
        {"output_names": "[motif"},
        {"output_names": json.dumps(["only one"])},
        {"alphabet": "A"},
        {"input_length": "long"},
        {"network": json.dumps({"hidden": 16})},
        {"metric": "{}"},
    ],
)
def test_damaged_metadata(saved, changes):
    rewrite_metadata(saved, **changes)
    assert str(saved) in one_line(CheckpointError, load_oracle, saved)


def test_newer_format_and_mismatched_weights(saved):
    rewrite_metadata(saved, format_version=str(FORMAT_VERSION + 1))
    assert "newer" in one_line(CheckpointError, load_oracle, saved)
    network = json.dumps({"hidden": 8, "depth": 1, "kernel_size": 7, "pool": 4})
    rewrite_metadata(saved, format_version=str(FORMAT_VERSION), network=network)
    assert "do not match" in one_line(CheckpointError, load_oracle, saved)


def test_save_into_a_missing_folder(tmp_path, classifier):
    path = tmp_path / "no" / "oracle.safetensors"
    assert "does not exist" in one_line(InvalidInputError, save_oracle, classifier[0], path)


# --- external TorchScript oracles -------------------------------------------------------------

EXT_LENGTH, OUTPUTS = 11, 5
NAMES = ["HeLa|H3K4me3|1", "HeLa|DNase|2", "K562|H3K4me3|3", "K562|CTCF|4", "GM|H3K4me3|5"]


class TinyCNN(nn.Module):
    """Position-aware (flattened) CNN, so a wrong padding layout changes its output."""

    def __init__(self, ncl: bool, outputs: int = OUTPUTS, extra_dim: bool = False) -> None:
        super().__init__()
        self.ncl = ncl
        self.extra_dim = extra_dim
        self.conv = nn.Conv1d(4, 6, 3)
        self.head = nn.Linear(6 * (EXT_LENGTH - 2), outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.ncl else x.transpose(1, 2)
        return torch.tanh(self.conv(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.features(x).flatten(1))
        return y[:, :, None] if self.extra_dim else y

    @torch.jit.export
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=-1)


class NoEmbed(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(dim=1) * torch.tensor([1.0, 2.0, 3.0, 4.0])


def script(module: nn.Module, path: Path, trace: bool = False) -> nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.x
        example = torch.zeros(1, EXT_LENGTH, 4)
        compiled = torch.jit.trace(module, example) if trace else torch.jit.script(module)
        compiled.save(str(path))
    return module


def hand_one_hot(seqs: list[str], layout: str, pad_mode: str, pad: float = 0.25) -> torch.Tensor:
    """An independent, loop-based build of the padded one-hot input."""
    x = np.full((len(seqs), EXT_LENGTH, 4), pad, dtype=np.float32)
    for i, seq in enumerate(seqs):
        left = (EXT_LENGTH - len(seq)) // 2 if pad_mode == "center" else 0
        for j, letter in enumerate(seq):
            x[i, left + j] = np.eye(4)["ACGT".index(letter)]
    t = torch.from_numpy(x)
    return t.transpose(1, 2).contiguous() if layout == "NCL" else t


SEQS = ["ACGTACGTACG", "GATAAG", "TTGCA", "C", ""]


@pytest.mark.parametrize("layout", ["NLC", "NCL"])
@pytest.mark.parametrize("pad_mode", ["center", "right"])
@pytest.mark.parametrize("trace", [False, True])
def test_torchscript_round_trip(tmp_path, layout, pad_mode, trace):
    path = tmp_path / "oracle.pt"
    module = script(TinyCNN(ncl=layout == "NCL"), path, trace=trace and layout == "NLC")
    oracle = ExternalOracle.load(path, input_length=EXT_LENGTH, layout=layout, pad_mode=pad_mode)
    assert isinstance(oracle, Oracle)
    assert (oracle.kind, oracle.width) == ("external", OUTPUTS)
    assert oracle.output_names == tuple(f"output_{i}" for i in range(OUTPUTS))
    x = hand_one_hot(SEQS, layout, pad_mode)
    torch.testing.assert_close(oracle.inputs(SEQS), x, rtol=0, atol=0)
    with torch.no_grad():
        want, want_embed = module(x), module.embed(x)
    np.testing.assert_allclose(oracle.predict(SEQS, batch_size=2), want.numpy(), rtol=1e-6,
                               atol=1e-6)  # fmt: skip
    np.testing.assert_allclose(oracle.embed(SEQS), want_embed.numpy(), rtol=1e-6, atol=1e-6)


def test_padding_layout_matters(tmp_path):
    """Center and right padding give different outputs for short sequences (not a no-op)."""
    path = tmp_path / "oracle.pt"
    script(TinyCNN(ncl=False), path)
    center = ExternalOracle.load(path, input_length=EXT_LENGTH, pad_mode="center")
    right = ExternalOracle.load(path, input_length=EXT_LENGTH, pad_mode="right", pad_value=0.0)
    assert not np.allclose(center.predict(["ACG"]), right.predict(["ACG"]))
    np.testing.assert_allclose(center.predict([SEQS[0]]), right.predict([SEQS[0]]), rtol=1e-6)


def test_column_selection_by_index_and_by_name(tmp_path):
    path = tmp_path / "oracle.pt"
    module = script(TinyCNN(ncl=False), path)
    with torch.no_grad():
        raw = module(hand_one_hot(SEQS, "NLC", "center")).numpy()
    load = lambda **kw: ExternalOracle.load(path, input_length=EXT_LENGTH, **kw)  # noqa: E731
    kept = load(columns=[3, 0], reduce="none")
    np.testing.assert_allclose(kept.predict(SEQS), raw[:, [3, 0]], rtol=1e-6)
    assert kept.output_names == ("output_3", "output_0")
    np.testing.assert_allclose(
        load(columns=[3, 0]).predict(SEQS), raw[:, [3, 0]].mean(axis=1, keepdims=True), rtol=1e-5
    )
    names = tmp_path / "names.txt"
    names.write_text("\n".join(NAMES) + "\n\n")
    mean = load(names_file=str(names), select="H3K4me3")
    assert mean.output_names == ("H3K4me3",)
    assert mean.columns == (0, 2, 4)
    np.testing.assert_allclose(
        mean.predict(SEQS), raw[:, [0, 2, 4]].mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-7
    )
    every = load(names_file=str(names), select="H3K4me3", reduce="none")
    assert every.output_names == (NAMES[0], NAMES[2], NAMES[4])
    np.testing.assert_allclose(every.predict(SEQS), raw[:, [0, 2, 4]], rtol=1e-6)
    assert load(names_file=str(names)).output_names == tuple(NAMES)


def test_embed_falls_back_to_the_selected_outputs(tmp_path):
    path = tmp_path / "plain.pt"
    script(NoEmbed(), path)
    oracle = ExternalOracle.load(path, input_length=EXT_LENGTH, columns=[1, 3], pad_mode="right")
    x = hand_one_hot(SEQS, "NLC", "right")
    raw = NoEmbed()(x).numpy()
    np.testing.assert_allclose(oracle.embed(SEQS), raw[:, [1, 3]], rtol=1e-6)
    np.testing.assert_allclose(oracle.predict(SEQS), raw[:, [1, 3]].mean(1, keepdims=True))


def test_external_bad_inputs(tmp_path):
    path = tmp_path / "oracle.pt"
    script(TinyCNN(ncl=False), path)
    names = tmp_path / "names.txt"
    names.write_text("\n".join([*NAMES, "extra"]) + "\n")
    load = lambda **kw: ExternalOracle.load(path, input_length=EXT_LENGTH, **kw)  # noqa: E731
    message = one_line(InvalidInputError, load, names_file=str(names), select="H3K4me3")
    assert message == f"{path}: output has 5 columns but {names} lists 6"
    message = one_line(InvalidInputError, load, columns=[0, 5])
    assert str(path) in message
    assert "column 5 is out of range" in message
    names.write_text("\n".join(NAMES))
    message = one_line(InvalidInputError, load, names_file=str(names), select="H3K27ac")
    assert str(names) in message
    assert "'H3K27ac'" in message
    assert "names_file" in one_line(InvalidInputError, load, select="H3K4me3")
    assert "layout" in one_line(InvalidInputError, load, layout="LNC")
    oracle = load()
    message = one_line(InvalidInputError, oracle.predict, ["ACGT", "A" * (EXT_LENGTH + 1)])
    assert message.startswith(f"{path}: sequence 1 has length {EXT_LENGTH + 1}")
    message = one_line(InvalidInputError, oracle.predict, ["ACGTN"])
    assert message.startswith(f"{path}: sequence 0 has letter 'N' at position 5")
    wrong = tmp_path / "wrong_length.pt"
    script(TinyCNN(ncl=False), wrong)
    message = one_line(InvalidInputError, ExternalOracle.load, wrong, input_length=20)
    assert str(wrong) in message
    assert "failed on input of shape (1, 20, 4)" in message


def test_external_bad_files(tmp_path):
    three_d = tmp_path / "three_d.pt"
    script(TinyCNN(ncl=False, extra_dim=True), three_d)
    message = one_line(InvalidInputError, ExternalOracle.load, three_d, input_length=EXT_LENGTH)
    assert f"{three_d}: output has shape (1, 5, 1)" in message
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not torchscript" * 10)
    message = one_line(CheckpointError, ExternalOracle.load, garbage, input_length=EXT_LENGTH)
    assert message.startswith(f"{garbage}: not a TorchScript file")
    missing = tmp_path / "missing.pt"
    assert str(missing) in one_line(CheckpointError, ExternalOracle.load, missing, input_length=4)
