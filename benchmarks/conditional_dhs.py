"""Cell-type-conditional DNA: are the samples for a cell type closest to that cell type?

Data: ``../shared/data/dhs_celltypes.tsv.gz`` (47,872 human DHS sequences of 200 bp specific to
GM12878, HepG2, K562 or hESCT0, with a chromosome split; DNA-Diffusion's data, MIT). The model
is fitted on the ``train`` split conditioned on ``cell_type`` (``--label-col cell_type
--split-col split``: the chr1 ``valid`` rows give the validation loss, the chr2 ``test`` rows
are left out). Then ``--samples`` sequences are drawn per cell type, with and without guidance,
and their 6-mer spectrum is compared (Jensen-Shannon distance) with the real ``test`` sequences
of each cell type (subsampled to the size of the smallest, so no reference is noisier). Each
row of a printed table is one generated set; a conditional model puts its smallest distance on
the diagonal (its own cell type). The same table for real ``train`` sequences (as many per cell
type as samples) shows what the data allow.

Usage (the README's figures; 2-core CPU, one thread; ``--run DIR`` keeps the model)::

    python benchmarks/conditional_dhs.py --steps 4000 --samples 300 --sample-steps 40 \
        --guidance 1,3
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from seqflow import api

try:
    from benchmarks._kmers import js_distance, kmer_counts
except ImportError:  # run as a script: benchmarks/ is on sys.path
    from _kmers import js_distance, kmer_counts  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dhs_celltypes.tsv.gz"


def read_rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def table(name: str, sets: dict[str, list[str]], refs: dict[str, list[str]], k: int) -> dict:
    """Print and return JS(set, reference) for every (generated set, cell type)."""
    ref_counts = {c: kmer_counts(s, k) for c, s in refs.items()}
    cells = list(refs)
    print(f"\n{name}: JS distance of {k}-mer spectra to the real test sequences of each cell type")
    print("| samples for | " + " | ".join(cells) + " | own closest |")
    print("|---|" + "---|" * (len(cells) + 1))
    out: dict[str, dict[str, float]] = {}
    for cell, seqs in sets.items():
        counts = kmer_counts(seqs, k)
        row = {c: js_distance(counts, ref_counts[c]) for c in cells}
        best = min(row, key=row.__getitem__)
        marks = [f"**{row[c]:.4f}**" if c == cell else f"{row[c]:.4f}" for c in cells]
        print(f"| {cell} | " + " | ".join(marks) + f" | {'yes' if best == cell else 'no'} |")
        out[cell] = row
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--preset", default="dna")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--samples", type=int, default=400, help="generated sequences per cell type")
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--guidance", default="1,3", help="guidance weights, comma-separated")
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--run", default=None, help="keep the run folder here (default: temporary)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    rows = read_rows(Path(args.data))
    cells = sorted({r["cell_type"] for r in rows})
    test = {c: [r["sequence"] for r in rows if r["split"] == "test" and r["cell_type"] == c]
            for c in cells}  # fmt: skip
    rng = np.random.default_rng(args.seed)
    # equal reference sizes: a k-mer spectrum from fewer sequences is noisier, which raises the
    # JS distance of anything to it (test sets hold 958-1,321 sequences per cell type)
    size = min(len(v) for v in test.values())
    test = {c: [v[i] for i in sorted(rng.choice(len(v), size, replace=False))]
            for c, v in test.items()}  # fmt: skip
    real = {}
    for c in cells:
        pool = [r["sequence"] for r in rows if r["split"] == "train" and r["cell_type"] == c]
        real[c] = [pool[i] for i in rng.choice(len(pool), args.samples, replace=False)]
    results: dict[str, object] = {"args": vars(args)}
    results["real_train"] = table("real train sequences", real, test, args.k)

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.run) if args.run else Path(tmp) / "run"
        t0 = time.perf_counter()
        fit = api.fit(args.data, preset=args.preset, steps=args.steps, out=run,
                      label_col="cell_type", split_col="split", seed=args.seed,
                      overrides=args.overrides)  # fmt: skip
        results["fit_seconds"] = time.perf_counter() - t0
        results["valid_loss"] = fit.valid_loss
        print(f"\nfit: {args.steps} steps in {results['fit_seconds']:.0f} s, "
              f"valid loss {fit.valid_loss:.4g}")  # fmt: skip
        for w in (float(x) for x in args.guidance.split(",")):
            t0 = time.perf_counter()
            sets = {
                c: list(api.sample(run, n=args.samples, label=c, guidance=w, seed=args.seed + i,
                                   steps=args.sample_steps, output=Path(tmp) / f"{c}.fa",
                                   device="cpu").sequences)
                for i, c in enumerate(cells)
            }  # fmt: skip
            seconds = time.perf_counter() - t0
            results[f"guidance_{w:g}"] = table(
                f"seqflow, guidance {w:g} ({seconds:.0f} s to sample)", sets, test, args.k
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
