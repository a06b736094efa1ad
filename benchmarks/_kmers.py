"""k-mer spectra and their Jensen-Shannon distance, shared by the sequence benchmarks."""

from __future__ import annotations

from collections import Counter

import numpy as np


def kmer_counts(seqs: list[str], k: int) -> Counter[str]:
    """Counts of every k-mer over all sequences (overlapping windows)."""
    counts: Counter[str] = Counter()
    for s in seqs:
        counts.update(s[i : i + k] for i in range(len(s) - k + 1))
    return counts


def js_distance(a: Counter[str], b: Counter[str]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count tables."""
    keys = sorted(set(a) | set(b))
    p = np.array([a[x] for x in keys], float)
    q = np.array([b[x] for x in keys], float)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray, y: np.ndarray) -> float:
        nz = x > 0
        return float((x[nz] * np.log2(x[nz] / y[nz])).sum())

    return float(np.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2)))
