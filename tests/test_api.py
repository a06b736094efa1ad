"""The Python API: ``fit`` writes a complete run folder, refuses to clobber, resumes, cleans up
after failures; ``sample`` writes FASTA with labels and rejects bad labels."""

from __future__ import annotations

import importlib
import io
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from Bio import SeqIO

from seqflow import api
from seqflow.api._dataset import load_dataset
from seqflow.checkpoint import load_model
from seqflow.config import Config, load_preset
from seqflow.errors import CheckpointError, ConfigError, InvalidInputError
from seqflow.flow import FlowMatching
from seqflow.run import MODEL_FILE, STATE_FILE
from seqflow.training import TrainingDivergedError

CELL_TYPES = ("GM12878", "HepG2", "K562", "hESCT0")


@pytest.fixture(scope="module")
def fasta_run(tmp_path_factory, tiny_fasta, tiny_fit_kwargs):
    """A tiny unlabelled run on tiny.fasta: (result, plans, progress reports)."""
    out = tmp_path_factory.mktemp("fasta") / "run"
    plans, reports = [], []
    result = api.fit(
        tiny_fasta, out=out, on_start=plans.append, on_progress=reports.append, **tiny_fit_kwargs
    )
    return result, plans, reports


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory, tiny_csv, tiny_fit_kwargs):
    """A tiny run on tiny.csv conditioned on ``cell_type``, with the preset left to ``fit``."""
    out = tmp_path_factory.mktemp("csv") / "run"
    kwargs = {**tiny_fit_kwargs, "preset": None}
    plans = []
    result = api.fit(tiny_csv, out=out, label_col="cell_type", on_start=plans.append, **kwargs)
    return result, plans


def read_metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def copy_run(result: api.FitResult, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(result.run_dir, target)
    return target


# --- fit --------------------------------------------------------------------------------------


def test_fit_writes_a_complete_run_folder(fasta_run):
    result, _, _ = fasta_run
    run_dir = result.run_dir
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        [MODEL_FILE, STATE_FILE, "checkpoints", "config.yaml", "metrics.jsonl", "train.fasta.gz"]
    )
    assert result.checkpoint == run_dir / MODEL_FILE
    assert result.steps == 30
    assert result.loss is not None and math.isfinite(result.loss)
    assert result.valid_loss is not None and math.isfinite(result.valid_loss)

    cfg = Config.from_dict(yaml.safe_load((run_dir / "config.yaml").read_text()))
    assert (cfg.model.hidden, cfg.model.depth, cfg.train.steps) == (16, 2, 30)
    model, meta = load_model(run_dir)
    assert meta.config == cfg
    assert meta.step == 30
    assert meta.length == 24
    assert meta.alphabet["letters"] == "ACGT"
    assert meta.labels == ()
    assert model.num_labels == 0


def test_fit_metrics_are_json_lines(fasta_run):
    result, _, reports = fasta_run
    records = read_metrics(result.run_dir)
    assert [r["step"] for r in records] == [10, 20, 30]
    for record in records:
        assert math.isfinite(record["loss"]) and record["loss"] > 0
        assert record["lr"] > 0
    assert "valid_loss" not in records[0]
    assert all(math.isfinite(r["valid_loss"]) for r in records[1:])
    assert records[-1]["loss"] == result.loss
    assert records[-1]["valid_loss"] == result.valid_loss
    assert [p.step for p in reports] == [10, 20, 30]


def test_fit_reports_its_plan(fasta_run):
    result, plans, _ = fasta_run
    (plan,) = plans
    assert plan.run_dir == result.run_dir
    assert (plan.n_train, plan.n_valid) == (61, 3)
    assert (plan.length, plan.arch, plan.device) == (24, "cnn", "cpu")
    assert (plan.start_step, plan.steps, plan.preset) == (0, 30, "dna")
    assert plan.parameters > 0


def test_fit_refuses_an_existing_run(fasta_run, tiny_fasta, tiny_fit_kwargs):
    result, _, _ = fasta_run
    before = (result.run_dir / MODEL_FILE).read_bytes()
    with pytest.raises(InvalidInputError) as info:
        api.fit(tiny_fasta, out=result.run_dir, **tiny_fit_kwargs)
    assert "--resume" in str(info.value)
    assert str(result.run_dir) in str(info.value)
    assert (result.run_dir / MODEL_FILE).read_bytes() == before


