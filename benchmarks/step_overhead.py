"""Training-step overhead: a full ``Trainer.train_step`` over the bare network step.

For each length, one network of the preset (``dna``: the 6-block dilated CNN) is trained by
arms that share it, timed in one process with interleaved blocks (the order reverses every
round; the median over blocks of the time per step is reported, warm-up steps excluded):

- ``bare``: forward, flow-matching loss, backward and an AdamW step on one fixed batch whose
  ``x_t``, ``t`` and ``u_t`` were computed beforehand: no data loading, prior, coupling, path,
  gradient clipping, schedule or EMA;
- ``exact``: ``Trainer.train_step`` with the real ``CoupledBatchStream`` and exact minibatch
  OT (the preset's coupling; built inline on a CPU, one step ahead in a worker thread on CUDA);
- ``independent``: the same with the independent coupling.

The ratio ``exact / bare`` of the medians is the issue-7 figure (goal <= 1.15); beside it,
two checks on a noisy machine: the median over rounds of the ratio of the two arms' blocks in
that round (``paired``), and the ratio of the fastest blocks (``min``). Every figure is given
for two clocks: ``wall`` (what a user waits; the only one on CUDA) and, on a CPU, ``cpu``, the
process's CPU time, which leaves out the time it waited for a core while other jobs ran (with
one torch thread the reliable figure on a shared machine; the last lines report it). Also
timed, after the rounds: the CPU coupling alone (one ``CoupledBatchStream.next()`` without
prefetch: prior, cost matrix, assignment) and the path alone (``FlowMatching.path``); with
``--profile N``, the torch.profiler ops of N ``exact`` steps. On CUDA the steps run under bf16
autocast as the trainer's do (``--precision fp32`` turns it off); ``--compile`` compiles the
shared network in place.

Usage (the README figures; 2-core CPU, one thread, other jobs running: 5 minutes each)::

    OMP_NUM_THREADS=1 python benchmarks/step_overhead.py --lengths 200 --rounds 20
    OMP_NUM_THREADS=1 python benchmarks/step_overhead.py --lengths 1024 --rounds 12
    python benchmarks/step_overhead.py --device cuda --compile     # on a GPU
"""

from __future__ import annotations

import argparse
from typing import Any

import torch

from seqflow.config import load_preset
from seqflow.training.batches import CoupledBatchStream

try:
    from benchmarks import _perf
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import _perf  # type: ignore[no-redef]

COUPLINGS = ("exact", "independent")
CLOCKS = ("wall", "cpu")
ADAMW_KEYS = ("lr", "betas", "eps", "weight_decay", "amsgrad", "foreach", "fused")


