"""Gzip input: decompressing the head for sniffing, and a cap on the decompressed size.

A gzip file can decompress to about a thousand times its size (a "decompression bomb"); since
the records of a file are held in memory, the stream is counted while it is read and stops with
a one-line :class:`InvalidInputError` once it passes the limit of
:func:`max_decompressed`, before it fills memory. The ratio of the bytes produced to the
compressed bytes consumed so far is checked too (:data:`STREAM_RATIO`), so a bomb stops after
:data:`STREAM_FLOOR` bytes, within a second and with flat memory, not at the size limit.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections.abc import Callable
from typing import IO

from seqflow.errors import InvalidInputError

GZIP_MAGIC = b"\x1f\x8b"
"""The first two bytes of every gzip stream."""

GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
"""What a damaged or truncated gzip stream raises while it is read."""

MAX_DECOMPRESSED_RATIO = 64
"""A gzip file may decompress to at most this many times its compressed size, or to
``MAX_DECOMPRESSED_FLOOR`` bytes, whichever is larger (sequence files compress 3 to 10 times).

The environment variable ``SEQFLOW_MAX_DECOMPRESSED`` replaces both with a fixed number of
bytes: digits with an optional ``K``, ``M``, ``G`` or ``T`` suffix (powers of 1024), e.g.
``SEQFLOW_MAX_DECOMPRESSED=100G`` to read a larger file, or ``=0`` for no limit."""

MAX_DECOMPRESSED_FLOOR = 2 << 30
"""The decompressed size always allowed (2 GiB), however small the compressed file."""

STREAM_RATIO = 128
"""Most decompressed bytes per compressed byte consumed so far, once :data:`STREAM_FLOOR`
bytes are out: sequence files compress 3 to 10 times, very repetitive ones (one sequence many
times over) about 50; gzip's own maximum is about 1030. Not checked when
``SEQFLOW_MAX_DECOMPRESSED`` is set."""

STREAM_FLOOR = 32 << 20
"""Decompressed bytes (32 MiB) always read before the running ratio is checked."""

LIMIT_VARIABLE = "SEQFLOW_MAX_DECOMPRESSED"
"""Name of the environment variable that overrides the decompressed-size limit."""

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"\s*(\d{1,15})\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def _size_text(n: int) -> str:
    """``n`` bytes for a message: ``512 bytes``, ``64.0 MiB``, ``2.0 GiB``."""
    value, unit = float(n), "bytes"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def max_decompressed(name: str) -> Callable[[int], int | None]:
    """The decompressed-size limit as a function of the compressed size (None: no limit).

    Args:
        name: the file, for the error about a malformed ``SEQFLOW_MAX_DECOMPRESSED``.

    Raises:
        InvalidInputError: ``SEQFLOW_MAX_DECOMPRESSED`` is set but not a size.
    """
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


def gunzip_head(raw: bytes, binary: IO[bytes], name: str, size: int) -> tuple[bytes, bytes, bool]:
    """Decompress the first ``size`` bytes of a gzip stream (more members are followed).

    Args:
        raw: the compressed bytes read so far.
        binary: the rest of the compressed stream.
        name: file name for error messages.
        size: how many decompressed bytes are wanted; never more are produced.

    Returns:
        the decompressed head (at most ``size`` bytes), every compressed byte read so far (to be
        replayed), and whether the whole stream was seen.

    Raises:
        InvalidInputError: the stream is damaged or truncated.
    """
    read, head = [raw], b""
    decompressor = zlib.decompressobj(wbits=31)
    pending = raw
    try:
        while len(head) < size:
            head += decompressor.decompress(pending, size - len(head))
            if len(head) >= size:
                break
            if decompressor.eof and decompressor.unused_data:
                pending = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                continue
            pending = binary.read(1 << 16)
            if not pending:
                if not decompressor.eof:
                    raise EOFError("compressed file ended before the end-of-stream marker")
                return head, b"".join(read), True
            read.append(pending)
    except GZIP_ERRORS as err:
        raise InvalidInputError(f"{name}: damaged gzip file ({err})") from None
    return head, b"".join(read), False


class CappedReader(io.RawIOBase):
    """Decompressed bytes of ``inner``, stopping once they pass the limit.

    Args:
        inner: the decompressing stream.
        name: file name for the error.
        compressed: how many compressed bytes the stream has (or has given so far, for a pipe).
        limit: the decompressed-size limit for a compressed size (None: no limit), as returned
            by :func:`max_decompressed`.
        consumed: how many compressed bytes have been read so far: past :data:`STREAM_FLOOR`
            the output may be at most :data:`STREAM_RATIO` times that (unless
            ``SEQFLOW_MAX_DECOMPRESSED`` sets the limit).
    """

    def __init__(
        self,
        inner: io.BufferedIOBase,
        name: str,
        compressed: Callable[[], int],
        limit: Callable[[int], int | None],
        consumed: Callable[[], int] | None = None,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._name = name
        self._compressed = compressed
        self._limit = limit
        self._consumed = consumed if not os.environ.get(LIMIT_VARIABLE, "").strip() else None
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._inner.readinto(buffer)
        self.produced += n
        if self._consumed is not None and self.produced > STREAM_FLOOR:
            consumed = max(1, self._consumed())
            if self.produced > STREAM_RATIO * consumed:
                raise InvalidInputError(
                    f"{self._name}: gzip data decompresses to more than {STREAM_RATIO} times its "
                    f"size ({_size_text(self.produced)} from {_size_text(consumed)}; a "
                    f"decompression bomb?); set {LIMIT_VARIABLE} (e.g. 100G, 0 for no limit) "
                    "to read it"
                )
        limit = self._limit(self._compressed())
        if limit is not None and self.produced > limit:
            raise InvalidInputError(
                f"{self._name}: gzip data decompresses to more than {_size_text(limit)} (a "
                f"decompression bomb?); set {LIMIT_VARIABLE} (e.g. 100G, 0 for no limit) to "
                "read it"
            )
        return n
