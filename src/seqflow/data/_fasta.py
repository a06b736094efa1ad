"""FASTA records with the line number of each header, parsed by Biopython."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from Bio.SeqIO.FastaIO import SimpleFastaParser

from seqflow.data._source import LineCounter, RawRecord
from seqflow.errors import InvalidInputError


def iter_fasta(lines: LineCounter, source: str) -> Iterator[RawRecord]:
    """Yield the records of a FASTA file in order.

    The id is the first word of the header (``record{k}`` when the header is blank); text before
    the first ``>`` is ignored, as Biopython does.

    Args:
        lines: the file's lines; its counter gives header line numbers.
        source: file name for error messages.

    Raises:
        InvalidInputError: a record has an empty sequence.
    """
    header_lines: deque[int] = deque()

    def tracked() -> Iterator[str]:
        for text in lines:
            if text.startswith(">"):
                header_lines.append(lines.line)
            yield text

    for k, (title, seq) in enumerate(SimpleFastaParser(tracked()), start=1):
        line = header_lines.popleft()
        words = title.split(maxsplit=1)
        record_id = words[0] if words else f"record{k}"
        if not seq:
            raise InvalidInputError(f"{source}:{line}: record {record_id!r} has an empty sequence")
        yield RawRecord(record_id, seq, line, None)
