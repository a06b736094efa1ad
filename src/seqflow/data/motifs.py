"""Transcription-factor motifs: JASPAR matrices, synthetic motif libraries and motif purity,
to build and judge library-level generation on DNA (tokens 0-3 for ``ACGT``, as in the built-in
DNA alphabet): a library made from one motif should come back dominated by that motif."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from Bio import motifs as bio_motifs
from torch import Tensor

from seqflow.errors import InvalidInputError

NUCLEOTIDES = "ACGT"
SCORE_PSEUDO = 1e-2
"""Probability mixed into every PWM entry (``(1 - 4e) p + e``) before taking log-odds, so a
letter never seen at a position scores finitely."""


@dataclass(frozen=True)
class Motif:
    """One position weight matrix.

    Attributes:
        id: matrix identifier, e.g. ``MA0139.2``.
        name: factor name, e.g. ``CTCF``.
        pwm: letter probabilities per motif position, shape ``(K, 4)`` float64, columns
            ``ACGT``, rows summing to 1.
    """

    id: str
    name: str
    pwm: Tensor

    @property
    def length(self) -> int:
        """Motif width K."""
        return int(self.pwm.shape[0])


def read_jaspar(path: Path | str) -> list[Motif]:
    """Read count matrices in JASPAR format (``>ID NAME`` then rows ``A [ ... ]``) with
    Biopython's parser; lines starting with ``#`` (a source and licence header) are skipped."""
    path = Path(path)
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    try:
        records = bio_motifs.parse(io.StringIO("\n".join(lines)), "jaspar")
    except (ValueError, KeyError, IndexError) as err:
        raise InvalidInputError(f"{path}: not a JASPAR matrix file ({err})") from None
    out = []
    for rec in records:
        counts = torch.tensor([rec.counts[a] for a in NUCLEOTIDES], dtype=torch.float64).T
        totals = counts.sum(dim=1, keepdim=True)
        if counts.shape[0] == 0 or (totals <= 0).any():
            raise InvalidInputError(f"{path}: matrix {rec.matrix_id} has an empty column")
        out.append(Motif(id=str(rec.matrix_id), name=str(rec.name), pwm=counts / totals))
    if not out:
        raise InvalidInputError(f"{path}: no JASPAR matrices found")
    return out


@dataclass(frozen=True)
class SyntheticLibraries:
    """Libraries built from motifs by :func:`synthetic_libraries`.

    Attributes:
        tokens: shape ``(n_libraries, size, length)``, int64.
        motif: the motif index of every library, shape ``(n_libraries,)``.
        density: each library's probability that a sequence carries the motif, ``(n,)``.
    """

    tokens: Tensor
    motif: Tensor
    density: Tensor


def synthetic_libraries(
    motifs: list[Motif],
    *,
    n_libraries: int,
    size: int,
    length: int,
    density: tuple[float, float] = (0.8, 1.0),
    generator: torch.Generator | None = None,
) -> SyntheticLibraries:
    """Libraries of uniform background sequences, each library planting its own single motif.

    Library i uses motif ``i mod M`` (M = ``len(motifs)``; the order is then shuffled, so every
    motif has ``n // M`` or one more libraries) and a density drawn uniformly from
    ``density``; each of its sequences carries, with that probability, one instance of the
    motif drawn letter by letter from the PWM, at a uniform position (forward strand).

    Raises:
        InvalidInputError: when a motif is longer than ``length``.
    """
    if any(mot.length > length for mot in motifs):
        raise InvalidInputError(f"a motif is longer than the sequence length {length}")
    g = generator
    which = (torch.arange(n_libraries) % len(motifs))[torch.randperm(n_libraries, generator=g)]
    lo, hi = density
    dens = lo + (hi - lo) * torch.rand(n_libraries, generator=g, dtype=torch.float64)
    tokens = torch.randint(4, (n_libraries, size, length), generator=g)
    for i in range(n_libraries):
        mot = motifs[int(which[i])]
        carry = torch.rand(size, generator=g, dtype=torch.float64) < dens[i]
        start = torch.randint(length - mot.length + 1, (size,), generator=g)
        sites = torch.multinomial(mot.pwm, size, replacement=True, generator=g).T  # (size, K)
        cols = start[:, None] + torch.arange(mot.length)
        rows = carry.nonzero().squeeze(1)
        tokens[i, rows[:, None], cols[rows]] = sites[rows]
    return SyntheticLibraries(tokens=tokens, motif=which, density=dens)


def motif_scores(tokens: Tensor, motifs: list[Motif]) -> Tensor:
    """Best relative PWM score of every sequence for every motif, shape ``(N, M)``: the
    log-odds score ``log2(p / 0.25)`` of the best window (forward strand), rescaled by the
    motif's own range to ``(score - min) / (max - min)`` in ``[0, 1]`` (1: the consensus).

    Args:
        tokens: sequences, shape ``(N, length)``.
    """
    onehot = torch.nn.functional.one_hot(tokens.long(), 4).to(torch.float64)  # (N, L, 4)
    out = []
    for mot in motifs:
        lo = torch.log2(((1.0 - 4.0 * SCORE_PSEUDO) * mot.pwm + SCORE_PSEUDO) / 0.25)  # (K, 4)
        windows = onehot.unfold(1, mot.length, 1)  # (N, L-K+1, 4, K)
        score = torch.einsum("nwak,ka->nw", windows, lo).amax(dim=1)
        best, worst = lo.amax(dim=1).sum(), lo.amin(dim=1).sum()
        out.append((score - worst) / (best - worst))
    return torch.stack(out, dim=1)


def motif_hits(tokens: Tensor, motifs: list[Motif], threshold: float = 0.7) -> Tensor:
    """Best-scoring motif of every sequence among those scoring at least ``threshold`` (see
    :func:`motif_scores`), or -1 when none does; shape ``(N,)``."""
    best = motif_scores(tokens, motifs).max(dim=1)
    return torch.where(best.values >= threshold, best.indices, -1)


def motif_purity(tokens: Tensor, motifs: list[Motif], threshold: float = 0.7) -> float:
    """How much one motif dominates a library: the largest share of one motif among the
    sequences that hit any (:func:`motif_hits`), ``max_k #{hit = k} / #{hit != -1}``; 1 for a
    single-motif library, about 1/M for an equal mixture of M motifs, NaN when none hits.

    Args:
        tokens: one library, shape ``(size, length)``.
    """
    hits = motif_hits(tokens, motifs, threshold)
    hits = hits[hits >= 0]
    if hits.numel() == 0:
        return math.nan
    return float(torch.bincount(hits, minlength=len(motifs)).max()) / hits.numel()