def resume_kwargs(tiny_fit_kwargs: dict, **changes) -> dict:
    kwargs = {k: v for k, v in tiny_fit_kwargs.items() if k != "preset"}
    return {**kwargs, "resume": True, **changes}


def test_resume_continues_to_more_steps(fasta_run, tiny_fasta, tiny_fit_kwargs, tmp_path):
    run_dir = copy_run(fasta_run[0], tmp_path)
    plans = []
    result = api.fit(
        tiny_fasta, out=run_dir, on_start=plans.append,
        **resume_kwargs(tiny_fit_kwargs, steps=40),
    )  # fmt: skip
    assert plans[0].start_step == 30
    assert plans[0].preset == "resumed"
    assert result.steps == 40
    assert [r["step"] for r in read_metrics(run_dir)] == [10, 20, 30, 40]
    _, meta = load_model(run_dir)
    assert meta.step == 40
    assert meta.config.train.steps == 40


def test_resume_with_a_changed_model_key_is_an_error(
    fasta_run, tiny_fasta, tiny_fit_kwargs, tmp_path
):
    run_dir = copy_run(fasta_run[0], tmp_path)
    before = (run_dir / MODEL_FILE).read_bytes()
    kwargs = resume_kwargs(tiny_fit_kwargs, steps=40)
    kwargs["overrides"] = [*kwargs["overrides"], "model.hidden=32"]
    with pytest.raises(ConfigError) as info:
        api.fit(tiny_fasta, out=run_dir, **kwargs)
    assert "model.hidden" in str(info.value)
    assert (run_dir / MODEL_FILE).read_bytes() == before


@pytest.mark.parametrize(
    ("override", "allowed"),
    [("sample.steps=7", True), ("flow.coupling=independent", False),
     ("description=renamed", True), ("hardware=gpu", False)],
)  # fmt: skip
def test_resume_allows_only_train_and_sample_changes(
    fasta_run, tiny_fasta, tiny_fit_kwargs, tmp_path, override, allowed
):
    run_dir = copy_run(fasta_run[0], tmp_path)
    more = tiny_fit_kwargs["steps"] + 2
    kwargs = resume_kwargs(tiny_fit_kwargs, steps=more)
    kwargs["overrides"] = [*kwargs["overrides"], override]
    if allowed:
        assert api.fit(tiny_fasta, out=run_dir, **kwargs).steps == more
    else:
        with pytest.raises(ConfigError, match=override.split("=")[0]):
            api.fit(tiny_fasta, out=run_dir, **kwargs)


def test_resume_with_a_preset_is_an_error(fasta_run, tiny_fasta, tiny_fit_kwargs, tmp_path):
    run_dir = copy_run(fasta_run[0], tmp_path)
    with pytest.raises(ConfigError, match="--resume"):
        api.fit(tiny_fasta, out=run_dir, **{**tiny_fit_kwargs, "resume": True})


def test_resume_without_a_run_is_an_error(tiny_fasta, tiny_fit_kwargs, run_dir):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        api.fit(tiny_fasta, out=run_dir, **resume_kwargs(tiny_fit_kwargs))
    assert not run_dir.exists()


def test_resume_on_other_data_is_an_error(fasta_run, tiny_fit_kwargs, tmp_path):
    run_dir = copy_run(fasta_run[0], tmp_path)
    other = tmp_path / "other.fasta"
    other.write_text("".join(f">s{i}\n{'ACGT' * 3}\n" for i in range(8)))
    with pytest.raises(InvalidInputError, match="changed since the run recorded it"):
        api.fit(other, out=run_dir, **resume_kwargs(tiny_fit_kwargs))
    with pytest.raises(InvalidInputError, match="does not match"):  # allowed, yet other data
        api.fit(other, out=run_dir, **resume_kwargs(tiny_fit_kwargs, allow_changed_data=True))


