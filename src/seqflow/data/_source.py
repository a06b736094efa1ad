"""Opening a sequence file (or stdin) as checked UTF-8 text, and counting its lines.

Every problem found here becomes a one-line :class:`InvalidInputError` naming the file: missing,
a folder, empty, binary (a NUL byte anywhere), UTF-16 or otherwise not UTF-8, compressed with
something other than gzip, or a gzip stream decompressing past the limit of
:mod:`seqflow.data._gzip`. Line endings may be LF, CRLF or a lone CR. The input is streamed: only
its head is read ahead (to sniff and check it) and then replayed, so standard input is never
held in memory as a whole.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, TextIO

import numpy as np

from seqflow.data._gzip import GZIP_MAGIC, CappedReader, gunzip_head, max_decompressed
from seqflow.errors import InvalidInputError, no_such

HEAD_BYTES = 8192
"""How much of the (decompressed) start of a file is checked for binary content and sniffed."""

SHOWN_CHARS = 60
"""Longest id or cell text quoted whole in an error message (longer ones are cut)."""

_OTHER_COMPRESSION = {
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}
_OTHER_ENCODINGS = {  # UTF-32 first: its little-endian mark starts with UTF-16's
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def quote(text: str) -> str:
    """``repr(text)`` for a message, cut to ``SHOWN_CHARS`` characters (a 50 MB id stays short)."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[: SHOWN_CHARS - 1] + '…'!r} ({len(text)} characters)"


