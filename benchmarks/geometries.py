"""Every geometry x coupling at one training budget, in one run: toy KL and conditional DHS.

Two tasks per (``flow.geometry``, ``flow.coupling``) pair:

1. the simplex-dimension toy of ``toy_kl.py`` (length 4, per-position target
   ``softmax(U(0, 1))``) for each K of ``--ks``: KL(target || empirical) of ``--toy-samples``
   samples after ``--toy-steps`` steps, the mean training step time and the sampling time;
2. cell-type-conditional DHS (``conditional_dhs.py``'s task on a ``--dhs-n`` subsample of the
   train split, a smaller CNN unless ``--set`` says otherwise): ``--dhs-samples`` samples per
   cell type, their 6-mer JS distance to their own cell type's test sequences (mean over cell
   types, lower is better) and how many cell types are closest to their own.

Times are reported as ratios to the ``fisher``/``exact`` pair measured in the same run (step
time: training seconds per step; sampling: seconds to draw the samples). ``dirichlet`` runs
with the ``independent`` coupling only (its paths start from no prior point to pair).

Usage: the issue's full grid, as in the README (the defaults; 43 minutes on one CPU core)::

    python benchmarks/geometries.py --ks 5,20,80,160 --toy-steps 400 --toy-samples 20000 \\
        --dhs-steps 300 --dhs-n 4000 --dhs-samples 100 --sample-steps 20 --json out.json

Progress goes to stderr, one line per finished row; the tables go to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seqflow import api

try:
    from benchmarks import toy_kl
    from benchmarks._kmers import js_distance, kmer_counts
    from benchmarks.conditional_dhs import DATA, read_rows
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import toy_kl  # type: ignore[no-redef]
    from _kmers import js_distance, kmer_counts  # type: ignore[no-redef]
    from conditional_dhs import DATA, read_rows  # type: ignore[no-redef]

SMALL_CNN = ("model.hidden=64", "model.depth=4", "model.time_dim=64")


def toy(args: argparse.Namespace, geometry: str, coupling: str, k: int) -> dict[str, object]:
    ns = argparse.Namespace(
        steps=args.toy_steps, seed=args.seed, n_train=50_000, batch=512,
        samples=args.toy_samples, sample_steps=args.sample_steps, sample_batch=16384,
    )  # fmt: skip
    row = toy_kl.run_one(k, coupling, ns, geometry=geometry)
    row["step_seconds"] = float(row["train_seconds"]) / args.toy_steps  # type: ignore[arg-type]
    return row


def dhs(
    args: argparse.Namespace, geometry: str, coupling: str, data: Path, test: dict[str, list[str]]
) -> dict[str, object]:
    cells = sorted(test)
    overrides = [*SMALL_CNN, *args.overrides, f"flow.geometry={geometry}",
                 f"flow.coupling={coupling}", "train.log_every=50"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        t0 = time.perf_counter()
        api.fit(data, preset="dna", steps=args.dhs_steps, out=run, label_col="cell_type",
                device="cpu", seed=args.seed, overrides=overrides)  # fmt: skip
        fit_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        sets = {
            c: list(api.sample(run, n=args.dhs_samples, label=c, seed=args.seed + i,
                               steps=args.sample_steps, output=Path(tmp) / f"{c}.fa",
                               device="cpu").sequences)
            for i, c in enumerate(cells)
        }  # fmt: skip
        sample_s = time.perf_counter() - t1
    refs = {c: kmer_counts(s, 6) for c, s in test.items()}
    own, closest = [], 0
    for c, seqs in sets.items():
        counts = kmer_counts(seqs, 6)
        row = {r: js_distance(counts, refs[r]) for r in cells}
        own.append(row[c])
        closest += int(min(row, key=row.__getitem__) == c)
    return {
        "js6_own": float(np.mean(own)), "own_closest": closest, "cells": len(cells),
        "step_seconds": fit_s / args.dhs_steps, "sample_seconds": sample_s,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--geometries", default="fisher,simplex,egeodesic,dirichlet")
    p.add_argument("--couplings", default="exact,independent,sinkhorn")
    p.add_argument("--ks", default="5,20,80,160", help="toy alphabet sizes")
    p.add_argument("--toy-steps", type=int, default=400)
    p.add_argument("--toy-samples", type=int, default=20000)
    p.add_argument("--dhs-steps", type=int, default=300, help="0 skips the DHS task")
    p.add_argument("--dhs-n", type=int, default=4000, help="training sequences (subsample)")
    p.add_argument("--dhs-samples", type=int, default=100, help="samples per cell type")
    p.add_argument("--sample-steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    torch.set_grad_enabled(True)
    # Dirichlet FM's paths start from no prior point: it runs with the independent coupling
    pairs = [(g, c) for g in args.geometries.split(",") for c in args.couplings.split(",")
             if g != "dirichlet" or c == "independent"]  # fmt: skip
    ks = [int(k) for k in args.ks.split(",")]
    results: dict[str, object] = {"args": vars(args), "threads": torch.get_num_threads()}

    start = time.perf_counter()

    def progress(task: str, row: dict[str, object]) -> dict[str, object]:
        print(f"[{time.perf_counter() - start:7.0f} s] {task} {row['geometry']}/{row['coupling']}"
              f" done", file=sys.stderr, flush=True)  # fmt: skip
        return row

    toy_rows = [progress(f"toy K={k}", {"geometry": g, "coupling": c, **toy(args, g, c, k)})
                for k in ks for g, c in pairs]  # fmt: skip
    results["toy"] = toy_rows
    dhs_rows = []
    if args.dhs_steps > 0:
        rows = read_rows(Path(args.data))
        rng = np.random.default_rng(args.seed)
        train = [r for r in rows if r["split"] == "train"]
        train = [train[i] for i in sorted(rng.choice(len(train), args.dhs_n, replace=False))]
        cells = sorted({r["cell_type"] for r in rows})
        test = {c: [r["sequence"] for r in rows if r["split"] == "test" and r["cell_type"] == c]
                for c in cells}  # fmt: skip
        size = min(len(v) for v in test.values())
        test = {c: v[:size] for c, v in test.items()}
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "dhs_train.csv"
            data.write_text("sequence,cell_type\n" + "".join(
                f"{r['sequence']},{r['cell_type']}\n" for r in train))  # fmt: skip
            dhs_rows = [progress("dhs", {"geometry": g, "coupling": c,
                                         **dhs(args, g, c, data, test)})
                        for g, c in pairs]  # fmt: skip
    results["dhs"] = dhs_rows
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))

    def ratio(rows: list[dict], key: str, row: dict, same: tuple[str, ...] = ()) -> float:
        """``row[key]`` over the fisher/exact row that agrees with it on ``same``."""
        same_rows = [r for r in rows if all(r[k] == row[k] for k in same)]
        base = next((r for r in same_rows if r["geometry"] == "fisher"
                     and r["coupling"] == "exact"), same_rows[0])  # fmt: skip
        return float(row[key]) / float(base[key])

    print(f"\nToy KL ({args.toy_steps} steps, {args.toy_samples} samples; ratios to fisher/exact)")
    print("| K | geometry | coupling | KL | floor | step time | sampling time |")
    print("|---|---|---|---|---|---|---|")
    for r in toy_rows:
        print(f"| {r['K']} | {r['geometry']} | {r['coupling']} | {r['kl']:.2e} | "
              f"{r['floor']:.1e} | {ratio(toy_rows, 'step_seconds', r, ('K',)):.2f} | "
              f"{ratio(toy_rows, 'sample_seconds', r, ('K',)):.2f} |")  # fmt: skip
    if dhs_rows:
        print(f"\nConditional DHS ({args.dhs_steps} steps on {args.dhs_n} sequences, "
              f"{args.dhs_samples} samples per cell type; ratios to fisher/exact)")  # fmt: skip
        print("| geometry | coupling | 6-mer JS to own cell type | own closest | step time | "
              "sampling time |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for r in dhs_rows:
            print(f"| {r['geometry']} | {r['coupling']} | {r['js6_own']:.4f} | "
                  f"{r['own_closest']}/{r['cells']} | {ratio(dhs_rows, 'step_seconds', r):.2f} | "
                  f"{ratio(dhs_rows, 'sample_seconds', r):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
