"""``seqflow export``: a TorchScript sampler that reproduces ``seqflow sample`` in a process
without seqflow, an ONNX velocity graph within 1e-4 of PyTorch, a safetensors inference bundle
that samples like the run, and CLI errors that exit 2 with one line and leave no files.

One tiny trained run (unconditional, fixed length) and small checkpoints built directly
(random weights, any mix of conditions, variable length and sampling defaults) keep it fast.
"""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from seqflow import api
from seqflow.checkpoint import ModelMeta, load_model, save_model
from seqflow.cli import app
from seqflow.config import load_preset
from seqflow.errors import CheckpointError
from seqflow.export import load_scripted, run_onnx, velocity_inputs, velocity_kwargs
from seqflow.geometry import PositiveSphere
from seqflow.models import Condition, Standardizer, build_velocity_field
from seqflow.sampling import generate

LENGTH = 12
TINY_MODEL = {"model.hidden": 16, "model.depth": 2, "model.kernel_size": 3, "model.heads": 2,
              "model.time_dim": 16}  # fmt: skip
runner = CliRunner()
export_module = importlib.import_module("seqflow.api.export")  # seqflow.api.export is the function


def make_checkpoint(
    folder: Path,
    *,
    labels: tuple[str, ...] = (),
    value: bool = False,
    signal: int = 0,
    variable: bool = False,
    arch: str = "cnn",
    sample: dict | None = None,
) -> Path:
    """A run folder with a random model (no training): raw weights differ from the EMA's."""
    cfg = load_preset("dna").with_overrides({**TINY_MODEL, "model.arch": arch, **(sample or {})})
    meta = ModelMeta(
        config=cfg, alphabet={"name": "dna", "letters": "ACGT"}, labels=labels, length=LENGTH,
        step=0, variable_length=variable,
        value=Standardizer((0.5,), (0.2,), "gc") if value else None,
        signal=Standardizer((0.0,) * signal, (1.0,) * signal, "track") if signal else None,
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_velocity_field(meta)
    with torch.no_grad():  # zero-initialised output layers would give a nearly constant field
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    ema = model.state_dict()
    raw = {k: v + 1.0 if v.is_floating_point() else v for k, v in ema.items()}
    folder.mkdir(parents=True)
    save_model(folder / "model.safetensors", raw, ema, meta)
    return folder


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, tiny_fasta, tiny_fit_kwargs) -> Path:
    """Trained, unconditional, fixed length; samples with midpoint in batches of 3."""
    kwargs = dict(tiny_fit_kwargs)
    kwargs["overrides"] = [*kwargs["overrides"], "sample.solver=midpoint", "sample.batch_size=3"]
    out = tmp_path_factory.mktemp("plain") / "run"
    api.fit(tiny_fasta, out=out, **kwargs)
    return out


@pytest.fixture(scope="module")
def guided_run(tmp_path_factory) -> Path:
    """Labels and a value, variable length; rk4, drawn decoding, guidance 2, batches of 4."""
    sample = {"sample.solver": "rk4", "sample.decode": "sample", "sample.guidance": 2.0,
              "sample.batch_size": 4}  # fmt: skip
    return make_checkpoint(tmp_path_factory.mktemp("guided") / "run", labels=("a", "b", "c"),
                           value=True, variable=True, sample=sample)  # fmt: skip


@pytest.fixture(scope="module")
def scripted(tmp_path_factory, plain_run, guided_run) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("scripted")
    out = {}
    for name, run in (("plain", plain_run), ("guided", guided_run)):
        result = api.export(run, format="torchscript", output=folder / f"{name}.pt")
        assert result.max_abs_diff == 0.0 and result.sequences_checked > 0
        out[name] = Path(result.output)
    return out


# --- TorchScript -------------------------------------------------------------------------------

NO_SEQFLOW = """
import importlib.abc, json, sys

class NoSeqflow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "seqflow":
            raise ImportError("seqflow is hidden in this process")
        return None

sys.meta_path.insert(0, NoSeqflow())
try:
    import seqflow
except ImportError:
    pass
else:
    raise SystemExit("seqflow was importable")
import torch

plain = torch.jit.load(sys.argv[1])
guided = torch.jit.load(sys.argv[2])
print(json.dumps({
    "plain": plain.sample_sequences(7, seed=3, steps=5),
    "label": guided.sample_sequences(7, seed=3, steps=5, label="b"),
    "index": guided.sample_sequences(7, seed=3, steps=5, label=1),
    "value": guided.sample_sequences(7, seed=3, steps=5, label="c", value=0.7),
    "unconditional": guided.sample_sequences(7, seed=3, steps=5),
    "seqflow_loaded": "seqflow" in sys.modules,
}))
"""


