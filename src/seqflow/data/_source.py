"""Opening a sequence file (or stdin, plain or gzip) as checked UTF-8 text, and counting its lines.

Every problem found here becomes a one-line :class:`InvalidInputError` naming the file: missing,
a folder, empty, binary (a NUL byte anywhere), UTF-16 or otherwise not UTF-8, compressed with
something other than gzip, or a gzip "decompression bomb" (:data:`MAX_DECOMPRESSED_RATIO`,
:data:`STREAM_RATIO`). Line endings may be LF, CRLF or a lone CR. Only the head is read ahead
(to sniff and check it) and then replayed, so standard input is never held in memory whole.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import re
import stat
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO, NamedTuple, TextIO

import numpy as np

from seqflow.errors import InvalidInputError, no_such

HEAD_BYTES = 8192  # the (decompressed) start of a file checked for binary content and sniffed
SHOWN_CHARS = 60  # longest id or cell text quoted whole in an error message
GZIP_MAGIC = b"\x1f\x8b"
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)  # of a damaged or truncated stream

MAX_DECOMPRESSED_RATIO = 64
"""A gzip file may decompress to this many times its compressed size, or to
:data:`MAX_DECOMPRESSED_FLOOR` bytes when larger (sequence files compress 3 to 10 times).
``SEQFLOW_MAX_DECOMPRESSED`` replaces both by a fixed size in bytes, with an optional ``K``,
``M``, ``G`` or ``T`` (powers of 1024), e.g. ``100G`` to read a larger file; ``0``: no limit."""

MAX_DECOMPRESSED_FLOOR = 2 << 30  # decompressed bytes always allowed (2 GiB)

STREAM_RATIO = 128
"""Most decompressed bytes per compressed byte consumed so far, once :data:`STREAM_FLOOR`
bytes are out (very repetitive sequence files reach about 50, gzip at most about 1030), so a
bomb stops early with flat memory; not checked when ``SEQFLOW_MAX_DECOMPRESSED`` is set."""

STREAM_FLOOR = 32 << 20  # decompressed bytes (32 MiB) read before the running ratio is checked

LIMIT_VARIABLE = "SEQFLOW_MAX_DECOMPRESSED"

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*(\d{1,15})\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def _size_text(n: int) -> str:
    """``n`` bytes for a message: ``512 bytes``, ``64.0 MiB``, ``2.0 GiB``."""
    power = min(4, (n.bit_length() - 1) // 10) if n >= 1024 else 0  # 1024**power <= n
    return f"{n} bytes" if power == 0 else f"{n / 1024**power:.1f} {'KMGT'[power - 1]}iB"


def max_decompressed(name: str) -> Callable[[int], int | None]:
    """The decompressed-size limit as a function of the compressed size (None: no limit); an
    :class:`InvalidInputError` when ``SEQFLOW_MAX_DECOMPRESSED`` is set but not a size."""
    text = os.environ.get(LIMIT_VARIABLE)
    if text is None or not text.strip():
        return lambda compressed: max(MAX_DECOMPRESSED_FLOOR, MAX_DECOMPRESSED_RATIO * compressed)
    match = _SIZE.fullmatch(text)
    if match is None:
        raise InvalidInputError(
            f"{name}: {LIMIT_VARIABLE}={text!r} is not a size; use bytes such as 500M or 8G "
            "(0: no limit)"
        )
    fixed = int(match[1]) * _UNITS[match[2].upper()]
    return lambda compressed: fixed or None


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
        line: 1-based line of the FASTA/FASTQ header or of the table row.
        seq_line: line of the first letter.
        width: letters per sequence line; 0 when the whole sequence sits on ``seq_line``,
            -1 when the wrapping is irregular (letter lines then cannot be told).
        label, value, signal, split: the parsed condition cells (``signal`` shape (len(seq),),
            float32), ``None`` without their column.
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


class TextSource:
    """An open input, iterated line by line (UTF-8, a leading BOM dropped, line ends kept),
    keeping the 1-based number of the last line in ``line``; ``name`` (the path or ``<stdin>``)
    starts every error message, ``head`` holds the first 8 KB for sniffing. A NUL byte in a
    line is an :class:`InvalidInputError`."""

    def __init__(self, handle: TextIO, name: str, head: str) -> None:
        self._handle = handle
        self.name = name
        self.head = head
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        for text in self._handle:
            self.line += 1
            if "\x00" in text:
                raise InvalidInputError(
                    f"{self.name}:{self.line}: binary file, not text (NUL byte in the line)"
                )
            yield text


class _Replayed(io.RawIOBase):
    """The bytes already read ahead, then the rest of ``rest``; ``given`` counts them."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._rest = rest
        self.given = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            data: bytes | memoryview = self._prefix[: len(buffer)]
            self._prefix = self._prefix[len(data) :]
        else:
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


class _Gunzipped(io.RawIOBase):
    """The decompressed bytes of ``compressed``, an :class:`InvalidInputError` once they pass a
    limit: :func:`max_decompressed` of the compressed size (of a regular file; of the bytes
    given so far for a pipe), or the running :data:`STREAM_RATIO`."""

    def __init__(self, compressed: _Replayed, binary: IO[bytes], name: str) -> None:
        super().__init__()
        self._inner = gzip.GzipFile(fileobj=io.BufferedReader(compressed), mode="rb")
        self._compressed = compressed
        self._name = name
        self._limit = max_decompressed(name)
        self._streamed_ratio = not os.environ.get(LIMIT_VARIABLE, "").strip()
        try:
            info = os.fstat(binary.fileno())
            self._size = info.st_size if stat.S_ISREG(info.st_mode) else 0
        except (OSError, ValueError, io.UnsupportedOperation):
            self._size = 0
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._inner.readinto(buffer)
        self.produced += n
        consumed = max(1, self._compressed.given)
        if self._streamed_ratio and self.produced > max(STREAM_FLOOR, STREAM_RATIO * consumed):
            sizes = f"{_size_text(self.produced)} from {_size_text(consumed)}; "
            raise self._bomb(f"{STREAM_RATIO} times its size", sizes)
        limit = self._limit(max(self._size, self._compressed.given))
        if limit is not None and self.produced > limit:
            raise self._bomb(_size_text(limit))
        return n

    def _bomb(self, limit: str, sizes: str = "") -> InvalidInputError:
        return InvalidInputError(
            f"{self._name}: gzip data decompresses to more than {limit} ({sizes}a decompression "
            f"bomb?); set {LIMIT_VARIABLE} (e.g. 100G, 0 for no limit) to read it"
        )


@contextmanager
def open_text(path: str | Path) -> Iterator[TextSource]:
    """Open ``path`` (``"-"`` for stdin) as text, decompressing gzip found by its magic bytes;
    each problem of the module docstring is an :class:`InvalidInputError`."""
    binary, name, owned = _open_binary(path)
    with binary if owned else nullcontext():
        head = binary.read(HEAD_BYTES)
        stream: IO[bytes] = binary
        if head.startswith(GZIP_MAGIC):
            stream = io.BufferedReader(_Gunzipped(_Replayed(head, binary), binary, name))
            try:
                head = stream.read(HEAD_BYTES)
            except GZIP_ERRORS as err:
                raise InvalidInputError(f"{name}: damaged gzip file ({err})") from None
        text = _check_head(head, name, len(head) < HEAD_BYTES)
        replayed = io.BufferedReader(_Replayed(head, stream))
        handle = io.TextIOWrapper(replayed, encoding="utf-8-sig", newline="")
        yield TextSource(handle, name, text)
