"""PNG plots for ``evaluate --plots DIR`` (matplotlib, an optional extra: ``seqflow[plots]``).

- ``kmer_scatter.png``: frequency of every 6-mer (or the longest k both sets reach, up to 6)
  in the generated vs the real set, log-log; points on the diagonal match;
- ``gc_content.png``: GC-content histograms (nucleotide alphabets);
- ``lengths.png``: length histograms (when lengths vary);
- ``oracle_scores.png``: histograms of the oracle's first output (with an oracle).

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
    return written
