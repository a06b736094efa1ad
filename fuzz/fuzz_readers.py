"""Atheris fuzz target for ``seqflow.data.read_sequences`` (see fuzz/README.md).

The first byte of the input picks the format (fasta, fastq, csv, tsv), whether the rest is
gzip-compressed, whether the format is given or sniffed, and the alphabet; the second byte picks
``on_invalid``, ``max_length`` and the CSV/TSV columns. The rest is written to a temporary file
and read. A :class:`~seqflow.errors.SeqflowError` with a one-line message is a correct answer to
bad input; any other exception, or a message of several lines, is a crash.

    python fuzz/fuzz_readers.py -max_total_time=600 -rss_limit_mb=4096 [CORPUS_DIR ...]
    python fuzz/fuzz_readers.py seeds CORPUS_DIR     # write a few valid files to start from
"""

from __future__ import annotations

import atexit
import gzip
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

INSTRUMENTED = ["seqflow", "Bio.SeqIO.FastaIO", "Bio.SeqIO.QualityIO"]
"""Modules whose branches guide the fuzzer (the readers and Biopython's parsers)."""

with atheris.instrument_imports(include=INSTRUMENTED):
    from seqflow.data import read_sequences
    from seqflow.errors import SeqflowError

FORMATS = ("fasta", "fastq", "csv", "tsv")
SUFFIXES = {"fasta": ".fa", "fastq": ".fq", "csv": ".csv", "tsv": ".tsv"}
ALPHABETS = ("auto", "dna", "protein", "ACGTN")
POLICIES = ("error", "skip", "replace")
COLUMN_SETS = (
    {},
    {"label_col": "label"},
    {"value_col": "value"},
    {"signal_col": "signal"},
    {"split_col": "split"},
    {"seq_col": "seq", "label_col": "label", "value_col": "value", "split_col": "split"},
)
SEEDS = {
    "fasta": b">r1 desc\nACGTACGT\nACG\n>r2\nTTGCA\n",
    "fastq": b"@r1\nACGT\n+\nIIII\n@r2\nGGCA\n+r2\nIIII\n",
    "csv": b"id,seq,label,value,signal,split\nr1,ACGT,a,1.5,1 2 3 4,train\nr2,GG,b,-2,0 1,test\n",
    "tsv": b"id\tseq\tlabel\tvalue\tsignal\tsplit\nr1\tACGT\ta\t1.5\t1,2,3,4\tvalid\n",
}

_FOLDER = Path(tempfile.mkdtemp(prefix="seqflow-fuzz-"))
atexit.register(shutil.rmtree, _FOLDER, ignore_errors=True)


def options(first: int, second: int) -> tuple[str, bool, dict]:
    """Format, gzip and the keyword arguments of ``read_sequences`` chosen by two bytes."""
    fmt = FORMATS[first & 3]
    kwargs: dict = {
        "fmt": fmt if first & 8 else "auto",
        "alphabet": ALPHABETS[(first >> 4) & 3],
        "on_invalid": POLICIES[(second & 3) % 3],
        "max_length": (None, 5, 64, 1000)[(second >> 2) & 3],
        "crop": bool(second & 16),
    }
    if fmt in ("csv", "tsv"):
        kwargs.update(COLUMN_SETS[(second >> 5) % len(COLUMN_SETS)])
    return fmt, bool(first & 4), kwargs


def test_one_input(data: bytes) -> None:
    """Read ``data[2:]`` as chosen by ``data[:2]``; only SeqflowError may escape."""
    if len(data) < 2:
        return
    fmt, compressed, kwargs = options(data[0], data[1])
    body = data[2:]
    if compressed:
        body = gzip.compress(body, compresslevel=1, mtime=0)
    path = _FOLDER / f"input{SUFFIXES[fmt]}{'.gz' if compressed else ''}"
    path.write_bytes(body)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read_sequences(path, **kwargs)
    except SeqflowError as err:
        if "\n" in str(err):
            raise AssertionError(f"message of several lines: {str(err)!r}") from err
    finally:
        path.unlink(missing_ok=True)


def write_seeds(folder: Path) -> None:
    """A few valid inputs, one per format, plain and gzip-compressed."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, fmt in enumerate(FORMATS):
        for gz in (0, 4):
            (folder / f"{fmt}{gz}").write_bytes(bytes([i | gz | 8, 0]) + SEEDS[fmt])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "seeds":
        write_seeds(Path(sys.argv[2]))
        return
    os.environ.setdefault("SEQFLOW_MAX_DECOMPRESSED", "4M")  # a bomb stops fast
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
