"""Sequence data: alphabets, FASTA/FASTQ/CSV/TSV readers and their tokenised cache, signal
files, FASTA and table writers, ``key=value`` tags in FASTA headers."""

from seqflow.data.alphabet import Alphabet, resolve_alphabet
from seqflow.data.cache import read_cached
from seqflow.data.libraries import LibraryTable, read_libraries
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
from seqflow.data.writers import (
    TABLE_FORMATS,
    format_header,
    read_header_tags,
    write_fasta,
    write_table,
)

__all__ = [
    "SPLIT_TEST",
    "SPLIT_TRAIN",
    "SPLIT_VALID",
    "TABLE_FORMATS",
    "Alphabet",
    "DuplicateIdWarning",
    "LibraryTable",
    "ReadReport",
    "RecordIds",
    "SequenceTable",
    "format_header",
    "read_cached",
    "read_header_tags",
    "read_libraries",
    "read_sequences",
    "read_signal",
    "resolve_alphabet",
    "write_fasta",
    "write_table",
]
