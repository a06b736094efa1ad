"""Reading FASTA/FASTQ/CSV/TSV (plain, gzip, stdin) into token tables, and every input error."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqflow.data import (
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VALID,
    DuplicateIdWarning,
    ReadReport,
    RecordIds,
    SequenceTable,
    read_sequences,
    write_fasta,
)
from seqflow.data import _buffer as buffer_module
from seqflow.data.alphabet import DNA, PROTEIN, RNA
from seqflow.errors import InvalidInputError

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def naive_tokens(seqs: list[str], letters: str = "ACGT") -> torch.Tensor:
    """Independent reference tokenisation: one ``str.index`` per letter."""
    return torch.tensor([[letters.index(c.upper()) for c in s] for s in seqs], dtype=torch.uint8)


def unpadded(table: SequenceTable) -> list[str]:
    """Each record decoded up to its own length."""
    rows = zip(table.tokens, table.lengths.tolist(), strict=True)
    return [table.alphabet.decode_batch(row[None, :n])[0] for row, n in rows]


def read_error(path, **kwargs) -> str:
    """Read ``path`` expecting an InvalidInputError; return its message, checked to be one line."""
    with pytest.raises(InvalidInputError) as info:
        read_sequences(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- reading -------------------------------------------------------------------------------------


def test_tiny_fasta_fixture():
    table = read_sequences(DATA / "tiny.fasta")
    assert table.tokens.shape == (64, 24)
    assert table.tokens.dtype == torch.uint8
    assert len(table) == 64
    assert table.length == 24
    assert table.alphabet is DNA
    assert table.labels is None
    assert table.label_names == ()
    first = (DATA / "tiny.fasta").read_text().splitlines()[:2]
    assert table.ids[0] == first[0][1:].split()[0]
    assert table.alphabet.decode_batch(table.tokens[:1])[0] == first[1]


def test_fasta_to_tokens_to_fasta_is_identity(tmp_path):
    text = "".join(
        f">{header}\n{seq}\n"
        for header, seq in zip(
            ["s1", "s2", "s3"], ["ACGTACGTAA", "TTTTGGGGCC", "GATTACAGAT"], strict=True
        )
    )
    table = read_sequences(write(tmp_path / "in.fa", text))
    assert torch.equal(table.tokens, naive_tokens(["ACGTACGTAA", "TTTTGGGGCC", "GATTACAGAT"]))
    out = tmp_path / "out.fa"
    write_fasta(zip(table.ids, table.alphabet.decode_batch(table.tokens), strict=True), out)
    assert out.read_text() == text


def test_case_wrapping_and_crlf_do_not_change_tokens(tmp_path):
    plain = read_sequences(write(tmp_path / "a.fa", ">a desc\nACGTACGT\n>b\nGGGGCCCC\n"))
    messy = read_sequences(write(tmp_path / "b.fa", ">a\r\nacgt\r\nACgt\r\n\r\n>b\r\nggggcccc"))
    assert torch.equal(plain.tokens, messy.tokens)
    assert plain.ids == messy.ids == ("a", "b")


def test_csv_with_labels_matches_fasta(tmp_path):
    fasta = read_sequences(DATA / "tiny.fasta")
    table = read_sequences(DATA / "tiny.csv", label_col="cell_type")
    assert torch.equal(table.tokens, fasta.tokens)
    assert table.ids == fasta.ids
    assert table.label_names == ("GM12878", "HepG2", "K562", "hESCT0")
    headers = [line for line in (DATA / "tiny.fasta").read_text().splitlines() if line[0] == ">"]
    names = [h.split("cell_type=")[1] for h in headers]
    assert [table.label_names[i] for i in table.labels.tolist()] == names
    assert table.labels.dtype == torch.int64
    assert torch.bincount(table.labels).tolist() == [16] * 4


def test_tsv_columns_case_insensitive_and_row_ids(tmp_path):
    path = write(tmp_path / "t.tsv", "# a comment\nSeq\tClass\nacgt\tx\nCCGG\ty\nTTAA\tx\n")
    table = read_sequences(path, label_col="class")
    assert table.ids == ("row1", "row2", "row3")
    assert torch.equal(table.tokens, naive_tokens(["ACGT", "CCGG", "TTAA"]))
    assert table.label_names == ("x", "y")
    assert table.labels.tolist() == [0, 1, 0]


def test_explicit_seq_col_and_quoted_cells(tmp_path):
    path = write(tmp_path / "t.csv", 'name,dna,other\n"r,1",ACGT,zz\nr2, GGCC ,\n')
    table = read_sequences(path, seq_col="dna")
    assert table.ids == ("r,1", "r2")
    assert torch.equal(table.tokens, naive_tokens(["ACGT", "GGCC"]))


def test_many_records_grow_the_buffer(tmp_path):
    rng = np.random.default_rng(1)
    seqs = ["".join(rng.choice(list("ACGT"), size=13)) for _ in range(2500)]
    path = write(tmp_path / "big.fa", "".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
    table = read_sequences(path)
    assert torch.equal(table.tokens, naive_tokens(seqs))
    assert table.ids[-1] == "r2499"


@pytest.mark.parametrize(("name", "fmt"), [("x.fa.gz", "auto"), ("x.fasta", "auto"),
                                           ("x.bin", "fasta")])  # fmt: skip
def test_gzip_detected_by_magic_bytes(tmp_path, name, fmt):
    path = write(tmp_path / name, gzip.compress(b">a\nACGU\n>b\nUUCA\n"))
    table = read_sequences(path, fmt=fmt)
    assert table.alphabet is RNA
    assert table.ids == ("a", "b")
    assert torch.equal(table.tokens, naive_tokens(["ACGU", "UUCA"], "ACGU"))


def test_gzip_csv(tmp_path):
    path = write(tmp_path / "x.csv.gz", gzip.compress(b"id,sequence\nq,MKV\nw,LLA\n"))
    table = read_sequences(path)
    assert table.alphabet is PROTEIN
    assert table.ids == ("q", "w")


def test_unknown_suffix_is_sniffed(tmp_path):
    assert read_sequences(write(tmp_path / "x.dat", ">a\nAC\n")).ids == ("a",)
    assert read_sequences(write(tmp_path / "y.dat", "seq\tid\nAC\tq\n")).ids == ("q",)
    assert read_sequences(write(tmp_path / "z.dat", "seq,id\nAC,q\n")).ids == ("q",)


@pytest.mark.parametrize("wrap", ["bytes", "string"])
def test_stdin_fasta(monkeypatch, wrap):
    data = b">a\nACGT\n>b\nTTGG\n"
    stdin = io.TextIOWrapper(io.BytesIO(data)) if wrap == "bytes" else io.StringIO(data.decode())
    monkeypatch.setattr(sys, "stdin", stdin)
    table = read_sequences("-")
    assert table.source == "<stdin>"
    assert table.ids == ("a", "b")
    assert torch.equal(table.tokens, naive_tokens(["ACGT", "TTGG"]))


def test_stdin_csv_and_gzip(monkeypatch):
    raw = gzip.compress(b"id,sequence,y\na,ACGT,1\nb,TTGG,0\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    table = read_sequences("-", fmt="csv", label_col="y")
    assert table.labels.tolist() == [1, 0]
    assert table.label_names == ("0", "1")


def test_alphabet_choices(tmp_path):
    path = write(tmp_path / "n.fa", ">a\nACGN\n>b\nACGT\n")
    table = read_sequences(path, alphabet="ACGTN")
    assert table.alphabet.letters == "ACGTN"
    assert table.tokens[0].tolist() == [0, 1, 2, 4]
    assert (
        read_sequences(write(tmp_path / "p.fa", ">a\nACGT\n"), alphabet="protein").alphabet
        is PROTEIN
    )


def test_example_files_are_balanced_and_agree():
    fasta = read_sequences(EXAMPLES / "dhs_4k.fasta")
    table = read_sequences(EXAMPLES / "dhs_4k.csv", label_col="cell_type")
    assert fasta.tokens.shape == (4000, 200)
    assert fasta.alphabet is DNA
    assert torch.equal(fasta.tokens, table.tokens)
    assert fasta.ids == table.ids
    assert torch.bincount(table.labels).tolist() == [1000] * 4
    assert len(set(table.ids)) == 4000


# --- errors --------------------------------------------------------------------------------------


def test_missing_file_and_folder(tmp_path):
    assert read_error(tmp_path / "nope.fa") == f"{tmp_path / 'nope.fa'}: no such file"
    assert read_error(tmp_path).startswith(f"{tmp_path}: is a folder")


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "empty file"), (b"\n  \n", "empty file"), (b">a\nAC\x00GT\n", "binary file"),
     (b">a\n\xff\xfeACGT\n", "not a UTF-8 text file"), (bz2.compress(b">a\nAC\n"), "bzip2"),
     (gzip.compress(b">a\nACGT\n" * 50)[:30], "damaged gzip")],
)  # fmt: skip
def test_unreadable_files(tmp_path, content, expected):
    path = write(tmp_path / "x.fa", content)
    message = read_error(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_undecodable_byte_after_the_head(tmp_path):
    path = write(tmp_path / "x.fa", (">a\nACGT\n" * 2000).encode() + b">b\n\xffCGT\n")
    assert "not a UTF-8 text file (undecodable byte after line" in read_error(path)


def test_fasta_without_records(tmp_path):
    path = write(tmp_path / "x.fa", "ACGT\nACGT\n")
    assert read_error(path) == f"{path}: no FASTA records (no line starts with '>')"


def test_fasta_record_with_empty_sequence(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\n\n>b desc\n\n>c\nACGT\n")
    assert read_error(path) == f"{path}:4: record 'b' has an empty sequence"


def test_invalid_letter_with_explicit_alphabet(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\n>b\nACGT\n>c\nACNT\n")
    assert read_error(path, alphabet="dna") == (
        f"{path}:6: record 'c': invalid letter 'N' at position 3 (alphabet dna: ACGT)"
    )


def test_invalid_letter_with_auto_suggests_letters(tmp_path):
    path = write(tmp_path / "x.csv", "id,sequence\nr1,ACGT\nr2,acgn\n")
    message = read_error(path)
    assert message.startswith(f"{path}:3: record 'r2': invalid letter 'n' at position 4")
    assert "--alphabet ACGTN (alphabet='ACGTN')" in message
    assert "--on-invalid skip or replace" in message


def test_invalid_letter_found_across_conversion_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(buffer_module, "_CHUNK_BYTES", 16)
    body = "".join(f">r{i}\n{'ACGT' if i != 7 else 'ACXT'}\n" for i in range(12))
    path = write(tmp_path / "x.fa", body)
    assert read_error(path, alphabet="dna").startswith(
        f"{path}:16: record 'r7': invalid letter 'X' at position 3"
    )


def test_non_ascii_letter(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\n>b\nACµT\n")
    assert read_error(path).startswith(f"{path}:4: record 'b': invalid letter 'µ' at position 3")


@pytest.mark.parametrize(
    ("content", "kwargs", "expected"),
    [("id,sequence\n", {}, ":  no data rows"),
     ("id,sequence\nr1,ACGT\nr2\n", {}, ":3: record 'r2' has no sequence in column 'sequence'"),
     ("id,sequence\nr1,ACGT\nr2, \n", {}, ":3: record 'r2' has no sequence in column 'sequence'"),
     ("id,dna\nr1,ACGT\n", {}, ":1: no sequence column (looked for 'sequence', 'seq'); "
      "columns: 'id', 'dna'"),
     ("id,dna\nr1,ACGT\n", {"seq_col": "DNAx"}, ":1: no sequence column 'DNAx'; columns: 'id'"),
     ("id,seq\nr1,ACGT\n", {"label_col": "y"}, ":1: no label column 'y'; columns: 'id', 'seq'"),
     ("id,seq,y\nr1,ACGT,a\nr2,ACGT,\n", {"label_col": "y"}, ":3: record 'r2' has no label"),
     ("id\tsequence\nr1\tACGT\n", {}, "(the file looks tab-separated; set fmt='tsv')"),
     ('id,seq\n"r1,ACGT\n', {}, ":2: malformed row (unexpected end of data)")],
)  # fmt: skip
def test_table_errors(tmp_path, content, kwargs, expected):
    path = write(tmp_path / "x.csv", content)
    message = read_error(path, **kwargs)
    assert message.startswith(str(path))
    assert expected.replace(":  ", ": ") in message


def test_labels_with_fasta_point_to_csv(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\n")
    assert "use a CSV" in read_error(path, label_col="cell_type")


def test_bad_format_arguments(tmp_path):
    assert "unknown format 'bed'" in read_error(write(tmp_path / "x.fa", ">a\nAC\n"), fmt="bed")
    assert "cannot tell the format" in read_error(write(tmp_path / "x.dat", "ACGT\n"))


# --- formats, compression and stdin --------------------------------------------------------------

SEQS = ["ACGTACGTAA", "TTTTGGGGCC", "GATTACAGAT"]
IDS = ["s1", "s2", "s3"]


def as_text(fmt: str) -> str:
    """The records ``IDS``/``SEQS`` written in ``fmt``."""
    if fmt == "fasta":
        return "".join(f">{i} some words\n{s}\n" for i, s in zip(IDS, SEQS, strict=True))
    if fmt == "fastq":
        return "".join(f"@{i}\n{s}\n+\n{'I' * len(s)}\n" for i, s in zip(IDS, SEQS, strict=True))
    sep = "," if fmt == "csv" else "\t"
    rows = "".join(f"{i}{sep}{s}\n" for i, s in zip(IDS, SEQS, strict=True))
    return f"id{sep}sequence\n{rows}"


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("fmt", ["fasta", "fastq", "csv", "tsv"])
def test_every_format_plain_and_gzip_reads_the_same_records(tmp_path, fmt, compressed):
    suffix = {"fasta": ".fa", "fastq": ".fq", "csv": ".csv", "tsv": ".tsv"}[fmt]
    raw = as_text(fmt).encode()
    data = gzip.compress(raw) if compressed else raw
    path = write(tmp_path / f"x{suffix}{'.gz' if compressed else ''}", data)
    table = read_sequences(path)
    assert table.report.format == fmt
    assert list(table.ids) == IDS
    assert torch.equal(table.tokens, naive_tokens(SEQS))
    assert table.lengths.tolist() == [10, 10, 10]
    assert table.record_index.tolist() == [0, 1, 2]
    assert table.report.summary() == ""


@pytest.mark.parametrize("fmt", ["fasta", "fastq", "csv", "tsv"])
def test_every_format_sniffed_from_stdin(monkeypatch, fmt):
    raw = gzip.compress(as_text(fmt).encode())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    table = read_sequences("-")
    assert (table.report.format, table.source) == (fmt, "<stdin>")
    assert torch.equal(table.tokens, naive_tokens(SEQS))


class _Pipe(io.RawIOBase):
    """A non-seekable byte stream that hands out at most 1000 bytes per read, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), len(self._data), 1000)
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gz"])
def test_stdin_pipe_is_streamed_without_seeking(monkeypatch, compressed):
    seqs = ["ACGT" * 25] * 500  # 50 KB: far more than the sniffed head
    raw = "".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)).encode()
    data = gzip.compress(raw) if compressed else raw
    stdin = io.TextIOWrapper(io.BufferedReader(_Pipe(data)))
    monkeypatch.setattr(sys, "stdin", stdin)
    table = read_sequences("-")
    assert len(table) == 500 and table.ids[-1] == "r499"
    assert torch.equal(table.tokens, naive_tokens(seqs))
    assert not stdin.buffer.closed


