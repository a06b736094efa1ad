"""An order-K Markov chain over letters: the simplest generator a model has to beat.

Fitting counts every (K+1)-mer ``c_1..c_K x`` of the training sequences and sets
``P(x | c) = (count(c x) + a) / sum_y (count(c y) + a)`` with pseudocount ``a``. Sampling draws
the first K letters from the training sequences' first K-mers, each next letter from the table,
and each length from the training lengths (only when they vary, so that a fixed-length set's
random stream stays the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import encode

TABLE_MAX = 10**7
"""Most entries ``vocab**(order + 1)`` of a transition table."""


@dataclass(frozen=True, eq=False)
class MarkovChain:
    """A fitted order-K chain.

    Attributes:
        order: K, the number of letters of context (0: independent letters).
        transition: ``P(next | context)``, shape (vocab**K, vocab); the context's letters read
            as a base-``vocab`` number, first letter most significant.
        starts: first K letters of each training sequence at least K long, shape (m, K).
        lengths: training lengths, shape (n0,).
    """

    order: int
    transition: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    @property
    def vocab(self) -> int:
        """Number of letters (also the pad token of sampled tokens)."""
        return int(self.transition.shape[1])

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` sequences: tokens (n, max length) int64 padded with ``vocab``, lengths (n,)."""
        rng = np.random.default_rng(seed)
        k, vocab = self.order, self.vocab
        starts = self.starts[rng.integers(0, len(self.starts), n)]
        if np.all(self.lengths == self.lengths[0]):
            lengths = np.full(n, self.lengths[0], dtype=np.int64)
        else:
            lengths = rng.choice(self.lengths, n)
        width = int(lengths.max(initial=0))
        out = np.zeros((n, max(width, k)), dtype=np.int64)
        out[:, :k] = starts
        cum = np.cumsum(self.transition, axis=1)
        state = np.zeros(n, dtype=np.int64)
        for j in range(k):
            state = state * vocab + starts[:, j]
        for pos in range(k, width):
            letter = (rng.random(n)[:, None] > cum[state]).sum(1).clip(0, vocab - 1)
            out[:, pos] = letter
            state = (state * vocab + letter) % vocab**k
        out = out[:, :width]
        out[np.arange(width) >= lengths[:, None]] = vocab
        return out, lengths


def fit_markov(
    tokens: np.ndarray, lengths: np.ndarray, vocab: int, order: int, pseudo: float = 0.1
) -> MarkovChain:
    """Fit an order-``order`` chain to training sequences.

    Args:
        tokens: letters ``0..vocab-1``, shape (n0, L); beyond ``lengths`` any value.
        lengths: each sequence's length, shape (n0,).
        vocab: number of letters.
        order: K >= 0.
        pseudo: pseudocount added to every (context, next letter) count.

    Raises:
        InvalidInputError: a negative order, a table over 10**7 entries, or no training
            sequence at least ``order`` long.
    """
    if order < 0:
        raise InvalidInputError(f"--markov {order}: the order must be 0 or more")
    if vocab ** (order + 1) > TABLE_MAX:
        raise InvalidInputError(
            f"--markov {order}: {vocab} letters need {vocab}^{order + 1} transition entries "
            f"(at most {TABLE_MAX:.0e}); choose a lower order"
        )
    t = tokens.astype(np.int64)
    if not np.any(lengths >= order):
        raise InvalidInputError(f"--markov {order}: no training sequence has {order} letters")
    windows = max(t.shape[1] - order, 0)
    ctx = np.zeros((t.shape[0], windows), dtype=np.int64)
    for j in range(order):
        ctx = ctx * vocab + t[:, j : windows + j]
    valid = np.arange(windows) < (lengths - order)[:, None]
    trans = np.full((vocab**order, vocab), pseudo)
    np.add.at(trans, (ctx[valid], t[:, order:][valid]), 1.0)
    return MarkovChain(
        order=order,
        transition=trans / trans.sum(1, keepdims=True),
        starts=t[lengths >= order, :order],
        lengths=np.asarray(lengths, dtype=np.int64),
    )


def markov_baseline(
    train: Sequence[str], n: int, letters: str, order: int, *, seed: int = 0, pseudo: float = 0.1
) -> list[str]:
    """``n`` sequences from an order-``order`` chain fitted to ``train`` (strings)."""
    encoded = encode(train, letters, "train")
    chain = fit_markov(encoded.tokens, encoded.lengths, encoded.size, order, pseudo)
    tokens, lengths = chain.sample(n, seed)
    table = np.array(list(encoded.letters))
    rows = table[np.minimum(tokens, encoded.size - 1)]
    return ["".join(row[:m]) for row, m in zip(rows, lengths.tolist(), strict=True)]
