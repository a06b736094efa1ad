"""Set-level metrics: generated libraries (sets of sequences) against real libraries.

Two libraries are compared by a set distance of their sequence embeddings
(:mod:`seqflow.metrics.sets`); two collections of libraries by the 1-nearest-neighbour
two-sample test (1-NNA; Lopez-Paz & Oquab 2017; Yang et al. 2019, PointFlow, Sec. 5; for sets
of sets Haviv et al. 2024, arXiv 2411.00698): the share of libraries whose nearest other library
(leave-one-out) is on their own side. 0.5: indistinguishable; 1.0: perfectly separable; well
below 0.5: generated libraries copy real ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Any

import numpy as np

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import check_set, infer_letters
from seqflow.metrics.sets import check_distance, default_k, embed_libraries
from seqflow.metrics.within_set import diversity

Libraries = Mapping[str, Sequence[str]] | Sequence[Sequence[str]]
"""Libraries by name, or a plain list of libraries (named ``0``, ``1``, ...)."""

_TIE_RTOL = 1e-9
_TIE_ATOL = 1e-12


@dataclass(frozen=True)
class OneNNA:
    """1-nearest-neighbour accuracy of generated against real libraries.

    Attributes:
        accuracy: ``(accuracy_gen + accuracy_real) / 2``; with equal counts this is the share
            of all libraries classified correctly (the usual 1-NNA); with unequal counts it
            weighs both sides equally, so always answering the larger side scores 0.5.
        accuracy_gen, accuracy_real: share of generated (real) libraries whose nearest
            neighbour is generated (real).
        n_gen, n_real: numbers of generated and real libraries.
        distance: the set distance, ``ot`` or ``chamfer`` (or ``mean``).
    """

    accuracy: float
    accuracy_gen: float
    accuracy_real: float
    n_gen: int
    n_real: int
    distance: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _named(libraries: Libraries, side: str) -> dict[str, list[str]]:
    """Libraries as name -> upper-case sequences (checked, each non-empty)."""
    if isinstance(libraries, str):
        raise InvalidInputError(f"{side}: expected libraries (lists of sequences), got a string")
    items = libraries.items() if isinstance(libraries, Mapping) else enumerate(libraries)
    return {str(n): check_set(lib, f"{side} library {str(n)!r}") for n, lib in items}


def _check_counts(n_gen: int, n_real: int) -> None:
    if n_gen < 2 or n_real < 2:
        raise InvalidInputError(
            f"1-NNA needs at least 2 generated and 2 real libraries, got {n_gen} and {n_real}"
        )


def distance_matrix(embeddings: Sequence[np.ndarray], distance: str = "ot") -> np.ndarray:
    """Set distances (``ot``, ``chamfer`` or ``mean``) between every pair of M libraries,
    library i embedded as points (n_i, D): symmetric, zero diagonal, shape (M, M), float64."""
    measure = check_distance(distance)
    m = len(embeddings)
    out = np.zeros((m, m))
    for i, j in combinations(range(m), 2):
        out[i, j] = out[j, i] = measure(embeddings[i], embeddings[j])
    return out


def one_nna_from_matrix(distances: np.ndarray, n_gen: int, distance: str = "ot") -> OneNNA:
    """1-NNA from the distances over the union, generated libraries first.

    A library with several nearest libraries (within a relative 1e-9) scores the share of them
    on its own side: the expected accuracy under a random tie break, independent of order.

    Args:
        distances: symmetric set distances, shape (M, M), rows ``0..n_gen-1`` generated.
        n_gen: number of generated libraries; ``M - n_gen`` are real.
        distance: name of the set distance, recorded in the result.
    """
    m = len(distances)
    n_real = m - n_gen
    _check_counts(n_gen, n_real)
    d = np.array(distances, dtype=np.float64)
    np.fill_diagonal(d, np.inf)
    nearest = np.isclose(d, d.min(axis=1, keepdims=True), rtol=_TIE_RTOL, atol=_TIE_ATOL)
    is_gen = np.arange(m) < n_gen
    same = (nearest & (is_gen[:, None] == is_gen[None, :])).sum(axis=1) / nearest.sum(axis=1)
    acc_gen, acc_real = float(same[:n_gen].mean()), float(same[n_gen:].mean())
    return OneNNA(0.5 * (acc_gen + acc_real), acc_gen, acc_real, n_gen, n_real, distance)


def within_library_diversity(
    libraries: Libraries, *, sample: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Library name -> mean pairwise normalised distance in [0, 1] within each library of
    >= 2 sequences (``within_set.diversity`` with ``sample`` and ``seed``)."""
    named = _named(libraries, "libraries")
    for name, seqs in named.items():
        check_set(seqs, f"library {name!r}", minimum=2)
    return {name: diversity(seqs, sample=sample, seed=seed) for name, seqs in named.items()}


