"""Sequence data: alphabets, FASTA/FASTQ/CSV/TSV readers, signal files, FASTA and table writers."""

from seqflow.data.alphabet import Alphabet, resolve_alphabet
from seqflow.data.readers import read_sequences
from seqflow.data.signals import read_signal
from seqflow.data.table import (
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VALID,
    DuplicateIdWarning,
    ReadReport,
    RecordIds,
    SequenceTable,
)
from seqflow.data.writers import TABLE_FORMATS, write_fasta, write_table

__all__ = [
    "SPLIT_TEST",
    "SPLIT_TRAIN",
    "SPLIT_VALID",
    "TABLE_FORMATS",
    "Alphabet",
    "DuplicateIdWarning",
    "ReadReport",
    "RecordIds",
    "SequenceTable",
    "read_sequences",
    "read_signal",
    "resolve_alphabet",
    "write_fasta",
    "write_table",
]
