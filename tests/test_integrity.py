"""No silent corruption (issue 18, points 5 and 6): the checksum covers a file's metadata, a
file of the current format without one is refused, older formats are read with a warning."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from seqflow.checkpoint import (
    FORMAT_VERSION,
    MODEL_FILE,
    load_model,
    load_state,
    save_model,
    save_state,
)
from seqflow.errors import CheckpointError
from seqflow.io_utils import CHECKSUM_KEY
from seqflow.run import STATE_FILE

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
    assert done.stderr.startswith("warning:") and done.stderr.count("\n") == 1


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
