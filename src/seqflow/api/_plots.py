"""PNG plots for ``evaluate --plots DIR`` (matplotlib, an optional extra: ``seqflow[plots]``).

With labels on both sets, each plot but the logo has one panel per shared label (titled with
the label and both set sizes); otherwise one panel for all.

- ``kmer_scatter.png``: frequency of every 6-mer (or the longest k both sets reach, up to 6)
  in the generated vs the real set, log-log; points on the diagonal match. A k-mer absent
  from a set of N k-mers sits at the floor 0.5/N (a pseudo-count of one half; each axis label
  states its floor). Each title gives Pearson's r of the log frequencies and the
  Jensen-Shannon distance of the spectra (``seqflow.metrics.kmer_js``, as in the table);
- ``gc_content.png``: GC-content histograms (nucleotide alphabets);
- ``lengths.png``: length histograms (when lengths vary);
- ``oracle_scores.png``: histograms of the oracle's first output (with an oracle);
- ``logo.png``: sequence logos of the real (top) and generated (bottom) sets on one y scale in
  bits, drawn only when the sets are aligned: every sequence of both sets has one length, and
  the real set's mean information per position (plug-in, over the drawn window) is above
  ``LOGO_MARGIN`` (2) times the small-sample correction ``(K - 1) / (2 ln 2 N)``, which is
  what N random sequences show by chance, and its tallest column reaches ``LOGO_VISIBLE``
  (5%) of the ``log2 K``-bit axis (so the logo is not blank: real DHS sequences hold about
  0.01 bits a position). Otherwise no logo is drawn and a warning says why.
  Heights are ``p * IC`` with the small-sample correction, so sets of
  different sizes compare (``seqflow.metrics.logo``). Beyond 100 positions, only the 100
  consecutive positions where the real set holds the most information are drawn (the title
  names them). Drawn by ``logomaker`` when it is importable (``pip install logomaker``), else
  by matplotlib alone: each letter's outline (``TextPath``) stretched into its box by an
  affine map and filled (``PathPatch``). Nucleotides take the classic colours (A green,
  C blue, G orange, T/U red), other alphabets the ``tab20`` colormap.

Each file is written atomically.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqflow.errors import InvalidInputError
from seqflow.io_utils import atomic_path
from seqflow.metrics import gc_content, kmer_js, kmer_spectrum
from seqflow.metrics.evaluate import is_nucleotide
from seqflow.metrics.logo import is_aligned, logo_matrix, small_sample_correction

LOGO_POSITIONS = 100
LOGO_MARGIN = 2.0
LOGO_VISIBLE = 0.05
NUCLEOTIDE_COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839",
                      "U": "#D62839", "N": "#999999"}  # fmt: skip


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidInputError(
            "plots need matplotlib: pip install 'seqflow[plots]' (or matplotlib)"
        ) from None
    return plt


def label_groups(
    gen_labels: Sequence[str | None] | None, ref_labels: Sequence[str | None] | None, n: int, m: int
) -> list[tuple[str | None, np.ndarray, np.ndarray]]:
    """The panels of a plot: one per label both sets carry (sorted), else one for all.

    Args:
        gen_labels, ref_labels: the label of each generated (n) and real (m) sequence, or None.
        n, m: the sizes of the two sets.

    Returns:
        ``(label, generated indices, real indices)`` per panel; label None for the pooled one.
    """
    if gen_labels is not None and ref_labels is not None:
        shared = sorted({x for x in gen_labels if x is not None} & set(ref_labels))
        if shared:
            gl, rl = np.asarray(gen_labels, dtype=object), np.asarray(ref_labels, dtype=object)
            return [(x, np.flatnonzero(gl == x), np.flatnonzero(rl == x)) for x in shared]
    return [(None, np.arange(n), np.arange(m))]


def kmer_frequencies(
    gen: list[str], ref: list[str], k: int, letters: str
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """k-mer frequencies of both sets over the k-mers either holds, absent ones at a floor.

    A k-mer absent from a set of N k-mers is given the pseudo-count 0.5, i.e. frequency 0.5/N
    (its floor), so it can be drawn on log axes and enter log-frequency correlations.

    Returns:
        generated and real frequencies, shape (V,) each for V distinct k-mers, and the floors
        0.5/N of the generated and the real set.
    """
    a, b = kmer_spectrum(gen, k, letters), kmer_spectrum(ref, k, letters)
    keys = sorted(set(a) | set(b))
    ca = np.array([a.get(x, 0) for x in keys], float)
    cb = np.array([b.get(x, 0) for x in keys], float)
    floor_a, floor_b = 0.5 / ca.sum(), 0.5 / cb.sum()
    fa = np.where(ca > 0, ca / ca.sum(), floor_a)
    fb = np.where(cb > 0, cb / cb.sum(), floor_b)
    return fa, fb, floor_a, floor_b


def write_plots(
    folder: str | Path,
    gen: list[str],
    ref: list[str],
    letters: str,
    oracle_scores: tuple[np.ndarray, np.ndarray] | None = None,
    labels: tuple[Sequence[str | None] | None, Sequence[str | None] | None] = (None, None),
) -> list[Path]:
    """Draw the plots of the module docstring into ``folder`` (created); return the files.

    ``labels`` (generated, real) give one panel per label both sets carry.
    """
    plt = _pyplot()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    panels = label_groups(*labels, len(gen), len(ref))

    def save(fig: Any, name: str) -> None:
        path = out / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    def grid(size: tuple[float, float]) -> tuple[Any, list[Any]]:
        rows = -(-len(panels) // 3)  # at most 3 columns, rows filled evenly
        cols = -(-len(panels) // rows)
        fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows),
                                 squeeze=False, layout="constrained")  # fmt: skip
        for ax in axes.flat[len(panels) :]:
            ax.remove()
        return fig, list(axes.flat[: len(panels)])

    def name_of(label: str | None, i: np.ndarray, j: np.ndarray) -> str:
        return "" if label is None else f"{label} ({i.size} generated, {j.size} real)\n"

    k = min(6, min(map(len, gen)), min(map(len, ref)))
    fig, axes = grid((4.5, 4.5))
    for ax, (label, i, j) in zip(axes, panels, strict=True):
        g, r = [gen[x] for x in i], [ref[x] for x in j]
        fa, fb, floor_a, floor_b = kmer_frequencies(g, r, k, letters)
        corr = np.corrcoef(np.log10(fa), np.log10(fb))[0, 1] if fa.size > 1 else float("nan")
        js = kmer_js(g, r, k, letters)
        ax.loglog(fb, fa, ".", ms=2, alpha=0.5)
        lim = [min(floor_a, floor_b), max(fa.max(), fb.max()) * 1.5]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(xlabel=f"real {k}-mer frequency\n(absent: 0.5/N = {floor_b:.2g})",
               ylabel=f"generated {k}-mer frequency\n(absent: 0.5/N = {floor_a:.2g})",
               title=f"{name_of(label, i, j)}r = {corr:.3f} (log freq), JS = {js:.3f}")  # fmt: skip
        ax.title.set_fontsize(9)
    save(fig, "kmer_scatter.png")

    def histograms(x: np.ndarray, y: np.ndarray, label: str, name: str) -> None:
        fig, axes = grid((5, 3.5))
        bins = np.histogram_bin_edges(np.concatenate([x, y]), bins=40)
        for ax, (group, i, j) in zip(axes, panels, strict=True):
            ax.hist(y[j], bins=bins, alpha=0.5, density=True, label="real")
            ax.hist(x[i], bins=bins, alpha=0.5, density=True, label="generated")
            ax.set(xlabel=label, ylabel="density")
            if group is not None:
                ax.set_title(name_of(group, i, j).strip(), fontsize=9)
            ax.legend()
        save(fig, name)

    if is_nucleotide(letters):
        histograms(gc_content(gen), gc_content(ref), "GC content", "gc_content.png")
    lengths_gen = np.array([len(s) for s in gen])
    lengths_ref = np.array([len(s) for s in ref])
    if np.unique(np.concatenate([lengths_gen, lengths_ref])).size > 1:
        histograms(lengths_gen, lengths_ref, "length", "lengths.png")
    if oracle_scores is not None:
        histograms(oracle_scores[0], oracle_scores[1], "oracle output 0", "oracle_scores.png")
    reason = _no_logo_reason(ref, gen, letters)
    if reason is None:
        save(_logo_figure(plt, gen, ref, letters), "logo.png")
    else:
        warnings.warn(f"no logo.png: {reason}", stacklevel=2)
    return written


def _no_logo_reason(ref: list[str], gen: list[str], letters: str) -> str | None:
    """Why a logo of these sets would say nothing, or None to draw it.

    A logo needs aligned sets, and a real set whose information is both real and visible:
    the plug-in information averaged over the drawn window must exceed ``LOGO_MARGIN`` times
    the small-sample correction ``(K - 1) / (2 ln 2 N)`` (what N uniform random sequences
    show by chance), and the tallest corrected column must reach ``LOGO_VISIBLE`` of the
    ``log2 K`` bits of the y axis (else the logo is blank).
    """
    if len(letters) < 2:
        return "a one-letter alphabet carries no information"
    if not is_aligned(gen, ref):
        return "the sequences differ in length (a logo needs aligned sets)"
    corrected = logo_matrix(ref, letters, correct=True).information
    window = _logo_window(corrected, LOGO_POSITIONS)
    chance = small_sample_correction(len(ref), len(letters))
    mean = float(logo_matrix(ref, letters).information[window].mean())
    if mean <= LOGO_MARGIN * chance:
        return (f"the real set is not aligned on a motif (mean information {mean:.3g} bits per "
                f"position, not above {LOGO_MARGIN:g} x the {chance:.3g} bits {len(ref)} random "
                "sequences show by chance)")  # fmt: skip
    tallest, scale = float(corrected.max()), float(np.log2(len(letters)))
    if tallest < LOGO_VISIBLE * scale:
        return (f"the real set is not aligned on a motif (its most informative position holds "
                f"{tallest:.3g} bits, below {LOGO_VISIBLE:.0%} of the {scale:.3g}-bit scale: "
                "the logo would be blank)")  # fmt: skip
    return None


def _letter_colours(letters: str) -> dict[str, str]:
    """Classic nucleotide colours (A green, C blue, G orange, T/U red), else ``tab20``."""
    if is_nucleotide(letters):
        return {c: NUCLEOTIDE_COLOURS[c] for c in letters}
    import matplotlib
    from matplotlib.colors import to_hex

    cmap = matplotlib.colormaps["tab20"]
    return {c: to_hex(cmap(i % cmap.N)) for i, c in enumerate(letters)}


def _logo_window(information: np.ndarray, width: int) -> slice:
    """The first ``width`` consecutive positions with the largest summed information.

    Args:
        information: IC per position, shape (L,).
        width: most positions to keep.
    """
    if information.size <= width:
        return slice(0, information.size)
    start = int(np.argmax(np.convolve(information, np.ones(width), mode="valid")))
    return slice(start, start + width)


def _glyph_logo(ax: Any, heights: np.ndarray, colours: dict[str, str], first: int) -> None:
    """Draw a logo with matplotlib alone: each letter a bold glyph outline stretched to its box.

    Args:
        ax: the axes.
        heights: letter heights in bits, shape (L, K), columns in ``colours`` order.
        colours: colour of each of the K letters.
        first: position (1-based) of the first row.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    letters = list(colours)
    font = FontProperties(family="DejaVu Sans", weight="bold")
    glyphs = [TextPath((0, 0), c, size=1, prop=font) for c in letters]
    for i, row in enumerate(heights):
        bottom = 0.0
        for k in np.argsort(row, kind="stable"):  # smallest at the bottom
            if row[k] > 0:
                box = glyphs[k].get_extents()
                to_box = (Affine2D().translate(-box.x0, -box.y0)
                          .scale(0.9 / box.width, row[k] / box.height)
                          .translate(first + i - 0.45, bottom))  # fmt: skip
                path = to_box.transform_path(glyphs[k])
                ax.add_patch(PathPatch(path, facecolor=colours[letters[k]], lw=0))
            bottom += row[k]


