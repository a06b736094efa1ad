"""Opening a sequence file (or stdin) as checked UTF-8 text, and counting its lines.

Every problem found here becomes a one-line :class:`InvalidInputError` naming the file: missing,
a folder, empty, binary, compressed with something other than gzip, or not UTF-8.
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

from seqflow.errors import InvalidInputError

HEAD_BYTES = 8192
"""How much of the (decompressed) start of a file is checked for binary content and sniffed."""

GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
"""What a damaged or truncated gzip stream raises while it is read."""

_OTHER_COMPRESSION = {
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
}


class RawRecord(NamedTuple):
    """One record as read, before tokenisation.

    Attributes:
        id: record identifier (FASTA: first word of the header; table: id column or ``row{n}``).
        seq: the sequence text, stripped of whitespace.
        line: 1-based line of the FASTA header or of the table row.
        label: the label cell, or ``None`` when no label column was asked for.
    """

    id: str
    seq: str
    line: int
    label: str | None


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


def _open_binary(path: str | Path) -> tuple[IO[bytes], str]:
    if str(path) == "-":
        stdin = sys.stdin
        buffer = getattr(stdin, "buffer", None)
        data = buffer.read() if buffer is not None else stdin.read().encode("utf-8")
        return io.BytesIO(data), "<stdin>"
    name = str(path)
    file = Path(path)
    if file.is_dir():
        raise InvalidInputError(f"{name}: is a folder, not a sequence file")
    if not file.exists():
        raise InvalidInputError(f"{name}: no such file")
    try:
        return file.open("rb"), name
    except PermissionError:
        raise InvalidInputError(f"{name}: permission denied") from None


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
    binary, name = _open_binary(path)
    try:
        compressed = binary.read(2) == b"\x1f\x8b"
        binary.seek(0)
        stream: IO[bytes] | gzip.GzipFile = (
            gzip.GzipFile(fileobj=binary, mode="rb") if compressed else binary
        )
        try:
            raw_head = stream.read(HEAD_BYTES)
            stream.seek(0)
        except GZIP_ERRORS as err:
            raise InvalidInputError(f"{name}: damaged gzip file ({err})") from None
        head = _check_head(raw_head, name, complete=len(raw_head) < HEAD_BYTES)
        handle = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        yield TextSource(handle=handle, name=name, head=head, compressed=compressed)
    finally:
        binary.close()