def test_failing_fit_on_bad_data_leaves_no_run_folder(tmp_path, tiny_fit_kwargs, run_dir):
    bad = tmp_path / "bad.fasta"
    bad.write_text(">a\nACGX\n>b\nACGT\n")
    with pytest.raises(InvalidInputError, match="X"):
        api.fit(bad, out=run_dir, **tiny_fit_kwargs)
    assert not run_dir.exists()


def test_diverging_fit_leaves_no_run_folder(tiny_fasta, tiny_fit_kwargs, run_dir):
    kwargs = {
        **tiny_fit_kwargs,
        "overrides": [*tiny_fit_kwargs["overrides"], "train.lr=1e6", "train.max_bad_steps=3"],
    }
    with pytest.raises(TrainingDivergedError):
        api.fit(tiny_fasta, out=run_dir, **kwargs)
    assert not run_dir.exists()


def test_diverging_fit_removes_the_folders_it_created(tiny_fasta, tiny_fit_kwargs, tmp_path):
    kwargs = {
        **tiny_fit_kwargs,
        "overrides": [*tiny_fit_kwargs["overrides"], "train.lr=1e6", "train.max_bad_steps=3"],
    }
    with pytest.raises(TrainingDivergedError):
        api.fit(tiny_fasta, out=tmp_path / "runs" / "nested" / "run", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_diverging_resume_keeps_the_previous_run(
    fasta_run, tiny_fasta, tiny_fit_kwargs, tmp_path, monkeypatch
):
    run_dir = copy_run(fasta_run[0], tmp_path)
    before = (run_dir / MODEL_FILE).read_bytes()
    monkeypatch.setattr(FlowMatching, "loss", lambda self, v, u_t: (v - u_t).sum() * float("nan"))
    with pytest.raises(TrainingDivergedError):
        kwargs = resume_kwargs(tiny_fit_kwargs, steps=40)
        kwargs["overrides"] = [*kwargs["overrides"], "train.max_bad_steps=3"]
        api.fit(tiny_fasta, out=run_dir, **kwargs)
    assert (run_dir / MODEL_FILE).read_bytes() == before
    assert (run_dir / STATE_FILE).is_file()


# --- labelled runs and sample -----------------------------------------------------------------


def test_csv_run_knows_its_labels(csv_run):
    result, plans = csv_run
    assert plans[0].preset == "dna"  # chosen from the alphabet
    assert plans[0].labels == CELL_TYPES
    model, meta = load_model(result.run_dir)
    assert meta.labels == CELL_TYPES
    assert model.num_labels == len(CELL_TYPES)


def test_sample_with_a_label_writes_labelled_headers(csv_run, tmp_path):
    output = tmp_path / "k562.fasta"
    progress = []
    result = api.sample(
        csv_run[0].run_dir, n=12, label="K562", output=output, seed=1, batch_size=5,
        device="cpu", on_progress=lambda done, n: progress.append((done, n)),
    )  # fmt: skip
    assert result.output == str(output)
    assert result.label == "K562"
    records = list(SeqIO.parse(output, "fasta"))
    assert [r.id for r in records] == [f"sample_K562_{i}" for i in range(1, 13)]
    # the dna preset's sample.guidance (1.5) guides a labelled model, and the header says so
    assert all(r.description == f"{r.id} label=K562 guidance=1.5 seed=1" for r in records)
    assert [str(r.seq) for r in records] == list(result.sequences)
    assert all(len(r.seq) == 24 and set(str(r.seq)) <= set("ACGT") for r in records)
    assert progress == [(5, 12), (10, 12), (12, 12)]


@pytest.mark.parametrize("guidance", [0.0, 2.0])
def test_sample_with_guidance(csv_run, tmp_path, guidance):
    result = api.sample(
        csv_run[0].run_dir, n=4, label="HepG2", guidance=guidance, output=tmp_path / "g.fa",
        device="cpu",
    )  # fmt: skip
    assert len(result.sequences) == 4


def test_unknown_label_lists_known_labels(csv_run, tmp_path):
    output = tmp_path / "x.fasta"
    with pytest.raises(InvalidInputError) as info:
        api.sample(csv_run[0].run_dir, n=3, label="HeLa", output=output, device="cpu")
    message = str(info.value)
    assert "HeLa" in message
    assert all(name in message for name in CELL_TYPES)
    assert not output.exists()


def test_label_on_an_unlabelled_model_is_an_error(fasta_run, tmp_path):
    output = tmp_path / "x.fasta"
    with pytest.raises(InvalidInputError, match="without labels"):
        api.sample(fasta_run[0].run_dir, n=3, label="K562", output=output, device="cpu")
    assert not output.exists()


@pytest.mark.parametrize("n", [0, -3])
def test_sample_needs_a_positive_count(fasta_run, tmp_path, n):
    with pytest.raises(InvalidInputError, match="-n"):
        api.sample(fasta_run[0].run_dir, n=n, output=tmp_path / "x.fa", device="cpu")
    assert list(tmp_path.iterdir()) == []


def test_sample_is_reproducible_by_seed(fasta_run, tmp_path):
    run = fasta_run[0].run_dir
    a = api.sample(run, n=20, seed=7, output=tmp_path / "a.fa", device="cpu")
    b = api.sample(run, n=20, seed=7, output=tmp_path / "b.fa", device="cpu", batch_size=8)
    c = api.sample(run, n=20, seed=8, output=tmp_path / "c.fa", device="cpu")
    assert a.sequences == b.sequences
    assert (tmp_path / "a.fa").read_bytes() == (tmp_path / "b.fa").read_bytes()
    assert a.sequences != c.sequences


def test_sample_writes_to_stdout_without_output(fasta_run, capsys):
    result = api.sample(fasta_run[0].run_dir, n=5, seed=3, device="cpu")
    assert result.output == "-"
    records = list(SeqIO.parse(io.StringIO(capsys.readouterr().out), "fasta"))
    assert [str(r.seq) for r in records] == list(result.sequences)
    assert all(r.description == f"{r.id} seed=3" for r in records)  # no label suffix


def test_sample_from_a_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        api.sample(tmp_path / "nope", n=3, output=tmp_path / "x.fa", device="cpu")


@pytest.mark.parametrize("name", ["dna", "protein"])
def test_default_presets_leave_how_data_are_read_to_the_command_line(name):
    """``fit`` without a preset reads the data before the alphabet picks dna or protein, so
    those presets must not set what reading uses: data.*, library.*, mode, train.seed."""
    preset, default = load_preset(name), Config()
    assert preset.data == default.data and preset.library == default.library
    assert preset.mode == default.mode and preset.train.seed == default.train.seed


def test_fit_without_a_preset_reads_the_data_once(tiny_fasta, tiny_fit_kwargs, tmp_path,
                                                  monkeypatch):  # fmt: skip
    """``--set data.*`` without a preset used to read the file twice."""
    fit_module = importlib.import_module("seqflow.api.fit")  # the module, not the function
    reads = []

    def counted(*args, **kwargs):
        reads.append(args[1])
        return load_dataset(*args, **kwargs)

    monkeypatch.setattr(fit_module, "load_dataset", counted)
    kwargs = {**tiny_fit_kwargs, "preset": None, "steps": 2}
    kwargs["overrides"] = [*kwargs["overrides"], "data.valid_frac=0.25"]
    plans: list = []
    result = api.fit(tiny_fasta, out=tmp_path / "run", on_start=plans.append, **kwargs)
    assert len(reads) == 1 and reads[0].valid_frac == 0.25
    assert plans[0].preset == "dna" and result.steps == 2


def test_auto_transformer_with_heads_not_dividing_hidden_is_a_config_error(tmp_path, run_dir):
    data = tmp_path / "pep.fasta"
    data.write_text("".join(f">p{i}\nMKVLAWYRSTDEQ\n" for i in range(8)))
    with pytest.raises(ConfigError, match=r"model.heads: 3 must divide model.hidden \(64\)"):
        api.fit(data, out=run_dir, preset="protein", steps=1, device="cpu",
                overrides=["model.arch=auto", "model.hidden=64", "model.heads=3"])  # fmt: skip
    assert not run_dir.exists()
