"""Pairwise sequence distances: Hamming (one-hot matrix products) and Levenshtein (bit-parallel).

Hamming mismatches between equal-length sets come from one product of one-hot matrices:
``mismatches = L - X Y^T`` with ``X`` of shape (N, L K), in float32 (exact for counts < 2^24).

Levenshtein distances use Myers' bit-vector algorithm in its block form (Myers 1999, J. ACM 46(3),
"A fast bit-vector algorithm for approximate string matching based on dynamic programming";
the block step as in edlib, Šošić & Šikić 2017). The vertical differences of a DP column are
held as bits of ``W = ceil(m / 64)`` uint64 words, so one text letter advances 64 rows with a
dozen word operations, and those operations are vectorised over all pairs at once.
"""

from __future__ import annotations

import numpy as np

from seqflow.metrics._common import Encoded

_WORD = 64
_ONES = np.uint64(~np.uint64(0))
_ONE = np.uint64(1)
_TOP = np.uint64(_WORD - 1)


def _one_hot(x: Encoded) -> np.ndarray:
    """One-hot rows of equal-length sequences, shape (N, L K), float32."""
    return (x.tokens[:, :, None] == np.arange(x.size)).reshape(len(x.tokens), -1).astype(np.float32)


def hamming_matrix(x: Encoded, y: Encoded) -> np.ndarray:
    """Mismatching positions between every pair of N and M encoded sequences, all of one
    length L and the same letters: shape (N, M), int64."""
    matches = _one_hot(x) @ _one_hot(y).T
    return x.tokens.shape[1] - np.rint(matches).astype(np.int64)


def hamming_nearest(x: Encoded, y: Encoded, block: int = 4096) -> np.ndarray:
    """Fewest mismatches from each of N encoded sequences ``x`` to any of the M ``y`` (all of
    one length L, same letters): shape (N,), int64. ``block`` rows of ``y`` per matrix product
    bound memory to ``N * block`` floats."""
    hot_x = _one_hot(x)
    best = np.zeros(len(x.tokens), dtype=np.float32)
    for start in range(0, len(y.tokens), block):
        part = Encoded(y.tokens[start : start + block], y.lengths[start : start + block], y.letters)
        np.maximum(best, (hot_x @ _one_hot(part).T).max(axis=1), out=best)
    return x.tokens.shape[1] - np.rint(best).astype(np.int64)


def _match_masks(x: Encoded, words: int) -> np.ndarray:
    """Bit masks ``Peq``: bit i of word w is set where letter c sits at row ``64 w + i``.

    Returns:
        masks, shape (words, N, K + 1), uint64; the last letter (padding) matches nothing.
    """
    n, width = x.tokens.shape
    tokens = np.full((n, words * _WORD), x.size, dtype=np.uint8)
    tokens[:, :width] = x.tokens
    hot = tokens[:, None, :] == np.arange(x.size + 1, dtype=np.uint8)[None, :, None]
    hot[:, x.size, :] = False
    packed = np.packbits(hot, axis=-1, bitorder="little")
    masks = packed.view("<u8").astype(np.uint64)
    return np.ascontiguousarray(masks.transpose(2, 0, 1))


def levenshtein_pairs(x: Encoded, y: Encoded, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Levenshtein distances between ``x[i[p]]`` and ``y[j[p]]`` for every pair p.

    Args:
        x: encoded sequences (the patterns), tokens of shape (N, L_x).
        y: encoded sequences (the texts) with the same letters, tokens of shape (M, L_y).
        i: pattern index of each pair, shape (P,).
        j: text index of each pair, shape (P,).

    Returns:
        edit distances (unit-cost insertions, deletions, substitutions), shape (P,), int64.
    """
    words = max(1, -(-int(x.lengths.max(initial=0)) // _WORD))
    masks = _match_masks(x, words)
    n_text = y.lengths[j]
    order = np.argsort(-n_text, kind="stable")
    pattern, text, n_text = i[order], y.tokens[j[order]], n_text[order]
    pv = np.full((words, order.size), _ONES, dtype=np.uint64)
    mv = np.zeros((words, order.size), dtype=np.uint64)
    active = np.searchsorted(-n_text, -np.arange(text.shape[1]), side="left")
    for column in range(text.shape[1]):
        a = int(active[column])
        eq_all = masks[:, pattern[:a], text[:a, column]]
        h_pos: np.ndarray | np.uint64 = _ONE
        h_neg: np.ndarray | np.uint64 = np.uint64(0)
        for w in range(words):
            p, m = pv[w, :a], mv[w, :a]
            xv = eq_all[w] | m
            eq = eq_all[w] | h_neg
            xh = (((eq & p) + p) ^ p) | eq
            ph = m | ~(xh | p)
            mh = p & xh
            out_pos, out_neg = ph >> _TOP, mh >> _TOP
            ph = (ph << _ONE) | h_pos
            mh = (mh << _ONE) | h_neg
            pv[w, :a] = mh | ~(xv | ph)
            mv[w, :a] = ph & xv
            h_pos, h_neg = out_pos, out_neg
    rows = x.lengths[pattern][None, :] - _WORD * np.arange(words)[:, None]
    rows = np.clip(rows, 0, _WORD).astype(np.uint64)
    full = rows == _WORD
    below = np.where(full, _ONES, (_ONE << np.where(full, 0, rows).astype(np.uint64)) - _ONE)
    score = n_text + (
        np.bitwise_count(pv & below).sum(axis=0, dtype=np.int64)
        - np.bitwise_count(mv & below).sum(axis=0, dtype=np.int64)
    )
    distances = np.empty_like(score)
    distances[order] = score
    return distances
