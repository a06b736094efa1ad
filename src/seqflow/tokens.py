"""Strings to padded token rows in one vectorised step: join, code points, 256-entry table,
scatter; never letter by letter in Python. A leaf (numpy only) that metrics and oracles share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

INVALID = 255
"""Token of a character outside the alphabet."""


@dataclass(frozen=True, eq=False)
class FlatTokens:
    """The letters of N sequences, joined and tokenised (a letter's token is its index).

    Attributes:
        tokens: shape (sum of lengths,), uint8; ``INVALID`` where a character is not a letter of
            the alphabet in either case.
        lengths: length of each sequence, shape (N,), int64.
    """

    tokens: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, seqs: Sequence[str], letters: str) -> FlatTokens:
        """Tokens of ``seqs`` over the ASCII ``letters`` (upper or lower case alike)."""
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        text = "".join(seqs).encode("utf-32-le", errors="surrogatepass")
        codes = np.frombuffer(text, dtype=np.uint32)
        table = np.full(256, INVALID, dtype=np.uint8)
        for token, letter in enumerate(letters):
            table[ord(letter)] = table[ord(letter.lower())] = token
        tokens = np.full(codes.shape, INVALID, dtype=np.uint8)
        byte = codes < 256
        tokens[byte] = table[codes[byte]]
        return cls(tokens, lengths)

    def first_invalid(self) -> tuple[int, int] | None:
        """(sequence index, 0-based position) of the first character outside the alphabet."""
        bad = np.flatnonzero(self.tokens == INVALID)
        if not bad.size:
            return None
        ends = np.cumsum(self.lengths)
        i = int(np.searchsorted(ends, bad[0], side="right"))
        return i, int(bad[0] - ends[i] + self.lengths[i])

    def padded(self, width: int, pad: int, offsets: np.ndarray | None = None) -> np.ndarray:
        """Token rows, shape (N, width), uint8, ``pad`` where no letter sits; sequence n starts
        at column ``offsets[n]`` (shape (N,); default 0)."""
        n = len(self.lengths)
        starts = np.cumsum(self.lengths) - self.lengths
        if offsets is not None:
            starts = starts - offsets
        rows = np.repeat(np.arange(n), self.lengths)
        cols = np.arange(self.tokens.size) - np.repeat(starts, self.lengths)
        out = np.full((n, width), pad, dtype=np.uint8)
        out[rows, cols] = self.tokens
        return out
