"""Metrics of a generated sequence set against real reference and training sets, and the
metrics of an oracle's outputs on them (:mod:`seqflow.metrics.oracle`).

Functions take plain lists of strings (case-insensitive) and, where letters matter, an
alphabet string; results are floats, arrays or frozen dataclasses.
"""

from seqflow.metrics.composition import (
    gc_content,
    gc_distance,
    length_distance,
    length_tv,
    position_composition,
    position_divergence,
)
from seqflow.metrics.evaluate import EvaluationReport, evaluate_by_condition, evaluate_sets
from seqflow.metrics.frechet import frechet_distance
from seqflow.metrics.kmers import kmer_js, kmer_js_profile, kmer_spectrum
from seqflow.metrics.libraries import (
    LibraryReport,
    OneNNA,
    evaluate_libraries,
    within_library_diversity,
)
from seqflow.metrics.nearest import (
    MemorisationReport,
    NoveltyReport,
    nearest_distance,
    novelty_and_memorisation,
)
from seqflow.metrics.oracle import OracleReport, oracle_report
from seqflow.metrics.within_set import diversity, uniqueness

__all__ = [
    "EvaluationReport",
    "LibraryReport",
    "MemorisationReport",
    "NoveltyReport",
    "OneNNA",
    "OracleReport",
    "diversity",
    "evaluate_by_condition",
    "evaluate_libraries",
    "evaluate_sets",
    "frechet_distance",
    "gc_content",
    "gc_distance",
    "kmer_js",
    "kmer_js_profile",
    "kmer_spectrum",
    "length_distance",
    "length_tv",
    "nearest_distance",
    "novelty_and_memorisation",
    "oracle_report",
    "position_composition",
    "position_divergence",
    "uniqueness",
    "within_library_diversity",
]
