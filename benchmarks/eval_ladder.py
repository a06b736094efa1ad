"""Sanity ladder for ``seqflow evaluate``: do the metrics order sets from real to random?

Data: ``../shared/data/dhs_celltypes.tsv.gz`` (DNA-Diffusion's DHS set, MIT). Reference and
real held-out set come from the ``test`` split (chr2), split at random into two halves
(``--held-out test-half``, the default), so the real set is drawn from the reference's own
distribution; ``--held-out valid`` takes the real set from the ``valid`` split (chr1) instead,
whose base composition differs from chr2's. Candidate sets of ``--n`` sequences each, from
best to worst:

1. ``real held-out``: real sequences never trained on (see above);
2. ``seqflow``: samples of the CPU ``dna`` preset fitted on ``--train-n`` train-split sequences
   (or a FASTA given with ``--generated``);
3. ``3-mer block shuffle``: real held-out sequences with their non-overlapping 3-mers shuffled
   (keeps composition and most short k-mers, breaks motifs and positions);
4. ``uniform random``: letters drawn uniformly.

A fifth set, ``copies of train`` (a "generator" that memorised its training data), must be
flagged by novelty (exact copies, share closer to train than the real 5%). The built-in oracle
(`seqflow oracle fit`, cell type classifier, trained on the train split) gives the Frechet
distance of embeddings; its held-out accuracy is printed.

Usage (README table; 2-core CPU)::

    python benchmarks/eval_ladder.py --n 1000 --train-n 10000
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

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dhs_celltypes.tsv.gz"
METRICS = [
    ("JS k=1", lambda r: r.overall.kmer_js[1]),
    ("JS k=3", lambda r: r.overall.kmer_js[3]),
    ("JS k=6", lambda r: r.overall.kmer_js[6]),
    ("GC W1", lambda r: r.overall.gc_distance),
    ("per-position div.", lambda r: r.overall.position_divergence),
    ("oracle Frechet", lambda r: r.oracle.frechet),
]


def fasta(path: Path, seqs: list[str]) -> Path:
    path.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs)))
    return path


def block_shuffle(seqs: list[str], k: int, rng: np.random.Generator) -> list[str]:
    out = []
    for s in seqs:
        blocks = [s[i : i + k] for i in range(0, len(s), k)]
        rng.shuffle(blocks)
        out.append("".join(blocks))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--train-n", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=None, help="fit steps (default: the preset's)")
    ap.add_argument("--oracle-steps", type=int, default=1500)
    ap.add_argument("--generated", default=None, help="seqflow samples to use instead of fitting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--held-out", choices=("test-half", "valid"), default="test-half")
    ap.add_argument("--sample-steps", type=int, default=None, help="default: the run's")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    with gzip.open(args.data, "rt", newline="") as handle:
        rows = [
            {k: v.strip() for k, v in r.items()} for r in csv.DictReader(handle, delimiter="\t")
        ]
    split = {name: [r["sequence"] for r in rows if r["split"] == name]
             for name in ("train", "valid", "test")}  # fmt: skip
    train = [split["train"][i] for i in rng.choice(len(split["train"]), args.train_n, False)]
    test = split["test"]
    if args.held_out == "valid":
        held = [split["valid"][i] for i in rng.choice(len(split["valid"]), args.n, False)]
    else:
        order = rng.permutation(len(test))
        half = len(test) // 2
        held = [test[i] for i in order[half:][: args.n]]
        test = [test[i] for i in sorted(order[:half])]
    results: dict[str, object] = {"args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        train_fa = fasta(tmp / "train.fa", train)
        reference = fasta(tmp / "test.fa", test)
        labelled = tmp / "train.tsv"
        body = [f"{r['sequence']}\t{r['cell_type']}\n" for r in rows if r["split"] == "train"]
        labelled.write_text("sequence\tcell_type\n" + "".join(body))
        t0 = time.perf_counter()
        report = api.fit_oracle(labelled, target="cell_type", out=tmp / "oracle.safetensors",
                                steps=args.oracle_steps, seed=args.seed)  # fmt: skip
        results["oracle_accuracy"] = report.metric
        print(f"oracle: cell-type classifier, held-out accuracy {report.metric:.3f} "
              f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
        oracle = api.load_oracle(tmp / "oracle.safetensors")
        if args.generated:
            generated = Path(args.generated)
        else:
            t0 = time.perf_counter()
            api.fit(train_fa, preset="dna", steps=args.steps, out=tmp / "run", seed=args.seed)
            api.sample(tmp / "run", n=args.n, seed=args.seed, output=tmp / "gen.fa",
                       device="cpu", steps=args.sample_steps)  # fmt: skip
            generated = tmp / "gen.fa"
            results["fit_sample_seconds"] = time.perf_counter() - t0
        sets = {
            "real held-out": fasta(tmp / "held.fa", held),
            "seqflow": generated,
            "3-mer block shuffle": fasta(tmp / "shuf.fa", block_shuffle(held, 3, rng)),
            "uniform random": fasta(
                tmp / "rand.fa", ["".join(rng.choice(list("ACGT"), 200)) for _ in range(args.n)]
            ),
            "copies of train": fasta(tmp / "copies.fa", train[: args.n]),
        }
        head = ["set", *[m for m, _ in METRICS], "exact copies", "closer than real 5%"]
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for name, path in sets.items():
            r = api.evaluate(path, reference=reference, train=train_fa, oracle=oracle,
                             seed=args.seed)  # fmt: skip
            values = [f(r) for _, f in METRICS]
            nov, mem = r.overall.novelty, r.overall.memorisation
            results[name] = r.to_dict()
            cells = [f"{v:.4f}" for v in values]
            print(f"| {name} | " + " | ".join(cells) +
                  f" | {nov.exact_copies} | {mem.fraction_closer:.2f} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
