"""Composition of a set (GC content, per-position letter frequencies, lengths) and distances
between two sets' compositions: Wasserstein-1 (``scipy.stats.wasserstein_distance``), total
variation and mean Jensen-Shannon distance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import wasserstein_distance

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import check_set, encode, infer_letters, js_distance
from seqflow.tokens import INVALID, FlatTokens


def gc_content(seqs: Sequence[str]) -> np.ndarray:
    """Share of G and C letters (either case) in each of N non-empty sequences: shape (N,),
    float64, in [0, 1]."""
    flat = FlatTokens.of(check_set(seqs, "seqs"), "GC")
    if np.any(flat.lengths == 0):
        raise InvalidInputError(f"seqs: sequence {int(np.argmin(flat.lengths))} is empty")
    rows = np.repeat(np.arange(len(flat.lengths)), flat.lengths)
    gc = np.bincount(rows, weights=flat.tokens != INVALID, minlength=len(flat.lengths))
    return gc / flat.lengths


def gc_distance(gen: Sequence[str], ref: Sequence[str]) -> float:
    """Wasserstein-1 distance between the GC-content distributions of two sets."""
    return float(wasserstein_distance(gc_content(gen), gc_content(ref)))


def _lengths(seqs: Sequence[str], name: str) -> np.ndarray:
    """Lengths of a checked set, shape (N,), int64."""
    return np.array([len(s) for s in check_set(seqs, name)], dtype=np.int64)


def length_distance(gen: Sequence[str], ref: Sequence[str]) -> float:
    """Wasserstein-1 distance between the length distributions of two sets (in letters)."""
    return float(wasserstein_distance(_lengths(gen, "gen"), _lengths(ref, "ref")))


def length_tv(gen: Sequence[str], ref: Sequence[str]) -> float:
    """Total variation distance ``0.5 sum_l |p(l) - q(l)|`` between length histograms."""
    len_p, len_q = _lengths(gen, "gen"), _lengths(ref, "ref")
    bins = int(max(len_p.max(), len_q.max())) + 1
    p = np.bincount(len_p, minlength=bins) / len_p.size
    q = np.bincount(len_q, minlength=bins) / len_q.size
    return float(0.5 * np.abs(p - q).sum())


def _position_counts(seqs: list[str], letters: str, length: int, name: str) -> np.ndarray:
    """Letter counts per position over the sequences that reach it, shape (length, K)."""
    x = encode(seqs, letters, name)
    width = min(length, x.tokens.shape[1])
    tokens = x.tokens[:, :width].astype(np.int64)
    inside = np.arange(width)[None, :] < x.lengths[:, None]
    cells = (np.arange(width)[None, :] * x.size + tokens)[inside]
    counts = np.bincount(cells, minlength=length * x.size)
    return counts.reshape(length, x.size)


def position_composition(
    seqs: Sequence[str], letters: str | None = None, length: int | None = None
) -> np.ndarray:
    """Letter frequencies at each position, over the sequences long enough to reach it.

    Args:
        seqs: N sequences.
        letters: the alphabet (K letters); ``None`` takes the sorted letters that occur.
        length: number of positions L; ``None`` takes the longest sequence. Positions that no
            sequence reaches have all-zero rows.

    Returns:
        frequencies, shape (L, K), rows summing to 1 (or 0), columns in ``letters`` order.
    """
    upper = check_set(seqs, "seqs")
    letters = letters or infer_letters(upper)
    if length is None:
        length = max(len(s) for s in upper)
    counts = _position_counts(upper, letters, length, "seqs").astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def position_divergence(
    gen: Sequence[str], ref: Sequence[str], letters: str | None = None
) -> float:
    """Mean over positions of the JS distance (base 2, in [0, 1]) between per-position letter
    distributions, up to the shorter of the two sets' maximum lengths; at each position only
    the sequences that reach it count. ``letters=None`` takes the letters of either set."""
    gen_u, ref_u = check_set(gen, "gen"), check_set(ref, "ref")
    letters = letters or infer_letters(gen_u, ref_u)
    length = min(max(len(s) for s in gen_u), max(len(s) for s in ref_u))
    if length == 0:
        raise InvalidInputError("gen, ref: no positions to compare (empty sequences)")
    p = _position_counts(gen_u, letters, length, "gen").astype(np.float64)
    q = _position_counts(ref_u, letters, length, "ref").astype(np.float64)
    return float(js_distance(p, q).mean())
