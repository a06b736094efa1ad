"""All oracle-free metrics of a generated set against a reference set, in one report; which
apply depends on the data (see :class:`EvaluationReport`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from seqflow.errors import InvalidInputError
from seqflow.metrics._common import check_letters, check_set
from seqflow.metrics.composition import gc_distance, length_distance, length_tv, position_divergence
from seqflow.metrics.discriminator import TwoSampleTest, classifier_two_sample_test
from seqflow.metrics.kmers import kmer_js_profile
from seqflow.metrics.nearest import MemorisationReport, NoveltyReport, novelty_and_memorisation
from seqflow.metrics.within_set import diversity, uniqueness

NUCLEOTIDE_LETTERS = frozenset("ACGTUN")
"""Alphabets within these letters and holding G and C count as nucleotides (GC content)."""


@dataclass(frozen=True)
class EvaluationReport:
    """Metrics of a generated set against a reference set; ``None`` where one does not apply.

    Attributes:
        n_gen, n_ref: numbers of generated and reference sequences.
        kmer_js: k -> Jensen-Shannon distance of k-mer spectra, for the k both sets reach.
        diversity_gen, diversity_ref: mean pairwise normalised distance within each set (None
            below 2 sequences).
        uniqueness_gen, uniqueness_ref: distinct / total within each set.
        gc_distance: Wasserstein-1 between GC-content distributions (nucleotides only).
        position_divergence: mean per-position JS distance (all sequences of one length).
        length_distance: Wasserstein-1 between length distributions (lengths vary).
        length_tv: total variation between length histograms (lengths vary).
        novelty: exact copies and NN distances to train (with ``train``).
        memorisation: gen vs ref NN distances to train (with ``train``).
        discriminator: classifier two-sample test AUROCs (with ``discriminator``).
    """

    n_gen: int
    n_ref: int
    kmer_js: dict[int, float]
    diversity_gen: float | None
    diversity_ref: float | None
    uniqueness_gen: float
    uniqueness_ref: float
    gc_distance: float | None = None
    position_divergence: float | None = None
    length_distance: float | None = None
    length_tv: float | None = None
    novelty: NoveltyReport | None = None
    memorisation: MemorisationReport | None = None
    discriminator: TwoSampleTest | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: nested reports as dicts, k-mer keys as strings, Nones kept."""
        out: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, NoveltyReport | MemorisationReport | TwoSampleTest):
                value = value.to_dict()
            elif field.name == "kmer_js":
                value = {str(k): v for k, v in value.items()}
            out[field.name] = value
        return out


def is_nucleotide(letters: str) -> bool:
    """True for DNA/RNA-like alphabets: within ``ACGTUN`` and holding G and C."""
    upper = set(letters.upper())
    return upper <= NUCLEOTIDE_LETTERS and {"G", "C"} <= upper


def evaluate_sets(
    gen: Sequence[str],
    ref: Sequence[str],
    *,
    train: Sequence[str] | None = None,
    ks: Iterable[int] = range(1, 7),
    letters: str = "ACGT",
    seed: int = 0,
    discriminator: bool = False,
) -> EvaluationReport:
    """Every applicable oracle-free metric of ``gen`` against ``ref``.

    Args:
        gen: generated sequences (case-insensitive).
        ref: real reference sequences, e.g. a held-out split.
        train: training sequences, for novelty and memorisation (``ref`` serves as the real
            held-out set of the memorisation test).
        ks: k-mer lengths; those longer than the longest sequence of either set are skipped.
        letters: the alphabet; every letter must be in it.
        seed: seed of all subsamples (and of the discriminators).
        discriminator: also run the classifier two-sample test (seconds of CPU per 1,000
            sequences; at least 10 sequences per set).
    """
    letters = check_letters(letters)
    gen_u, ref_u = check_set(gen, "gen"), check_set(ref, "ref")
    reach = min(max(map(len, gen_u)), max(map(len, ref_u)))
    ks = [k for k in ks if k <= reach]
    lengths = {len(s) for s in gen_u} | {len(s) for s in ref_u}
    one_length = len(lengths) == 1 and reach > 0
    gc = gc_distance(gen_u, ref_u) if is_nucleotide(letters) and 0 not in lengths else None
    novel, memorised = None, None
    if train is not None:
        train_u = check_set(train, "train")
        novel, memorised = novelty_and_memorisation(gen_u, train_u, ref_u, seed=seed)
    return EvaluationReport(
        n_gen=len(gen_u),
        n_ref=len(ref_u),
        kmer_js=kmer_js_profile(gen_u, ref_u, ks, letters),
        diversity_gen=diversity(gen_u, seed=seed) if len(gen_u) > 1 else None,
        diversity_ref=diversity(ref_u, seed=seed) if len(ref_u) > 1 else None,
        uniqueness_gen=uniqueness(gen_u),
        uniqueness_ref=uniqueness(ref_u),
        gc_distance=gc,
        position_divergence=position_divergence(gen_u, ref_u, letters) if one_length else None,
        length_distance=None if one_length else length_distance(gen_u, ref_u),
        length_tv=None if one_length else length_tv(gen_u, ref_u),
        novelty=novel,
        memorisation=memorised,
        discriminator=(
            classifier_two_sample_test(gen_u, ref_u, letters, seed=seed) if discriminator else None
        ),
    )


def evaluate_by_condition(
    gen: Mapping[str, Sequence[str]],
    ref: Mapping[str, Sequence[str]],
    *,
    train: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    ks: Iterable[int] = range(1, 7),
    letters: str = "ACGT",
    seed: int = 0,
) -> dict[str, EvaluationReport]:
    """``evaluate_sets`` for each condition present in both ``gen`` and ``ref``.

    Args:
        gen: condition -> generated sequences.
        ref: condition -> reference sequences.
        train: one training set for all conditions, or condition -> training sequences
            (conditions missing from it get no novelty or memorisation).
        ks, letters, seed: as in :func:`evaluate_sets`.

    Returns:
        condition -> report, in the order of ``gen``.
    """
    shared = [c for c in gen if c in ref]
    if not shared:
        raise InvalidInputError(
            f"gen and ref share no condition (gen: {sorted(gen)}, ref: {sorted(ref)})"
        )
    ks = list(ks)
    reports = {}
    for condition in shared:
        part = train.get(condition) if isinstance(train, Mapping) else train
        reports[condition] = evaluate_sets(
            gen[condition], ref[condition], train=part, ks=ks, letters=letters, seed=seed
        )
    return reports
