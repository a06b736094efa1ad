"""Set-level library metrics: embeddings, set distances, 1-NNA, within-library diversity.

References: ``collections.Counter`` k-mer spectra, hand-computed transport and Chamfer values,
a brute-force optimal assignment over all permutations (uniform OT between equal-size sets is
an assignment problem), and a nearest-neighbour loop for 1-NNA.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest

from seqflow.errors import InvalidInputError
from seqflow.metrics import (
    LibraryReport,
    diversity,
    evaluate_libraries,
    within_library_diversity,
)
from seqflow.metrics import sets as sets_module
from seqflow.metrics.libraries import distance_matrix, one_nna_from_matrix
from seqflow.metrics.sets import (
    chamfer_distance,
    check_distance,
    embed_libraries,
    mean_distance,
    ot_distance,
)

DISTANCES = ("ot", "chamfer", "mean")


def set_distance(a: list[str], b: list[str], *, distance: str = "ot", **embedding) -> float:
    """The distance between two libraries: the set distance of their embeddings."""
    x, y = embed_libraries([a, b], names=["a", "b"], **embedding)
    return check_distance(distance)(x, y)


def one_nna(gen, real, distance: str = "ot", **embedding):
    """1-NNA under ``distance`` as :func:`evaluate_libraries` reports it."""
    return getattr(evaluate_libraries(gen, real, **embedding), f"nna_{distance}")


def _random_library(rng: np.random.Generator, n: int, length: int, p=None) -> list[str]:
    return ["".join(rng.choice(list("ACGT"), size=length, p=p)) for _ in range(n)]


def _noisy(rng: np.random.Generator, letter: str, n: int, length: int) -> list[str]:
    """Sequences of ``letter`` with about one position in five replaced at random."""
    out = []
    for _ in range(n):
        seq = np.array([letter] * length)
        hit = rng.random(length) < 0.2
        seq[hit] = rng.choice(list("ACGT"), size=int(hit.sum()))
        out.append("".join(seq))
    return out


# --- embeddings -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_kmer_embedding_is_the_normalised_spectrum(k):
    seqs = ["ACGTAC", "GGGA", "acgtt"]
    (x,) = embed_libraries([seqs], k=k, letters="ACGT")
    assert np.allclose(x.sum(axis=1), 1.0)
    spectra = [Counter(s.upper()[i : i + k] for i in range(len(s) - k + 1)) for s in seqs]
    support = sorted(set().union(*spectra))
    expected = [[c[m] / sum(c.values()) for m in support] for c in spectra]
    assert x.shape == (3, len(support))
    assert np.allclose(x, expected)


def test_onehot_squared_distance_is_normalised_hamming():
    a, b = ["ACGTACGT"], ["ACGAACTT"]
    x, y = embed_libraries([a, b], embedding="onehot", letters="ACGT")
    assert np.sum((x[0] - y[0]) ** 2) == pytest.approx(2 / 8)
    assert set_distance(a, b, embedding="onehot") == pytest.approx(2 / 8)


@pytest.mark.parametrize(
    ("libraries", "kwargs", "message"),
    [
        ([["ACGT", "ACG"]], {"embedding": "onehot"}, "onehot embedding needs one sequence length"),
        (
            [["ACGT"], ["ACGT", "AC"]],
            {"k": 3},
            "library 1: sequence 1 .length 2. is shorter than k = 3",
        ),
        ([["ACGT"]], {"embedding": "bag"}, "unknown embedding 'bag'"),
        ([[]], {}, "library 0: needs at least 1 sequence"),
        ([["ACGT"]], {"k": 0}, "k-mer length must be at least 1"),
    ],
)
def test_embedding_errors(libraries, kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        embed_libraries(libraries, **kwargs)


# --- set distances: closed forms and references -------------------------------------------------


@pytest.mark.parametrize("distance", DISTANCES)
def test_distance_of_a_set_with_itself_is_zero(distance):
    lib = _random_library(np.random.default_rng(0), 12, 30)
    assert set_distance(lib, lib, distance=distance) == pytest.approx(0.0, abs=1e-12)
    assert set_distance(lib, lib[::-1], distance=distance) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("distance", DISTANCES)
def test_singletons_give_the_squared_distance(distance):
    a, b = "ACGTACGTAA", "ACCTAGGTTA"
    x, y = embed_libraries([[a], [b]], k=2)
    expected = float(np.sum((x[0] - y[0]) ** 2))
    assert expected > 0
    assert set_distance([a], [b], distance=distance, k=2) == pytest.approx(expected)


def test_two_point_sets_against_hand_computation():
    # x = {(0,0), (2,0)}, y = {(0,1), (2,3)}: matching straight up costs (1 + 9) / 2 = 5,
    # crossing costs (13 + 5) / 2 = 9; Chamfer ((1 + 5) / 2 + (1 + 9) / 2) / 2 = 4;
    # means (1, 0) and (1, 2): 4.
    x = np.array([[0.0, 0.0], [2.0, 0.0]])
    y = np.array([[0.0, 1.0], [2.0, 3.0]])
    assert ot_distance(x, y) == pytest.approx(5.0)
    assert chamfer_distance(x, y) == pytest.approx(4.0)
    assert mean_distance(x, y) == pytest.approx(4.0)
    # one point against two: every coupling sends half the mass to each
    assert ot_distance(x[:1], y) == pytest.approx((1.0 + 13.0) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ot_equals_the_best_assignment(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    best = min(cost[range(5), list(p)].mean() for p in itertools.permutations(range(5)))
    assert ot_distance(x, y) == pytest.approx(best)


@pytest.mark.parametrize("distance", DISTANCES)
def test_distances_are_symmetric_and_ignore_order(distance):
    rng = np.random.default_rng(3)
    a, b = _random_library(rng, 9, 20), _random_library(rng, 14, 20)
    d = set_distance(a, b, distance=distance)
    assert d > 0
    assert set_distance(b, a, distance=distance) == pytest.approx(d)
    shuffled_a = [a[i] for i in rng.permutation(len(a))]
    shuffled_b = [b[i] for i in rng.permutation(len(b))]
    assert set_distance(shuffled_a, shuffled_b, distance=distance) == pytest.approx(d)


def test_chamfer_and_mean_are_below_ot():
    rng = np.random.default_rng(4)
    for _ in range(5):
        a, b = _random_library(rng, 7, 15), _random_library(rng, 11, 15)
        ot = set_distance(a, b, distance="ot")
        assert set_distance(a, b, distance="chamfer") <= ot + 1e-12
        assert set_distance(a, b, distance="mean") <= ot + 1e-12


def test_sinkhorn_fallback_is_close_to_exact_ot(monkeypatch):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(40, 4)), rng.normal(loc=0.5, size=(30, 4))
    exact = ot_distance(x, y)
    monkeypatch.setattr(sets_module, "EXACT_OT_MAX", 10)
    approx = ot_distance(x, y)
    assert approx >= exact - 1e-9
    assert approx == pytest.approx(exact, rel=0.05)


def test_unknown_distance():
    with pytest.raises(InvalidInputError, match="unknown set distance 'emd'; use ot, chamfer"):
        set_distance(["ACGT"], ["ACGT"], distance="emd")


# --- 1-NNA ------------------------------------------------------------------------------------


def _loop_nna(d: np.ndarray, n_gen: int) -> tuple[float, float]:
    """Per-side 1-NN accuracy with a plain loop (no ties in the matrices used)."""
    correct = []
    for i in range(len(d)):
        j = min((j for j in range(len(d)) if j != i), key=lambda j: d[i, j])
        correct.append((i < n_gen) == (j < n_gen))
    return float(np.mean(correct[:n_gen])), float(np.mean(correct[n_gen:]))


def test_one_nna_matches_a_loop_and_averages_the_sides():
    rng = np.random.default_rng(6)
    points = rng.normal(size=(7, 2))
    points[:3] += 1.5
    d = ((points[:, None] - points[None]) ** 2).sum(-1)
    result = one_nna_from_matrix(d, 3)
    acc_gen, acc_real = _loop_nna(d, 3)
    assert (result.accuracy_gen, result.accuracy_real) == pytest.approx((acc_gen, acc_real))
    assert result.accuracy == pytest.approx((acc_gen + acc_real) / 2)
    assert (result.n_gen, result.n_real) == (3, 4)


def test_one_nna_scores_ties_by_their_share():
    # library 0's two nearest (distance 1) are library 1 (gen) and library 2 (real): 1/2
    d = np.array(
        [
            [0.0, 1.0, 1.0, 5.0],
            [1.0, 0.0, 3.0, 4.0],
            [1.0, 3.0, 0.0, 2.0],
            [5.0, 4.0, 2.0, 0.0],
        ]
    )
    result = one_nna_from_matrix(d, 2)
    assert result.accuracy_gen == pytest.approx((0.5 + 1.0) / 2)
    assert result.accuracy_real == pytest.approx((0.0 + 1.0) / 2)


@pytest.mark.parametrize("distance", ["ot", "chamfer"])
def test_one_nna_separates_poly_a_from_poly_c(distance):
    rng = np.random.default_rng(7)
    gen = {f"g{i}": _noisy(rng, "A", 6, 20) for i in range(5)}
    real = {f"r{i}": _noisy(rng, "C", 6, 20) for i in range(4)}
    result = one_nna(gen, real, distance)
    assert (result.accuracy, result.accuracy_gen, result.accuracy_real) == (1.0, 1.0, 1.0)
    assert result.distance == distance


@pytest.mark.parametrize("distance", ["ot", "chamfer"])
def test_one_nna_is_near_one_half_for_one_distribution(distance):
    rng = np.random.default_rng(8)
    gen = [_random_library(rng, 8, 24) for _ in range(30)]
    real = [_random_library(rng, 8, 24) for _ in range(30)]
    result = one_nna(gen, real, distance, k=2)
    assert abs(result.accuracy - 0.5) < 0.2


def test_one_nna_ignores_order_within_libraries():
    rng = np.random.default_rng(9)
    gen = [_random_library(rng, 5, 16) for _ in range(4)]
    real = [_random_library(rng, 5, 16, p=[0.4, 0.2, 0.2, 0.2]) for _ in range(4)]
    before = one_nna(gen, real)
    shuffled = [[lib[i] for i in rng.permutation(len(lib))] for lib in gen]
    assert one_nna(shuffled, real) == before


def test_distance_matrix_is_symmetric_with_zero_diagonal():
    rng = np.random.default_rng(10)
    points = embed_libraries([_random_library(rng, 4, 12) for _ in range(5)])
    d = distance_matrix(points, "ot")
    assert np.allclose(d, d.T)
    assert np.all(np.diag(d) == 0)


@pytest.mark.parametrize(
    ("gen", "real", "message"),
    [
        ([["ACGT"]], [["ACGT"], ["AC"]], "at least 2 generated and 2 real libraries, got 1 and 2"),
        ("ACGT", [["ACGT"], ["AC"]], "gen: expected libraries"),
        ([["ACGT"], "ACGT"], [["AC"], ["AG"]], "gen library '1': expected a list of sequences"),
        ([["ACGT"], []], [["AC"], ["AG"]], "gen library '1': needs at least 1 sequence"),
    ],
)
def test_one_nna_errors(gen, real, message):
    with pytest.raises(InvalidInputError, match=message):
        one_nna(gen, real, k=1)


# --- diversity and the report -----------------------------------------------------------------


def test_diversity_of_identical_sequences_is_zero():
    values = within_library_diversity({"same": ["ACGT"] * 5, "varied": ["ACGT", "ACGA", "TTTT"]})
    assert values["same"] == 0.0
    assert values["varied"] == pytest.approx(diversity(["ACGT", "ACGA", "TTTT"]))


def test_diversity_needs_two_sequences():
    with pytest.raises(InvalidInputError, match="library 'one': needs at least 2 sequence"):
        within_library_diversity({"one": ["ACGT"]})


def test_evaluate_libraries_report():
    rng = np.random.default_rng(11)
    gen = {f"g{i}": _noisy(rng, "A", 6, 20) for i in range(3)}
    real = {f"r{i}": _random_library(rng, 4, 20) for i in range(3)}
    report = evaluate_libraries(gen, real, seed=1)
    assert isinstance(report, LibraryReport)
    assert (report.n_gen, report.n_real, report.k, report.embedding) == (3, 3, 3, "kmer")
    assert (report.mean_size_gen, report.mean_size_real) == (6.0, 4.0)
    assert report.nna_ot.accuracy == 1.0 and report.nna_chamfer.accuracy == 1.0
    expected_gen = np.mean(list(within_library_diversity(gen, seed=1).values()))
    assert report.diversity_gen == pytest.approx(expected_gen)
    assert report.diversity_ratio == pytest.approx(report.diversity_gen / report.diversity_real)
    assert report.diversity_ratio < 1
    data = json.loads(json.dumps(report.to_dict()))
    assert data["nna_ot"]["accuracy"] == 1.0 and set(data["diversity_by_library_gen"]) == set(gen)
    rows = dict(report.rows())
    assert rows["libraries (generated / real)"] == "3 / 3"
    assert rows["1-NNA, Chamfer"] == 1.0


def test_evaluate_libraries_protein_and_singletons():
    gen = [["MKV"], ["MKL"]]
    real = [["WWY"], ["WYW"]]
    report = evaluate_libraries(gen, real)
    assert report.k == 2
    assert report.diversity_gen is None and report.diversity_ratio is None
    assert report.nna_ot.accuracy == 1.0


def test_evaluate_libraries_onehot():
    rng = np.random.default_rng(12)
    gen = [_noisy(rng, "A", 4, 10) for _ in range(2)]
    real = [_noisy(rng, "G", 4, 10) for _ in range(2)]
    report = evaluate_libraries(gen, real, embedding="onehot")
    assert report.k is None and report.nna_ot.accuracy == 1.0
