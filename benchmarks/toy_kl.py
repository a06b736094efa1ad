"""Simplex-dimension toy of Dirichlet FM (Stark et al. 2024; Davis et al. 2024): KL vs K.

Length-4 sequences, each position an independent categorical ``softmax(U(0, 1))`` over K
letters. For every K and coupling (``exact`` minibatch OT or ``independent``) the toy model of
``_toy.py`` is trained with the library's :class:`Trainer` on ``--n-train`` sequences drawn from
the target, then ``--samples`` sequences are generated with :func:`seqflow.sampling.generate`
(EMA weights, Euler, argmax decoding). Reported per run:

- ``kl``: KL(target || empirical letter frequencies) per position, averaged over positions
  (a letter never generated is counted at frequency 0.5/N and listed in ``unseen``);
- ``kl_rev``: KL(empirical || target), the direction of Stark et al.'s code;
- ``floor``: (K-1)/(2N), the expected KL of N exact samples from the target (estimator floor);
- ``kl_uniform``: KL(target || uniform), what a model that ignores the data scores (about
  Var(U(0, 1))/2 = 0.042 for large K: the target is close to uniform).

Usage::

    python benchmarks/toy_kl.py --ks 5,10,20,40,80,160 --steps 600 --samples 512000 \\
        --couplings exact,independent --out toy_kl.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqflow.geometry import make_geometry
from seqflow.sampling import generate

try:
    from benchmarks import _toy
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import _toy  # type: ignore[no-redef]


def kl_per_position(target: torch.Tensor, tokens: torch.Tensor) -> tuple[float, float, int]:
    """(KL(target || emp), KL(emp || target), unseen letters), averaged over positions."""
    n, length = tokens.shape
    k = target.shape[1]
    counts = torch.stack([torch.bincount(tokens[:, i], minlength=k) for i in range(length)])
    emp = counts.double() / n
    unseen = int((counts == 0).sum())
    q = emp.clamp_min(0.5 / n)
    kl = (target * (target.log() - q.log())).sum(dim=1).mean()
    nz = emp > 0
    rev = torch.where(nz, emp * (emp.clamp_min(1e-300).log() - target.log()), 0.0)
    return float(kl), float(rev.sum(dim=1).mean()), unseen


def run_one(
    k: int,
    coupling: str,
    args: argparse.Namespace,
    geometry: str = "fisher",
    target: str = "velocity",
) -> dict[str, object]:
    trainer = _toy.make_trainer(
        k, coupling, steps=args.steps, seed=args.seed, n_train=args.n_train, batch=args.batch,
        geometry=geometry, target=target,
    )  # fmt: skip
    t0 = time.perf_counter()
    last = trainer.run()
    train_s = time.perf_counter() - t0
    trainer.ema.copy_to(trainer.ema_model)
    t1 = time.perf_counter()
    chunks = generate(
        trainer.ema_model,
        n=args.samples,
        length=_toy.LENGTH,
        vocab=k,
        steps=args.sample_steps,
        solver="euler",
        decoder="argmax",
        batch_size=args.sample_batch,
        seed=args.seed + 3,
        geometry=make_geometry(geometry),
        target=target,
    )
    tokens = torch.cat(list(chunks))
    sample_s = time.perf_counter() - t1
    probs = _toy.target_probs(k, args.seed)
    kl, kl_rev, unseen = kl_per_position(probs, tokens)
    kl_uniform = float((probs * (probs * k).log()).sum(dim=1).mean())
    return {
        "K": k,
        "coupling": coupling,
        "geometry": geometry,
        "target": target,
        "kl": kl,
        "kl_rev": kl_rev,
        "floor": (k - 1) / (2 * args.samples),
        "kl_uniform": kl_uniform,
        "unseen": unseen,
        "final_loss": float(last.loss),
        "train_steps": args.steps,
        "samples": args.samples,
        "sample_steps": args.sample_steps,
        "train_seconds": round(train_s, 1),
        "sample_seconds": round(sample_s, 1),
        "seconds": round(train_s + sample_s, 1),
    }


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| K | coupling | target | KL(target‖emp) | KL(emp‖target) | floor (K-1)/2N | KL/floor "
        "| KL(target‖uniform) | train steps | final loss | seconds (train+sample) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['K']} | {r['coupling']} | {r.get('target', 'velocity')} "
            f"| {r['kl']:.2e} | {r['kl_rev']:.2e} "
            f"| {r['floor']:.2e} | {float(r['kl']) / float(r['floor']):.1f} "  # type: ignore[arg-type]
            f"| {r['kl_uniform']:.2e} | {r['train_steps']} | {r['final_loss']:.3f} "
            f"| {r['seconds']} ({r['train_seconds']}+{r['sample_seconds']}) |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--ks", default="5,10,20,40,80,160", help="alphabet sizes, comma-separated")
    p.add_argument("--couplings", default="exact,independent")
    p.add_argument("--steps", type=int, default=600, help="training steps per run")
    p.add_argument("--batch", type=int, default=_toy.BATCH)
    p.add_argument("--n-train", type=int, default=200_000, help="training sequences drawn")
    p.add_argument("--samples", type=int, default=512_000, help="generated sequences per run")
    p.add_argument("--sample-steps", type=int, default=50, help="Euler steps")
    p.add_argument("--sample-batch", type=int, default=16384)
    p.add_argument("--targets", default="velocity", help="flow.target values, comma-separated")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="toy_kl.json")
    args = p.parse_args()
    torch.set_grad_enabled(True)
    ks = [int(x) for x in args.ks.split(",")]
    couplings = args.couplings.split(",")
    rows: list[dict[str, object]] = []
    meta = {"args": vars(args), "threads": torch.get_num_threads(), "torch": torch.__version__}
    start = time.perf_counter()
    for k in ks:
        for coupling, target in [(c, t) for c in couplings for t in args.targets.split(",")]:
            row = run_one(k, coupling, args, target=target)
            rows.append(row)
            print(json.dumps(row), flush=True)
            meta["elapsed_seconds"] = round(time.perf_counter() - start, 1)
            Path(args.out).write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
