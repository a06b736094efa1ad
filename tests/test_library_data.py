"""Library-mode input: a set column of one CSV/TSV file, or one sequence file per library."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest

from seqflow.data import LibraryTable, read_libraries
from seqflow.errors import InvalidInputError

TABLE = (
    "# libraries of a screen\n"
    "\n"
    "id,library,sequence\n"
    "r1,L1,ACGT\n"
    "r2,L2,CCCA\n"
    "\n"
    "r3,L1,ACGA\n"
    "r4,L3,GGGG\n"
    "r5,L2,CCCC\n"
)


def _write(path, text):
    path.write_text(text)
    return path


def _one_line_error(call) -> str:
    with pytest.raises(InvalidInputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_set_column_groups_rows_in_order_of_first_appearance(tmp_path):
    libs = read_libraries(_write(tmp_path / "x.csv", TABLE), "library")
    assert isinstance(libs, LibraryTable)
    assert list(libs.libraries) == ["L1", "L2", "L3"]
    assert [r.tolist() for r in libs.libraries.values()] == [[0, 2], [1, 4], [3]]
    assert libs.sequences() == {"L1": ["ACGT", "ACGA"], "L2": ["CCCA", "CCCC"], "L3": ["GGGG"]}
    assert list(libs.table.ids) == ["r1", "r2", "r3", "r4", "r5"]


def test_set_column_in_tsv_with_labels_and_variable_lengths(tmp_path):
    text = "sequence\tset\tcell\nACGTAC\ta\tk562\nAC\tb\thepg2\nACG\ta\thepg2\n"
    libs = read_libraries(_write(tmp_path / "x.tsv", text), "SET", label_col="cell")
    assert libs.sequences() == {"a": ["ACGTAC", "ACG"], "b": ["AC"]}
    assert libs.table.label_names == ("hepg2", "k562")


def test_skipped_records_leave_their_library(tmp_path):
    path = _write(tmp_path / "x.csv", TABLE.replace("r3,L1,ACGA", "r3,L1,AXGA"))
    libs = read_libraries(path, "library", alphabet="dna", on_invalid="skip")
    assert {k: v.tolist() for k, v in libs.libraries.items()} == {
        "L1": [0],
        "L2": [1, 3],
        "L3": [2],
    }
    assert libs.sequences()["L2"] == ["CCCA", "CCCC"]


def test_a_library_emptied_by_skipping_is_an_error(tmp_path):
    path = _write(tmp_path / "x.csv", TABLE.replace("r4,L3,GGGG", "r4,L3,GXGG"))
    message = _one_line_error(
        lambda: read_libraries(path, "library", alphabet="dna", on_invalid="skip")
    )
    assert message == f"{path}:8 (column 'library'): library 'L3' has 0 sequence(s); min_size is 1"


def test_folder_of_fasta_files(tmp_path):
    _write(tmp_path / "lib_b.fa", ">s1\nACGT\n>s2\nACG\n")
    _write(tmp_path / "lib_a.fasta", ">t1\nTTTT\n")
    with gzip.open(tmp_path / "lib_c.fa.gz", "wt") as handle:
        handle.write(">u1\nGGGGCC\n>u2\nGG\n>u3\nCAT\n")
    _write(tmp_path / "notes.txt", "not a library\n")
    _write(tmp_path / ".hidden.fa", ">h\nAAAA\n")
    libs = read_libraries(tmp_path)
    assert list(libs.libraries) == ["lib_a", "lib_b", "lib_c"]
    assert libs.sequences() == {
        "lib_a": ["TTTT"],
        "lib_b": ["ACGT", "ACG"],
        "lib_c": ["GGGGCC", "GG", "CAT"],
    }
    assert libs.table.tokens.shape == (6, 6)
    assert libs.table.record_index.tolist() == list(range(6))
    assert libs.table.report.records == 6


def test_list_of_files_names_libraries_by_stem(tmp_path):
    first = _write(tmp_path / "one.fa", ">a\nACGT\n")
    second = _write(tmp_path / "two.csv", "sequence\nGGCC\nGGCA\n")
    libs = read_libraries([second, first])
    assert {k: v.tolist() for k, v in libs.libraries.items()} == {"two": [0, 1], "one": [2]}
    assert libs.sequences()["one"] == ["ACGT"]


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        (TABLE, {"set_col": "batch"}, r"x.csv:3: no set column 'batch'; columns: 'id', 'library'"),
        (
            TABLE.replace("r3,L1,", "r3,,"),
            {"set_col": "library"},
            r"x.csv:7: empty set value in column 'library'",
        ),
        (
            TABLE,
            {"set_col": "library", "min_size": 2},
            r"x.csv:8 (column 'library'): library 'L3' has 1 sequence(s); min_size is 2",
        ),
        (TABLE, {}, r"x.csv: give set_col (the column naming each row's library)"),
        (TABLE, {"set_col": "library", "min_size": 0}, r"x.csv: min_size must be at least 1"),
    ],
)
def test_set_column_errors(tmp_path, text, kwargs, expected):
    path = _write(tmp_path / "x.csv", text)
    message = _one_line_error(lambda: read_libraries(path, **kwargs))
    assert re.search(re.escape(expected), message), message


def test_set_column_needs_a_table_file(tmp_path):
    path = _write(tmp_path / "x.fa", ">a\nACGT\n")
    message = _one_line_error(lambda: read_libraries(path, "library"))
    assert message == f"{path}: set_col needs a CSV or TSV file, not fasta"


def test_set_column_refuses_stdin():
    message = _one_line_error(lambda: read_libraries("-", "library"))
    assert message.startswith("<stdin>: set_col needs a file")


def test_file_per_library_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    message = _one_line_error(lambda: read_libraries(empty))
    assert message.startswith(f"{empty}: no FASTA/FASTQ files (")
    lib = _write(tmp_path / "a.fa", ">a\nACGT\n")
    message = _one_line_error(lambda: read_libraries(tmp_path, "library"))
    assert message == f"{tmp_path}: set_col is for one CSV/TSV file; here each file is one library"
    (tmp_path / "other").mkdir()
    twin = _write(tmp_path / "other" / "a.fasta", ">b\nACGA\n")
    message = _one_line_error(lambda: read_libraries([lib, twin]))
    assert message == f"{twin}: library 'a' already read from {lib}"
    message = _one_line_error(lambda: read_libraries([lib], min_size=2))
    assert message == f"{lib}: library 'a' has 1 sequence(s); min_size is 2"
    protein = _write(tmp_path / "p.fa", ">p\nMKWVLLE\n")
    message = _one_line_error(lambda: read_libraries([lib, protein]))
    assert message.startswith(f"{protein}: alphabet protein")
    assert message.endswith(f"differs from dna: ACGT of {lib}; give one alphabet")
    message = _one_line_error(lambda: read_libraries([]))
    assert message == "read_libraries: an empty list of files"


def test_reader_errors_pass_through(tmp_path):
    path = _write(tmp_path / "x.csv", TABLE.replace("r2,L2,CCCA", "r2,L2,"))
    message = _one_line_error(lambda: read_libraries(path, "library"))
    assert message.startswith(f"{path}:5: record 'r2' has no sequence")


def test_sequences_round_trip_tokens(tmp_path):
    libs = read_libraries(_write(tmp_path / "x.csv", TABLE), "library")
    rows = np.concatenate(list(libs.libraries.values()))
    assert sorted(rows.tolist()) == list(range(len(libs.table)))
