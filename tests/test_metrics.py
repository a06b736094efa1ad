"""Oracle-free metrics against independent re-implementations.

References: ``collections.Counter`` spectra with an explicit JS formula and
``scipy.spatial.distance.jensenshannon``, direct letter counts, sorted-quantile Wasserstein
distances, loops over positions and pairs, a textbook edit-distance DP, brute-force nearest
neighbours, and the ``scipy.linalg.sqrtm`` Fréchet formula with its isotropic closed form.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from seqflow.errors import InvalidInputError
from seqflow.metrics import (
    NoveltyReport,
    diversity,
    evaluate_by_condition,
    evaluate_sets,
    frechet_distance,
    gc_content,
    gc_distance,
    kmer_js,
    kmer_js_profile,
    kmer_spectrum,
    length_distance,
    length_tv,
    novelty_and_memorisation,
    position_composition,
    position_divergence,
    uniqueness,
)
from seqflow.metrics import kmers as kmers_module
from seqflow.metrics._common import encode
from seqflow.metrics.distance import levenshtein_pairs

DNA = "ACGT"
PROTEIN = "ACDEFGHIKLMNPQRSTVWY"


def random_set(seed: int, n: int, lengths: tuple[int, int], letters: str = DNA) -> list[str]:
    """n random sequences with lengths drawn from [lo, hi], some in lower case."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = "".join(rng.choice(list(letters), int(rng.integers(lengths[0], lengths[1] + 1))))
        out.append(s.lower() if rng.random() < 0.2 else s)
    return out


def textbook_edit(a: str, b: str) -> int:
    """Wagner-Fischer dynamic programme."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
    return d[-1][-1]


def counter_spectrum(seqs: list[str], k: int) -> Counter[str]:
    return Counter(s.upper()[i : i + k] for s in seqs for i in range(len(s) - k + 1))


def direct_js(p: Counter[str], q: Counter[str]) -> float:
    np_, nq = sum(p.values()), sum(q.values())
    total = 0.0
    for key in set(p) | set(q):
        a, b = p[key] / np_, q[key] / nq
        m = (a + b) / 2
        total += 0.5 * (a * math.log2(a / m) if a else 0.0) + 0.5 * (
            b * math.log2(b / m) if b else 0.0
        )
    return math.sqrt(max(total, 0.0))


def sorted_w1(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 of two equal-size samples: mean gap between sorted values."""
    return float(np.mean(np.abs(np.sort(a) - np.sort(b))))


# --- k-mers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_kmer_spectrum_matches_counter(k: int) -> None:
    seqs = random_set(0, 30, (0, 12))
    assert kmer_spectrum(seqs, k, DNA) == dict(counter_spectrum(seqs, k))


@pytest.mark.parametrize(("k", "letters"), [(1, DNA), (2, DNA), (3, DNA), (5, DNA), (2, PROTEIN)])
def test_kmer_js_matches_direct_formula_and_scipy(k: int, letters: str) -> None:
    gen, ref = random_set(1, 40, (5, 30), letters), random_set(2, 25, (5, 30), letters)
    p, q = counter_spectrum(gen, k), counter_spectrum(ref, k)
    keys = sorted(set(p) | set(q))
    expected = jensenshannon([p[x] for x in keys], [q[x] for x in keys], base=2)
    assert kmer_js(gen, ref, k, letters) == pytest.approx(direct_js(p, q), abs=1e-12)
    assert kmer_js(gen, ref, k, letters) == pytest.approx(expected, abs=1e-12)


def test_kmer_js_sparse_path_equals_dense(monkeypatch: pytest.MonkeyPatch) -> None:
    gen, ref = random_set(3, 50, (10, 40)), random_set(4, 50, (10, 40))
    dense = kmer_js_profile(gen, ref, range(1, 5), DNA)
    monkeypatch.setattr(kmers_module, "MAX_DENSE_BINS", 0)
    assert kmer_js_profile(gen, ref, range(1, 5), DNA) == pytest.approx(dense, abs=1e-12)


def test_kmer_js_protein_k6_uses_unique_and_matches_counter() -> None:
    gen, ref = random_set(5, 20, (6, 15), PROTEIN), random_set(6, 20, (6, 15), PROTEIN)
    assert len(PROTEIN) ** 6 > kmers_module.MAX_DENSE_BINS
    expected = direct_js(counter_spectrum(gen, 6), counter_spectrum(ref, 6))
    assert kmer_js(gen, ref, 6, PROTEIN) == pytest.approx(expected, abs=1e-12)


