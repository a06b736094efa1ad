"""Sampling overhead: ``generate`` time over (network evaluations x bare forward time).

For each length, ``n`` sequences are drawn with the library's ``generate`` and the preset's
sampler settings (``SampleConfig`` merged with the preset: for ``dna`` 100 Euler steps on the
sphere, argmax decoding, one chunk of up to 1024 sequences), and compared with the network
alone: one forward pass of the same network on a batch of the same shape ``(n, L, 4)`` in
inference mode. The number of network evaluations (NFE) is counted (calls of ``velocity``) during
an eager warm-up draw. Both are timed in one process, interleaved (a draw, then a block of bare
forwards, the order reversing every round; medians over rounds), so the ratio

    ``sample / (NFE x bare forward)``      (issue 7: goal <= 1.10)

(beside it, ``paired``: the median over rounds of the ratio within a round; both for the
wall clock and, on a CPU, the process's CPU time, which leaves out waiting for a core on a
shared machine: see ``step_overhead.py``) is what the solver, the geometry (tangent
projection, exponential map, orthant projection), the prior and the decoding add to the
network. As the network dominates, the direct ratio carries the machine's noise; the sum of
the parts is steadier: ``without network``, ``generate`` with a stub that returns a fixed
velocity at no cost (prior, solver steps on the sphere, decoding, the copy to the host), gives
``1 + without network / (NFE x forward)``. ``--precision bf16`` runs both under bf16
autocast on CUDA (the library samples in fp32); ``--compile`` compiles the network in place.

Usage (the README figures; 2-core CPU, one thread, other jobs running: 7 minutes)::

    OMP_NUM_THREADS=1 python benchmarks/sample_overhead.py --n 128 --lengths 200 \\
        --json sample_overhead.json
    python benchmarks/sample_overhead.py --n 256 --lengths 200,1024 --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import torch
from torch import nn

from seqflow.config import Config, load_preset
from seqflow.geometry import make_geometry
from seqflow.sampling import generate

try:
    from benchmarks import _perf
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import _perf  # type: ignore[no-redef]

CLOCKS = ("wall", "cpu")


class Stub(nn.Module):
    """A "network" that costs nothing: the same velocity (a tangent-like tensor of the batch's
    shape) at every call, so ``generate`` with it times everything but the network."""

    def __init__(self, v: torch.Tensor) -> None:
        super().__init__()
        self.v = v
        self.anchor = nn.Parameter(torch.zeros((), device=v.device))

    num_labels = 0

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: object = None) -> torch.Tensor:
        return self.v

    def velocity(self, x: torch.Tensor, t: torch.Tensor, *conditions: object) -> torch.Tensor:
        """What the sampler calls (:meth:`VelocityField.velocity`)."""
        return self.v


def measure(length: int, args: argparse.Namespace, cfg: Config | None = None) -> dict[str, Any]:
    """One length's figures; ``cfg`` replaces the preset ``args.preset`` when given."""
    device = _perf.resolve_device(args.device)
    cfg = cfg or load_preset(args.preset)
    s = dataclasses.replace(cfg.sample, **({"steps": args.steps} if args.steps else {}))
    model = _perf.build(cfg, length, device, geometry=args.geometry, seed=args.seed).eval()
    geometry = make_geometry(args.geometry)
    use_bf16 = args.precision == "bf16"

    def draw(net: nn.Module = model) -> None:
        with _perf.bf16(device, use_bf16):
            for _ in generate(
                net, n=args.n, length=length, vocab=_perf.VOCAB, guidance=s.guidance,
                steps=s.steps, solver=s.solver, decoder=s.decode, geometry=geometry,
                batch_size=s.batch_size, seed=args.seed, device=device,
            ):  # fmt: skip
                pass

    g = torch.Generator(device=device).manual_seed(args.seed)
    x = geometry.sample_prior((args.n, length, _perf.VOCAB), generator=g, device=device)
    t = torch.full((args.n,), 0.5, device=device)

    def bare() -> None:
        with torch.inference_mode(), _perf.bf16(device, use_bf16):
            model(x, t)

    calls = [0]
    velocity = model.velocity  # what the sampler calls, counted for one warm-up draw (eager)

    def counted(*inputs: Any) -> torch.Tensor:
        calls[0] += 1
        return velocity(*inputs)

    model.velocity = counted  # type: ignore[method-assign]
    draw()
    del model.velocity
    nfe = calls[0]
    if args.compile:
        model.compile()
        draw()
    bare()

    def bare_block() -> None:
        for _ in range(args.bare_block):
            bare()

    with torch.inference_mode():
        stub = Stub(0.1 * model(x, t))
    draw(stub)
    arms = {"sample": draw, "bare": bare_block, "without network": lambda: draw(stub)}
    blocks = _perf.interleaved(arms, rounds=args.rounds, block=1, warmup=0, device=device)
    row: dict[str, Any] = {"length": length, "n": args.n, "steps": s.steps, "solver": s.solver,
                           "decode": s.decode, "nfe": nfe}  # fmt: skip
    for clock in CLOCKS:
        times = getattr(blocks, clock)
        per_forward = [b / args.bare_block for b in times["bare"]]
        sample_s, bare_s = _perf.median(times["sample"]), _perf.median(per_forward)
        row[clock] = {
            "sample_s": sample_s,
            "bare_forward_s": bare_s,
            "ratio": sample_s / (nfe * bare_s),
            "ratio_paired": _perf.paired(times["sample"], [nfe * b for b in per_forward]),
            "without_network_s": _perf.median(times["without network"]),
            "ratio_parts": 1.0 + _perf.median(times["without network"]) / (nfe * bare_s),
            "blocks": times,
        }
    return row


