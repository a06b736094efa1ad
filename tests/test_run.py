"""The run folder (:mod:`seqflow.run`): the training data file round-trips through the readers,
checkpoints are pruned to the newest ``keep`` and recovered from the newest intact one, the
resume policy, stop signals, failure clean-up and the metrics log."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from Bio import SeqIO

from seqflow.api._dataset import load_dataset
from seqflow.checkpoint import ModelMeta, load_state
from seqflow.config import Config, DataConfig
from seqflow.data import read_libraries, read_sequences
from seqflow.errors import CheckpointError, ConfigError, InvalidInputError
from seqflow.models import build_velocity_field
from seqflow.run import (
    CHECKPOINTS_DIR,
    MODEL_FILE,
    STATE_FILE,
    check_resumable,
    intact_checkpoint,
    step_folder,
    step_folders,
    write_checkpoint,
    write_training_set,
)
from seqflow.run import training_set as training_set_module
from seqflow.run.failure import failure_handling, make_folder
from seqflow.run.metrics import metrics_logger
from seqflow.run.signals import stop_on_signals
from seqflow.training import Progress, TrainingStopped

TINY = Config().with_overrides(
    {"model.hidden": 8, "model.depth": 1, "model.kernel_size": 3, "model.time_dim": 8}
)


# --- the training data file ------------------------------------------------------------------


def test_training_set_file_is_chunked_and_byte_identical_for_the_same_data(
    tiny_fasta, tmp_path, monkeypatch
):
    """Decoded a few rows at a time, it holds every training record once, and two writes to
    different paths give the same bytes (no temporary name or time in the gzip header)."""
    ds = load_dataset(tiny_fasta, DataConfig(), seed=0)
    monkeypatch.setattr(training_set_module, "CHUNK_ROWS", 5)
    a, b = tmp_path / "a.fasta.gz", tmp_path / "b" / "train.fasta.gz"
    b.parent.mkdir()
    write_training_set(a, ds.table, [(ds.train_rows, {})])
    write_training_set(b, ds.table, [(ds.train_rows, {})])
    assert a.read_bytes() == b.read_bytes()
    source = {r.id: str(r.seq).upper() for r in SeqIO.parse(tiny_fasta, "fasta")}
    with gzip.open(a, "rt") as handle:
        written = {r.id: str(r.seq) for r in SeqIO.parse(handle, "fasta")}
    assert len(written) == len(ds.train)
    assert all(source[i] == seq for i, seq in written.items())


def test_sequence_training_set_round_trips_through_the_fasta_reader(tmp_path, monkeypatch):
    """Variable-length records come back with the same ids and tokens (padding stripped)."""
    data = tmp_path / "ragged.fasta"
    data.write_text("".join(f">s{i}\n{'ACGT' * (1 + i % 3)}{'TTG'[: i % 4]}\n" for i in range(11)))
    table = read_sequences(data, alphabet="dna")
    monkeypatch.setattr(training_set_module, "CHUNK_ROWS", 4)
    out = tmp_path / "train.fasta.gz"
    write_training_set(out, table, [(torch.arange(len(table)), {})])
    back = read_sequences(out, alphabet="dna")
    assert list(back.ids) == list(table.ids)
    assert torch.equal(back.tokens, table.tokens) and torch.equal(back.lengths, table.lengths)


def test_library_training_set_round_trips_through_the_fasta_reader(tmp_path):
    """Library mode writes every library's records with ``library=NAME`` in the header."""
    data = tmp_path / "libs.csv"
    rows = [(f"lib{i % 3}", "ACGTTGCA"[: 4 + i % 5]) for i in range(15)]
    data.write_text("library,sequence\n" + "".join(f"{lib},{seq}\n" for lib, seq in rows))
    libs = read_libraries(data, "library", alphabet="dna")
    groups = [
        (torch.as_tensor(r, dtype=torch.long), {"library": name})
        for name, r in libs.libraries.items()
    ]
    out = tmp_path / "libraries.fasta.gz"
    write_training_set(out, libs.table, groups)
    with gzip.open(out, "rt") as handle:
        records = list(SeqIO.parse(handle, "fasta"))
    grouped: dict[str, list[str]] = {}
    for record in records:
        (tag,) = [w for w in record.description.split() if w.startswith("library=")]
        grouped.setdefault(tag.removeprefix("library="), []).append(str(record.seq))
    assert grouped == libs.sequences()
    back = read_sequences(out, alphabet="dna")
    assert sorted(back.ids) == sorted(libs.table.ids)


# --- checkpoints -------------------------------------------------------------------------------


def save_step(run_dir: Path, step: int, *, keep: int) -> None:
    meta = ModelMeta(config=TINY, alphabet={"name": "dna", "letters": "ACGT"}, labels=(),
                     length=6, step=step)  # fmt: skip
    model = build_velocity_field(meta).state_dict()
    write_checkpoint(run_dir, model, model, {"step": step, "w": torch.full((2,), step)}, meta,
                     keep=keep)  # fmt: skip


def test_prune_keeps_the_keep_newest_and_publishes_the_newest(tmp_path):
    for step in (10, 20, 30, 40):
        save_step(tmp_path, step, keep=2)
    assert step_folders(tmp_path) == [step_folder(tmp_path, 40), step_folder(tmp_path, 30)]
    assert sorted(p.name for p in (tmp_path / CHECKPOINTS_DIR).iterdir()) == [
        "step-00000030", "step-00000040",
    ]  # fmt: skip
    for name in (MODEL_FILE, STATE_FILE):
        newest = step_folder(tmp_path, 40) / name
        assert (tmp_path / name).read_bytes() == newest.read_bytes()
    assert load_state(tmp_path / STATE_FILE)["step"] == 40


