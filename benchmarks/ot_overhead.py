"""Cost of exact minibatch OT in a training step: median step time, exact over independent.

The toy model of ``_toy.py`` (length 4, K=160, batch 512) is trained with two
:class:`~seqflow.training.Trainer` objects that differ only in the coupling. Timed steps call
``trainer.train_step()`` directly, so the coupled batch of the next step is prepared by the
trainer's :class:`~seqflow.training.batches.CoupledBatchStream` worker thread while the network
trains on the current one. Rounds alternate the couplings (and which goes first) to cancel slow
drifts of a shared machine. Also timed, in the same process: the coupling alone (cost matrix
``sq_dist_matrix_onehot`` + ``linear_sum_assignment``), the whole ``flow.couple`` call, and the
exact-OT step with the prefetch thread turned off (coupling on the critical path).

Usage::

    python benchmarks/ot_overhead.py            # last line: ot_overhead_ratio=R
    python benchmarks/ot_overhead.py --threads 1   # leave a core free for the coupling thread
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from seqflow.flow import ExactOTCoupling
from seqflow.training.batches import CoupledBatchStream

try:
    from benchmarks import _toy
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import _toy  # type: ignore[no-redef]


def timed_steps(trainer, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t = time.perf_counter()
        trainer.train_step()
        out.append(time.perf_counter() - t)
    return out


def ms(x: float) -> str:
    return f"{1e3 * x:8.2f} ms"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--k", type=int, default=160)
    p.add_argument("--batch", type=int, default=_toy.BATCH)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=30, help="timed steps per coupling per round")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)"
    )
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    total = args.warmup + args.rounds * args.steps + 10
    trainers = {
        c: _toy.make_trainer(
            args.k, c, steps=10 * total, seed=args.seed, n_train=50_000, batch=args.batch
        )
        for c in ("exact", "independent")
    }
    for tr in trainers.values():
        timed_steps(tr, args.warmup)
    times: dict[str, list[float]] = {c: [] for c in trainers}
    order = list(trainers)
    for r in range(args.rounds):
        for c in order if r % 2 == 0 else order[::-1]:
            times[c] += timed_steps(trainers[c], args.steps)

    # The coupling alone, on a batch like the stream's (same thread as the caller).
    flow = trainers["exact"].flow
    tokens = trainers["exact"].stream.tokens[: args.batch]
    g = torch.Generator().manual_seed(1)
    ot = ExactOTCoupling()
    cost_t, lsa_t, couple_exact, couple_indep = [], [], [], []
    indep_flow = trainers["independent"].flow
    for _ in range(args.steps):
        t0 = time.perf_counter()
        x_0 = flow.prior(tuple(tokens.shape), generator=g, device=tokens.device)
        t1 = time.perf_counter()
        cost = flow.manifold.sq_dist_matrix_onehot(x_0, tokens)
        t2 = time.perf_counter()
        ot.permutation(cost, args.batch, g)
        t3 = time.perf_counter()
        flow.couple(tokens, generator=g)
        t4 = time.perf_counter()
        indep_flow.couple(tokens, generator=g)
        t5 = time.perf_counter()
        cost_t.append(t2 - t1)
        lsa_t.append(t3 - t2)
        couple_exact.append(t4 - t3)
        couple_indep.append(t5 - t4)
        del t0

    # The exact step with the coupling on the critical path (no prefetch thread).
    ex = trainers["exact"]
    ex.stream.close()
    state = ex.stream.state_dict()
    ex.stream = CoupledBatchStream(
        ex.stream.tokens, None, ex.flow, batch_size=args.batch, seed=args.seed + 1, prefetch=False
    )
    ex.stream.load_state_dict(state)
    sync = timed_steps(ex, args.steps)
    trainers["independent"].stream.close()

    med = {c: statistics.median(v) for c, v in times.items()}
    ratio = med["exact"] / med["independent"]
    print(
        f"K={args.k} L={_toy.LENGTH} batch={args.batch} threads={torch.get_num_threads()} "
        f"rounds={args.rounds}x{args.steps} steps per coupling"
    )
    print(f"median step, independent coupling      {ms(med['independent'])}")
    print(f"median step, exact OT (prefetched)     {ms(med['exact'])}")
    print(f"median step, exact OT (no prefetch)    {ms(statistics.median(sync))}")
    print(f"coupling alone: cost matrix            {ms(statistics.median(cost_t))}")
    print(f"coupling alone: linear_sum_assignment  {ms(statistics.median(lsa_t))}")
    print(f"flow.couple, exact (prior+cost+LSA)    {ms(statistics.median(couple_exact))}")
    print(f"flow.couple, independent (prior only)  {ms(statistics.median(couple_indep))}")
    print(
        "coupling / independent step            "
        f"{statistics.median(couple_exact) / med['independent']:8.3f}"
    )
    print(f"ot_overhead_ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
