"""Opening a sequence file (or stdin) as checked UTF-8 text, and counting its lines.

Every problem found here becomes a one-line :class:`InvalidInputError` naming the file: missing,
a folder, empty, binary, compressed with something other than gzip, or not UTF-8. The input is
streamed: only its head is read ahead (to sniff and check it) and then replayed, so standard
input is never held in memory as a whole.
"""

from __future__ import annotations

import codecs
import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, TextIO

import numpy as np

from seqflow.errors import InvalidInputError

HEAD_BYTES = 8192
"""How much of the (decompressed) start of a file is checked for binary content and sniffed."""

GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
"""What a damaged or truncated gzip stream raises while it is read."""

_GZIP_MAGIC = b"\x1f\x8b"
_READ_BYTES = 1 << 16
_OTHER_COMPRESSION = {
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}


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
            return f"{source}:{self.line}: record {self.id!r} (header line {self.line})"
        line = self.seq_line + ((position - 1) // self.width if self.width else 0)
        return f"{source}:{line}: record {self.id!r}"


class LineCounter:
    """Iterate over the lines of a text handle, keeping the 1-based number of the last one."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        for text in self._handle:
            self.line += 1
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

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
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
        raise InvalidInputError(f"{name}: no such file")
    try:
        return file.open("rb"), name, True
    except PermissionError:
        raise InvalidInputError(f"{name}: permission denied") from None


def _gunzip_head(raw: bytes, binary: IO[bytes], name: str) -> tuple[bytes, bytes, bool]:
    """Decompress enough of a gzip stream for its head.

    Returns:
        the decompressed head, every compressed byte read so far (to be replayed), and whether
        the whole stream was seen.
    """
    read, head = [raw], b""
    decompressor = zlib.decompressobj(wbits=31)
    pending = raw
    try:
        while len(head) < HEAD_BYTES:
            head += decompressor.decompress(pending)
            if decompressor.eof and decompressor.unused_data:
                pending = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                continue
            pending = binary.read(_READ_BYTES)
            if not pending:
                if not decompressor.eof:
                    raise EOFError("compressed file ended before the end-of-stream marker")
                return head, b"".join(read), True
            read.append(pending)
    except GZIP_ERRORS as err:
        raise InvalidInputError(f"{name}: damaged gzip file ({err})") from None
    return head, b"".join(read), False


def _check_head(head: bytes, name: str, complete: bool) -> str:
    """Reject empty and binary content; return the head decoded."""
    if not head.strip() and complete:
        raise InvalidInputError(f"{name}: empty file")
    for magic, kind in _OTHER_COMPRESSION.items():
        if head.startswith(magic):
            raise InvalidInputError(f"{name}: {kind}-compressed; only gzip (.gz) is supported")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise InvalidInputError(f"{name}: binary file, not text (NUL byte at offset {nul})")
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=complete)
    except UnicodeDecodeError as err:
        raise InvalidInputError(
            f"{name}: not a UTF-8 text file (undecodable byte at offset {err.start})"
        ) from None


@contextmanager
def open_text(path: str | Path) -> Iterator[TextSource]:
    """Open ``path`` (``"-"`` for stdin) as text, decompressing gzip found by its magic bytes.

    Raises:
        InvalidInputError: missing file, folder, empty, binary, other compression, not UTF-8.
    """
    binary, name, owned = _open_binary(path)
    try:
        raw = binary.read(HEAD_BYTES)
        compressed = raw.startswith(_GZIP_MAGIC)
        stream: IO[bytes] | gzip.GzipFile
        if compressed:
            head, read, complete = _gunzip_head(raw, binary, name)
            stream = gzip.GzipFile(fileobj=io.BufferedReader(_Replayed(read, binary)), mode="rb")
        else:
            head, complete = raw, len(raw) < HEAD_BYTES
            stream = io.BufferedReader(_Replayed(raw, binary))
        text = _check_head(head[:HEAD_BYTES], name, complete and len(head) <= HEAD_BYTES)
        handle = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        yield TextSource(handle=handle, name=name, head=text, compressed=compressed)
    finally:
        if owned:
            binary.close()