def bare_step(trainer, model, args):  # type: ignore[no-untyped-def]
    """The network step alone on one precomputed batch of ``trainer``'s stream."""
    device, flow = trainer.device, trainer.task.flow
    batch = trainer.task.stream.next()
    tokens, x_0 = batch.tokens.to(device), batch.x_0.to(device)
    t = torch.rand(tokens.shape[0], device=device)
    target = flow.path(x_0, tokens, t)
    # the trainer's AdamW settings (fused where torch has it, as the trainer chooses), own state
    same = {k: v for k, v in trainer.optimizer.defaults.items() if k in ADAMW_KEYS}
    optimizer = torch.optim.AdamW(model.parameters(), **same)
    autocast = trainer.autocast

    def step() -> None:
        model.train()
        with autocast():
            v = model(target.x_t, target.t)
        loss = flow.loss(v, target.u_t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step, (x_0, tokens, t)


def parts(trainer, inputs, args) -> _perf.Blocks:  # type: ignore[no-untyped-def]
    """The CPU coupling alone (a stream without prefetch) and the path alone."""
    stream = CoupledBatchStream(
        trainer.task.stream.tokens, trainer.task.stream.cond, trainer.task.flow,
        batch_size=args.batch, seed=args.seed + 5, prefetch=False,
    )  # fmt: skip
    x_0, tokens, t = inputs
    arms = {"coupling": stream.next, "path": lambda: trainer.task.flow.path(x_0, tokens, t)}
    return _perf.interleaved(arms, rounds=args.parts_reps, block=1, warmup=1, device=trainer.device)


def profile(trainer, steps: int, rows: int = 20) -> str:  # type: ignore[no-untyped-def]
    """The top ``rows`` torch ops of ``steps`` training steps by self time on the device
    (CUDA kernels on a GPU, CPU ops on a CPU)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if trainer.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(steps):
            trainer.train_step()
        _perf.sync(trainer.device)
    key = "self_cuda_time_total" if trainer.device.type == "cuda" else "self_cpu_time_total"
    return str(prof.key_averages().table(sort_by=key, row_limit=rows))


def measure(length: int, args: argparse.Namespace) -> dict[str, Any]:
    device = _perf.resolve_device(args.device)
    cfg = load_preset(args.preset)
    model = _perf.build(cfg, length, device, geometry=args.geometry, seed=args.seed)
    trainers = {
        c: _perf.make_trainer(model, cfg, coupling=c, batch=args.batch, length=length,
                              device=device, geometry=args.geometry, precision=args.precision,
                              seed=args.seed)
        for c in COUPLINGS
    }  # fmt: skip
    if args.compile:
        model.compile()
    bare, inputs = bare_step(trainers["exact"], model, args)
    arms = {"bare": bare, **{c: tr.train_step for c, tr in trainers.items()}}
    blocks = _perf.interleaved(
        arms, rounds=args.rounds, block=args.block, warmup=args.warmup, device=device
    )
    alone = parts(trainers["exact"], inputs, args)
    row: dict[str, Any] = {"length": length, "batch": args.batch}
    for clock in CLOCKS:
        times = getattr(blocks, clock)
        med = {arm: _perf.median(v) for arm, v in times.items()}
        row[clock] = {
            **{f"{arm}_s": t for arm, t in med.items()},
            **{f"{c}_over_bare": med[c] / med["bare"] for c in COUPLINGS},
            **{f"{c}_over_bare_paired": _perf.paired(times[c], times["bare"]) for c in COUPLINGS},
            **{f"{c}_over_bare_min": min(times[c]) / min(times["bare"]) for c in COUPLINGS},
            **{f"{k}_alone_s": _perf.median(v) for k, v in getattr(alone, clock).items()},
            "blocks": times,
        }
    if args.profile:
        row["profile"] = profile(trainers["exact"], args.profile)
        print(row["profile"])
    for tr in trainers.values():
        tr.task.close()
    return row


HEADERS = ["L", "batch", "clock", "bare ms", "exact ms", "independent ms", "exact / bare",
           "independent / bare", "exact / bare paired, min", "coupling alone ms",
           "path alone ms"]  # fmt: skip


def table_row(r: dict[str, Any], clock: str) -> list[object]:
    c = r[clock]
    ms = [f"{1e3 * c[k]:.1f}" for k in ("bare_s", "exact_s", "independent_s")]
    return [
        r["length"], r["batch"], clock, *ms, f"{c['exact_over_bare']:.3f}",
        f"{c['independent_over_bare']:.3f}",
        f"{c['exact_over_bare_paired']:.3f}, {c['exact_over_bare_min']:.3f}",
        f"{1e3 * c['coupling_alone_s']:.2f}", f"{1e3 * c['path_alone_s']:.2f}",
    ]  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    _perf.add_common_args(p)
    p.add_argument("--lengths", default="200,1024")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--block", type=int, default=1, help="timed steps per arm per round")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per arm first")
    p.add_argument("--precision", default="auto", help="auto/bf16 (bf16 autocast on CUDA), fp32")
    p.add_argument("--parts-reps", type=int, default=10)
    p.add_argument("--profile", type=int, default=0, help="profile this many exact steps")
    args = p.parse_args()
    print(
        f"preset={args.preset} geometry={args.geometry} batch={args.batch} device={args.device} "
        f"compile={args.compile} threads={torch.get_num_threads()} "
        f"rounds={args.rounds}x{args.block} steps per arm, warm-up {args.warmup}"
    )
    rows = [measure(int(length), args) for length in args.lengths.split(",")]
    clocks = CLOCKS if _perf.resolve_device(args.device).type == "cpu" else ("wall",)
    print(_perf.table(HEADERS, [table_row(r, clock) for r in rows for clock in clocks]))
    _perf.dump(args.json, {"benchmark": "step_overhead", "args": vars(args), "rows": rows})
    for r in rows:  # on a shared CPU the CPU-time figure, on CUDA the wall-clock one
        print(f"step_overhead_ratio[L={r['length']}]={r[clocks[-1]]['exact_over_bare']:.3f}")


if __name__ == "__main__":
    main()
