"""No silent corruption (issue 18, point 5): the checksum covers a file's metadata, a file of
the current format without one is refused, older formats are read with a warning; ids are
escaped in FASTA headers and the training-set file round-trips; a prefix never is cut."""

from __future__ import annotations

import csv
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from seqflow import api
from seqflow.checkpoint import (
    FORMAT_VERSION,
    MODEL_FILE,
    load_model,
    load_state,
    save_model,
    save_state,
)
from seqflow.data import read_sequences
from seqflow.data.writers import escaped, unescaped
from seqflow.errors import CheckpointError
from seqflow.io_utils import CHECKSUM_KEY
from seqflow.run import STATE_FILE, TRAIN_FILE

OLD_MODEL = Path(__file__).parent / "data" / "format2_model.safetensors"
"""A model written by seqflow before format 3 (checksum of the tensors only): 10 steps on
tiny.fasta, hidden 8, depth 1."""


def edit_header(path: Path, **changes: str | None) -> None:
    """Rewrite ``path`` with header items changed (None removes one), the checksum as it was."""
    tensors = load_file(str(path))
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
    for key, value in changes.items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    path.unlink()  # may be a hard link to a kept checkpoint
    save_file(tensors, str(path), metadata)


@pytest.fixture
def model_file(tmp_path) -> Path:
    path = tmp_path / MODEL_FILE
    shutil.copyfile(OLD_MODEL, path)
    with pytest.warns(UserWarning):
        model, meta = load_model(path, weights="model")
    path.unlink()
    save_model(path, model.state_dict(), model.state_dict(), meta)
    return path


def test_an_edited_alphabet_is_refused(model_file):
    """Editing the letters to their complement would give complemented sequences."""
    with safe_open(str(model_file), framework="pt") as handle:
        alphabet = json.loads(handle.metadata()["alphabet"])
    edit_header(model_file, alphabet=json.dumps({**alphabet, "letters": "TGCA"}))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_model(model_file)


def test_a_removed_checksum_is_refused(model_file):
    edit_header(model_file, **{CHECKSUM_KEY: None})
    with pytest.raises(CheckpointError, match=f"no checksum .*format {FORMAT_VERSION}"):
        load_model(model_file)


def test_a_downgraded_version_does_not_hide_an_edit(model_file):
    edit_header(model_file, format_version="2", length="999")
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_model(model_file)


def test_an_older_format_loads_with_a_warning_and_samples(tmp_path, cli_env):
    with pytest.warns(UserWarning, match="format 2 file of an older seqflow"):
        _, meta = load_model(OLD_MODEL)
    assert meta.step == 10 and meta.alphabet["letters"] == "ACGT"
    done = subprocess.run(
        [sys.executable, "-m", "seqflow", "sample", str(OLD_MODEL), "-n", "2", "--steps", "3"],
        capture_output=True, text=True, env=cli_env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(">") == 2
    warned = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert done.stderr.startswith("warning:") and len(warned) == 1  # then the seed line


def test_resume_states_carry_a_version_and_an_old_state_warns(tmp_path, model_file):
    path = tmp_path / STATE_FILE
    save_state(path, {"step": 3, "weights": load_file(str(model_file))})
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["format_version"] == str(FORMAT_VERSION)
    assert load_state(path)["step"] == 3
    edit_header(path, format_version=None)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_state(path)
    edit_header(path, **{CHECKSUM_KEY: None})  # as seqflow 0.3 wrote them: no version, no sum
    with pytest.warns(UserWarning, match="unversioned file of an older seqflow"):
        assert load_state(path)["step"] == 3


# --- ids in FASTA headers ---------------------------------------------------------------------

TRICKY_IDS = ["two\nlines", "tab\tand space", "back\\slash", "bell\x07", "para\u2029sep", "plain"]


@given(st.text(max_size=30))
def test_escaped_is_one_word_and_unescaped_inverts_it(text):
    word = escaped(text)
    assert word.split() == ([word] if word else []) and len(word.splitlines()) <= 1
    assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in word)
    assert unescaped(word) == text
    assert word.encode("latin-1", "backslashreplace").decode("unicode_escape") == text


def test_the_training_set_file_round_trips_ids_with_newlines(tmp_path, tiny_fit_kwargs):
    """Quoted CSV ids holding newlines: the run's train.fasta.gz reads back as the training
    split (ids escaped, one line each; sequences equal), so --min-novelty measures against
    the training sequences and nothing else."""
    data = tmp_path / "ids.csv"
    rng = random.Random(0)
    rows = [(TRICKY_IDS[i % len(TRICKY_IDS)] + str(i), "".join(rng.choices("ACGT", k=12)))
            for i in range(40)]  # fmt: skip
    with data.open("w", newline="") as handle:
        csv.writer(handle).writerows([("id", "sequence"), *rows])
    run_dir = api.fit(data, out=tmp_path / "run", **{**tiny_fit_kwargs, "steps": 2}).run_dir
    back = read_sequences(run_dir / TRAIN_FILE, alphabet="dna")
    original = dict(rows)
    ids = [unescaped(i) for i in back.ids]
    assert len(ids) == 38 and set(ids) <= set(original)  # the 5% validation split left out
    assert back.alphabet.decode_batch(back.tokens.long()) == [original[i] for i in ids]
    assert list(back.ids) == [escaped(i) for i in ids]


def test_a_prefix_longer_than_a_variable_length_model_is_an_error(tmp_path, cli_env):
    data = tmp_path / "v.fasta"
    data.write_text("".join(f">r{i}\n{'ACGT' * (2 + i % 3)}\n" for i in range(16)))
    api.fit(data, out=tmp_path / "run", preset="dna", steps=2, batch_size=4, device="cpu",
            overrides=["model.hidden=8", "model.depth=1"])  # fmt: skip
    for flag in ("--prefix", "--template"):
        done = subprocess.run(
            [sys.executable, "-m", "seqflow", "sample", str(tmp_path / "run"), "-n", "1", flag,
             "A" * 17], capture_output=True, text=True, env=cli_env, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.count("\n") == 1 and flag in done.stderr
        assert "17" in done.stderr and "at most 16" in done.stderr
