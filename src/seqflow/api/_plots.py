"""PNG plots for ``evaluate --plots DIR`` (matplotlib, an optional extra: ``seqflow[plots]``).

- ``kmer_scatter.png``: frequency of every 6-mer (or the longest k both sets reach, up to 6)
  in the generated vs the real set, log-log; points on the diagonal match;
- ``gc_content.png``: GC-content histograms (nucleotide alphabets);
- ``lengths.png``: length histograms (when lengths vary);
- ``oracle_scores.png``: histograms of the oracle's first output (with an oracle);
- ``logo.png``: sequence logos of the real (top) and generated (bottom) sets on one y scale in
  bits, drawn only when the sets are aligned (every sequence of both sets has one length;
  skipped otherwise). Heights are ``p * IC`` with the small-sample correction, so sets of
  different sizes compare (``seqflow.metrics.logo``). Beyond 100 positions, only the 100
  consecutive positions where the real set holds the most information are drawn (the title
  names them). Drawn by ``logomaker`` when it is importable (``pip install logomaker``), else
  by matplotlib alone: each letter's outline (``TextPath``) stretched into its box by an
  affine map and filled (``PathPatch``). Nucleotides take the classic colours (A green,
  C blue, G orange, T/U red), other alphabets the ``tab20`` colormap.

Each file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from seqflow.errors import InvalidInputError
from seqflow.io_utils import atomic_path
from seqflow.metrics import gc_content, kmer_spectrum
from seqflow.metrics.evaluate import is_nucleotide
from seqflow.metrics.logo import is_aligned, logo_matrix

LOGO_POSITIONS = 100
NUCLEOTIDE_COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839",
                      "U": "#D62839", "N": "#999999"}  # fmt: skip


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InvalidInputError(
            "--plots needs matplotlib: pip install 'seqflow[plots]' (or matplotlib)"
        ) from None
    return plt


def write_plots(
    folder: str | Path,
    gen: list[str],
    ref: list[str],
    letters: str,
    oracle_scores: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Path]:
    """Draw the plots of the module docstring into ``folder`` (created); return the files."""
    plt = _pyplot()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        path = out / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    k = min(6, min(map(len, gen)), min(map(len, ref)))
    a, b = kmer_spectrum(gen, k, letters), kmer_spectrum(ref, k, letters)
    keys = sorted(set(a) | set(b))
    fa = np.array([a.get(x, 0) for x in keys], float)
    fb = np.array([b.get(x, 0) for x in keys], float)
    fa, fb = fa / fa.sum(), fb / fb.sum()
    floor = 0.5 / max(fa.size, 1) * min(fa[fa > 0].min(), fb[fb > 0].min())
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.loglog(fb + floor, fa + floor, ".", ms=2, alpha=0.5)
    lim = [floor, max(fa.max(), fb.max()) * 1.5]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set(xlabel=f"real {k}-mer frequency", ylabel=f"generated {k}-mer frequency")
    save(fig, "kmer_scatter.png")

    def histograms(x: np.ndarray, y: np.ndarray, label: str, name: str) -> None:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        bins = np.histogram_bin_edges(np.concatenate([x, y]), bins=40)
        ax.hist(y, bins=bins, alpha=0.5, density=True, label="real")
        ax.hist(x, bins=bins, alpha=0.5, density=True, label="generated")
        ax.set(xlabel=label, ylabel="density")
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
    if is_aligned(gen, ref) and len(letters) > 1:
        save(_logo_figure(plt, gen, ref, letters), "logo.png")
    return written


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
