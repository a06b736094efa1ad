"""Throughput of the preset: sequences per second for ``fit`` and for ``sample``.

- fit: ``Trainer.train_step`` with the preset's coupling, batch size and network on random
  DNA of length ``--length``: ``steps x batch / seconds`` after ``--warmup`` untimed steps;
- sample: ``generate`` with the preset's sampler settings (``dna``: 100 Euler steps, argmax):
  ``n / seconds`` of one draw of ``--n`` sequences, after an untimed short draw of the same
  shape (which also compiles, with ``--compile``).

On CUDA one row per precision (``fp32``; ``bf16``: the trainer's autocast, and for sampling
the same autocast around ``generate``, which itself samples in fp32) and per mode (``eager``;
``compile`` with ``--compile``); on a CPU ``fp32`` only (the trainer autocasts on CUDA alone).

Usage (the README figures; 2-core CPU, one thread, other jobs running: 3 minutes)::

    OMP_NUM_THREADS=1 python benchmarks/throughput.py --json throughput.json
    python benchmarks/throughput.py --device cuda --compile --n 1024
"""

from __future__ import annotations

import argparse
import time

import torch

from seqflow.config import load_preset
from seqflow.geometry import make_geometry
from seqflow.sampling import generate

try:
    from benchmarks import _perf
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import _perf  # type: ignore[no-redef]


def fit_rate(model, cfg, precision: str, args) -> float:  # type: ignore[no-untyped-def]
    """Training sequences per second."""
    device = next(model.parameters()).device
    batch = args.batch or cfg.train.batch_size
    trainer = _perf.make_trainer(
        model,
        cfg,
        coupling=cfg.flow.coupling,
        batch=batch,
        length=args.length,
        device=device,
        geometry=args.geometry,
        precision=precision,
        seed=args.seed,
    )
    for _ in range(args.warmup):
        trainer.train_step()
    _perf.sync(device)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    _perf.sync(device)
    seconds = time.perf_counter() - t0
    trainer.task.close()
    return args.steps * batch / seconds


def sample_rate(model, cfg, precision: str, args) -> float:  # type: ignore[no-untyped-def]
    """Generated sequences per second."""
    device = next(model.parameters()).device
    s = cfg.sample
    geometry = make_geometry(args.geometry)

    def draw(steps: int) -> None:
        with _perf.bf16(device, precision == "bf16"):
            for _ in generate(
                model,
                n=args.n,
                length=args.length,
                vocab=_perf.VOCAB,
                guidance=s.guidance,
                steps=steps,
                solver=s.solver,
                decoder=s.decode,
                geometry=geometry,
                batch_size=s.batch_size,
                seed=args.seed,
                device=device,
            ):
                pass

    draw(2)
    _perf.sync(device)
    t0 = time.perf_counter()
    draw(s.steps)
    _perf.sync(device)
    return args.n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    _perf.add_common_args(p)
    p.add_argument("--length", type=int, default=200)
    p.add_argument("--batch", type=int, default=0, help="training batch (0: the preset's)")
    p.add_argument("--steps", type=int, default=20, help="timed training steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    p.add_argument("--n", type=int, default=128, help="sequences per timed draw")
    args = p.parse_args()
    device = _perf.resolve_device(args.device)
    cfg = load_preset(args.preset)
    precisions = ("fp32", "bf16") if device.type == "cuda" else ("fp32",)
    modes = ("eager", "compile") if args.compile else ("eager",)
    print(
        f"preset={args.preset} geometry={args.geometry} L={args.length} "
        f"batch={args.batch or cfg.train.batch_size} n={args.n} device={device} "
        f"threads={torch.get_num_threads()}"
    )
    rows = []
    for precision in precisions:
        for mode in modes:
            model = _perf.build(cfg, args.length, device, geometry=args.geometry, seed=args.seed)
            if mode == "compile":
                model.compile()
            fit = fit_rate(model, cfg, precision, args)
            sample = sample_rate(model, cfg, precision, args)
            rows.append({"precision": precision, "mode": mode, "fit_seq_per_s": fit,
                         "sample_seq_per_s": sample})  # fmt: skip
            print(f"{precision} {mode}: fit {fit:.1f} seq/s, sample {sample:.2f} seq/s")
    print(
        _perf.table(
            ["device", "precision", "mode", "fit seq/s", "sample seq/s"],
            [
                [
                    device.type,
                    r["precision"],
                    r["mode"],
                    f"{r['fit_seq_per_s']:.1f}",
                    f"{r['sample_seq_per_s']:.2f}",
                ]
                for r in rows
            ],
        )
    )
    _perf.dump(args.json, {"benchmark": "throughput", "args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
