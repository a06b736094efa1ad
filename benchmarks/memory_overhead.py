"""Memory overhead of exact minibatch OT: peak memory of training steps, exact vs independent.

Each coupling runs in a fresh subprocess (so one variant's allocations cannot hide in the
other's peak): it builds the preset's network and a ``Trainer`` (batch 512, length 1024 by
default) and takes ``--steps`` training steps (the first allocates AdamW's state, so the peak
of a steady step is reached by the second). Reported per coupling:

- CUDA: ``torch.cuda.max_memory_allocated`` over the steps (peak statistics reset after
  setup), and the memory allocated before the first step (model, EMA, data);
- CPU: the process's peak resident set (``VmHWM`` of ``/proc/self/status``; tracemalloc does
  not see torch's allocations) after the steps, and the resident set just before the first
  step; their difference is what the steps added.

The ratio exact / independent of the peaks (and of the step increments) is the issue-7 figure.

Usage (the README figures; 2-core CPU, one thread, other jobs running: 9 minutes)::

    OMP_NUM_THREADS=1 python benchmarks/memory_overhead.py --steps 3 --json memory_overhead.json
    python benchmarks/memory_overhead.py --device cuda --steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import torch

from seqflow.config import load_preset

try:
    from benchmarks import _perf
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import _perf  # type: ignore[no-redef]

COUPLINGS = ("exact", "independent")
MIB = 2**20


def status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One coupling's steps in this (fresh) process; the figures in bytes."""
    device = _perf.resolve_device(args.device)
    cfg = load_preset(args.preset)
    model = _perf.build(cfg, args.length, device, geometry=args.geometry, seed=args.seed)
    trainer = _perf.make_trainer(
        model, cfg, coupling=args.child, batch=args.batch, length=args.length, device=device,
        geometry=args.geometry, precision=args.precision, seed=args.seed,
    )  # fmt: skip
    if args.compile:
        model.compile()
    out: dict[str, Any] = {"coupling": args.child}
    if device.type == "cuda":
        torch.cuda.synchronize()
        out["before_bytes"] = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        out["before_bytes"] = status_bytes("VmRSS")
        out["setup_peak_bytes"] = status_bytes("VmHWM")
    t0 = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    _perf.sync(device)
    out["step_s"] = (time.perf_counter() - t0) / args.steps
    if device.type == "cuda":
        out["peak_bytes"] = torch.cuda.max_memory_allocated()
    else:
        out["peak_bytes"] = status_bytes("VmHWM")
    trainer.task.close()
    return out


def run_variant(coupling: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`child` for ``coupling`` in a fresh interpreter and read its JSON line."""
    keys = ("device", "preset", "geometry", "seed", "length", "batch", "steps", "precision")
    opts = {"--child": coupling, **{f"--{k}": getattr(args, k) for k in keys}}
    argv = [sys.executable, os.path.abspath(__file__), *(str(x) for kv in opts.items() for x in kv)]
    argv += ["--compile"] if args.compile else []
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    _perf.add_common_args(p)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--precision", default="auto", help="auto/bf16 (bf16 autocast on CUDA), fp32")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    what = "max_memory_allocated" if _perf.resolve_device(args.device).type == "cuda" else "RSS"
    print(
        f"preset={args.preset} geometry={args.geometry} L={args.length} batch={args.batch} "
        f"device={args.device} steps={args.steps} measure={what} "
        f"threads={torch.get_num_threads()}"
    )
    rows = {c: run_variant(c, args) for c in COUPLINGS}
    for r in rows.values():
        r["increment_bytes"] = r["peak_bytes"] - r["before_bytes"]
    ex, ind = rows["exact"], rows["independent"]
    ratio = ex["peak_bytes"] / ind["peak_bytes"]
    ratio_inc = ex["increment_bytes"] / ind["increment_bytes"]
    headers = ["coupling", f"before steps MiB ({what})", f"peak MiB ({what})",
               "added by the steps MiB", "step s"]  # fmt: skip
    body: list[list[object]] = [
        [c, *(f"{r[k] / MIB:.0f}" for k in ("before_bytes", "peak_bytes", "increment_bytes")),
         f"{r['step_s']:.1f}"]
        for c, r in rows.items()
    ]  # fmt: skip
    body.append(["exact / independent", "", f"{ratio:.4f}", f"{ratio_inc:.4f}", ""])
    print(_perf.table(headers, body))
    _perf.dump(args.json, {"benchmark": "memory_overhead", "args": vars(args), "rows": rows,
                           "peak_ratio": ratio, "increment_ratio": ratio_inc})  # fmt: skip
    print(f"memory_overhead_ratio={ratio:.4f}")


if __name__ == "__main__":
    main()