def test_multi_member_gzip(tmp_path):
    path = write(tmp_path / "x.fa.gz", gzip.compress(b">a\nACGT\n") + gzip.compress(b">b\nTTGG\n"))
    assert list(read_sequences(path).ids) == ["a", "b"]


def test_fastq_line_numbers_with_leading_blank_lines(tmp_path):
    path = write(tmp_path / "x.fq", "\n\n@r1\nACGT\n+\nIIII\n@r2 desc\nACXT\n+r2 desc\nIIII\n")
    assert read_error(path, alphabet="dna") == (
        f"{path}:8: record 'r2': invalid letter 'X' at position 3 (alphabet dna: ACGT)"
    )


def test_wrapped_fastq_names_the_header_line(tmp_path):
    path = write(tmp_path / "x.fq", "@r1\nAC\nXT\n+\nII\nII\n")
    assert read_error(path, alphabet="dna").startswith(
        f"{path}:1: record 'r1' (header line 1): invalid letter 'X' at position 3"
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [("@r1\nACGT\n+\nIII\n", "Lengths of sequence and quality values differs"),
     ("@r1\nACGT\n", "End of file without quality information"),
     ("@r1\nACGT\n+r9\nIIII\n", "Sequence and quality captions differ")],
)  # fmt: skip
def test_malformed_fastq(tmp_path, content, expected):
    path = write(tmp_path / "x.fq", content)
    message = read_error(path)
    assert message.startswith(f"{path}:")
    assert "malformed FASTQ" in message and expected in message


