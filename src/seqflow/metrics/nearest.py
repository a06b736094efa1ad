"""Novelty and memorisation of a generated set with respect to the training set.

Exact copies are found by hashing the full sets. Nearest-neighbour (NN) distances use random
subsamples of at most ``max_gen`` generated (and reference) against ``max_train`` training
sequences: the Hamming distance over L when every sequence has one length L, else the
Levenshtein distance over the longer length of the pair, with the smaller caps ``EDIT_MAX_GEN``
and ``EDIT_MAX_TRAIN`` (all pairs are computed, so the caps bound the time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy.stats import wasserstein_distance

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import Encoded, check_set, encode, infer_letters, subsample
from seqflow.metrics.distance import hamming_nearest, levenshtein_pairs

MAX_GEN = 2000
"""Default cap on generated (and reference) sequences in NN distances."""
MAX_TRAIN = 20000
"""Default cap on training sequences in NN distances."""
EDIT_MAX_GEN = 200
"""Cap on generated (and reference) sequences when NN distances are edit distances."""
EDIT_MAX_TRAIN = 1000
"""Cap on training sequences when NN distances are edit distances."""
_EDIT_PAIRS = 1 << 16


@dataclass(frozen=True, eq=False)
class NoveltyReport:
    """How far a generated set lies from the training set.

    Attributes:
        exact_copies: generated sequences identical to a training sequence (full sets).
        copy_fraction: ``exact_copies`` over the number of generated sequences.
        nn_distance: normalised distance of each subsampled generated sequence to its nearest
            subsampled training sequence, shape (n_gen,), n_gen <= the cap.
        median_nn: median of ``nn_distance``.
        mean_nn: mean of ``nn_distance``.
        metric: ``"hamming"`` or ``"levenshtein"``.
    """

    exact_copies: int
    copy_fraction: float
    nn_distance: np.ndarray
    median_nn: float
    mean_nn: float
    metric: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the per-sequence ``nn_distance``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "nn_distance"}


@dataclass(frozen=True)
class MemorisationReport:
    """Generated NN distances to train, compared with those of real held-out sequences.

    Attributes:
        wasserstein: Wasserstein-1 distance between the generated and the reference NN-distance
            distributions.
        threshold: the ``quantile`` of the reference NN distances.
        fraction_closer: share of generated sequences with NN distance <= ``threshold``; about
            ``quantile`` for a generator like the reference, near 1 for a memorising one.
        quantile: the reference quantile used for ``threshold`` (default 0.05).
        median_nn_gen, median_nn_ref: median generated and reference NN distances.
        metric: ``"hamming"`` or ``"levenshtein"``.
    """

    wasserstein: float
    threshold: float
    fraction_closer: float
    quantile: float
    median_nn_gen: float
    median_nn_ref: float
    metric: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def _edit_nearest(x: Encoded, y: Encoded, normalise: bool = True) -> np.ndarray:
    """Smallest edit distance from each row of ``x`` to the rows of ``y``, shape (N,): over the
    longer length of each pair (float64) with ``normalise``, else a count (int64)."""
    best = np.zeros(len(x.lengths), dtype=np.float64 if normalise else np.int64)
    rows_per_chunk = max(1, _EDIT_PAIRS // max(len(y.lengths), 1))
    for start in range(0, len(x.lengths), rows_per_chunk):
        rows = np.arange(start, min(start + rows_per_chunk, len(x.lengths)))
        i, j = np.repeat(rows, len(y.lengths)), np.tile(np.arange(len(y.lengths)), rows.size)
        distance = levenshtein_pairs(x, y, i, j)
        if normalise:
            distance = distance / np.maximum(np.maximum(x.lengths[i], y.lengths[j]), 1)
        best[rows] = distance.reshape(rows.size, -1).min(axis=1)
    return best


def nearest_distance(queries: Sequence[str], train: Sequence[str]) -> tuple[np.ndarray, str]:
    """Distance of each query to its nearest training sequence, over the whole training set.

    Unlike :func:`novelty_and_memorisation` nothing is subsampled and distances are counts:
    mismatches (Hamming) when every sequence has one length, else edit (Levenshtein) distances.

    Returns:
        distances, shape ``(len(queries),)``, int64; and the metric, ``hamming`` or
        ``levenshtein``.
    """
    queries_u, train_u = check_set(queries, "queries"), check_set(train, "train")
    letters = infer_letters(queries_u, train_u)
    x, y = encode(queries_u, letters, "queries"), encode(train_u, letters, "train")
    lengths = np.concatenate([x.lengths, y.lengths])
    if bool(np.all(lengths == lengths[0])):
        return hamming_nearest(x, y), "hamming"
    return _edit_nearest(x, y, normalise=False), "levenshtein"


def _nn_distances(
    sets: list[list[str]], train: list[str], caps: tuple[int, int], seed: int
) -> tuple[list[np.ndarray], str]:
    """NN distances of each query set to one training subsample, and the metric used."""
    letters = infer_letters(train, *sets)
    encoded = [encode(s, letters, f"set {n}") for n, s in enumerate(sets)]
    train_x = encode(train, letters, "train")
    lengths = np.concatenate([train_x.lengths, *(e.lengths for e in encoded)])
    equal = bool(np.all(lengths == lengths[0]))
    if not equal:
        caps = (min(caps[0], EDIT_MAX_GEN), min(caps[1], EDIT_MAX_TRAIN))
    rng = np.random.default_rng(seed)
    train_x = train_x.take(subsample(len(train), caps[1], rng))
    queries = [e.take(subsample(len(e.lengths), caps[0], rng)) for e in encoded]
    if equal:
        length = max(int(train_x.lengths[0]), 1)
        return [hamming_nearest(q, train_x) / length for q in queries], "hamming"
    return [_edit_nearest(q, train_x) for q in queries], "levenshtein"


def novelty_and_memorisation(
    gen: Sequence[str],
    train: Sequence[str],
    ref: Sequence[str],
    *,
    quantile: float = 0.05,
    max_gen: int = MAX_GEN,
    max_train: int = MAX_TRAIN,
    seed: int = 0,
) -> tuple[NoveltyReport, MemorisationReport]:
    """Exact copies of training sequences and NN distances of a generated set to train
    (novelty), and those distances against the held-out reference set's (memorisation).

    Both sets are measured against one training subsample with one distance (Hamming or
    Levenshtein), chosen over all three sets.

    Args:
        gen: generated sequences (case-insensitive).
        train: training sequences.
        ref: real sequences not used in training (e.g. the test split).
        quantile: reference quantile that defines "closer to train than real data".
        max_gen, max_train: caps of the NN subsamples (see the module docstring).
        seed: seed of the subsamples.
    """
    if not 0.0 <= quantile <= 1.0:
        raise InvalidInputError(f"quantile must lie in [0, 1], got {quantile}")
    gen_u, ref_u, train_u = check_set(gen, "gen"), check_set(ref, "ref"), check_set(train, "train")
    (nn_gen, nn_ref), metric = _nn_distances([gen_u, ref_u], train_u, (max_gen, max_train), seed)
    known = set(train_u)
    copies = sum(s in known for s in gen_u)
    threshold = float(np.quantile(nn_ref, quantile))
    novelty = NoveltyReport(
        exact_copies=copies,
        copy_fraction=copies / len(gen_u),
        nn_distance=nn_gen,
        median_nn=float(np.median(nn_gen)),
        mean_nn=float(nn_gen.mean()),
        metric=metric,
    )
    memorisation = MemorisationReport(
        wasserstein=float(wasserstein_distance(nn_gen, nn_ref)),
        threshold=threshold,
        fraction_closer=float(np.mean(nn_gen <= threshold)),
        quantile=quantile,
        median_nn_gen=float(np.median(nn_gen)),
        median_nn_ref=float(np.median(nn_ref)),
        metric=metric,
    )
    return novelty, memorisation
