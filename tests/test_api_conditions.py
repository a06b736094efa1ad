"""``fit``/``sample`` with values, signal tracks, splits and variable length, through the API
and the command line; bad condition input gives one line, exit code 2 and no output file."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from Bio import SeqIO

from seqflow import api
from seqflow.checkpoint import load_model
from seqflow.errors import InvalidInputError

LENGTH = 24


@pytest.fixture(scope="module")
def rich_csv(tmp_path_factory, tiny_csv) -> Path:
    """tiny.csv plus ``gc`` (value), ``track`` (24 numbers) and ``split`` columns."""
    with tiny_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    out = tmp_path_factory.mktemp("rich") / "rich.csv"
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "sequence", "cell_type", "gc", "track", "split"])
        for i, row in enumerate(rows):
            seq = row["sequence"]
            gc = sum(c in "GC" for c in seq) / len(seq)
            track = " ".join("1" if c == "G" else "0" for c in seq)
            split = "test" if i % 16 == 0 else "valid" if i % 16 == 1 else "train"
            writer.writerow([row["id"], seq, row["cell_type"], f"{gc:.4f}", track, split])
    return out


@pytest.fixture(scope="module")
def value_run(tmp_path_factory, rich_csv, tiny_fit_kwargs):
    out = tmp_path_factory.mktemp("value") / "run"
    plans = []
    result = api.fit(rich_csv, out=out, value_col="gc", label_col="cell_type", split_col="split",
                     on_start=plans.append, **tiny_fit_kwargs)  # fmt: skip
    return result, plans[0]


@pytest.fixture(scope="module")
def signal_run(tmp_path_factory, rich_csv, tiny_fit_kwargs):
    out = tmp_path_factory.mktemp("signal") / "run"
    return api.fit(rich_csv, out=out, signal_col="track", **tiny_fit_kwargs)


@pytest.fixture(scope="module")
def ragged_fasta(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("ragged") / "ragged.fasta"
    lines = []
    for i in range(80):
        n = int(rng.integers(8, 21))
        lines.append(f">r{i}\n{''.join(rng.choice(list('ACGT'), n))}\n")
    path.write_text("".join(lines))
    return path


def records(path: Path):
    return list(SeqIO.parse(str(path), "fasta"))


# --- values and splits ------------------------------------------------------------------------


def test_split_column_and_value_are_used_and_stored(value_run, rich_csv):
    result, plan = value_run
    assert (plan.n_train, plan.n_valid, plan.n_test) == (56, 4, 4)
    assert plan.value == "gc" and plan.labels
    _, meta = load_model(result.run_dir)
    gc = []
    with rich_csv.open() as handle:
        for row in csv.DictReader(handle):
            if row["split"] == "train":
                gc.append(float(row["gc"]))
    assert meta.value is not None
    assert meta.value.mean[0] == pytest.approx(np.mean(gc), rel=1e-6)
    assert meta.value.std[0] == pytest.approx(np.std(gc), rel=1e-6)


def test_sample_at_a_value_writes_it_in_headers(value_run, tmp_path):
    result, _ = value_run
    out = tmp_path / "v.fasta"
    res = api.sample(result.run_dir, n=5, value=0.6, label="K562", guidance=2.0, output=out,
                     device="cpu")  # fmt: skip
    recs = records(out)
    assert len(recs) == 5 and res.value == 0.6
    assert all(r.description.split()[1:] == ["label=K562", "value=0.6", "guidance=2", "seed=0"]
               for r in recs)  # fmt: skip
    a = api.sample(result.run_dir, n=5, value=0.1, output=tmp_path / "a.fa", device="cpu")
    b = api.sample(result.run_dir, n=5, value=0.9, output=tmp_path / "b.fa", device="cpu")
    assert a.sequences != b.sequences  # same seed and noise: only the value differs


def test_value_on_a_model_without_values(signal_run, tmp_path):
    with pytest.raises(InvalidInputError, match="without a value column"):
        api.sample(signal_run.run_dir, n=2, value=1.0, output=tmp_path / "x.fa")
    assert not (tmp_path / "x.fa").exists()


# --- signal -----------------------------------------------------------------------------------


def test_signal_rows_give_one_sequence_each(signal_run, tmp_path):
    rows = np.zeros((3, LENGTH), dtype=np.float32)
    rows[:, ::3] = 1.0
    np.save(tmp_path / "sig.npy", rows)
    out = tmp_path / "s.fasta"
    result = api.sample(signal_run.run_dir, signal=tmp_path / "sig.npy", output=out, device="cpu")
    recs = records(out)
    assert len(recs) == 3 and len(result.sequences) == 3
    assert [r.description.split()[-1] for r in recs] == [f"signal=sig.npy:{i}" for i in (1, 2, 3)]


def test_signal_of_wrong_length_or_count(signal_run, tmp_path):
    np.save(tmp_path / "short.npy", np.zeros((2, LENGTH - 1), dtype=np.float32))
    with pytest.raises(InvalidInputError, match=r"short\.npy"):
        api.sample(signal_run.run_dir, signal=tmp_path / "short.npy", output=tmp_path / "o.fa")
    np.save(tmp_path / "ok.npy", np.zeros((2, LENGTH), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="2 signal rows"):
        api.sample(signal_run.run_dir, n=5, signal=tmp_path / "ok.npy", output=tmp_path / "o.fa")
    assert not (tmp_path / "o.fa").exists()


def test_signal_file_for_fit_is_aligned_by_record_order(tmp_path, tiny_fasta, tiny_fit_kwargs):
    tokens = [str(r.seq) for r in SeqIO.parse(str(tiny_fasta), "fasta")]
    signal = np.array([[c == "A" for c in s] for s in tokens], dtype=np.float32)
    np.save(tmp_path / "track.npy", signal)
    result = api.fit(tiny_fasta, out=tmp_path / "run", signal_file=str(tmp_path / "track.npy"),
                     **tiny_fit_kwargs)  # fmt: skip
    _, meta = load_model(result.run_dir)
    assert meta.signal is not None and meta.signal.channels == 1
    assert meta.signal.mean[0] == pytest.approx(float(signal.mean()), abs=0.05)
    np.save(tmp_path / "bad.npy", signal[:10])
    with pytest.raises(InvalidInputError, match="10 signal rows for 64 records"):
        api.fit(tiny_fasta, out=tmp_path / "run2", signal_file=str(tmp_path / "bad.npy"),
                **tiny_fit_kwargs)  # fmt: skip
    assert not (tmp_path / "run2").exists()


# --- variable length --------------------------------------------------------------------------


def test_variable_length_run_generates_varied_lengths_without_pad(ragged_fasta, tmp_path,
                                                                  tiny_fit_kwargs):  # fmt: skip
    """Lengths 8-20 in the data; the dna preset's denoiser needs a few hundred tiny steps to
    learn where sequences end (at 30 steps its argmax decodes every position as a letter)."""
    plans = []
    kwargs = {**tiny_fit_kwargs, "steps": 300}
    result = api.fit(ragged_fasta, out=tmp_path / "run", on_start=plans.append, **kwargs)
    assert plans[0].variable_length and plans[0].length == 20
    _, meta = load_model(result.run_dir)
    assert meta.variable_length and meta.vocab == 5 and meta.pad == 4
    out = api.sample(result.run_dir, n=200, output=tmp_path / "s.fa", device="cpu")
    lengths = [len(s) for s in out.sequences]
    assert all(set(s) <= set("ACGT") and 1 <= len(s) <= 20 for s in out.sequences)
    assert len(set(lengths)) > 3
    assert sum(8 <= n <= 20 for n in lengths) >= 0.9 * len(lengths)  # the data's range


def test_longer_than_max_length_needs_crop(ragged_fasta, tmp_path, tiny_fit_kwargs):
    with pytest.raises(InvalidInputError, match="max_length"):
        api.fit(ragged_fasta, out=tmp_path / "a", max_length=12, **tiny_fit_kwargs)
    assert not (tmp_path / "a").exists()
    result = api.fit(ragged_fasta, out=tmp_path / "b", max_length=12, crop=True,
                     **tiny_fit_kwargs)  # fmt: skip
    _, meta = load_model(result.run_dir)
    assert meta.length == 12 and meta.variable_length


# --- the command line -------------------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqflow", *args], capture_output=True,
                          env=env, cwd=cwd, timeout=300)  # fmt: skip


def test_cli_value_run_and_bad_inputs(rich_csv, tmp_path, tiny_cli_args, cli_env):
    run = tmp_path / "run"
    fit = run_cli(["fit", str(rich_csv), "--value-col", "gc", "--split-col", "split",
                   "--out", str(run), *tiny_cli_args], cli_env, tmp_path)  # fmt: skip
    assert fit.returncode == 0, fit.stderr.decode()
    assert "4 test (held out)" in fit.stderr.decode()
    ok = run_cli(["sample", str(run), "-n", "4", "--value", "0.5"], cli_env, tmp_path)
    assert ok.returncode == 0, ok.stderr.decode()
    recs = list(SeqIO.parse(io.StringIO(ok.stdout.decode()), "fasta"))
    assert len(recs) == 4 and all("value=0.5" in r.description for r in recs)

    bad = run_cli(["sample", str(run), "-n", "4", "--label", "K562", "-o", "x.fa"], cli_env,
                  tmp_path)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.decode().count("\n") == 1 and "without labels" in bad.stderr.decode()
    assert not (tmp_path / "x.fa").exists()

    missing = run_cli(["fit", str(rich_csv), "--value-col", "activity", "--out",
                       str(tmp_path / "r2"), *tiny_cli_args], cli_env, tmp_path)  # fmt: skip
    assert missing.returncode == 2 and "activity" in missing.stderr.decode()
    assert missing.stderr.decode().count("\n") == 1
    assert not (tmp_path / "r2").exists()


def test_guided_sampling_is_deterministic(value_run, tmp_path):
    result, _ = value_run
    a = api.sample(result.run_dir, n=8, value=0.5, guidance=3.0, seed=4, output=None,
                   device="cpu")  # fmt: skip
    b = api.sample(result.run_dir, n=8, value=0.5, guidance=3.0, seed=4, output=None,
                   device="cpu")  # fmt: skip
    assert a.sequences == b.sequences
    assert torch.tensor([len(s) for s in a.sequences]).eq(LENGTH).all()