HEADERS = ["L", "n", "solver x steps", "NFE", "clock", "sample s", "bare forward ms",
           "NFE x forward s", "sample / (NFE x forward)", "paired", "without network s",
           "1 + without network / (NFE x forward)"]  # fmt: skip


def table_row(r: dict[str, Any], clock: str) -> list[object]:
    c = r[clock]
    return [
        r["length"], r["n"], f"{r['solver']} x {r['steps']}", r["nfe"], clock,
        f"{c['sample_s']:.2f}", f"{1e3 * c['bare_forward_s']:.1f}",
        f"{r['nfe'] * c['bare_forward_s']:.2f}", f"{c['ratio']:.3f}", f"{c['ratio_paired']:.3f}",
        f"{c['without_network_s']:.3f}", f"{c['ratio_parts']:.4f}",
    ]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    _perf.add_common_args(p)
    p.add_argument("--n", type=int, default=128, help="sequences per draw")
    p.add_argument("--lengths", default="200", help="comma list, e.g. 200,1024")
    p.add_argument("--steps", type=int, default=0, help="solver steps (0: the preset's)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--bare-block", type=int, default=10, help="bare forwards per round")
    p.add_argument("--precision", default="fp32", help="fp32, or bf16 (autocast on CUDA)")
    args = p.parse_args()
    print(
        f"preset={args.preset} geometry={args.geometry} n={args.n} device={args.device} "
        f"compile={args.compile} precision={args.precision} threads={torch.get_num_threads()} "
        f"rounds={args.rounds}"
    )
    rows = [measure(int(length), args) for length in args.lengths.split(",")]
    clocks = CLOCKS if _perf.resolve_device(args.device).type == "cpu" else ("wall",)
    print(_perf.table(HEADERS, [table_row(r, clock) for r in rows for clock in clocks]))
    _perf.dump(args.json, {"benchmark": "sample_overhead", "args": vars(args), "rows": rows})
    for r in rows:  # on a shared CPU the CPU-time figure, on CUDA the wall-clock one
        print(f"sample_overhead_ratio[L={r['length']}]={r[clocks[-1]]['ratio']:.3f}")


if __name__ == "__main__":
    main()
