"""Shared helpers of the metrics: input checks, token encoding, Jensen-Shannon distance.

Every metric takes plain lists of strings and reads them case-insensitively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import rel_entr

from seqflow.errors import InvalidInputError
from seqflow.tokens import FlatTokens


@dataclass(frozen=True, eq=False)
class Encoded:
    """A set of sequences as a padded token array.

    Attributes:
        tokens: letter indices into ``letters``, shape (N, L_max), uint8; ``len(letters)``
            beyond each sequence's length.
        lengths: length of each sequence, shape (N,), int64.
        letters: the upper-case letters, in token order.
    """

    tokens: np.ndarray
    lengths: np.ndarray
    letters: str

    @property
    def size(self) -> int:
        """Number of letters K (also the padding token)."""
        return len(self.letters)

    @property
    def equal_length(self) -> bool:
        """True when every sequence has the same length."""
        return bool(np.all(self.lengths == self.lengths[0]))

    def take(self, index: np.ndarray) -> Encoded:
        """The sequences at ``index`` (shape (n,)), trimmed to their own maximum length."""
        lengths = self.lengths[index]
        return Encoded(self.tokens[index, : lengths.max(initial=0)], lengths, self.letters)


def check_set(seqs: Sequence[str], name: str, *, minimum: int = 1) -> list[str]:
    """Upper-case copy of a set of sequences; raises InvalidInputError when it is unusable."""
    if isinstance(seqs, str):
        raise InvalidInputError(f"{name}: expected a list of sequences, got one string")
    if len(seqs) < minimum:
        raise InvalidInputError(f"{name}: needs at least {minimum} sequence(s), got {len(seqs)}")
    try:
        return [s.upper() for s in seqs]
    except AttributeError:
        raise InvalidInputError(f"{name}: sequences must be strings") from None


def check_letters(letters: str) -> str:
    """Upper-case letters of an alphabet string; raises InvalidInputError when unusable."""
    upper = letters.upper()
    if not upper or not upper.isascii() or len(set(upper)) != len(upper):
        raise InvalidInputError(f"letters {letters!r}: need unique ASCII letters")
    return upper


def infer_letters(*sets: Sequence[str]) -> str:
    """The sorted upper-case letters that occur in any of the sets."""
    seen: set[str] = set()
    for seqs in sets:
        for s in seqs:
            seen.update(s.upper())
    return "".join(sorted(seen)) or "A"


def encode(seqs: Sequence[str], letters: str, name: str) -> Encoded:
    """Encode N upper- or lower-case sequences over ``letters`` as a padded token array;
    ``name`` names the set in error messages, e.g. ``"gen"``.

    Raises:
        InvalidInputError: a letter outside ``letters`` (names the sequence and letter).
    """
    letters = check_letters(letters)
    flat = FlatTokens.of(seqs, letters)
    bad = flat.first_invalid()
    if bad is not None:
        row, pos = bad
        raise InvalidInputError(
            f"{name}: sequence {row}: letter {seqs[row][pos]!r} not in {letters!r}"
        )
    width = int(flat.lengths.max(initial=0))
    return Encoded(flat.padded(width, len(letters)), flat.lengths, letters)


def js_distance(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (square root of the base-2 divergence, in [0, 1]) between
    counts or probabilities ``p`` and ``q``, shape (..., K), rows with positive sums: shape (...).
    """
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = 0.5 * (p + q)
    divergence = 0.5 * (rel_entr(p, m).sum(axis=-1) + rel_entr(q, m).sum(axis=-1)) / np.log(2)
    return np.sqrt(np.clip(divergence, 0.0, 1.0))


def subsample(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``cap`` of ``n`` items, drawn without replacement."""
    if n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=cap, replace=False))