class RawRecord(NamedTuple):
    """One record as read, before tokenisation.

    Attributes:
        id: record identifier (FASTA/FASTQ: first word of the header; table: id column or
            ``row{n}``).
        seq: the sequence text, stripped of whitespace.
        line: 1-based line of the FASTA/FASTQ header or of the table row.
        seq_line: line of the first letter.
        width: letters per sequence line; 0 when the whole sequence sits on ``seq_line``,
            -1 when the wrapping is irregular (letter lines then cannot be told).
        label: the label cell, or ``None`` without a label column.
        value: the number of the value column, or ``None``.
        signal: the signal cell's numbers, shape (len(seq),), float32; or ``None``.
        split: the split code (train 0, valid 1, test 2), or ``None``.
    """

    id: str
    seq: str
    line: int
    seq_line: int
    width: int = 0
    label: str | None = None
    value: float | None = None
    signal: np.ndarray | None = None
    split: int | None = None

    def letter_where(self, source: str, position: int) -> str:
        """Error prefix naming the line of the letter at 1-based ``position``."""
        if self.width < 0:
            return f"{source}:{self.line}: record {quote(self.id)} (header line {self.line})"
        line = self.seq_line + ((position - 1) // self.width if self.width else 0)
        return f"{source}:{line}: record {quote(self.id)}"


class LineCounter:
    """Iterate over the lines of a text handle, keeping the 1-based number of the last one.

    Args:
        handle: the text; lines end with LF, CRLF or a lone CR.
        source: file name for error messages.

    Raises:
        InvalidInputError: a line holds a NUL byte (binary content past the checked head).
    """

    def __init__(self, handle: TextIO, source: str) -> None:
        self._handle = handle
        self._source = source
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        for text in self._handle:
            self.line += 1
            if "\x00" in text:
                raise InvalidInputError(
                    f"{self._source}:{self.line}: binary file, not text (NUL byte in the line)"
                )
            yield text


@dataclass
class TextSource:
    """An open input: its text handle, its display name and the first characters for sniffing.

    Attributes:
        handle: UTF-8 text (a leading BOM is dropped), newlines untranslated.
        name: the path as given, or ``<stdin>``; it starts every error message.
        head: up to the first 8 KB, decoded.
        compressed: whether the bytes were gzip-compressed.
    """

    handle: TextIO
    name: str
    head: str
    compressed: bool


class _Replayed(io.RawIOBase):
    """A byte stream that gives the bytes already read ahead, then the rest of ``rest``."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._rest = rest
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            self.given += n
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        self.given += len(data)
        return len(data)


def _open_binary(path: str | Path) -> tuple[IO[bytes], str, bool]:
    """The byte stream, its display name, and whether it is ours to close."""
    if str(path) == "-":
        buffer = getattr(sys.stdin, "buffer", None)
        if buffer is None:
            return io.BytesIO(sys.stdin.read().encode("utf-8")), "<stdin>", True
        return buffer, "<stdin>", False
    name = str(path)
    file = Path(path)
    if file.is_dir():
        raise InvalidInputError(f"{name}: is a folder, not a sequence file")
    if not file.exists():
        raise InvalidInputError(f"{name}: {no_such(file)}")
    try:
        return file.open("rb"), name, True
    except PermissionError:
        raise InvalidInputError(f"{name}: permission denied") from None
    except OSError as err:
        raise InvalidInputError(f"{name}: cannot be opened ({err.strerror or err})") from None


def _check_head(head: bytes, name: str, complete: bool) -> str:
    """Reject empty and binary content; return the head decoded."""
    if not head.strip() and complete:
        raise InvalidInputError(f"{name}: empty file")
    for magic, kind in _OTHER_COMPRESSION.items():
        if head.startswith(magic):
            raise InvalidInputError(f"{name}: {kind}-compressed; only gzip (.gz) is supported")
    for bom, encoding in _OTHER_ENCODINGS.items():
        if head.startswith(bom):
            raise InvalidInputError(
                f"{name}: {encoding} text (byte-order mark); only UTF-8 is read "
                f"(convert it, e.g. iconv -f {encoding} -t UTF-8)"
            )
    nul = head.find(b"\x00")
    if nul >= 0:
        sample = head[:256]
        wide = any(not half.strip(b"\x00") for half in (sample[0::2], sample[1::2]))
        hint = "; UTF-16 text?" if wide and sample.strip(b"\x00") else ""
        raise InvalidInputError(f"{name}: binary file, not text (NUL byte at offset {nul}{hint})")
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=complete)
    except UnicodeDecodeError as err:
        line = head.count(b"\n", 0, err.start) + 1
        raise InvalidInputError(
            f"{name}: not a UTF-8 text file (undecodable byte {head[err.start]:#04x} at offset "
            f"{err.start}, line {line})"
        ) from None


def _file_size(binary: IO[bytes]) -> int:
    """The size of a regular file; 0 for a pipe (then the bytes read so far stand for it)."""
    try:
        info = os.fstat(binary.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0
    return info.st_size if stat.S_ISREG(info.st_mode) else 0


@contextmanager
def open_text(path: str | Path) -> Iterator[TextSource]:
    """Open ``path`` (``"-"`` for stdin) as text, decompressing gzip found by its magic bytes.

    Raises:
        InvalidInputError: missing file, folder, empty, binary, other compression, not UTF-8,
            or (while the text is read) a gzip stream decompressing past the limit.
    """
    binary, name, owned = _open_binary(path)
    try:
        raw = binary.read(HEAD_BYTES)
        compressed = raw.startswith(GZIP_MAGIC)
        stream: IO[bytes]
        if compressed:
            limit = max_decompressed(name)
            head, read, complete = gunzip_head(raw, binary, name, HEAD_BYTES)
            replayed = _Replayed(read, binary)
            size = _file_size(binary)
            unzipped = gzip.GzipFile(fileobj=io.BufferedReader(replayed), mode="rb")
            capped = CappedReader(
                unzipped, name, lambda: max(size, replayed.given), limit, lambda: replayed.given
            )
            stream = io.BufferedReader(capped)
        else:
            head, complete = raw, len(raw) < HEAD_BYTES
            stream = io.BufferedReader(_Replayed(raw, binary))
        text = _check_head(head[:HEAD_BYTES], name, complete and len(head) <= HEAD_BYTES)
        handle = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        yield TextSource(handle=handle, name=name, head=text, compressed=compressed)
    finally:
        if owned:
            binary.close()
