"""FASTA writing and the atomic-write helpers (no partial file is ever left behind)."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from seqflow.data import read_sequences, write_fasta
from seqflow.errors import InvalidInputError
from seqflow.io_utils import atomic_path, atomic_write

RECORDS = [("s1 cell_type=K562", "ACGTACGTAC"), ("s2", "GGGGCCCCAA")]


def failing_records():
    yield "s1", "ACGT"
    yield "s2", "TTTT"
    raise RuntimeError("sampler crashed")


def test_write_fasta_one_line_per_sequence(tmp_path):
    path = tmp_path / "out.fa"
    assert write_fasta(RECORDS, path) == 2
    assert path.read_text() == ">s1 cell_type=K562\nACGTACGTAC\n>s2\nGGGGCCCCAA\n"


def test_write_fasta_wraps_at_width(tmp_path):
    path = tmp_path / "out.fa"
    write_fasta(RECORDS, path, width=4)
    assert path.read_text().splitlines()[:4] == [">s1 cell_type=K562", "ACGT", "ACGT", "AC"]
    assert torch.equal(read_sequences(path).tokens, read_sequences_from(RECORDS, tmp_path))


def read_sequences_from(records, folder):
    """Tokens of ``records`` written unwrapped (a second, independent route)."""
    path = folder / "plain.fa"
    write_fasta(records, path)
    return read_sequences(path).tokens


@pytest.mark.parametrize("target", [None, "-"])
def test_write_fasta_to_stdout(capsys, target):
    assert write_fasta(RECORDS, target) == 2
    assert capsys.readouterr().out == ">s1 cell_type=K562\nACGTACGTAC\n>s2\nGGGGCCCCAA\n"


def test_write_fasta_leaves_no_file_when_records_fail(tmp_path):
    path = tmp_path / "out.fa"
    with pytest.raises(RuntimeError, match="sampler crashed"):
        write_fasta(failing_records(), path)
    assert list(tmp_path.iterdir()) == []


def test_write_fasta_keeps_old_file_when_records_fail(tmp_path):
    path = tmp_path / "out.fa"
    path.write_text(">old\nA\n")
    with pytest.raises(RuntimeError):
        write_fasta(failing_records(), path)
    assert path.read_text() == ">old\nA\n"
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize(
    ("records", "width", "message"),
    [([("a\nb", "AC")], 0, "single lines"), ([("a", "AC\nGT")], 0, "single lines"),
     (RECORDS, -1, "width must be >= 0")],
)  # fmt: skip
def test_write_fasta_rejects_bad_arguments(tmp_path, records, width, message):
    with pytest.raises(ValueError, match=message):
        write_fasta(records, tmp_path / "out.fa", width=width)
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    with atomic_path(target) as temp:
        assert temp.parent == tmp_path
        assert temp != target
        assert temp.exists()
        temp.write_bytes(b"new")
        assert target.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_path_removes_temp_on_error(tmp_path):
    target = tmp_path / "model.safetensors"

    def interrupted_save() -> None:
        with atomic_path(target) as temp:
            temp.write_bytes(b"half")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_save()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_respects_umask(tmp_path):
    path = tmp_path / "x.txt"
    with atomic_write(path) as handle:
        handle.write("hello\n")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert path.read_bytes() == b"hello\n"


def test_atomic_write_errors_are_one_line(tmp_path):
    missing = tmp_path / "missing" / "x.txt"
    with (
        pytest.raises(InvalidInputError, match=r"folder '.*missing' does not exist"),
        atomic_write(missing),
    ):
        pass
    with pytest.raises(InvalidInputError, match="is a folder"):
        write_fasta(RECORDS, tmp_path)
