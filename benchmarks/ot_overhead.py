"""Cost of exact minibatch OT in a training step: median step time, exact over independent.

Batch 512, length 4, K=160 (the toy of ``_toy.py``). For each model, three trainers that differ
only in the coupling are timed in one process with interleaved rounds (to cancel the drift of a
shared machine): independent coupling, exact OT built inline (the CPU default), and exact OT
prepared one step ahead in the stream's worker thread (the CUDA default). Models:

- ``preset``: the network ``seqflow fit`` builds for a 160-letter alphabet (the ``protein``
  preset's transformer) — the ratio a user sees;
- ``toy``: the 65k-parameter CNN of ``_toy.py``, so small that a fixed coupling cost weighs most.

Also timed: the coupling alone (prior, cost matrix, assignment).

Usage::

    python benchmarks/ot_overhead.py        # last line: ot_overhead_ratio=R (first model)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from seqflow.config import load_preset
from seqflow.flow import ExactOTCoupling

try:
    from benchmarks import _toy
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import _toy  # type: ignore[no-redef]

ARMS = {"independent": ("independent", False), "exact": ("exact", False),
        "exact+prefetch": ("exact", True)}  # fmt: skip


def timed_steps(trainer, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t = time.perf_counter()
        trainer.train_step()
        out.append(time.perf_counter() - t)
    return out


def ms(x: float) -> str:
    return f"{1e3 * x:8.2f} ms"


def measure(model, args) -> dict[str, float]:  # type: ignore[no-untyped-def]
    total = args.warmup + args.rounds * args.steps + 10
    trainers = {
        arm: _toy.make_trainer(args.k, coupling, steps=10 * total, seed=args.seed,
                               n_train=50_000, batch=args.batch, model=model, prefetch=prefetch)
        for arm, (coupling, prefetch) in ARMS.items()
    }  # fmt: skip
    for tr in trainers.values():
        timed_steps(tr, args.warmup)
    times: dict[str, list[float]] = {arm: [] for arm in trainers}
    order = list(trainers)
    for r in range(args.rounds):
        for arm in order if r % 2 == 0 else order[::-1]:
            times[arm] += timed_steps(trainers[arm], args.steps)
    for tr in trainers.values():
        tr.stream.close()
    return {arm: statistics.median(v) for arm, v in times.items()}


def coupling_alone(args) -> dict[str, float]:  # type: ignore[no-untyped-def]
    trainer = _toy.make_trainer(args.k, "exact", steps=10, seed=args.seed, n_train=args.batch,
                                batch=args.batch)  # fmt: skip
    flow, tokens = trainer.task.flow, trainer.task.stream.tokens[: args.batch]
    g = torch.Generator().manual_seed(1)
    ot = ExactOTCoupling()
    parts: dict[str, list[float]] = {"prior": [], "cost matrix": [], "assignment": []}
    for _ in range(args.steps):
        t0 = time.perf_counter()
        x_0 = flow.prior(tuple(tokens.shape), generator=g, device=tokens.device)
        t1 = time.perf_counter()
        cost = flow.geometry.cost_onehot(x_0, tokens)
        t2 = time.perf_counter()
        ot.permutation(cost, args.batch, g)
        t3 = time.perf_counter()
        parts["prior"].append(t1 - t0)
        parts["cost matrix"].append(t2 - t1)
        parts["assignment"].append(t3 - t2)
    trainer.task.close()
    return {k: statistics.median(v) for k, v in parts.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--k", type=int, default=160)
    p.add_argument("--batch", type=int, default=_toy.BATCH)
    p.add_argument("--models", default="preset,toy", help="comma list of preset, toy")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=10, help="timed steps per arm per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    models = {"preset": load_preset("protein").model, "toy": _toy.MODEL}
    print(
        f"K={args.k} L={_toy.LENGTH} batch={args.batch} torch threads="
        f"{torch.get_num_threads()} rounds={args.rounds}x{args.steps} steps per arm"
    )
    for part, t in coupling_alone(args).items():
        print(f"coupling alone: {part:<12} {ms(t)}")
    ratios = {}
    for name in args.models.split(","):
        med = measure(models[name], args)
        ratios[name] = med["exact"] / med["independent"]
        print(
            f"model {name}: "
            + ", ".join(f"{arm} {ms(t).strip()}" for arm, t in med.items())
            + f"; exact/independent {ratios[name]:.3f}, "
            f"exact+prefetch/independent {med['exact+prefetch'] / med['independent']:.3f}"
        )
    print(f"ot_overhead_ratio={next(iter(ratios.values())):.3f}")


if __name__ == "__main__":
    main()