def _logomaker_logo(
    logomaker: Any, ax: Any, heights: np.ndarray, colours: dict[str, str], first: int
) -> None:
    """Draw a logo with ``logomaker`` (arguments as in :func:`_glyph_logo`)."""
    import pandas as pd  # a dependency of logomaker

    index = np.arange(first, first + len(heights))
    frame = pd.DataFrame(heights, columns=list(colours), index=index)
    logomaker.Logo(frame, ax=ax, color_scheme=colours, stack_order="big_on_top")


def _logo_figure(plt: Any, gen: list[str], ref: list[str], letters: str) -> Any:
    """Two stacked logos, real above generated, sharing the y range ``[0, log2 K]`` bits.

    Args:
        plt: ``matplotlib.pyplot``.
        gen: generated sequences, all of the length L of ``ref``.
        ref: real sequences.
        letters: the alphabet (K > 1 letters).
    """
    real, generated = (logo_matrix(s, letters, correct=True) for s in (ref, gen))
    window = _logo_window(real.information, LOGO_POSITIONS)
    shown = window.stop - window.start
    colours = _letter_colours(real.letters)
    try:
        import logomaker
    except ImportError:
        logomaker = None
    width = min(max(4.0, 1.5 + 0.18 * shown), 20.0)
    fig, axes = plt.subplots(2, 1, sharex=True, sharey=True, figsize=(width, 4.5))
    panels = ((real, f"real (n={len(ref)})"), (generated, f"generated (n={len(gen)})"))
    for ax, (logo, name) in zip(axes, panels, strict=True):
        if logomaker is None:
            _glyph_logo(ax, logo.heights[window], colours, window.start + 1)
        else:
            _logomaker_logo(logomaker, ax, logo.heights[window], colours, window.start + 1)
        ax.set(ylabel=f"{name}\nbits", ylim=(0.0, np.log2(len(colours))),
               xlim=(window.start + 0.5, window.stop + 0.5))  # fmt: skip
    axes[-1].set_xlabel("position")
    title = "sequence logo (small-sample corrected)"
    if shown < real.information.size:
        title += (f"; positions {window.start + 1}-{window.stop} of {real.information.size},"
                  " the most informative window of the real set")  # fmt: skip
    fig.suptitle(title, fontsize=10)
    return fig
