"""The sequence logo of ``evaluate --plots`` (``logo.png``; see :mod:`seqflow.api._plots`):
whether to draw it (:func:`no_logo_reason`) and the figure (:func:`logo_figure`), by
``logomaker`` when importable, else by matplotlib glyph outlines."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqflow.metrics.evaluate import is_nucleotide
from seqflow.metrics.logo import is_aligned, logo_matrix, small_sample_correction

LOGO_POSITIONS = 100
LOGO_MARGIN = 2.0
LOGO_VISIBLE = 0.05
NUCLEOTIDE_COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839",
                      "U": "#D62839", "N": "#999999"}  # fmt: skip


def no_logo_reason(ref: list[str], gen: list[str], letters: str) -> str | None:
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
    """The first ``width`` consecutive positions with the largest summed ``information``
    (IC per position, shape (L,))."""
    if information.size <= width:
        return slice(0, information.size)
    start = int(np.argmax(np.convolve(information, np.ones(width), mode="valid")))
    return slice(start, start + width)


def _glyph_logo(ax: Any, heights: np.ndarray, colours: dict[str, str], first: int) -> None:
    """Draw a logo with matplotlib alone: each letter a bold glyph outline stretched to its box.

    Args:
        heights: letter heights in bits, shape (L, K), columns in ``colours`` order.
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


def logo_figure(plt: Any, gen: list[str], ref: list[str], letters: str) -> Any:
    """Two stacked logos, real above generated, sharing the y range ``[0, log2 K]`` bits.

    Heights are ``p * IC`` with the small-sample correction (:mod:`seqflow.metrics.logo`), so
    sets of different sizes compare; beyond ``LOGO_POSITIONS``, only the real set's most
    informative window is drawn (the title names it).

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
