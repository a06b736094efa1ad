"""Diversity within one set: mean pairwise distance and the share of unique sequences."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from seqflow.metrics._common import check_set, encode, infer_letters, subsample
from seqflow.metrics.distance import hamming_matrix, levenshtein_pairs

EDIT_SAMPLE = 200
"""Most sequences whose pairs enter the edit-distance diversity (``EDIT_SAMPLE^2 / 2`` pairs)."""


def uniqueness(seqs: Sequence[str]) -> float:
    """Number of distinct sequences (case-insensitive) over the number of sequences."""
    upper = check_set(seqs, "seqs")
    return len(set(upper)) / len(upper)


def diversity(seqs: Sequence[str], sample: int = 1000, seed: int = 0) -> float:
    """Mean normalised distance over all pairs of a random subsample of a set.

    Equal-length sets use the Hamming distance over the length L; otherwise the Levenshtein
    distance over the longer length of each pair (two empty sequences are at distance 0), on
    a subsample of at most ``min(sample, EDIT_SAMPLE)`` sequences.

    Args:
        seqs: N >= 2 sequences.
        sample: most sequences drawn (without replacement) for the pairs.
        seed: seed of the subsample.

    Returns:
        mean pairwise distance in [0, 1] over ``n (n - 1) / 2`` pairs.
    """
    upper = check_set(seqs, "seqs", minimum=2)
    x = encode(upper, infer_letters(upper), "seqs")
    rng = np.random.default_rng(seed)
    if x.equal_length:
        x = x.take(subsample(len(upper), max(sample, 2), rng))
        i, j = np.triu_indices(len(x.lengths), k=1)
        length = max(int(x.lengths[0]), 1)
        return float(hamming_matrix(x, x)[i, j].mean() / length)
    x = x.take(subsample(len(upper), max(min(sample, EDIT_SAMPLE), 2), rng))
    i, j = np.triu_indices(len(x.lengths), k=1)
    longer = np.maximum(np.maximum(x.lengths[i], x.lengths[j]), 1)
    return float((levenshtein_pairs(x, x, i, j) / longer).mean())