def test_kmer_js_bounds() -> None:
    seqs = random_set(7, 20, (8, 20))
    assert kmer_js_profile(seqs, seqs[::-1]) == pytest.approx(dict.fromkeys(range(1, 7), 0.0))
    assert kmer_js(["AAAA", "AA"], ["CCCCC"], 2) == pytest.approx(1.0)


def test_kmer_errors() -> None:
    with pytest.raises(InvalidInputError, match="no 5-mers"):
        kmer_js(["ACG"], ["ACGTA"], 5)
    with pytest.raises(InvalidInputError, match="'N' not in"):
        kmer_js(["ACGN"], ["ACGT"], 1, DNA)
    with pytest.raises(InvalidInputError, match="one string"):
        kmer_js("ACGT", ["ACGT"], 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="at least 1"):
        kmer_js(["ACGT"], ["ACGT"], 0)


# --- composition -------------------------------------------------------------------------------


def test_gc_content_and_distance() -> None:
    gen, ref = random_set(8, 40, (1, 50)), random_set(9, 40, (1, 50))
    direct = [sum(c in "GCgc" for c in s) / len(s) for s in gen]
    np.testing.assert_allclose(gc_content(gen), direct)
    assert gc_distance(gen, ref) == pytest.approx(sorted_w1(gc_content(gen), gc_content(ref)))
    with pytest.raises(InvalidInputError, match="empty"):
        gc_content(["ACG", ""])


def test_length_distances() -> None:
    gen, ref = random_set(10, 50, (3, 20)), random_set(11, 50, (8, 30))
    len_g, len_r = np.array([len(s) for s in gen]), np.array([len(s) for s in ref])
    assert length_distance(gen, ref) == pytest.approx(sorted_w1(len_g, len_r))
    assert length_distance(gen, gen[::-1]) == 0.0
    cg, cr = Counter(len_g.tolist()), Counter(len_r.tolist())
    tv = 0.5 * sum(abs(cg[x] / 50 - cr[x] / 50) for x in set(cg) | set(cr))
    assert length_tv(gen, ref) == pytest.approx(tv)


def test_position_composition_matches_loop() -> None:
    seqs = random_set(12, 30, (2, 9))
    freq = position_composition(seqs, DNA, length=11)
    expected = np.zeros((11, 4))
    for s in seqs:
        for i, c in enumerate(s.upper()):
            expected[i, DNA.index(c)] += 1
    totals = expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(freq, np.divide(expected, np.maximum(totals, 1)))
    assert np.all(freq[9:] == 0)


def test_position_divergence_matches_loop() -> None:
    gen, ref = random_set(13, 40, (5, 12)), random_set(14, 30, (3, 9))
    length = min(max(map(len, gen)), max(map(len, ref)))
    per_position = []
    for i in range(length):
        p = Counter(s[i].upper() for s in gen if len(s) > i)
        q = Counter(s[i].upper() for s in ref if len(s) > i)
        per_position.append(jensenshannon([p[c] for c in DNA], [q[c] for c in DNA], base=2))
    assert position_divergence(gen, ref, DNA) == pytest.approx(np.mean(per_position))
    assert position_divergence(gen, gen) == pytest.approx(0.0, abs=1e-7)


# --- diversity and edit distance ---------------------------------------------------------------


@given(st.text("ACG", max_size=70), st.text("ACG", max_size=70))
@settings(max_examples=150, deadline=None)
def test_levenshtein_matches_textbook(a: str, b: str) -> None:
    x, y = encode([a], "ACG", "a"), encode([b], "ACG", "b")
    zero = np.zeros(1, dtype=np.int64)
    assert int(levenshtein_pairs(x, y, zero, zero)[0]) == textbook_edit(a, b)


def test_levenshtein_pairs_long_sequences_cross_word_blocks() -> None:
    seqs = random_set(15, 24, (0, 200))
    x = encode(seqs, DNA, "x")
    i, j = np.triu_indices(len(seqs), k=1)
    expected = [textbook_edit(seqs[a].upper(), seqs[b].upper()) for a, b in zip(i, j, strict=True)]
    np.testing.assert_array_equal(levenshtein_pairs(x, x, i, j), expected)


def test_diversity_equal_length_matches_pair_loop() -> None:
    seqs = random_set(16, 25, (30, 30))
    expected = np.mean(
        [
            sum(a != b for a, b in zip(seqs[i].upper(), seqs[j].upper(), strict=True)) / 30
            for i in range(25)
            for j in range(i + 1, 25)
        ]
    )
    assert diversity(seqs) == pytest.approx(expected)