@dataclass(frozen=True)
class LibraryReport:
    """Set-level metrics of generated libraries against real libraries.

    Attributes:
        n_gen, n_real: numbers of generated and real libraries.
        mean_size_gen, mean_size_real: mean number of sequences per library of each side.
        k: k-mer length of the embedding (None for ``onehot``).
        embedding: ``kmer`` or ``onehot``.
        nna_ot: 1-NNA under the squared Wasserstein-2 set distance.
        nna_chamfer: 1-NNA under the Chamfer set distance.
        diversity_gen, diversity_real: mean within-library diversity over the generated (real)
            libraries (None when no library holds 2 sequences).
        diversity_ratio: ``diversity_gen / diversity_real`` (None if either is None or real is 0).
        diversity_by_library_gen, diversity_by_library_real: library -> diversity, for
            libraries of >= 2 sequences.
    """

    n_gen: int
    n_real: int
    mean_size_gen: float
    mean_size_real: float
    k: int | None
    embedding: str
    nna_ot: OneNNA
    nna_chamfer: OneNNA
    diversity_gen: float | None
    diversity_real: float | None
    diversity_ratio: float | None
    diversity_by_library_gen: dict[str, float]
    diversity_by_library_real: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the 1-NNA results as dicts, Nones kept."""
        return asdict(self)

    def rows(self) -> list[tuple[str, str | float | None]]:
        """(metric, value) rows for a printed table; pairs as ``"gen / real"`` text."""
        return [
            ("libraries (generated / real)", f"{self.n_gen} / {self.n_real}"),
            ("mean library size (generated / real)",
             f"{self.mean_size_gen:.4g} / {self.mean_size_real:.4g}"),
            ("1-NNA, OT (0.5 = indistinguishable)", self.nna_ot.accuracy),
            ("1-NNA, OT (generated / real side)",
             f"{self.nna_ot.accuracy_gen:.4g} / {self.nna_ot.accuracy_real:.4g}"),
            ("1-NNA, Chamfer", self.nna_chamfer.accuracy),
            ("1-NNA, Chamfer (generated / real side)",
             f"{self.nna_chamfer.accuracy_gen:.4g} / {self.nna_chamfer.accuracy_real:.4g}"),
            ("within-library diversity (generated)", self.diversity_gen),
            ("within-library diversity (real)", self.diversity_real),
            ("diversity ratio (generated / real)", self.diversity_ratio),
        ]  # fmt: skip


def _diversities(named: dict[str, list[str]], seed: int) -> dict[str, float]:
    """Within-library diversity of the libraries that hold at least 2 sequences."""
    return within_library_diversity({n: s for n, s in named.items() if len(s) > 1}, seed=seed)


def evaluate_libraries(
    generated: Libraries,
    real: Libraries,
    *,
    k: int | None = None,
    embedding: str = "kmer",
    letters: str | None = None,
    seed: int = 0,
) -> LibraryReport:
    """Every set-level metric of generated libraries against real ones.

    Args:
        generated: library name -> generated sequences (>= 2 libraries, each non-empty).
        real: library name -> real sequences (>= 2 libraries).
        k: k-mer length of the ``kmer`` embedding (``None``: 3 for DNA/RNA, 2 otherwise).
        embedding: ``kmer`` or ``onehot`` (one sequence length across all libraries).
        letters: the alphabet; ``None`` takes the letters that occur.
        seed: seed of the diversity subsamples.
    """
    gen, ref = _named(generated, "gen"), _named(real, "real")
    letters = letters or infer_letters(*gen.values(), *ref.values())
    k_used = (default_k(letters) if k is None else k) if embedding == "kmer" else None
    _check_counts(len(gen), len(ref))
    names = [f"gen library {n!r}" for n in gen] + [f"real library {n!r}" for n in ref]
    points = embed_libraries(
        [*gen.values(), *ref.values()], k=k, embedding=embedding, letters=letters, names=names
    )
    nna = {
        d: one_nna_from_matrix(distance_matrix(points, d), len(gen), d) for d in ("ot", "chamfer")
    }
    div_gen, div_ref = _diversities(gen, seed), _diversities(ref, seed)
    mean_gen = float(np.mean(list(div_gen.values()))) if div_gen else None
    mean_ref = float(np.mean(list(div_ref.values()))) if div_ref else None
    ratio = mean_gen / mean_ref if mean_gen is not None and mean_ref else None
    return LibraryReport(
        n_gen=len(gen), n_real=len(ref),
        mean_size_gen=float(np.mean([len(s) for s in gen.values()])),
        mean_size_real=float(np.mean([len(s) for s in ref.values()])),
        k=k_used, embedding=embedding, nna_ot=nna["ot"], nna_chamfer=nna["chamfer"],
        diversity_gen=mean_gen, diversity_real=mean_ref, diversity_ratio=ratio,
        diversity_by_library_gen=div_gen, diversity_by_library_real=div_ref,
    )  # fmt: skip
