"""Make seqflow's example data and tiny test fixtures from the DNA-Diffusion DHS table.

Usage (from the repository root)::

    python examples/make_examples.py ../shared/data/dhs_celltypes.tsv.gz

Writes, with a fixed seed (the output is the same on every run):

- ``examples/dhs_4k.fasta`` and ``examples/dhs_4k.csv``: 4,000 training-split sequences (200 bp,
  ACGT only), 1,000 per cell type, in shuffled order;
- ``tests/data/tiny.fasta`` and ``tests/data/tiny.csv``: 64 of those (16 per cell type) cropped
  to their central 24 bp.

Only the standard library and numpy are used.
"""

from __future__ import annotations

import argparse
import csv
import gzip
from pathlib import Path

import numpy as np

SEED = 20240527
PER_TYPE = 1000
TINY_PER_TYPE = 16
TINY_LENGTH = 24
CELL_TYPES = ("GM12878", "HepG2", "K562", "hESCT0")
ROOT = Path(__file__).resolve().parent.parent


def load_train(source: Path) -> dict[str, list[tuple[str, str]]]:
    """(dhs_id, sequence) pairs of the train split by cell type; non-ACGT sequences dropped."""
    by_type: dict[str, list[tuple[str, str]]] = {t: [] for t in CELL_TYPES}
    with gzip.open(source, "rt", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            seq = row["sequence"].upper()
            if row["split"] == "train" and len(seq) == 200 and set(seq) <= set("ACGT"):
                by_type[row["cell_type"]].append((row["dhs_id"], seq))
    return by_type


def sample(by_type: dict[str, list[tuple[str, str]]], per_type: int, rng: np.random.Generator):
    """``per_type`` records of each cell type without replacement, shuffled together."""
    chosen = []
    for cell_type in CELL_TYPES:
        records = by_type[cell_type]
        for i in sorted(rng.choice(len(records), size=per_type, replace=False)):
            chosen.append((*records[i], cell_type))
    order = rng.permutation(len(chosen))
    return [chosen[i] for i in order]


def write(records: list[tuple[str, str, str]], fasta: Path, table: Path, id_col: str) -> None:
    """Write ``(id, sequence, cell_type)`` records as FASTA and as CSV."""
    with fasta.open("w", newline="\n") as handle:
        for record_id, seq, cell_type in records:
            handle.write(f">{record_id} cell_type={cell_type}\n{seq}\n")
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([id_col, "sequence", "cell_type"])
        writer.writerows(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="path to dhs_celltypes.tsv.gz")
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    examples = sample(load_train(args.source), PER_TYPE, rng)
    write(examples, ROOT / "examples/dhs_4k.fasta", ROOT / "examples/dhs_4k.csv", "dhs_id")
    by_type: dict[str, list[tuple[str, str]]] = {t: [] for t in CELL_TYPES}
    for record_id, seq, cell_type in examples:
        by_type[cell_type].append((record_id, seq))
    start = (200 - TINY_LENGTH) // 2
    tiny = [
        (record_id, seq[start : start + TINY_LENGTH], cell_type)
        for record_id, seq, cell_type in sample(by_type, TINY_PER_TYPE, rng)
    ]
    (ROOT / "tests/data").mkdir(parents=True, exist_ok=True)
    write(tiny, ROOT / "tests/data/tiny.fasta", ROOT / "tests/data/tiny.csv", "id")


if __name__ == "__main__":
    main()
