"""Numbers of a sequence logo: per-position letter frequencies and information content.

For an aligned set (every sequence of length L) over an alphabet of K letters, position i has
letter frequencies ``p_i`` and information content (Schneider & Stephens 1990, Nucleic Acids
Res. 18:6097, eq. 1-3)

    IC_i = log2 K - H(p_i) - e_n,    H(p) = -sum_k p_k log2 p_k    (bits, 0 log 0 = 0),

where ``e_n = (K - 1) / (2 ln 2 n)`` is the optional small-sample correction for n sequences
(Schneider et al. 1986, J. Mol. Biol. 188:415, the first-order bias of the plug-in entropy);
with it, IC is clipped at 0. A logo draws letter k at position i with height ``p_ik * IC_i``,
so the letters of a column stack up to ``IC_i``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import check_letters, check_set
from seqflow.metrics.composition import position_composition


@dataclass(frozen=True, eq=False)
class LogoMatrix:
    """Per-position frequencies and information content of an aligned set.

    Attributes:
        frequencies: letter frequencies p, shape (L, K), rows summing to 1.
        information: information content IC in bits, shape (L,), in [0, log2 K].
        letters: the K upper-case letters, in column order.
    """

    frequencies: np.ndarray
    information: np.ndarray
    letters: str

    @property
    def heights(self) -> np.ndarray:
        """Letter heights ``p * IC`` in bits, shape (L, K); each row sums to its IC."""
        return self.frequencies * self.information[:, None]


def is_aligned(*sets: Sequence[str]) -> bool:
    """True when every sequence of every set has the same, non-zero length."""
    lengths = {len(s) for seqs in sets for s in seqs}
    return len(lengths) == 1 and 0 not in lengths


def small_sample_correction(n: int, size: int) -> float:
    """First-order bias ``e_n = (K - 1) / (2 ln 2 n)`` of the plug-in entropy in bits, for
    n > 0 sequences over K = ``size`` letters."""
    return (size - 1) / (2.0 * np.log(2.0) * n)


def information_content(p: np.ndarray, n: int | None = None) -> np.ndarray:
    """Information content ``log2 K - H(p) (- e_n)`` of each row of a frequency matrix.

    Args:
        p: letter frequencies, shape (L, K), rows summing to 1.
        n: number of sequences behind ``p``; given, ``e_n`` is subtracted.

    Returns:
        IC in bits, shape (L,), in [0, log2 K].
    """
    size = p.shape[-1]
    entropy = entr(p).sum(axis=-1) / np.log(2.0)
    information = np.log2(size) - entropy
    if n is not None:
        information = information - small_sample_correction(n, size)
    return np.clip(information, 0.0, np.log2(size))


def logo_matrix(seqs: Sequence[str], letters: str, *, correct: bool = False) -> LogoMatrix:
    """Frequencies and information content of an aligned set, for a sequence logo.

    Args:
        seqs: N sequences, all of length L.
        letters: the alphabet (K letters); every letter of ``seqs`` must be in it.
        correct: subtract the small-sample correction ``e_N``, to compare sets of different
            sizes.

    Returns:
        the logo's matrices, shapes (L, K) and (L,).

    Raises:
        InvalidInputError: the sequences are not all of the same non-zero length, or hold a
            letter outside ``letters``.
    """
    upper = check_set(seqs, "seqs")
    if not is_aligned(upper):
        raise InvalidInputError("seqs: a logo needs aligned sequences (all of one length > 0)")
    letters = check_letters(letters)
    p = position_composition(upper, letters)
    information = information_content(p, len(upper) if correct else None)
    return LogoMatrix(frequencies=p, information=information, letters=letters)
