"""Sequence logo: information content against closed forms and a naive loop, glyph stacking,
and ``logo.png`` from ``write_plots`` through the matplotlib fallback and through logomaker."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from seqflow.errors import InvalidInputError
from seqflow.metrics.logo import (
    information_content,
    is_aligned,
    logo_matrix,
    small_sample_correction,
)

LETTERS = "ACGT"


def random_set(n: int, length: int, seed: int, letters: str = LETTERS) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(letters), length)) for _ in range(n)]


def naive_information(seqs: list[str], letters: str) -> list[float]:
    """log2 K - H per column, letter by letter."""
    out = []
    for column in zip(*seqs, strict=True):
        p = [column.count(c) / len(column) for c in letters]
        out.append(math.log2(len(letters)) + sum(q * math.log2(q) for q in p if q > 0))
    return out


@pytest.mark.parametrize("letters", ["AC", "ACGT", "ACDEFGHIKLMNPQRSTVWY"])
def test_one_letter_column_holds_log2_k_and_uniform_column_none(letters):
    k = len(letters)
    seqs = [letters[0] + c for c in letters]  # column 0 constant, column 1 uniform
    logo = logo_matrix(seqs, letters)
    np.testing.assert_allclose(logo.information, [math.log2(k), 0.0], atol=1e-12)
    np.testing.assert_allclose(logo.frequencies[0], np.eye(k)[0])
    np.testing.assert_allclose(logo.frequencies[1], np.full(k, 1 / k))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_information_matches_naive_loop_and_heights_sum_to_it(seed):
    seqs = random_set(23, 17, seed)
    logo = logo_matrix(seqs, LETTERS)
    assert logo.frequencies.shape == (17, 4) and logo.information.shape == (17,)
    np.testing.assert_allclose(logo.information, naive_information(seqs, LETTERS), atol=1e-12)
    np.testing.assert_allclose(logo.heights.sum(axis=1), logo.information, atol=1e-12)
    np.testing.assert_allclose(logo.heights, logo.frequencies * logo.information[:, None])
    assert np.all(logo.heights >= 0)


def test_small_sample_correction_is_subtracted_and_clipped_at_zero():
    seqs = ["AAAC", "AAGG", "ACGT"]  # columns AAA, AAC, AGG, CGT
    plain, corrected = logo_matrix(seqs, LETTERS), logo_matrix(seqs, LETTERS, correct=True)
    e_n = 3 / (2 * math.log(2) * 3)
    assert small_sample_correction(3, 4) == pytest.approx(e_n)
    np.testing.assert_allclose(corrected.information, np.clip(plain.information - e_n, 0, None))
    assert corrected.information[0] == pytest.approx(2 - e_n)
    assert corrected.information[3] == 0.0  # 2 - log2 3 < e_n
    np.testing.assert_allclose(corrected.heights.sum(axis=1), corrected.information)


def test_information_content_of_a_given_matrix():
    p = np.array([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.25] * 4])
    np.testing.assert_allclose(information_content(p), [2.0, 1.0, 0.0], atol=1e-12)


def test_alignment_and_ragged_sets_are_refused():
    assert is_aligned(["ACG", "TTT"], ["GGA"])
    assert not is_aligned(["ACG", "TTT"], ["GG"])
    assert not is_aligned(["", ""])
    with pytest.raises(InvalidInputError, match="aligned"):
        logo_matrix(["ACG", "AC"], LETTERS)
    with pytest.raises(InvalidInputError, match="not in"):
        logo_matrix(["ACX"], LETTERS)


# --- drawing --------------------------------------------------------------------------------


@pytest.fixture
def plots():
    pytest.importorskip("matplotlib")
    from seqflow.api import _plots

    return _plots


@pytest.fixture
def logo(plots):
    from seqflow.api import _logo_plot

    return _logo_plot


def motif_sets(length: int = 24) -> tuple[list[str], list[str]]:
    gen, ref = random_set(30, length, 1), random_set(40, length, 2)
    return [s[:5] + "GATAAG" + s[11:] for s in gen], [s[:5] + "GATAAG" + s[11:] for s in ref]


def test_glyphs_stack_smallest_at_the_bottom_and_fill_their_boxes(plots, logo):
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    heights = np.array([[0.1, 0.5, 0.2, 0.0]])
    logo._glyph_logo(ax, heights, logo._letter_colours(LETTERS), first=7)
    boxes = sorted((p.get_path().get_extents() for p in ax.patches), key=lambda b: b.y0)
    plt.close(fig)
    np.testing.assert_allclose([(b.y0, b.y1) for b in boxes], [(0, 0.1), (0.1, 0.3), (0.3, 0.8)])
    np.testing.assert_allclose([(b.x0, b.x1) for b in boxes], [(6.55, 7.45)] * 3)


def test_nucleotide_colours_are_classic_and_other_alphabets_distinct(plots, logo):
    colours = logo._letter_colours("ACGU")
    assert colours == {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "U": "#D62839"}
    protein = logo._letter_colours("ACDEFGHIKLMNPQRSTVWY")
    assert len(set(protein.values())) == 20


def test_window_keeps_the_most_informative_positions(plots, logo):
    information = np.zeros(250)
    information[180:190] = 2.0
    window = logo._logo_window(information, 100)
    assert window.stop - window.start == 100 and window.start <= 180 and window.stop >= 190
    assert logo._logo_window(information[:60], 100) == slice(0, 60)


def read_png(path):
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4) and min(image.shape[:2]) > 100
    return image


def test_fallback_writes_logo_for_aligned_sets(plots, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "logomaker", None)
    gen, ref = motif_sets()
    written = plots.write_plots(tmp_path, gen, ref, LETTERS)
    assert tmp_path / "logo.png" in written
    read_png(tmp_path / "logo.png")
    assert not list(tmp_path.glob(".*tmp"))


def test_ragged_sets_get_no_logo(plots, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "logomaker", None)
    gen, ref = motif_sets()
    with pytest.warns(UserWarning, match="no logo.png: the sequences differ in length"):
        written = plots.write_plots(tmp_path, gen, [*ref[:-1], ref[-1][:-1]], LETTERS)
    assert {p.name for p in written} == {"kmer_scatter.png", "gc_content.png", "lengths.png"}
    assert not (tmp_path / "logo.png").exists()


def test_long_sequences_show_a_bounded_window(plots, logo, monkeypatch):
    monkeypatch.setitem(sys.modules, "logomaker", None)
    gen, ref = random_set(10, 200, 3), random_set(10, 200, 4)
    fig = logo.logo_figure(plots._pyplot(), gen, ref, LETTERS)
    real, generated = fig.axes
    assert fig.get_size_inches()[0] <= 20
    assert real.get_xlim() == generated.get_xlim()
    assert np.diff(real.get_xlim())[0] == 100
    assert real.get_ylim() == generated.get_ylim() == (0.0, 2.0)
    assert "of 200" in fig._suptitle.get_text()
    plots._pyplot().close(fig)


def test_logomaker_path_draws_both_panels(plots, tmp_path, monkeypatch):
    logomaker = pytest.importorskip("logomaker")
    calls = []
    original = logomaker.Logo

    def spy(frame, **kwargs):
        calls.append((frame.shape, kwargs["stack_order"]))
        return original(frame, **kwargs)

    monkeypatch.setattr(logomaker, "Logo", spy)
    gen, ref = motif_sets()
    plots.write_plots(tmp_path, gen, ref, LETTERS)
    assert calls == [((24, 4), "big_on_top")] * 2
    read_png(tmp_path / "logo.png")