def test_diversity_variable_length_matches_pair_loop() -> None:
    seqs = random_set(17, 15, (5, 40))
    expected = np.mean(
        [
            textbook_edit(seqs[i].upper(), seqs[j].upper()) / max(len(seqs[i]), len(seqs[j]))
            for i in range(15)
            for j in range(i + 1, 15)
        ]
    )
    assert diversity(seqs) == pytest.approx(expected)


def test_diversity_subsample_and_uniqueness() -> None:
    seqs = random_set(18, 300, (20, 20))
    assert diversity(seqs, sample=50, seed=1) == diversity(seqs, sample=50, seed=1)
    assert diversity(["ACGT"] * 5) == 0.0
    assert uniqueness(["ACGT", "acgt", "ACGA", "TTTT"]) == 0.75
    with pytest.raises(InvalidInputError, match="at least 2"):
        diversity(["ACGT"])


# --- novelty and memorisation ------------------------------------------------------------------


def brute_nn(gen: list[str], train: list[str], edit: bool) -> np.ndarray:
    def dist(a: str, b: str) -> float:
        if edit:
            return textbook_edit(a.upper(), b.upper()) / max(len(a), len(b), 1)
        return sum(x != y for x, y in zip(a.upper(), b.upper(), strict=True)) / len(a)

    return np.array([min(dist(g, t) for t in train) for g in gen])


def novelty(gen: list[str], train: list[str], **limits: int) -> NoveltyReport:
    """The novelty part of :func:`novelty_and_memorisation` (``gen`` as its own reference)."""
    return novelty_and_memorisation(gen, train, gen, **limits)[0]


def test_novelty_counts_planted_copies_and_matches_brute_force() -> None:
    train = random_set(19, 60, (25, 25))
    gen = [train[i].lower() for i in (3, 9, 27, 40)] + random_set(20, 16, (25, 25))
    report = novelty(gen, train)
    assert report.exact_copies == 4 and report.copy_fraction == pytest.approx(0.2)
    assert report.metric == "hamming"
    np.testing.assert_allclose(report.nn_distance, brute_nn(gen, train, edit=False))
    assert report.median_nn == pytest.approx(np.median(report.nn_distance))
    assert set(report.to_dict()) == {
        "exact_copies",
        "copy_fraction",
        "median_nn",
        "mean_nn",
        "metric",
    }


def test_novelty_variable_length_uses_edit_distance() -> None:
    train, gen = random_set(21, 20, (10, 30)), random_set(22, 8, (10, 30))
    report = novelty(gen, train)
    assert report.metric == "levenshtein"
    np.testing.assert_allclose(report.nn_distance, brute_nn(gen, train, edit=True))
    assert novelty(gen, train, max_gen=3).nn_distance.shape == (3,)


def test_memorisation_separates_copies_from_fresh_samples() -> None:
    train, ref = random_set(23, 400, (40, 40)), random_set(24, 200, (40, 40))
    copies = [train[i] for i in range(0, 400, 2)]
    fresh = random_set(25, 200, (40, 40))
    novel, copied = novelty_and_memorisation(copies, train, ref)
    assert novel.copy_fraction == 1.0
    assert copied.fraction_closer == 1.0 and copied.median_nn_gen == 0.0
    assert copied.wasserstein == pytest.approx(copied.median_nn_ref, abs=0.05)
    both = novelty_and_memorisation(fresh, train, ref)
    assert both[1].fraction_closer < 0.2 and both[1].wasserstein < 0.02
    np.testing.assert_array_equal(both[0].nn_distance, novelty(fresh, train).nn_distance)
    with pytest.raises(InvalidInputError, match="quantile"):
        novelty_and_memorisation(fresh, train, ref, quantile=5.0)


# --- Fréchet distance --------------------------------------------------------------------------


def sqrtm_frechet(x: np.ndarray, y: np.ndarray) -> float:
    s_x, s_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s_x @ s_y).real
    diff = x.mean(axis=0) - y.mean(axis=0)
    return float(diff @ diff + np.trace(s_x + s_y - 2 * root))


@pytest.mark.parametrize("d", [2, 3, 8, 32])
def test_frechet_matches_sqrtm_formula(d: int) -> None:
    rng = np.random.default_rng(d)
    x = rng.normal(size=(200, d)) @ rng.normal(size=(d, d))
    y = rng.normal(size=(150, d)) @ rng.normal(size=(d, d)) + 0.5
    assert frechet_distance(x, y) == pytest.approx(sqrtm_frechet(x, y), rel=1e-7)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8 * np.trace(np.cov(x.T)))
    assert frechet_distance(x, rng.permutation(x)) == pytest.approx(0.0, abs=1e-8 * d * 100)
    assert frechet_distance(rng.permutation(x), y) == pytest.approx(frechet_distance(x, y))


