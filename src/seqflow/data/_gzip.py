"""Gzip input with a cap on the decompressed size: a gzip file can decompress to about a
thousand times its size (a "decompression bomb"), so the stream is counted while it is read and
stops with a one-line :class:`InvalidInputError` before it fills memory."""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections.abc import Callable

from seqflow.errors import InvalidInputError

GZIP_MAGIC = b"\x1f\x8b"
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

LIMIT_VARIABLE = "SEQFLOW_MAX_DECOMPRESSED"

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


class CappedReader(io.RawIOBase):
    """Decompressed bytes of ``inner``, stopping once they pass ``limit`` (see
    :func:`max_decompressed`) of the ``compressed`` size (for a pipe: the bytes given so far)."""

    def __init__(
        self,
        inner: io.BufferedIOBase,
        name: str,
        compressed: Callable[[], int],
        limit: Callable[[int], int | None],
    ) -> None:
        super().__init__()
        self._inner = inner
        self._name = name
        self._compressed = compressed
        self._limit = limit
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._inner.readinto(buffer)
        self.produced += n
        limit = self._limit(self._compressed())
        if limit is not None and self.produced > limit:
            raise InvalidInputError(
                f"{self._name}: gzip data decompresses to more than {_size_text(limit)} (a "
                f"decompression bomb?); set {LIMIT_VARIABLE} (e.g. 100G, 0 for no limit) to "
                "read it"
            )
        return n
