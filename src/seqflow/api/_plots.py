"""PNG plots for ``evaluate --plots DIR`` (matplotlib, an optional extra: ``seqflow[plots]``),
each written atomically.

With labels on both sets, each plot but the logo has one panel per shared label (titled with
the label and both set sizes); otherwise one panel for all.

- ``kmer_scatter.png``: frequency of every 6-mer (or the longest k both sets reach, up to 6)
  in the generated vs the real set, log-log; points on the diagonal match, absent k-mers sit
  at a floor (:func:`kmer_frequencies`) that each axis label states. Each title gives
  Pearson's r of the log frequencies and the Jensen-Shannon distance of the spectra
  (``seqflow.metrics.kmer_js``, as in the table);
- ``gc_content.png``: GC-content histograms (nucleotide alphabets);
- ``lengths.png``: length histograms (when lengths vary);
- ``oracle_scores.png``: histograms of the oracle's first output (with an oracle);
- ``logo.png``: small-sample corrected sequence logos in bits of the real (top) and generated
  (bottom) sets, at most 100 positions (:mod:`seqflow.api._logo_plot`); drawn only when the
  sets are aligned and the real set's information is real and visible, else a warning says
  why (:func:`~seqflow.api._logo_plot.no_logo_reason`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqflow.api._logo_plot import logo_figure, no_logo_reason
from seqflow.errors import InvalidInputError
from seqflow.io_utils import atomic_path
from seqflow.metrics import gc_content, kmer_js, kmer_spectrum
from seqflow.metrics.evaluate import is_nucleotide


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
    reason = no_logo_reason(ref, gen, letters)
    if reason is None:
        save(logo_figure(plt, gen, ref, letters), "logo.png")
    else:
        warnings.warn(f"no logo.png: {reason}", stacklevel=2)
    return written
