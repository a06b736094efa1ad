"""FASTA and FASTQ records with their line numbers, parsed by Biopython."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from Bio.SeqIO.FastaIO import SimpleFastaParser
from Bio.SeqIO.QualityIO import FastqGeneralIterator

from seqflow.data._source import RawRecord, TextSource, quote
from seqflow.errors import InvalidInputError


def _layout(header: int, widths: list[int], length: int) -> tuple[int, int]:
    """Line of the first letter and letters per line (0: one line; -1: irregular wrapping),
    from the header's line, the characters on each line up to the next record, and the
    letters in the parsed sequence."""
    filled = [i for i, width in enumerate(widths) if width]
    body = widths[filled[0] : filled[-1] + 1] if filled else []
    if not body or sum(body) != length:
        return header, -1
    lead = filled[0]
    if len(body) == 1:
        return header + 1 + lead, 0
    width = body[0]
    if all(w == width for w in body[:-1]) and body[-1] <= width:
        return header + 1 + lead, width
    return header, -1


def _record(
    lines: TextSource, title: str, k: int, seq: str, header: int, seq_line: int, width: int
) -> RawRecord:
    """Record ``k`` (1-based): its id is the first word of ``title``, else ``record{k}``."""
    record_id = (title.split(maxsplit=1) or [f"record{k}"])[0]
    if not seq:
        raise InvalidInputError(
            f"{lines.name}:{header}: record {quote(record_id)} has an empty sequence"
        )
    return RawRecord(record_id, seq, header, seq_line, width)


def iter_fasta(lines: TextSource) -> Iterator[RawRecord]:
    """Yield the records of a FASTA file in order (text before the first ``>`` is ignored, as by
    Biopython), noting line widths so that an invalid letter can be traced to its own line; a
    record with an empty sequence is an :class:`InvalidInputError`."""
    pending: deque[list[int]] = deque()

    def tracked() -> Iterator[str]:
        for text in lines:
            if text.startswith(">"):
                pending.append([lines.line])
            elif pending:
                pending[-1].append(len(text.rstrip()))
            yield text

    for k, (title, seq) in enumerate(SimpleFastaParser(tracked()), start=1):
        header, *widths = pending.popleft()
        yield _record(lines, title, k, seq, header, *_layout(header, widths, len(seq)))


class _FastqHandle:
    """The text-handle face Biopython's FASTQ parser needs, over counted lines: ``first`` is the
    line of the first header (leading blank lines skipped), ``last_text`` the last non-blank
    line seen, ``done`` whether the lines ran out."""

    def __init__(self, lines: TextSource) -> None:
        self.lines = lines
        self.first = 0
        self.last_text = 0
        self.done = False
        self._iter = self._track()

    def _track(self) -> Iterator[str]:
        for text in self.lines:
            if text.strip():
                self.last_text = self.lines.line
            yield text
        self.done = True

    def read(self, size: int = -1) -> str:
        """Only ``read(0)`` is used, to check for text mode."""
        return ""

    def readline(self) -> str:
        text = next((text for text in self._iter if text.strip()), "")
        self.first = self.lines.line
        return text

    def __iter__(self) -> Iterator[str]:
        return self._iter


def iter_fastq(lines: TextSource) -> Iterator[RawRecord]:
    """Yield the records of a FASTQ file in order (qualities are checked, then dropped); a
    sequence wrapped over several lines is accepted, as by Biopython, but its letters are then
    traced to the header line only.

    Raises:
        InvalidInputError: malformed FASTQ (Biopython's complaint, with the line it stopped at),
            or a record with an empty sequence.
    """
    handle = _FastqHandle(lines)
    parsed = FastqGeneralIterator(handle)  # type: ignore[arg-type]
    header = 0
    try:
        for k, (title, seq, _) in enumerate(parsed, start=1):
            header = header or handle.first
            following = handle.last_text + 1 if handle.done else lines.line
            yield _record(
                lines, title, k, seq, header, header + 1, 0 if following - header == 4 else -1
            )
            header = lines.line
    except UnicodeDecodeError:
        raise
    except ValueError as err:
        message = " ".join(str(err).split())
        if len(message) > 200:
            message = message[:199] + "…"
        raise InvalidInputError(f"{lines.name}:{lines.line}: malformed FASTQ ({message})") from None