def exact_moments(z: np.ndarray, mean: np.ndarray, sigma: float) -> np.ndarray:
    """Rows with sample mean ``mean`` and sample covariance ``sigma^2 I`` exactly (ddof = 1)."""
    z = z - z.mean(axis=0)
    root = np.linalg.cholesky(np.cov(z, rowvar=False))
    return mean + sigma * np.linalg.solve(root, z.T).T


def test_frechet_isotropic_closed_form() -> None:
    rng = np.random.default_rng(0)
    d, mu_x, mu_y = 6, rng.normal(size=6), rng.normal(size=6)
    x = exact_moments(rng.normal(size=(100, d)), mu_x, 1.5)
    y = exact_moments(rng.normal(size=(80, d)), mu_y, 0.5)
    expected = np.sum((mu_x - mu_y) ** 2) + d * (1.5 - 0.5) ** 2
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-10)


def test_frechet_errors_and_singular_covariance() -> None:
    with pytest.raises(InvalidInputError, match="rows >= 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(InvalidInputError, match="dimensions differ"):
        frechet_distance(np.zeros((4, 3)), np.zeros((5, 2)))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(5, 20)), rng.normal(size=(6, 20))
    assert np.isfinite(frechet_distance(x, y)) and frechet_distance(x, y) >= 0.0


# --- evaluation reports ------------------------------------------------------------------------


def test_evaluate_sets_equal_length_with_train() -> None:
    gen, ref, train = (random_set(s, 60, (30, 30)) for s in (26, 27, 28))
    report = evaluate_sets(gen, ref, train=train)
    assert report.kmer_js == pytest.approx(kmer_js_profile(gen, ref, range(1, 7), DNA))
    assert report.gc_distance == pytest.approx(gc_distance(gen, ref))
    assert report.position_divergence == pytest.approx(position_divergence(gen, ref, DNA))
    assert report.diversity_gen == pytest.approx(diversity(gen))
    assert report.length_distance is None and report.length_tv is None
    assert report.novelty is not None and report.memorisation is not None
    assert report.memorisation == novelty_and_memorisation(gen, train, ref)[1]
    assert json.loads(json.dumps(report.to_dict()))["kmer_js"]["3"] == report.kmer_js[3]


def test_evaluate_sets_variable_length_protein() -> None:
    gen, ref = random_set(29, 30, (2, 12), PROTEIN), random_set(30, 30, (3, 4), PROTEIN)
    report = evaluate_sets(gen, ref, letters=PROTEIN, ks=range(1, 9))
    assert sorted(report.kmer_js) == [1, 2, 3, 4]
    assert report.gc_distance is None and report.position_divergence is None
    assert report.length_distance == pytest.approx(length_distance(gen, ref))
    assert report.novelty is None and report.to_dict()["memorisation"] is None


def test_evaluate_by_condition() -> None:
    gen = {"a": random_set(31, 20, (20, 20)), "b": random_set(32, 20, (20, 20)), "c": ["ACGT"]}
    ref = {"b": random_set(33, 20, (20, 20)), "a": random_set(34, 20, (20, 20))}
    train = {"a": random_set(35, 20, (20, 20))}
    reports = evaluate_by_condition(gen, ref, train=train, ks=[1, 2])
    assert list(reports) == ["a", "b"]
    assert reports["a"].novelty is not None and reports["b"].novelty is None
    assert reports["b"].kmer_js == pytest.approx(kmer_js_profile(gen["b"], ref["b"], [1, 2]))
    with pytest.raises(InvalidInputError, match="share no condition"):
        evaluate_by_condition({"x": ["ACGT"]}, {"y": ["ACGT"]})


def test_nearest_distance_equals_brute_force():
    from seqflow.metrics import nearest_distance

    rng = np.random.default_rng(5)
    train = ["".join(rng.choice(list("ACGT"), 12)) for _ in range(40)]
    queries = ["".join(rng.choice(list("ACGT"), 12)) for _ in range(15)] + [train[3]]
    dist, metric = nearest_distance(queries, train)
    hamming = [min(sum(a != b for a, b in zip(q, t, strict=True)) for t in train) for q in queries]
    assert metric == "hamming" and dist.tolist() == hamming and dist[-1] == 0
    ragged = [*train, "ACG"]
    dist, metric = nearest_distance(queries, ragged)
    assert metric == "levenshtein"
    assert dist.tolist() == [min(textbook_edit(q, t) for t in ragged) for q in queries]