# --- variable length and max_length --------------------------------------------------------------


def test_variable_lengths_are_padded_with_the_pad_token(tmp_path):
    path = write(tmp_path / "v.fa", ">a\nACGTAC\n>b\nAC\n>c\nACG\nTA\n")
    table = read_sequences(path, alphabet="dna")
    assert table.variable and table.length == 6 and table.pad_token == 4
    assert table.lengths.tolist() == [6, 2, 5]
    assert table.lengths.dtype == torch.int64
    assert table.tokens.tolist() == [[0, 1, 2, 3, 0, 1], [0, 1, 4, 4, 4, 4], [0, 1, 2, 3, 0, 4]]
    assert unpadded(table) == ["ACGTAC", "AC", "ACGTA"]


def test_equal_lengths_are_not_variable():
    table = read_sequences(DATA / "tiny.fasta")
    assert not table.variable
    assert (table.lengths == 24).all()
    assert (table.tokens < table.pad_token).all()


def test_max_length_errors_or_crops(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGTACGT\n>b\nACG\n>c\nTTTTTTTTTT\n")
    assert read_error(path, max_length=5) == (
        f"{path}:1: record 'a' has length 8 > max_length 5 (use crop to cut it)"
    )
    table = read_sequences(path, max_length=5, crop=True)
    assert table.tokens.tolist() == [[0, 1, 2, 3, 0], [0, 1, 2, 4, 4], [3] * 5]
    assert table.lengths.tolist() == [5, 3, 5]
    assert table.report.cropped == 2
    assert table.report.summary() == "crop: 2 records cut to 5 letters"
    assert read_sequences(path, max_length=10).length == 10


def test_crop_cuts_the_signal_too(tmp_path):
    path = write(tmp_path / "x.csv", 'id,seq,s\na,ACGTA,"1,2,3,4,5"\nb,AC,"6;7"\n')
    table = read_sequences(path, signal_col="s", max_length=3, crop=True)
    assert table.signal[..., 0].tolist() == [[1, 2, 3], [6, 7, 0]]


@pytest.mark.parametrize("bad", [0, -3])
def test_max_length_below_one(tmp_path, bad):
    path = write(tmp_path / "x.fa", ">a\nACGT\n")
    assert read_error(path, max_length=bad) == f"{path}: max_length must be at least 1, got {bad}"


# --- alphabets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seqs", "spec", "letters", "detected"),
    [(["ACGT", "GGTA"], "auto", "ACGT", True),
     (["ACGU", "GGUA"], "auto", "ACGU", True),
     (["MKVLAW", "DEFGHY"], "auto", PROTEIN.letters, True),
     (["ACGT", "GGTA"], "dna", "ACGT", False),
     (["ACGU", "GGUA"], "RNA", "ACGU", False),
     (["ACGT", "ACGT"], "protein", PROTEIN.letters, False),
     (["AC-N", "NN-A"], "ACGTN-", "ACGTN-", False)],
)  # fmt: skip
def test_every_alphabet(tmp_path, seqs, spec, letters, detected):
    body = "".join(f">r{i}\n{s.lower() if i else s}\n" for i, s in enumerate(seqs))
    table = read_sequences(write(tmp_path / "x.fa", body), alphabet=spec)
    assert table.alphabet.letters == letters
    assert table.report.alphabet_detected is detected
    assert table.alphabet.decode_batch(table.tokens) == seqs


