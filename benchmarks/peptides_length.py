"""Variable-length proteins: antimicrobial peptides, conditioned on class.

Data: ``../shared/data/amp_peptides.csv`` (5,200 peptides of 7-183 residues, 2,600
antimicrobial and 2,600 UniProt background; modlAMP's ``AMPvsUniProt.csv``, BSD-3). Its first
line holds counts, not column names, so the script rewrites it as ``sequence,label``
(``amp``/``background``). The model is fitted with an end/pad category and ``--max-length``
(longer peptides cropped, counted), then samples are drawn per class and compared with the
data of that class:

- length distribution: total variation and Wasserstein-1 (in residues) between generated and
  real lengths, beside the same distances between two halves of the real data (the noise floor);
- no end/pad letter inside a generated sequence (checked: every letter is an amino acid);
- amino-acid composition: Jensen-Shannon distance of 1-mer and 2-mer spectra.

Usage (README figures; 2-core CPU)::

    python benchmarks/peptides_length.py --steps 2000 --samples 1000 --max-length 64
"""

from __future__ import annotations

import argparse
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
DATA = ROOT.parent / "shared" / "data" / "amp_peptides.csv"
AMINO = set("ACDEFGHIKLMNPQRSTVWY")


def read_peptides(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text().splitlines()[1:]:
        seq, cls = (x.strip() for x in line.split(","))
        rows.append((seq, "amp" if cls == "1" else "background"))
    return rows


def length_distances(a: list[int], b: list[int], max_len: int) -> tuple[float, float]:
    """(total variation, Wasserstein-1) between two length samples."""
    ha = np.bincount(a, minlength=max_len + 1) / len(a)
    hb = np.bincount(b, minlength=max_len + 1) / len(b)
    tv = 0.5 * np.abs(ha - hb).sum()
    w1 = np.abs(np.cumsum(ha) - np.cumsum(hb)).sum()
    return float(tv), float(w1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--preset", default="protein")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=1000, help="per class")
    ap.add_argument("--sample-steps", type=int, default=50)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    rows = read_peptides(Path(args.data))
    results: dict[str, object] = {"args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "peptides.csv"
        data.write_text("sequence,label\n" + "".join(f"{s},{c}\n" for s, c in rows))
        t0 = time.perf_counter()
        fit = api.fit(data, preset=args.preset, steps=args.steps, label_col="label",
                      max_length=args.max_length, crop=True, out=Path(tmp) / "run",
                      seed=args.seed)  # fmt: skip
        results["fit_seconds"] = time.perf_counter() - t0
        print(f"fit: {args.steps} steps in {results['fit_seconds']:.0f} s, "
              f"valid loss {fit.valid_loss:.4g}")  # fmt: skip
        print(
            "| class | n real | length TV | length W1 (aa) | real-vs-real TV / W1 "
            "| mean length real / gen | JS 1-mer | JS 2-mer | non-amino letters |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        rng = np.random.default_rng(args.seed)
        for i, cls in enumerate(("amp", "background")):
            real = [s[: args.max_length] for s, c in rows if c == cls]
            gen = list(api.sample(Path(tmp) / "run", n=args.samples, label=cls,
                                  steps=args.sample_steps, seed=args.seed + i, device="cpu",
                                  output=Path(tmp) / "s.fa").sequences)  # fmt: skip
            real_len, gen_len = [len(s) for s in real], [len(s) for s in gen]
            tv, w1 = length_distances(real_len, gen_len, args.max_length)
            perm = rng.permutation(len(real_len))
            half = len(perm) // 2
            tv0, w10 = length_distances(
                [real_len[j] for j in perm[:half]],
                [real_len[j] for j in perm[half:]],
                args.max_length,
            )
            bad = sum(1 for s in gen for ch in s if ch not in AMINO)
            js1 = js_distance(kmer_counts(gen, 1), kmer_counts(real, 1))
            js2 = js_distance(kmer_counts(gen, 2), kmer_counts(real, 2))
            results[cls] = {"tv": tv, "w1": w1, "tv_real_halves": tv0, "w1_real_halves": w10,
                            "mean_len_real": float(np.mean(real_len)),
                            "mean_len_gen": float(np.mean(gen_len)), "js1": js1, "js2": js2,
                            "non_amino_letters": bad}  # fmt: skip
            print(f"| {cls} | {len(real)} | {tv:.3f} | {w1:.2f} | {tv0:.3f} / {w10:.2f} "
                  f"| {np.mean(real_len):.1f} / {np.mean(gen_len):.1f} | {js1:.3f} "
                  f"| {js2:.3f} | {bad} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