def test_intact_checkpoint_falls_back_to_the_newest_intact_step_folder(tmp_path):
    for step in (10, 20, 30):
        save_step(tmp_path, step, keep=3)
    state, meta = intact_checkpoint(tmp_path)
    assert state["step"] == meta.step == 30
    for damaged in (tmp_path / STATE_FILE, step_folder(tmp_path, 30) / STATE_FILE):
        os.unlink(damaged)  # published files are links: replace, do not alter the shared inode
        damaged.write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="older checkpoint"):
        state, meta = intact_checkpoint(tmp_path)
    assert state["step"] == meta.step == 20
    assert torch.equal(state["w"], torch.full((2,), 20))


def test_intact_checkpoint_without_any_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        intact_checkpoint(tmp_path)


# --- resume policy -----------------------------------------------------------------------------


def test_resume_may_change_train_sample_and_reading_keys_only():
    saved = TINY
    changes = {"train.steps": 9, "sample.steps": 3, "data.cache": "off", "data.num_workers": 2}
    check_resumable(saved, saved.with_overrides(changes))
    with pytest.raises(ConfigError, match=r"'model\.hidden'"):
        check_resumable(saved, saved.with_overrides({"model.hidden": 16}))
    with pytest.raises(ConfigError, match=r"'data\.valid_frac'"):
        check_resumable(saved, saved.with_overrides({"data.valid_frac": 0.5}))


# --- signals, failures, metrics ------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, int]] = []

    def request_stop(self, reason: str, exit_code: int = 2) -> None:
        self.requests.append((reason, exit_code))


def test_stop_signal_becomes_a_stop_request_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGUSR1)
    trainer = Recorder()
    with stop_on_signals(trainer, enabled=True):
        os.kill(os.getpid(), signal.SIGUSR1)
    assert trainer.requests == [("SIGUSR1", 128 + signal.SIGUSR1)]
    assert signal.getsignal(signal.SIGUSR1) is before


def test_an_ignored_signal_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        trainer = Recorder()
        with stop_on_signals(trainer, enabled=True):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
        assert trainer.requests == []
    finally:
        signal.signal(signal.SIGHUP, before)


def test_failure_before_a_checkpoint_removes_the_folders_the_run_created(tmp_path):
    run_dir = tmp_path / "runs" / "a" / "b"
    created = make_folder(run_dir)
    assert created == [tmp_path / "runs", tmp_path / "runs" / "a", run_dir]
    with pytest.raises(RuntimeError), failure_handling(run_dir, created):
        (run_dir / "config.yaml").write_text("half made\n")
        raise RuntimeError("boom")
    assert not (tmp_path / "runs").exists()


def test_failure_in_an_existing_folder_removes_only_what_the_run_added(tmp_path):
    """``--out .``: the folder was there before, with the user's files in it."""
    (tmp_path / "notes.txt").write_text("mine\n")
    (tmp_path / "old").mkdir()
    created = make_folder(tmp_path)
    assert created == []
    with pytest.raises(RuntimeError), failure_handling(tmp_path, created):
        (tmp_path / "config.yaml").write_text("half made\n")
        (tmp_path / "checkpoints").mkdir()
        (tmp_path / "checkpoints" / "x").write_text("x")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "old"]


def test_failure_keeps_a_parent_that_another_run_uses_meanwhile(tmp_path):
    run_dir = tmp_path / "runs" / "a"
    created = make_folder(run_dir)
    (tmp_path / "runs" / "b").mkdir()  # another run, started meanwhile
    with pytest.raises(RuntimeError), failure_handling(run_dir, created):
        raise RuntimeError("boom")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "runs",
        "runs/b",
    ]


def test_a_file_in_place_of_the_run_folder_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InvalidInputError, match="afile: is a file, not a run folder"):
        make_folder(tmp_path / "afile")
    with pytest.raises(InvalidInputError, match="afile: is a file, not a folder"):
        make_folder(tmp_path / "afile" / "run")


def test_a_stop_says_how_to_resume(tmp_path):
    message = re.escape(f"seqflow fit --resume {tmp_path}")
    with pytest.raises(TrainingStopped, match=message) as stop, failure_handling(tmp_path, []):
        raise TrainingStopped("stopped", step=3, reason="SIGTERM", exit_code=143)
    assert stop.value.exit_code == 143 and stop.value.step == 3


def test_metrics_log_is_one_json_record_per_report_and_passes_reports_on(tmp_path):
    seen: list[Progress] = []
    log = metrics_logger(tmp_path / "metrics.jsonl", seen.append)
    reports = [
        Progress(10, 20, 0.5, None, 1e-3, 4.0, 2.5),
        Progress(20, 20, 0.4, 0.45, 1e-4, 5.0, 5.0, skipped=1),
    ]
    for p in reports:
        log(p)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert seen == reports
    first = {"step": 10, "loss": 0.5, "lr": 1e-3, "steps_per_second": 4.0, "elapsed": 2.5}
    assert lines[0] == first
    assert lines[1]["valid_loss"] == 0.45 and lines[1]["skipped"] == 1
