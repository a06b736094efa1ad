"""Reading FASTA/CSV/TSV (plain, gzip, stdin) into token tables, and every input error."""

from __future__ import annotations

import bz2
import gzip
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seqflow.data import read_sequences, write_fasta
from seqflow.data import readers as readers_module
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
    assert table.alphabet.decode(table.tokens[0]) == first[1]


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


def test_length_mismatch_names_record_and_line(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGTAC\n>b\nACGTAC\n>c\nACG\nTA\n")
    assert read_error(path) == (
        f"{path}:5: record 'c' has length 5 but earlier records have 6; "
        "seqflow needs equal lengths (variable length is not supported yet)"
    )


def test_invalid_letter_with_explicit_alphabet(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\n>b\nACGT\n>c\nACNT\n")
    assert read_error(path, alphabet="dna") == (
        f"{path}:5: record 'c': invalid letter 'N' at position 3 (alphabet dna: ACGT)"
    )


def test_invalid_letter_with_auto_suggests_letters(tmp_path):
    path = write(tmp_path / "x.csv", "id,sequence\nr1,ACGT\nr2,acgn\n")
    message = read_error(path)
    assert message.startswith(f"{path}:3: record 'r2': invalid letter 'n' at position 4")
    assert "alphabet='ACGTN'" in message


def test_invalid_letter_found_across_conversion_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(readers_module, "_CHUNK_BYTES", 16)
    body = "".join(f">r{i}\n{'ACGT' if i != 7 else 'ACXT'}\n" for i in range(12))
    path = write(tmp_path / "x.fa", body)
    assert read_error(path, alphabet="dna").startswith(
        f"{path}:15: record 'r7': invalid letter 'X' at position 3"
    )


def test_non_ascii_letter(tmp_path):
    path = write(tmp_path / "x.fa", ">a\nACGT\n>b\nACµT\n")
    assert read_error(path).startswith(f"{path}:3: record 'b': invalid letter 'µ' at position 3")


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
