"""Library mode vs N independent samples: are generated libraries each dominated by one motif?

Two cases, both through the public API (``seqflow.api``):

1. **Synthetic libraries from real motifs** (JASPAR 2024 CORE matrices shipped in
   ``tests/data/jaspar_motifs.jaspar``, CC BY 4.0): two classes of libraries, each class with
   its own three motifs; every library carries ONE motif of its class at its own density
   (0.8-1.0). A library-mode run (``mode: library``, label = class) and an ordinary
   class-conditional run (``mode: sequence``, the same label on each sequence) get the same
   step budget. Each then generates libraries per class (library mode: whole libraries; the
   ordinary model: N independent sequences dealt into libraries of the same size). Reported:
   mean motif purity of the libraries (share of the dominant motif among sequences hitting any
   motif; an even mix of 3 motifs gives about 0.45, the real libraries 1.0), and 1-NNA against
   held-out real libraries (OT set distance on 3-mer spectra; 0.5 = indistinguishable).
2. **Real DHS libraries** (``../shared/data/dhs_celltypes.tsv.gz``, DNA-Diffusion's data, not
   shipped): libraries = cell type x chromosome (train split), label = cell type, compared by
   1-NNA with the test-split libraries of the same grouping (``--dhs``).

Usage (the README's figures; 2-core CPU, one thread)::

    python benchmarks/libraries.py --steps 1200 --dhs-steps 300
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import tempfile
import time
from pathlib import Path

import torch

from seqflow import api
from seqflow.data.motifs import motif_purity, read_jaspar, synthetic_libraries
from seqflow.metrics import evaluate_libraries

ROOT = Path(__file__).resolve().parents[1]
MOTIFS = ROOT / "tests" / "data" / "jaspar_motifs.jaspar"
DHS = ROOT.parent / "shared" / "data" / "dhs_celltypes.tsv.gz"
LETTERS = "ACGT"
CLASSES = "X=GATA1,SPI1,FOXA2;Y=HNF4A,CTCF,REST"
"""Default classes: each label and its motifs (JASPAR names)."""


def parse_classes(text: str) -> dict[str, tuple[str, ...]]:
    """``"X=GATA1,SPI1;Y=HNF4A"`` -> ``{"X": ("GATA1", "SPI1"), "Y": ("HNF4A",)}``."""
    out = {}
    for part in text.split(";"):
        label, names = part.split("=")
        out[label.strip()] = tuple(n.strip() for n in names.split(","))
    return out


def decode(tokens: torch.Tensor) -> list[str]:
    return ["".join(LETTERS[i] for i in row.tolist()) for row in tokens]


def synthetic(args: argparse.Namespace, work: Path) -> dict:
    motifs = {m.name: m for m in read_jaspar(MOTIFS)}
    classes = parse_classes(args.classes)
    longest = max(motifs[n].length for names in classes.values() for n in names)
    length = args.length or longest + 4
    g = torch.Generator().manual_seed(args.seed)
    train: dict[str, tuple[str, list[str]]] = {}
    held: dict[str, tuple[str, list[str]]] = {}
    for label, names in classes.items():
        chosen = [motifs[n] for n in names]
        for split, count, out in (("tr", args.libraries, train), ("te", args.held_out, held)):
            libs = synthetic_libraries(chosen, n_libraries=count, size=args.size, length=length,
                                       generator=g)  # fmt: skip
            for i in range(count):
                out[f"{label}_{split}{i}"] = (label, decode(libs.tokens[i]))
    data = work / "libraries.csv"
    with data.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["library", "label", "sequence"])
        for name, (label, seqs) in train.items():
            w.writerows([name, label, s] for s in seqs)
    common = [
        "train.log_every=100",
        "train.eval_every=100000",
        "sample.steps=" + str(args.sample_steps),
    ]
    model = [f"model.hidden={args.hidden}", "model.depth=4"]
    timings = {}
    started = time.perf_counter()
    api.fit(data, out=work / "lib", mode="library", set_col="library", label_col="label",
            steps=args.steps, batch_size=args.library_batch, device="cpu", seed=args.seed,
            overrides=[*common, *model, f"library.size={args.size}"])  # fmt: skip
    timings["library"] = time.perf_counter() - started
    started = time.perf_counter()
    api.fit(data, out=work / "seq", mode="sequence", label_col="label", steps=args.steps,
            batch_size=args.library_batch * args.size, device="cpu", seed=args.seed,
            overrides=[*common, *model, "data.valid_frac=0.02"])  # fmt: skip
    timings["sequence"] = time.perf_counter() - started

    all_motifs = [motifs[n] for names in classes.values() for n in names]
    rows = {}
    for label in classes:
        lib = api.sample_libraries(work / "lib", libraries=args.generate, size=args.size,
                                   label=label, output=work / f"lib_{label}.fasta",
                                   device="cpu", seed=args.seed)  # fmt: skip
        seq = api.sample(
            work / "seq",
            n=args.generate * args.size,
            label=label,
            output=work / f"seq_{label}.fasta",
            device="cpu",
            seed=args.seed,
        )
        dealt = {f"seq_{label}_{i}": list(seq.sequences[i * args.size : (i + 1) * args.size])
                 for i in range(args.generate)}  # fmt: skip
        real = {n: s for n, (lab, s) in held.items() if lab == label}
        shuffled = [s for _, s in real.items() for s in s]
        random.Random(args.seed).shuffle(shuffled)
        mixed = {f"mix_{i}": shuffled[i * args.size : (i + 1) * args.size]
                 for i in range(len(real))}  # fmt: skip
        for name, libs in (("real held-out", real), ("real, reshuffled across libraries", mixed),
                           ("library mode", lib.libraries),
                           ("independent samples (sequence mode)", dealt)):  # fmt: skip
            purity = [motif_purity(torch.tensor([[LETTERS.index(c) for c in s] for s in v]),
                                   all_motifs) for v in libs.values()]  # fmt: skip
            purity = [p for p in purity if p == p]
            # the reshuffled rows hold the held-out sequences themselves: no 1-NNA for them
            compare = name not in ("real held-out", "real, reshuffled across libraries")
            report = evaluate_libraries(libs, real, seed=args.seed) if compare else None
            row = rows.setdefault(name, {"purity": [], "nna": []})
            row["purity"].append(sum(purity) / max(1, len(purity)))
            if report is not None:
                row["nna"].append(report.nna_ot.accuracy)
    print(
        f"\nSynthetic motif libraries: {args.libraries} train / {args.held_out} held-out "
        f"libraries per class, {args.size} sequences of {length} bp, {args.steps} steps each"
    )
    print("| libraries from | mean motif purity | 1-NNA vs held-out (OT) |")
    print("|---|---|---|")
    out = {}
    for name, row in rows.items():
        purity = sum(row["purity"]) / len(row["purity"])
        nna = sum(row["nna"]) / len(row["nna"]) if row["nna"] else None
        out[name] = {"purity": purity, "nna_ot": nna}
        print(f"| {name} | {purity:.3f} | {'-' if nna is None else f'{nna:.3f}'} |")
    print(
        f"training time: library mode {timings['library']:.0f} s, sequence mode "
        f"{timings['sequence']:.0f} s"
    )
    return {"rows": out, "seconds": timings, "args": vars(args)}


def dhs(args: argparse.Namespace, work: Path) -> dict:
    with gzip.open(DHS, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    data = work / "dhs.csv"
    groups: dict[str, list[str]] = {}
    train: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        if r["split"] == "train":
            train.setdefault(f"{r['cell_type']}_{r['chr']}", []).append(r)
        elif r["split"] == "test":
            groups.setdefault(r["cell_type"], []).append(r["sequence"])
    with data.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["library", "cell_type", "sequence"])
        for name, members in train.items():
            if len(members) >= args.size:  # chrY and small contigs are too small a library
                w.writerows([name, r["cell_type"], r["sequence"]] for r in members)
    common = ["train.log_every=100", "train.eval_every=100000", f"sample.steps={args.sample_steps}"]
    api.fit(data, out=work / "dlib", mode="library", set_col="library", label_col="cell_type",
            steps=args.dhs_steps, batch_size=4, device="cpu", seed=args.seed,
            overrides=[*common, f"library.size={args.size}"])  # fmt: skip
    api.fit(data, out=work / "dseq", mode="sequence", label_col="cell_type",
            steps=args.dhs_steps, batch_size=4 * args.size, device="cpu", seed=args.seed,
            overrides=[*common, "data.valid_frac=0.02"])  # fmt: skip
    rng = random.Random(args.seed)
    out = {}
    print(
        f"\nDHS libraries (cell type x chromosome, train split), {args.dhs_steps} steps; "
        f"1-NNA against test-split libraries of {args.size} (chr2) per cell type"
    )
    print("| cell type | library mode 1-NNA | independent samples 1-NNA |")
    print("|---|---|---|")
    for cell, test in sorted(groups.items()):
        rng.shuffle(test)
        real = {
            f"real_{i}": test[i * args.size : (i + 1) * args.size] for i in range(args.generate)
        }
        lib = api.sample_libraries(
            work / "dlib",
            libraries=args.generate,
            size=args.size,
            label=cell,
            output=work / f"dl_{cell}.fasta",
            device="cpu",
        )
        seq = api.sample(
            work / "dseq",
            n=args.generate * args.size,
            label=cell,
            output=work / f"ds_{cell}.fasta",
            device="cpu",
        )
        dealt = {f"s{i}": list(seq.sequences[i * args.size : (i + 1) * args.size])
                 for i in range(args.generate)}  # fmt: skip
        a = evaluate_libraries(lib.libraries, real, seed=args.seed).nna_ot.accuracy
        b = evaluate_libraries(dealt, real, seed=args.seed).nna_ot.accuracy
        out[cell] = {"library": a, "independent": b}
        print(f"| {cell} | {a:.3f} | {b:.3f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--libraries", type=int, default=24, help="train libraries per class")
    ap.add_argument("--held-out", type=int, default=12, help="held-out libraries per class")
    ap.add_argument("--size", type=int, default=32, help="sequences per library")
    ap.add_argument("--classes", default=CLASSES, help="label=motif,motif;label=... (JASPAR names)")
    ap.add_argument("--length", type=int, default=0, help="sequence length (0: longest motif + 4)")
    ap.add_argument("--generate", type=int, default=12, help="generated libraries per class")
    ap.add_argument("--library-batch", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--sample-steps", type=int, default=40)
    ap.add_argument("--dhs-steps", type=int, default=0, help="0 skips the DHS case")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"synthetic": synthetic(args, Path(tmp))}
        if args.dhs_steps:
            result["dhs"] = dhs(args, Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
