"""FASTA writing and the atomic-write helpers (no partial file is ever left behind)."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest
import torch

from seqflow.data import format_header, read_header_tags, read_sequences, write_fasta
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


def test_a_signal_right_after_the_temp_file_is_created_leaves_nothing(tmp_path, monkeypatch):
    """The unwinding signal handler may run at any bytecode boundary: here, the moment the
    temporary file exists (the window in which CI once caught a SIGTERM)."""
    real_close = os.close

    def close_then_signal(fd):
        real_close(fd)
        monkeypatch.setattr(os, "close", real_close)
        raise SystemExit(143)  # what the CLI's SIGTERM handler raises

    monkeypatch.setattr(os, "close", close_then_signal)
    with pytest.raises(SystemExit), atomic_write(tmp_path / "out.txt") as handle:
        handle.write("never\n")
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


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_write_table_round_trips(tmp_path, fmt):
    import csv
    import json

    from seqflow.data import write_table

    rows = [
        {"id": "a", "sequence": "ACGT", "gc": 0.5, "ok": True},
        {"id": "b,c", "sequence": "GG", "ok": False},  # a comma and a missing cell
    ]
    path = tmp_path / f"t.{fmt}"
    assert write_table(iter(rows), path, fmt=fmt, columns=["id", "sequence", "gc", "ok"]) == 2
    if fmt == "jsonl":
        back = [json.loads(line) for line in path.read_text().splitlines()]
        assert back[0] == rows[0] and back[1] == {**rows[1], "gc": None}
        return
    back = list(csv.DictReader(path.open(), delimiter="," if fmt == "csv" else "\t"))
    assert back == [
        {"id": "a", "sequence": "ACGT", "gc": "0.5", "ok": "true"},
        {"id": "b,c", "sequence": "GG", "gc": "", "ok": "false"},
    ]


def test_write_table_leaves_nothing_on_error(tmp_path):
    from seqflow.data import write_table

    def rows():
        yield {"id": "a"}
        raise RuntimeError("scoring crashed")

    with pytest.raises(RuntimeError):
        write_table(rows(), tmp_path / "t.csv", fmt="csv", columns=["id"])
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_to_a_device_writes_through_and_keeps_it(tmp_path):
    """``-o /dev/null`` must not replace the device with a regular file."""
    devnull = Path(os.devnull)
    before = devnull.stat()
    assert write_fasta(RECORDS, devnull) == 2
    after = devnull.stat()
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


def test_header_tags_round_trip_through_fasta(tmp_path):
    tags = [{"label": "K562", "value": 1.5, "guidance": None, "signal": "rows.npy:1"},
            {"library": "library_001", "score": 0.123456789}, {}]  # fmt: skip
    headers = [format_header(f"s{i}", t) for i, t in enumerate(tags)]
    assert headers[0] == "s0 label=K562 value=1.5 signal=rows.npy:1"
    assert headers[1] == "s1 library=library_001 score=0.123457" and headers[2] == "s2"
    for name in ("tags.fa", "tags.fa.gz"):
        path = tmp_path / name
        if name.endswith(".gz"):
            with gzip.open(path, "wt") as handle:
                handle.writelines(f">{h}\nACGT\n" for h in headers)
        else:
            write_fasta(((h, "ACGT") for h in headers), path)
        assert read_header_tags(path) == [
            {"label": "K562", "value": "1.5", "signal": "rows.npy:1"},
            {"library": "library_001", "score": "0.123457"}, {},
        ]  # fmt: skip
        assert list(read_sequences(path).ids[:]) == ["s0", "s1", "s2"]  # the id is no tag