def test_torchscript_sampler_without_seqflow_matches_seqflow_sample(
    scripted, plain_run, guided_run, tmp_path, cli_env
):
    ran = subprocess.run(
        [sys.executable, "-I", "-c", NO_SEQFLOW, str(scripted["plain"]), str(scripted["guided"])],
        capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    got = json.loads(ran.stdout)
    assert got.pop("seqflow_loaded") is False

    def sample(run: Path, **kwargs) -> list[str]:
        out = tmp_path / "s.fasta"
        return list(api.sample(run, n=7, seed=3, steps=5, output=out, **kwargs).sequences)

    assert got["plain"] == sample(plain_run)
    assert got["label"] == got["index"] == sample(guided_run, label="b")
    assert got["value"] == sample(guided_run, label="c", value=0.7)
    assert got["unconditional"] == sample(guided_run)
    lengths = {len(s) for key in ("label", "value", "unconditional") for s in got[key]}
    assert len(lengths) > 1 and max(lengths) <= LENGTH and min(lengths) >= 1
    assert {len(s) for s in got["plain"]} == {24}


@pytest.mark.parametrize("solver", ["euler", "midpoint", "rk4"])
@pytest.mark.parametrize("decode", ["argmax", "sample"])
def test_torchscript_solvers_and_decoders_match_generate(scripted, guided_run, solver, decode):
    loaded = load_scripted(scripted["guided"])
    model, meta = load_model(guided_run)
    std = float(meta.value.apply(torch.tensor([0.4]))[0])
    cond = Condition(labels=torch.tensor([2]), values=torch.tensor([std]))
    for guidance in (0.0, 1.0, 1.5):
        want = torch.cat(list(generate(
            model, n=5, length=LENGTH, vocab=meta.vocab, cond=cond, guidance=guidance, steps=3,
            solver=solver, decoder=decode, pad=meta.pad, geometry=PositiveSphere(), batch_size=2,
            seed=11, target=meta.config.flow.target,
        )))  # fmt: skip
        got = loaded.sample(5, seed=11, steps=3, label=2, value=0.4, guidance=guidance,
                            solver=solver, decode=decode, batch_size=2)  # fmt: skip
        assert torch.equal(got, want)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_file_carries_readme_and_metadata(scripted, guided_run):
    extra = {"README.md": "", "seqflow.json": ""}
    torch.jit.load(str(scripted["guided"]), _extra_files=extra)
    info = json.loads(extra["seqflow.json"])
    _, meta = load_model(guided_run)
    assert info["format"] == "seqflow-torchscript"
    assert info["config"] == meta.config.to_dict() and info["labels"] == ["a", "b", "c"]
    assert info["alphabet"]["letters"] == "ACGT" and info["pad"] == 4
    beside = Path(str(scripted["guided"]) + ".README.md").read_text()
    assert extra["README.md"].decode() == beside
    assert 'torch.jit.load("guided.pt"' in beside and "label=" in beside
    loaded = load_scripted(scripted["guided"])
    assert loaded.letters == "ACGT" and list(loaded.labels) == ["a", "b", "c"]


def test_torchscript_velocity_with_signal_and_dopri5_refused_when_sampling(tmp_path):
    run = make_checkpoint(tmp_path / "run", signal=2, value=True,
                          sample={"sample.solver": "dopri5"})  # fmt: skip
    with pytest.warns(UserWarning, match="dopri5"):
        api.export(run, format="torchscript", output=tmp_path / "m.pt")
    loaded = load_scripted(tmp_path / "m.pt")
    model, meta = load_model(run)
    inputs = velocity_inputs(model, length=LENGTH, vocab=meta.vocab, batch=3, seed=5)
    kwargs = velocity_kwargs(inputs)
    with torch.no_grad():
        want = model(inputs["x"], inputs["t"], Condition(**kwargs))
    assert torch.equal(loaded.velocity(inputs["x"], inputs["t"], **kwargs), want)
    assert torch.equal(loaded(inputs["x"], inputs["t"], **kwargs), want)  # forward = velocity
    assert torch.isfinite(want).all()
    with pytest.raises(torch.jit.Error, match="dopri5"):
        loaded.sample(2)
    with pytest.raises(torch.jit.Error, match="trained without labels"):
        loaded.sample(2, label="a", solver="rk4")
    assert loaded.sample(3, solver="rk4").shape == (3, LENGTH)


# --- ONNX --------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["cnn", "transformer"])
def test_onnx_velocity_matches_pytorch(tmp_path, arch):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    run = make_checkpoint(tmp_path / "run", labels=("x", "y"), value=True, signal=1, arch=arch)
    result = api.export(run, format="onnx", output=tmp_path / "v.onnx")
    assert result.max_abs_diff <= 1e-4
    graph = onnx.load(str(tmp_path / "v.onnx"))
    assert [i.name for i in graph.graph.input] == ["x", "t", "label", "value", "signal"]
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["seqflow"])["labels"] == ["x", "y"]
    model, meta = load_model(run)
    for batch in (1, 7):  # the graph was traced with 2: the batch axis is dynamic
        inputs = velocity_inputs(model, length=LENGTH, vocab=meta.vocab, batch=batch, seed=9)
        with torch.no_grad():
            want = model.velocity(inputs["x"], inputs["t"], **velocity_kwargs(inputs))
        got = run_onnx(tmp_path / "v.onnx", inputs)
        assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-4
    assert '"label": label' in Path(result.readme).read_text()


