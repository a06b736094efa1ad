"""k-mer spectra and the Jensen-Shannon distance between those of two sets.

A k-mer is coded as the base-K number ``sum_j x_{i+j} K^(k-1-j)`` of its tokens, for all windows
inside a sequence at once. Spectra are counted with ``np.bincount`` over the ``K^k`` codes, or,
when that table would be large (protein, k = 6: 6.4e7 codes), ``np.unique`` of those that occur.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import Encoded, check_set, encode, infer_letters, js_distance

MAX_DENSE_BINS = 1 << 22
"""Largest ``K^k`` counted with a dense ``np.bincount``."""

_MAX_CODE = 1 << 61


def kmer_codes(x: Encoded, k: int) -> np.ndarray:
    """Integer codes of all k-mers that lie fully inside a sequence.

    Args:
        x: encoded sequences, tokens of shape (N, L_max).
        k: the k-mer length, at least 1.

    Returns:
        codes in ``[0, K^k)``, shape (W,), int64, W the number of windows
        ``sum_n max(0, len_n - k + 1)``.
    """
    if k < 1:
        raise InvalidInputError(f"k-mer length must be at least 1, got {k}")
    if x.size**k >= _MAX_CODE:
        raise InvalidInputError(f"k = {k} is too large for {x.size} letters (K^k >= 2^61)")
    n, width = x.tokens.shape
    windows = width - k + 1
    if windows < 1:
        return np.zeros(0, dtype=np.int64)
    codes = np.zeros((n, windows), dtype=np.int64)
    for j in range(k):
        codes *= x.size
        codes += x.tokens[:, j : j + windows]
    inside = np.arange(windows)[None, :] + k <= x.lengths[:, None]
    return codes[inside]


def kmer_spectrum(seqs: Sequence[str], k: int, letters: str | None = None) -> dict[str, int]:
    """Upper-case k-mer -> count of the k-mers that occur in a set (overlapping windows inside
    each sequence, case-insensitive); ``letters=None`` takes the letters that occur."""
    upper = check_set(seqs, "seqs")
    x = encode(upper, letters or infer_letters(upper), "seqs")
    codes, counts = np.unique(kmer_codes(x, k), return_counts=True)
    powers = x.size ** np.arange(k - 1, -1, -1, dtype=np.int64)
    digits = (codes[:, None] // powers[None, :]) % x.size
    text = np.frombuffer(x.letters.encode("ascii"), dtype=np.uint8)[digits].tobytes().decode()
    return {text[i * k : (i + 1) * k]: int(c) for i, c in enumerate(counts)}


def _paired_counts(
    codes_p: np.ndarray, codes_q: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of two code sets on a common support, each of shape (S,)."""
    if bins <= MAX_DENSE_BINS:
        return np.bincount(codes_p, minlength=bins), np.bincount(codes_q, minlength=bins)
    support, inverse = np.unique(np.concatenate([codes_p, codes_q]), return_inverse=True)
    inverse = inverse.reshape(-1)
    counts_p = np.bincount(inverse[: codes_p.size], minlength=support.size)
    return counts_p, np.bincount(inverse[codes_p.size :], minlength=support.size)


def _js_of_codes(x: Encoded, y: Encoded, k: int) -> float:
    codes_x, codes_y = kmer_codes(x, k), kmer_codes(y, k)
    for name, codes in (("gen", codes_x), ("ref", codes_y)):
        if codes.size == 0:
            raise InvalidInputError(f"{name}: no {k}-mers (every sequence is shorter than {k})")
    counts_x, counts_y = _paired_counts(codes_x, codes_y, x.size**k)
    return float(js_distance(counts_x.astype(np.float64), counts_y.astype(np.float64)))


def kmer_js_profile(
    gen: Sequence[str],
    ref: Sequence[str],
    ks: Iterable[int] = range(1, 7),
    letters: str | None = None,
) -> dict[int, float]:
    """Jensen-Shannon distance (base 2, square root of the divergence) in [0, 1] between the
    k-mer spectra of generated and reference sets, as k -> distance for each k of ``ks``.
    ``letters=None`` takes the letters that occur in either set."""
    gen_u, ref_u = check_set(gen, "gen"), check_set(ref, "ref")
    letters = letters or infer_letters(gen_u, ref_u)
    x, y = encode(gen_u, letters, "gen"), encode(ref_u, letters, "ref")
    return {int(k): _js_of_codes(x, y, int(k)) for k in ks}


def kmer_js(gen: Sequence[str], ref: Sequence[str], k: int, letters: str | None = None) -> float:
    """Jensen-Shannon distance between the k-mer spectra of two sets (see ``kmer_js_profile``)."""
    return kmer_js_profile(gen, ref, (k,), letters)[k]
