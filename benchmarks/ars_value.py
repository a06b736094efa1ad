"""Continuous-value conditioning on the yeast ARS1 mutant library: sample low and high activity.

Data: ``../shared/data/ars_activity.txt.gz`` (603,569 variants of the 150 bp ARS1 origin with
library and selected read counts; logomaker's example data, MIT). Activity is the log
enrichment ``log((selected + 1) / (library + 1))``. ``--n`` variants with at least
``--min-library`` library reads are drawn; the model is fitted with ``--value-col activity``
on 90% of them. Samples are then drawn at the 10th and 90th percentile of activity.

How active are the samples? An independent yardstick, not seqflow: a ridge regression on
one-hot sequences (150 x 4 features, closed form) fitted on the held-out 10%, whose R^2 on
that same held-out set is printed. It predicts the activity of each generated set; a model
that uses the value puts the high-value samples above the low-value ones, in the direction of
the real top and bottom deciles.

Usage (README figures; 2-core CPU)::

    python benchmarks/ars_value.py --n 20000 --steps 1500 --samples 300 --guidance 1,3
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from seqflow import api

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ars_activity.txt.gz"
LETTERS = "ACGT"


def read_ars(path: Path, min_library: int) -> tuple[list[str], np.ndarray]:
    seqs, acts = [], []
    with gzip.open(path, "rt") as handle:
        for line in handle:
            if line.startswith("#") or line.startswith("library_ct") or not line.strip():
                continue
            lib, sel, seq = line.split()
            if int(lib) >= min_library:
                seqs.append(seq)
                acts.append(np.log((int(sel) + 1) / (int(lib) + 1)))
    return seqs, np.asarray(acts)


def one_hot(seqs: list[str]) -> np.ndarray:
    lookup = np.full(256, 0, dtype=np.int64)
    for i, c in enumerate(LETTERS):
        lookup[ord(c)] = i
    idx = lookup[np.frombuffer("".join(seqs).encode(), dtype=np.uint8)].reshape(len(seqs), -1)
    return np.eye(4)[idx].reshape(len(seqs), -1)


class Ridge:
    """Closed-form ridge regression on one-hot features (the independent yardstick)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, alpha: float = 10.0) -> None:
        self.mu = x.mean(0)
        xc = x - self.mu
        self.b = y.mean()
        self.w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - self.b))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mu) @ self.w + self.b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--n", type=int, default=20000, help="variants used")
    ap.add_argument("--min-library", type=int, default=2)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--guidance", default="1,3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    seqs, acts = read_ars(Path(args.data), args.min_library)
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(seqs), min(args.n, len(seqs)), replace=False)
    seqs, acts = [seqs[i] for i in pick], acts[pick]
    n_fit = int(0.9 * len(seqs))
    held_x, held_y = one_hot(seqs[n_fit:]), acts[n_fit:]
    ridge = Ridge(held_x, held_y)
    r2 = 1 - ((ridge(held_x) - held_y) ** 2).mean() / held_y.var()
    lo, hi = np.quantile(acts[:n_fit], [0.1, 0.9])
    order = np.argsort(acts[:n_fit])
    decile = n_fit // 10
    bottom = [seqs[i] for i in order[:decile]]
    top = [seqs[i] for i in order[-decile:]]
    results: dict[str, object] = {"args": vars(args), "ridge_r2_heldout": float(r2),
                                  "value_low": float(lo), "value_high": float(hi)}  # fmt: skip
    print(f"{len(seqs)} variants; activity 10th/90th percentile {lo:.2f} / {hi:.2f}; "
          f"ridge yardstick R^2 on the held-out 10%: {r2:.2f}")  # fmt: skip
    print("| set | predicted activity (mean ± sd) |\n|---|---|")
    for name, group in (("real bottom decile", bottom), ("real top decile", top)):
        p = ridge(one_hot(group))
        results[name] = [float(p.mean()), float(p.std())]
        print(f"| {name} | {p.mean():.3f} ± {p.std():.3f} |")

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ars.csv"
        data.write_text("sequence,activity\n" + "".join(
            f"{s},{a:.5f}\n" for s, a in zip(seqs[:n_fit], acts[:n_fit], strict=True)))  # fmt: skip
        t0 = time.perf_counter()
        api.fit(data, preset="dna", steps=args.steps, value_col="activity", out=Path(tmp) / "r",
                seed=args.seed)  # fmt: skip
        results["fit_seconds"] = time.perf_counter() - t0
        for w in (float(x) for x in args.guidance.split(",")):
            for name, v in (("low", lo), ("high", hi)):
                out = api.sample(Path(tmp) / "r", n=args.samples, value=float(v), guidance=w,
                                 steps=args.sample_steps, seed=args.seed, device="cpu",
                                 output=Path(tmp) / "s.fa")  # fmt: skip
                p = ridge(one_hot(list(out.sequences)))
                results[f"seqflow value={name} guidance={w:g}"] = [float(p.mean()), float(p.std())]
                print(f"| seqflow --value {v:.2f} ({name}), guidance {w:g} "
                      f"| {p.mean():.3f} ± {p.std():.3f} |")  # fmt: skip
    print(f"fit: {args.steps} steps in {results['fit_seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