# --- safetensors -------------------------------------------------------------------------------


def test_safetensors_bundle_is_ema_only_and_samples_like_the_run(plain_run, tmp_path):
    result = api.export(plain_run, format="safetensors", output=tmp_path / "b.safetensors")
    assert result.max_abs_diff == 0.0
    with safe_open(result.output, framework="pt") as handle:
        keys, meta_b = list(handle.keys()), handle.metadata()
    with safe_open(str(plain_run / "model.safetensors"), framework="pt") as handle:
        meta_run = handle.metadata()
    assert keys and all(k.startswith("ema.") for k in keys)  # no raw weights, no optimizer
    own = ("seqflow_version", "checksum")  # the checksum covers each file's own tensors
    assert {k: v for k, v in meta_b.items() if k not in own} == {
        k: v for k, v in meta_run.items() if k not in own
    }
    assert (plain_run / "state.safetensors").exists()  # the run had trainer state; not copied
    bundle_model, _ = load_model(result.output)
    run_model, _ = load_model(plain_run)
    for key, value in run_model.state_dict().items():
        assert torch.equal(bundle_model.state_dict()[key], value)
    with pytest.raises(CheckpointError, match="no model weights"):
        load_model(result.output, weights="model")
    a = api.sample(result.output, n=5, seed=2, output=tmp_path / "a.fasta").sequences
    b = api.sample(plain_run, n=5, seed=2, output=tmp_path / "b.fasta").sequences
    assert a == b
    ran = runner.invoke(app, ["sample", result.output, "-n", "5", "--seed", "2"])
    lines = ran.stdout.splitlines()
    assert ran.exit_code == 0 and [s for s in lines if not s.startswith(">")] == list(a)


# --- command line ------------------------------------------------------------------------------


def _fail_check(monkeypatch):
    monkeypatch.setitem(export_module.TOLERANCE, "safetensors", -1.0)


def _no_onnx(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


ERRORS = {
    "unknown format": (["-f", "tflite", "-o", "m.x"], None, "unknown format"),
    "missing checkpoint": (["-f", "onnx", "-o", "m.onnx"], None, "no such run folder"),
    "missing onnx extra": (["-f", "onnx", "-o", "m.onnx"], _no_onnx, 'seqflow[onnx]'),
    "missing folder": (["-f", "torchscript", "-o", "no/m.pt"], None, "does not exist"),
    "overwrite checkpoint": (["-f", "safetensors", "-o", "run/model.safetensors"], None,
                             "overwrite the checkpoint"),
    "failed check": (["-f", "safetensors", "-o", "m.st"], _fail_check, "nothing was written"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_cli_error_is_one_line_exit_2_and_writes_nothing(name, tmp_path, monkeypatch):
    args, patch, expected = ERRORS[name]
    run = make_checkpoint(tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    if patch is not None:
        patch(monkeypatch)
    before = sorted(tmp_path.rglob("*"))
    source = "nothing" if name == "missing checkpoint" else "run"
    result = runner.invoke(app, ["export", source, *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:")
    assert expected in result.stderr, result.stderr
    assert sorted(tmp_path.rglob("*")) == before and run.is_dir()


def test_cli_export_reports_what_it_wrote_and_help_lists_formats(tmp_path, monkeypatch):
    make_checkpoint(tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["export", "run", "-f", "safetensors", "-o", "m.safetensors"])
    assert result.exit_code == 0, result.output
    assert "wrote m.safetensors" in result.stderr and "m.safetensors.README.md" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.safetensors",
        "m.safetensors.README.md",
        "run",
    ]
    text = runner.invoke(app, ["export", "--help"], terminal_width=100).stdout
    assert all(word in text for word in ("torchscript", "onnx", "safetensors", "README"))


def test_value_must_be_finite_in_the_scripted_sampler(scripted):
    loaded = load_scripted(scripted["guided"])
    with pytest.raises(torch.jit.Error, match="finite"):
        loaded.sample(2, value=math.inf)
    with pytest.raises(torch.jit.Error, match="unknown label"):
        loaded.sample(2, label="zzz")
