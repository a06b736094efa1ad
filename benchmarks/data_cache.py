"""The tokenised data cache: time and memory of a first read (tokenise + write the cache) and a
second read (memory-map the cache), on a synthetic FASTA of N random DNA sequences.

Each phase runs in a fresh subprocess, so every peak is its own: ``VmHWM`` (peak resident set,
file-backed pages included) and, at the end of the phase, ``RssAnon`` (anonymous memory: what
cannot be dropped under pressure) and ``RssFile`` (mapped file pages, which the kernel can
drop). ``baseline`` only imports seqflow; its figures are the floor of every other phase.

Phases: ``fresh`` (``read_sequences``, no cache), ``first`` (``read_cached``: read, tokenise,
write the entry, reopen it mapped), ``second`` (``read_cached`` hit), ``epoch`` (a hit, then
minibatches of 256 random rows gathered until every row was used once, as the trainer does),
``dataset`` (``load_dataset`` on a hit with a random 5% validation split: the training rows are
gathered once) and ``dataset-all`` (``valid_frac=0``: the training rows stay mapped).

Usage (the README figures; one thread, a 2-core shared machine)::

    OMP_NUM_THREADS=1 python benchmarks/data_cache.py --n 1000000 --json data_cache.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

PHASES = ("baseline", "fresh", "first", "second", "epoch", "dataset", "dataset-all")
BATCH = 256


def write_fasta(path: Path, n: int, length: int, seed: int) -> None:
    """``n`` uniformly random DNA records of ``length`` bp, ids ``s0``, ``s1``, ..."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    with path.open("wb") as handle:
        for start in range(0, n, 100_000):
            rows = letters[rng.integers(0, 4, (min(100_000, n - start), length))]
            handle.write(
                b"".join(b">s%d\n%s\n" % (start + i, row.tobytes()) for i, row in enumerate(rows))
            )


def memory() -> dict[str, int]:
    """``VmHWM``, ``VmRSS``, ``RssAnon`` and ``RssFile`` of this process, in bytes."""
    fields: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def run_phase(phase: str, path: Path, cache: Path) -> dict[str, Any]:
    """One phase in this process; returns its seconds and memory."""
    import torch

    from seqflow.api._dataset import load_dataset
    from seqflow.config import DataConfig
    from seqflow.data import read_cached, read_sequences

    torch.set_num_threads(1)
    started = time.perf_counter()
    n = 0
    if phase == "fresh":
        n = len(read_sequences(path))
    elif phase in ("first", "second"):
        n = len(read_cached(path, cache=str(cache)))
    elif phase == "epoch":
        table = read_cached(path, cache=str(cache))
        n = len(table)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
        checksum = 0
        for a in range(0, n, BATCH):
            checksum += int(table.tokens[order[a : a + BATCH]].long().sum())
    elif phase in ("dataset", "dataset-all"):
        cfg = DataConfig(cache=str(cache), valid_frac=0.05 if phase == "dataset" else 0.0)
        ds = load_dataset(path, cfg, seed=0)
        n = len(ds.train)
    return {"phase": phase, "seconds": time.perf_counter() - started, "rows": n, **memory()}


def in_subprocess(phase: str, path: Path, cache: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--path", str(path), "--cache-dir",
               str(cache)]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def mb(x: float) -> str:
    return f"{x / 2**20:,.0f} MB"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=1_000_000, help="sequences")
    p.add_argument("--length", type=int, default=200, help="bp per sequence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", default=None, help="work folder (default: a temporary one, removed)")
    p.add_argument("--json", default=None, help="write the figures to this JSON file")
    p.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, Path(args.path), Path(args.cache_dir))))
        return
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="seqflow-cache-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        path, cache = work / "synthetic.fasta", work / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        t = time.perf_counter()
        write_fasta(path, args.n, args.length, args.seed)
        print(f"wrote {path} ({mb(path.stat().st_size)}) in {time.perf_counter() - t:.1f}s",
              flush=True)  # fmt: skip
        rows = []
        for phase in PHASES:
            rows.append(in_subprocess(phase, path, cache))
            print(json.dumps(rows[-1]), flush=True)
        tokens = args.n * args.length
        cached = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
        print(f"\n{args.n:,} x {args.length} bp: tokens {mb(tokens)}, FASTA "
              f"{mb(path.stat().st_size)}, cache entry {mb(cached)}\n")  # fmt: skip
        print("| phase | seconds | peak RSS (VmHWM) | anonymous at end | file pages at end |")
        print("|---|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['phase']} | {r['seconds']:.2f} | {mb(r['VmHWM'])} | "
                  f"{mb(r['RssAnon'])} | {mb(r['RssFile'])} |")  # fmt: skip
        if args.json:
            info = {"n": args.n, "length": args.length, "cache_bytes": cached, "phases": rows}
            Path(args.json).write_text(json.dumps(info, indent=1) + "\n")
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