def test_bad_custom_alphabet_is_refused_before_reading(tmp_path):
    assert "needs at least 2 letters" in read_error(tmp_path / "missing.fa", alphabet="A")


def test_mixed_alphabets_name_the_first_minority_record(tmp_path):
    body = ">n1\nACGTACGTACGT\n>p7\nMKVLLAGIWEKR\n>n2\nACGTTTGGCCAA\n>short\nMKV\n"
    path = write(tmp_path / "x.fa", body)
    assert read_error(path) == (
        f"{path}:3: record 'p7' looks like protein but most records are nucleotides "
        "(mixed alphabets); give the alphabet explicitly: --alphabet (alphabet=)"
    )
    assert len(read_sequences(path, alphabet="protein")) == 4


def test_mixed_alphabets_with_protein_majority(tmp_path):
    body = ">p1\nMKVLLAGIWEKR\n>n1\nACGTACGTACGT\n>p2\nWWEEKKRRLLMM\n"
    assert "record 'n1' looks like nucleotides but most records are protein" in read_error(
        write(tmp_path / "x.fa", body)
    )


# --- invalid letters: error, skip, replace -------------------------------------------------------


def test_error_names_the_line_of_the_letter_in_wrapped_fasta(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\nACGT\n>b\nACGT\nACGT\nAXG\n")
    assert read_error(path, alphabet="dna") == (
        f"{path}:7: record 'b': invalid letter 'X' at position 10 (alphabet dna: ACGT)"
    )


def test_error_in_irregular_wrapping_names_the_header_line(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nAC\nGTACG\nXA\n")
    assert read_error(path, alphabet="dna") == (
        f"{path}:1: record 'a' (header line 1): invalid letter 'X' at position 8 "
        "(alphabet dna: ACGT)"
    )


def test_unknown_policy_lists_the_choices(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\n")
    assert read_error(path, on_invalid="drop") == (
        f"{path}: unknown on_invalid 'drop'; use error, skip, replace"
    )


SKIPPY = ">a\nACGT\n>b\nACNT\n>c\nGGCC\n>d\nNNNN\n>e\nTTAA\n"


def test_skip_drops_records_and_keeps_their_file_index(tmp_path):
    path = write(tmp_path / "x.fa", SKIPPY)
    table = read_sequences(path, alphabet="dna", on_invalid="skip")
    assert list(table.ids) == ["a", "c", "e"]
    assert table.record_index.tolist() == [0, 2, 4]
    assert torch.equal(table.tokens, naive_tokens(["ACGT", "GGCC", "TTAA"]))
    report = table.report
    assert (report.records, report.skipped, report.replaced_letters) == (5, 2, 0)
    assert report.summary() == "skip: 2 records with letters outside dna: ACGT dropped"


def test_skip_with_labels_values_and_variable_lengths(tmp_path):
    body = "id,seq,y,v\na,ACGT,x,1\nb,AXGT,y,2\nc,GG,y,3\nd,TTTAA,x,4\n"
    path = write(tmp_path / "x.csv", body)
    table = read_sequences(path, label_col="y", value_col="v", on_invalid="skip")
    assert list(table.ids) == ["a", "c", "d"]
    assert table.labels.tolist() == [0, 1, 0]
    assert table.values.tolist() == [1.0, 3.0, 4.0]
    assert table.lengths.tolist() == [4, 2, 5]
    assert table.alphabet.decode_batch(table.tokens[1:2, :2]) == ["GG"]


def test_skip_of_every_record_is_an_error(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nNNNN\n>b\nNN\n")
    assert "all 2 records have letters outside dna: ACGT" in read_error(
        path, alphabet="dna", on_invalid="skip"
    )


def test_replace_is_deterministic_and_draws_alphabet_letters(tmp_path):
    body = "".join(
        f">r{i}\n{'ACNNNNNNNNGT' if i % 3 == 0 else 'ACGTACGTACGT'}\n" for i in range(60)
    )
    path = write(tmp_path / "x.fa", body)
    first = read_sequences(path, on_invalid="replace", seed=7)
    again = read_sequences(path, on_invalid="replace", seed=7)
    other = read_sequences(path, on_invalid="replace", seed=8)
    assert first.alphabet.name == "dna" and first.report.alphabet_detected
    assert torch.equal(first.tokens, again.tokens)
    assert not torch.equal(first.tokens, other.tokens)
    assert (first.tokens < 4).all()
    assert torch.equal(first.tokens[1], naive_tokens(["ACGTACGTACGT"])[0])
    assert first.tokens[0, :2].tolist() == [0, 1] and first.tokens[0, -2:].tolist() == [2, 3]
    counts = torch.bincount(first.tokens[::3, 2:10].flatten().long(), minlength=4)
    assert (counts > 20).all()  # 160 draws: every letter of the alphabet is used
    report = first.report
    assert (report.replaced_records, report.replaced_letters, report.skipped) == (20, 160, 0)
    assert report.summary() == "replace: 160 letters in 20 records replaced"


def test_replace_handles_non_ascii_letters(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACµT\n>b\nACGT\n")
    table = read_sequences(path, alphabet="dna", on_invalid="replace")
    assert table.report.replaced_letters == 1
    assert (table.tokens < 4).all()
    skipped = read_sequences(path, alphabet="dna", on_invalid="skip")
    assert list(skipped.ids) == ["b"]


# --- condition columns ---------------------------------------------------------------------------


def test_value_signal_and_split_columns(tmp_path):
    body = (
        "id,seq,v,s,part\n"
        'a,ACGT,1.5,"0.5,1,2,-3",train\n'
        'b,ACG, -2e1 ,"4; 5; 6",Validation\n'
        "c,TTTT,0,7 8 9 10,VAL\n"
        "d,GG,3,11\t12,test\n"
    )
    path = write(tmp_path / "x.csv", body)
    table = read_sequences(path, value_col="v", signal_col="s", split_col="part")
    assert table.values.dtype == torch.float32 and table.values.tolist() == [1.5, -20, 0, 3]
    assert table.signal.shape == (4, 4, 1) and table.signal.dtype == torch.float32
    expected = [[0.5, 1, 2, -3], [4, 5, 6, 0], [7, 8, 9, 10], [11, 12, 0, 0]]
    assert table.signal[..., 0].tolist() == expected
    assert table.splits.dtype == torch.int8
    assert table.splits.tolist() == [SPLIT_TRAIN, SPLIT_VALID, SPLIT_VALID, SPLIT_TEST]
    assert (SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST) == (0, 1, 2)


def test_without_condition_columns_they_are_none():
    table = read_sequences(DATA / "tiny.csv")
    assert table.values is None and table.signal is None and table.splits is None


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("abc", ":2: record 'a': value 'abc' in column 'v' is not a number"),
     ("", ":2: record 'a' has no value in column 'v'"),
     ("nan", ":2: record 'a': value 'nan' in column 'v' is not finite"),
     ("-inf", ":2: record 'a': value '-inf' in column 'v' is not finite"),
     ("1e300", ":2: record 'a': value '1e300' in column 'v' is too large for float32")],
)  # fmt: skip
def test_bad_value_cells(tmp_path, cell, expected):
    path = write(tmp_path / "x.csv", f"id,seq,v\na,ACGT,{cell}\n")
    assert read_error(path, value_col="v") == f"{path}{expected}"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("1 2 3", ":3: record 'b': signal has 3 values for a sequence of length 4 (column 'cage')"),
     ("", ":3: record 'b' has no signal in column 'cage'"),
     ("1 x 3 4", ":3: record 'b': signal value 'x' at position 2 is not a finite number "
      "(column 'cage')"),
     ("1 2 nan 4", ":3: record 'b': signal value 'nan' at position 3 is not a finite number "
      "(column 'cage')")],
)  # fmt: skip
def test_bad_signal_cells(tmp_path, cell, expected):
    path = write(tmp_path / "x.tsv", f"id\tseq\tcage\na\tACGT\t1 2 3 4\nb\tACGT\t{cell}\n")
    assert read_error(path, signal_col="cage") == f"{path}{expected}"


def test_bad_split_cell(tmp_path):
    path = write(tmp_path / "x.csv", "id,seq,split\na,ACGT,train\nb,ACGT,holdout\n")
    assert read_error(path, split_col="split") == (
        f"{path}:3: record 'b': split 'holdout' in column 'split' is not train, valid or test"
    )


@pytest.mark.parametrize("option", ["value_col", "signal_col", "split_col"])
def test_missing_condition_column_lists_the_columns(tmp_path, option):
    path = write(tmp_path / "x.csv", "id,seq,y\na,ACGT,1\n")
    role = option.removesuffix("_col")
    assert read_error(path, **{option: "zz"}) == (
        f"{path}:1: no {role} column 'zz'; columns: 'id', 'seq', 'y'"
    )


@pytest.mark.parametrize(("name", "kind"), [("x.fa", "fasta"), ("x.fq", "fastq")])
@pytest.mark.parametrize("option", ["seq_col", "value_col", "signal_col", "split_col"])
def test_column_options_need_a_table(tmp_path, name, kind, option):
    path = write(tmp_path / name, as_text(kind))
    message = read_error(path, **{option: "x"})
    assert message.startswith(f"{path}: {option} needs a CSV or TSV file; {kind} files")


# --- ids, report, table --------------------------------------------------------------------------


def test_duplicate_ids_warn(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\n>b\nACGT\n>a\nACGT\n>b x\nACGT\n>c\nACGT\n")
    expected = r"x\.fa: 2 duplicate record ids \(first: 'a' at line 5\)"
    with pytest.warns(DuplicateIdWarning, match=expected) as caught:
        table = read_sequences(path)
    assert issubclass(DuplicateIdWarning, UserWarning)
    assert caught[0].filename == __file__
    assert table.report.duplicate_ids == 2
    assert list(table.ids) == ["a", "b", "a", "b", "c"]


def test_unique_ids_do_not_warn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = read_sequences(DATA / "tiny.fasta")
    assert table.report.duplicate_ids == 0


def test_record_ids_behave_as_a_sequence_of_str():
    ids = read_sequences(DATA / "tiny.fasta").ids
    assert isinstance(ids, RecordIds)
    headers = [line for line in (DATA / "tiny.fasta").read_text().splitlines() if line[0] == ">"]
    names = [header[1:].split()[0] for header in headers]
    assert len(ids) == 64 and list(ids) == names
    assert ids[0] == names[0] and ids[-1] == names[-1] and isinstance(ids[3], str)
    assert ids[2:5] == tuple(names[2:5])
    assert ids == names and ids != names[:-1] and names[0] in ids
    with pytest.raises(IndexError):
        ids[64]


def test_unicode_ids_round_trip(tmp_path):
    path = write(tmp_path / "x.fa", ">αβ\nACGT\n>ß-2\nACGT\n")
    assert list(read_sequences(path).ids) == ["αβ", "ß-2"]


def test_report_summary_joins_what_happened():
    report = ReadReport(
        format="fasta",
        alphabet_detected=False,
        records=9,
        skipped=2,
        replaced_records=1,
        replaced_letters=3,
        cropped=4,
        alphabet="dna: ACGT",
        max_length=50,
    )
    assert report.summary() == (
        "skip: 2 records with letters outside dna: ACGT dropped; "
        "replace: 3 letters in 1 records replaced; crop: 4 records cut to 50 letters"
    )
    assert ReadReport(format="csv", alphabet_detected=True, records=3).summary() == ""


def test_table_checks_shapes():
    table = read_sequences(DATA / "tiny.csv", label_col="cell_type")
    fields = dict(table.__dict__)
    with pytest.raises(ValueError, match="lengths"):
        SequenceTable(**{**fields, "lengths": table.lengths[:-1]})
    with pytest.raises(ValueError, match="signal"):
        SequenceTable(**{**fields, "signal": torch.zeros(64, 23, 1)})
    with pytest.raises(ValueError, match="splits"):
        SequenceTable(**{**fields, "splits": torch.zeros(64, dtype=torch.int64)})


# --- scale and properties ------------------------------------------------------------------------


def test_memory_stays_near_the_file_size(tmp_path):
    rng = np.random.default_rng(0)
    n = 20_000_000 // 210
    rows = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, 200))]
    path = tmp_path / "big.fa"
    with path.open("wb") as handle:
        for i, row in enumerate(rows):
            handle.write(b">r%d\n%s\n" % (i, row.tobytes()))
    size = os.path.getsize(path)
    start = time.perf_counter()
    tracemalloc.start()
    try:
        table = read_sequences(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 60
    assert table.tokens.shape == (n, 200)
    assert table.alphabet.decode_batch(table.tokens[-1:]) == [rows[-1].tobytes().decode()]
    assert peak < 2.5 * size, f"peak {peak / size:.2f}x the file size"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcXYZ019_-.|", min_size=1, max_size=12),
            st.text(alphabet="ACGTacgt", min_size=1, max_size=150),
        ),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from([0, 7, 60]),
)
def test_random_dna_fasta_reads_back_identically(tmp_path, records, width):
    path = tmp_path / "p.fa"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateIdWarning)
        write_fasta(records, path, width=width)
        table = read_sequences(path, alphabet="dna")
    assert list(table.ids) == [name for name, _ in records]
    assert unpadded(table) == [seq.upper() for _, seq in records]
    assert (table.tokens[torch.arange(table.length) >= table.lengths[:, None]] == 4).all()
