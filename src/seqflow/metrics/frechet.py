"""Fréchet distance between Gaussians fitted to two embedding sets (as in FID and FBD).

``d^2 = |mu_x - mu_y|^2 + tr(S_x + S_y - 2 (S_x S_y)^(1/2))`` (Dowson & Landau 1982; Heusel et
al. 2017, arXiv 1706.08500, Eq. 6). ``S_x S_y`` is not symmetric, but it is similar to the
symmetric positive semi-definite ``A = S_x^(1/2) S_y S_x^(1/2)``, so
``tr (S_x S_y)^(1/2) = sum_i sqrt(lambda_i(A))``. Both square roots come from ``eigh`` in
float64 with tiny negative eigenvalues (round-off) clamped to zero; no ``scipy.linalg.sqrtm``,
whose complex round-off and failures on singular covariances FID code has to patch.
"""

from __future__ import annotations

import numpy as np

from seqflow.errors import InvalidInputError


def _as_rows(x: object, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 2:
        raise InvalidInputError(f"{name}: need shape (rows >= 2, dim), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"{name}: contains NaN or infinite values")
    return array


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix, shape (D, D)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Squared Fréchet distance ``d^2`` (clamped at 0) between Gaussians fitted to two sets of
    embeddings, with means and unbiased covariances (``ddof = 1``) in float64.

    Args:
        x: embeddings, shape (N, D), N >= 2; a numpy array or anything ``np.asarray`` takes.
        y: embeddings, shape (M, D), M >= 2.
    """
    x, y = _as_rows(x, "x"), _as_rows(y, "y")
    if x.shape[1] != y.shape[1]:
        raise InvalidInputError(f"x and y: dimensions differ ({x.shape[1]} vs {y.shape[1]})")
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    s_x = np.atleast_2d(np.cov(x, rowvar=False))
    s_y = np.atleast_2d(np.cov(y, rowvar=False))
    root_x = _psd_sqrt(s_x)
    a = root_x @ s_y @ root_x
    eigenvalues = np.linalg.eigvalsh(0.5 * (a + a.T))
    trace_root = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    distance = np.sum((mu_x - mu_y) ** 2) + np.trace(s_x) + np.trace(s_y) - 2.0 * trace_root
    return float(max(distance, 0.0))
