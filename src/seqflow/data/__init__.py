"""Sequence data: alphabets, FASTA/CSV/TSV readers and FASTA writers."""

from seqflow.data.alphabet import Alphabet, resolve_alphabet
from seqflow.data.readers import SequenceTable, read_sequences
from seqflow.data.writers import write_fasta

__all__ = ["Alphabet", "SequenceTable", "read_sequences", "resolve_alphabet", "write_fasta"]
