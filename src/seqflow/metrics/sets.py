"""Distances between two sets of sequences (libraries), through a fixed-size embedding.

Each sequence becomes a vector: its normalised k-mer spectrum (window counts over ``L - k + 1``,
on the k-mers that occur in any library compared, which leaves every distance unchanged) or, for
one sequence length, its flattened one-hot matrix scaled by ``1 / sqrt(2 L)``, so that the
squared distance of two sequences is their normalised Hamming distance. Libraries ``x`` (n, D)
and ``y`` (m, D) are compared under the squared Euclidean cost ``C_ij = |x_i - y_j|^2``:

- ``ot``: exact optimal transport with uniform weights, ``W_2^2 = min_P <P, C>`` (``ot.emd2``);
  above ``EXACT_OT_MAX`` points on a side, ``<P, C>`` of the log-domain ``ot.sinkhorn2`` plan
  with ``reg = SINKHORN_REG * mean(C)`` (an upper bound on ``W_2^2``).
- ``chamfer``: ``(mean_i min_j C_ij + mean_j min_i C_ij) / 2``, half the Chamfer distance of
  Fan et al. 2017 / PointFlow (Yang et al. 2019), so it agrees with ``W_2^2`` on single points
  and ``chamfer <= ot``.
- ``mean``: ``|mean(x) - mean(y)|^2``, a cheap lower bound of ``W_2^2`` (Jensen).

All three are symmetric, zero for a set against itself and invariant to sequence order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import ot

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import Encoded, check_set, encode, infer_letters
from seqflow.metrics.distance import _one_hot
from seqflow.metrics.evaluate import is_nucleotide
from seqflow.metrics.kmers import kmer_codes

EMBEDDINGS = ("kmer", "onehot")
EXACT_OT_MAX = 2000
"""Most points on either side solved with exact OT (``ot.emd2``); larger sets use Sinkhorn."""
SINKHORN_REG = 0.01
"""Entropic regularisation of the Sinkhorn fallback, relative to the mean cost."""
_EMD_ITERATIONS = 10_000_000


def default_k(letters: str) -> int:
    """k-mer length of the embedding: 3 for nucleotide alphabets, 2 otherwise (protein)."""
    return 3 if is_nucleotide(letters) else 2


def _kmer_rows(x: Encoded, k: int) -> np.ndarray:
    """Normalised k-mer spectra on the k-mers that occur, shape (N, S), float64 (every
    sequence at least k long)."""
    windows = np.maximum(x.lengths - k + 1, 0)
    support, column = np.unique(kmer_codes(x, k), return_inverse=True)
    row = np.repeat(np.arange(len(windows)), windows)
    flat = np.bincount(
        row * support.size + column.reshape(-1), minlength=len(windows) * support.size
    )
    counts = flat.reshape(len(windows), support.size).astype(np.float64)
    return counts / windows[:, None]


def embed_libraries(
    libraries: Sequence[Sequence[str]],
    *,
    k: int | None = None,
    embedding: str = "kmer",
    letters: str | None = None,
    names: Sequence[str] | None = None,
) -> list[np.ndarray]:
    """Embed several libraries on one common coordinate system.

    Args:
        libraries: M libraries, library i holding n_i >= 1 sequences (case-insensitive).
        k: k-mer length of the ``kmer`` embedding; ``None`` takes :func:`default_k`.
        embedding: ``kmer`` (normalised k-mer spectrum) or ``onehot`` (one sequence length
            across all libraries).
        letters: the alphabet; ``None`` takes the letters that occur.
        names: library names for error messages (default ``library 0``, ...).

    Returns:
        M arrays, array i of shape (n_i, D), float64.
    """
    if embedding not in EMBEDDINGS:
        raise InvalidInputError(f"unknown embedding {embedding!r}; use {', '.join(EMBEDDINGS)}")
    names = list(names) if names is not None else [f"library {i}" for i in range(len(libraries))]
    upper = [check_set(lib, name) for lib, name in zip(libraries, names, strict=True)]
    if not upper:
        raise InvalidInputError("no libraries to embed")
    pooled = [s for lib in upper for s in lib]
    letters = letters or infer_letters(pooled)
    x = encode(pooled, letters, "libraries")
    ends = np.cumsum([len(lib) for lib in upper])
    if embedding == "onehot":
        if not x.equal_length:
            low, high = int(x.lengths.min()), int(x.lengths.max())
            raise InvalidInputError(
                f"onehot embedding needs one sequence length; lengths run {low}..{high} "
                "(use embedding='kmer')"
            )
        rows = _one_hot(x).astype(np.float64) / np.sqrt(2.0 * max(int(x.lengths[0]), 1))
    else:
        k = default_k(letters) if k is None else k
        short = np.flatnonzero(x.lengths < k)
        if short.size:
            i = int(short[0])
            lib = int(np.searchsorted(ends, i, side="right"))
            raise InvalidInputError(
                f"{names[lib]}: sequence {i - int(ends[lib] - len(upper[lib]))} (length "
                f"{int(x.lengths[i])}) is shorter than k = {k}; use a smaller k"
            )
        rows = _kmer_rows(x, k)
    return np.split(rows, ends[:-1])


def cost_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared Euclidean costs ``|x_i - y_j|^2`` of points x (n, D), y (m, D): shape (n, m),
    clipped at 0."""
    cost = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * (x @ y.T)
    return np.maximum(cost, 0.0)


def chamfer_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Half the two-way mean nearest-neighbour squared distance; x (n, D), y (m, D)."""
    cost = cost_matrix(x, y)
    return float(0.5 * (cost.min(axis=1).mean() + cost.min(axis=0).mean()))


def ot_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Squared Wasserstein-2 distance with uniform weights (see the module docstring);
    x (n, D), y (m, D)."""
    cost = cost_matrix(x, y)
    a = np.full(len(x), 1.0 / len(x))
    b = np.full(len(y), 1.0 / len(y))
    if max(len(x), len(y)) <= EXACT_OT_MAX:
        return float(max(ot.emd2(a, b, cost, numItermax=_EMD_ITERATIONS), 0.0))
    scale = float(cost.mean())
    if scale == 0.0:
        return 0.0
    return float(ot.sinkhorn2(a, b, cost, SINKHORN_REG * scale, method="sinkhorn_log"))


def mean_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Squared distance between the mean embeddings; x (n, D), y (m, D)."""
    gap = x.mean(axis=0) - y.mean(axis=0)
    return float(gap @ gap)


SET_DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "ot": ot_distance,
    "chamfer": chamfer_distance,
    "mean": mean_distance,
}
"""Set distances by name; each takes two point clouds (n, D), (m, D) and returns a float."""


def check_distance(distance: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """The set distance named ``distance``; raises InvalidInputError for an unknown name."""
    if distance not in SET_DISTANCES:
        raise InvalidInputError(
            f"unknown set distance {distance!r}; use {', '.join(SET_DISTANCES)}"
        )
    return SET_DISTANCES[distance]
