"""Sample quality per CPU-minute on real DNA (issue 17), judged against real held-out sequences.

Data: ``../shared/data/dhs_celltypes.tsv.gz`` (200 bp DHS sequences of 4 cell types, split by
chromosome). Each candidate is trained on ``--train-per-label`` training sequences per cell
type (conditioned on ``cell_type``) for a fixed budget of CPU time of one thread (the step
count is fitted to the budget from the cost of the first steps, measured with the process's
CPU clock, so other load on the machine does not shrink a budget), then ``--n`` sequences are
generated per cell type and scored by :mod:`_judge` against the chr2 ``test`` sequences:

- the test rows of each cell type are split in two halves; half A is the reference (6-mer JS
  against all of it; the discriminators' real class is ``--n`` of it per label);
- ``real-control``: ``--n`` per label from half B, scored like a generator (what "as good as
  real" looks like at this N);
- ``markov4``: an order-4 Markov chain per cell type fitted on the same training subset.

A candidate is a target (``velocity``: the ``dna`` preset's regression; ``denoiser``: the
cross-entropy posterior on the sphere, ``flow.target: denoiser``) plus overrides
of the preset; a sampler is ``solver:steps:decode`` with decode ``x`` (argmax of the end point,
the library's decoder), ``argmax`` or ``sample`` (from the denoiser's last posterior). Trained
models are kept in ``--run-dir`` so more samplers can be scored without retraining.

Usage (one thread, niced; the findings file gives the commands of every table)::

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/quality_budget.py --baselines \\
        --candidates velocity,denoiser --budget-min 6 --n 300 --json results.json
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gzip
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqflow.config import Config, load_preset
from seqflow.flow import FlowMatching, make_coupling
from seqflow.geometry import PositiveSphere
from seqflow.models import Condition, VelocityField, build_model
from seqflow.sampling import generate as generate_tokens
from seqflow.training import SequenceTask, Trainer, TrainingSet

try:
    from benchmarks._judge import Judge, markov_sample
except ImportError:  # run as a script: benchmarks/ is on sys.path
    from _judge import Judge, markov_sample  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
DATA = next(
    (
        p / "shared" / "data" / "dhs_celltypes.tsv.gz"
        for p in (ROOT.parent, ROOT.parents[1])
        if (p / "shared" / "data" / "dhs_celltypes.tsv.gz").exists()
    ),
    ROOT.parent / "shared" / "data" / "dhs_celltypes.tsv.gz",
)  # ../shared from a checkout, ../../shared from a worktree under wt/
LENGTH, VOCAB = 200, 4
S = PositiveSphere()

FP32_UNIFORM = {"flow": {"t_early": 0.5}, "train": {"precision": "fp32"}}
"""What every candidate before session 8 ran with: uniform training times, fp32 (the preset's
``auto`` meant fp32 on a CPU then; on a CPU with AMX it now means bf16)."""


def _pinned(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` over :data:`FP32_UNIFORM` (its own flow/train keys win)."""
    out = dict(spec)
    for section, keys in FP32_UNIFORM.items():
        out[section] = {**keys, **spec.get(section, {})}
    return out


CANDIDATES: dict[str, dict[str, Any]] = {
    "dna-preset": {"target": "denoiser"},  # the dna preset as it is now
    **{name: _pinned(spec) for name, spec in {
        "velocity": {"target": "velocity"},  # the dna preset before issue 17
        "denoiser": {"target": "denoiser"},
        "denoiser-indep": {"target": "denoiser", "flow": {"coupling": "independent"}},
        "denoiser-h128": {"target": "denoiser", "model": {"hidden": 128}},
        "denoiser-h96d8": {"target": "denoiser", "model": {"hidden": 96, "depth": 8}},
        "denoiser-b128": {"target": "denoiser", "train": {"batch_size": 128}},
        "denoiser-lr4e-3": {"target": "denoiser", "train": {"lr": 4e-3}},
        "denoiser-lr1e-3": {"target": "denoiser", "train": {"lr": 1e-3}},
        "velocity-h128": {"target": "velocity", "model": {"hidden": 128}},
        "denoiser-label1": {"target": "denoiser", "label_std": 1.0},
        "velocity-label1": {"target": "velocity", "label_std": 1.0},
        "denoiser-label1-condmlp": {"target": "denoiser", "label_std": 1.0, "cond_mlp": True},
        "denoiser-label1-lr4e-3": {
            "target": "denoiser", "label_std": 1.0, "train": {"lr": 4e-3},
        },
        "denoiser-label1-h96d8": {
            "target": "denoiser", "label_std": 1.0, "model": {"hidden": 96, "depth": 8},
        },
        "denoiser-pool": {"target": "denoiser", "pool": True},
        "denoiser-selfcond": {"target": "denoiser", "selfcond": True},
        "denoiser-tfocus": {"target": "denoiser", "flow": {"t_early": 0.8}},
        "denoiser-h48": {"target": "denoiser", "model": {"hidden": 48}},
        "denoiser-fp32": {"target": "denoiser"},
        "denoiser-bf16": {"target": "denoiser", "train": {"precision": "bf16"}},
        "denoiser-bf16-tfocus": {
            "target": "denoiser", "train": {"precision": "bf16"}, "flow": {"t_early": 0.8},
        },
        "denoiser-bf16-t0.9": {
            "target": "denoiser", "train": {"precision": "bf16"}, "flow": {"t_early": 0.9},
        },
    }.items()},
}  # fmt: skip


class PooledBlock(torch.nn.Module):
    """Prototype: a residual block whose FiLM also reads the sequence's mean features, so each
    block sees a global summary (GC richness, which motifs are forming)."""

    def __init__(self, block: torch.nn.Module, hidden: int) -> None:
        super().__init__()
        self.block = block
        self.pool = torch.nn.Linear(hidden, 2 * hidden)
        torch.nn.init.zeros_(self.pool.weight)
        torch.nn.init.zeros_(self.pool.bias)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        b = self.block
        n = b.norm(h)
        scale, shift = (b.film(c) + self.pool(n.mean(-1)))[:, :, None].chunk(2, dim=1)
        z = b.conv(n) * (1 + scale) + shift
        return h + b.out(torch.nn.functional.gelu(z))


class SelfCond(torch.nn.Module):
    """Prototype self-conditioning (Chen et al. 2022): the backbone also reads a posterior
    estimate ``p`` (extra channels). Training: half the batches first predict ``p`` with zeros
    (no gradient), then predict again reading it. Sampling: reads the posterior of the previous
    call of the same batch (zeros at the first)."""

    def __init__(self, backbone: torch.nn.Module, vocab: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.vocab = vocab
        self.last: Tensor | None = None

    def forward(self, x: Tensor, c: Tensor, extra: Tensor | None = None) -> Tensor:
        zeros = torch.zeros_like(x)
        if self.training:
            if torch.rand(()) < 0.5:
                with torch.no_grad():
                    prev = torch.softmax(self.backbone(x, c, zeros).float(), -1).to(x.dtype)
                return self.backbone(x, c, prev)
            return self.backbone(x, c, zeros)
        prev = self.last if self.last is not None and self.last.shape == x.shape else zeros
        out = self.backbone(x, c, prev)
        self.last = torch.softmax(out.float(), -1).to(x.dtype)
        return out


class CondMLP(torch.nn.Module):
    """Prototype: the backbone sees ``c + MLP(c)`` (time x label interactions), not ``c``."""

    def __init__(self, backbone: torch.nn.Module, dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.mlp = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(dim, dim))
        torch.nn.init.zeros_(self.mlp[1].weight)
        torch.nn.init.zeros_(self.mlp[1].bias)

    def forward(self, x: Tensor, c: Tensor, extra: Tensor | None = None) -> Tensor:
        c = c + self.mlp(c)
        return self.backbone(x, c) if extra is None else self.backbone(x, c, extra)


# --- data -------------------------------------------------------------------------------------
def read_dhs(path: Path) -> tuple[dict[str, list[list[str]]], list[str]]:
    """Sequences by split and cell type: ``{split: [seqs of cell 0, ...]}``, cell names."""
    with gzip.open(path, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    cells = sorted({r["cell_type"] for r in rows})
    out: dict[str, list[list[str]]] = {s: [[] for _ in cells] for s in ("train", "valid", "test")}
    for r in rows:
        out[r["split"]][cells.index(r["cell_type"])].append(r["sequence"].upper())
    return out, cells


def tokens_of(seqs: list[str]) -> Tensor:
    lut = np.full(256, 255, dtype=np.uint8)
    for i, c in enumerate("ACGT"):
        lut[ord(c)] = i
    arr = lut[np.frombuffer("".join(seqs).encode(), dtype=np.uint8)].reshape(len(seqs), -1)
    return torch.as_tensor(arr.astype(np.int64))


@dataclasses.dataclass(frozen=True)
class Split:
    train: list[Tensor]  # per label, the training subset
    reference: list[Tensor]  # per label, test half A
    disc_reference: list[Tensor]  # per label, n of half A
    control: list[Tensor]  # per label, n of half B


def make_split(path: Path, per_label: int, n: int, seed: int) -> tuple[Split, list[str]]:
    """Training subset and the test halves (sequences with letters other than ACGT dropped)."""
    data, cells = read_dhs(path)
    rng = np.random.default_rng(seed)

    def clean(seqs: list[str]) -> Tensor:
        t = tokens_of([s for s in seqs if len(s) == LENGTH and set(s) <= set("ACGT")])
        return t[torch.as_tensor(rng.permutation(len(t)))]

    train = [clean(s)[:per_label] for s in data["train"]]
    tests = [clean(s) for s in data["test"]]
    halves = [(t[: len(t) // 2], t[len(t) // 2 :]) for t in tests]
    return (
        Split(
            train=train,
            reference=[a for a, _ in halves],
            disc_reference=[a[:n] for a, _ in halves],
            control=[b[:n] for _, b in halves],
        ),
        cells,
    )


# --- candidates -------------------------------------------------------------------------------
def candidate_config(spec: dict[str, Any]) -> Config:
    cfg = load_preset("dna")
    return dataclasses.replace(
        cfg,
        model=dataclasses.replace(cfg.model, **spec.get("model", {})),
        flow=dataclasses.replace(cfg.flow, **spec.get("flow", {})),
        train=dataclasses.replace(cfg.train, **spec.get("train", {})),
    )


def make_trainer(spec: dict[str, Any], split: Split, steps: int, seed: int) -> Trainer:
    cfg = candidate_config(spec)
    target = spec["target"]
    torch.manual_seed(seed)
    model = build_model(
        cfg.model, vocab=VOCAB, length=LENGTH, num_labels=len(split.train),
        tangent="none" if target == "denoiser" else "sphere",
    )  # fmt: skip
    if "label_std" in spec and model.labels is not None:  # the library initialises at 0.02
        torch.nn.init.normal_(model.labels.table.weight, std=spec["label_std"])
    if spec.get("pool"):
        model.backbone.blocks = torch.nn.ModuleList(
            PooledBlock(b, cfg.model.hidden) for b in model.backbone.blocks
        )
    if spec.get("selfcond"):
        back = model.backbone
        back.inp = torch.nn.Conv1d(2 * VOCAB, cfg.model.hidden, 1)  # x and the posterior
        model.backbone = SelfCond(back, VOCAB)
    if spec.get("cond_mlp"):
        model.backbone = CondMLP(model.backbone, cfg.model.time_dim)
    flow = FlowMatching(
        make_coupling(cfg.flow.coupling), VOCAB, target=target, t_early=cfg.flow.t_early
    )
    train_cfg = dataclasses.replace(
        cfg.train, steps=steps, log_every=10**9, eval_every=10**9, checkpoint_every=10**9,
        seed=seed, device="cpu",
    )  # fmt: skip
    tokens = torch.cat(split.train)
    labels = torch.cat([torch.full((len(t),), c) for c, t in enumerate(split.train)])
    cpu = torch.device("cpu")
    task = SequenceTask(flow, train_cfg, TrainingSet(tokens, Condition(labels=labels)), device=cpu)
    return Trainer(model, task, train_cfg, cond_dropout=cfg.flow.cond_dropout, device=cpu)


def steps_for_budget(spec: dict[str, Any], split: Split, budget_s: float, seed: int) -> int:
    """Steps that fit ``budget_s`` CPU seconds, from the CPU time of steps 6-25 of a
    throwaway trainer (the first steps warm caches up)."""
    trainer = make_trainer(spec, split, 10**6, seed)
    for _ in range(5):
        trainer.train_step()
    start = time.process_time()
    for _ in range(20):
        trainer.train_step()
    per_step = (time.process_time() - start) / 20
    return max(50, int(budget_s / per_step))


def train(
    spec: dict[str, Any], split: Split, budget_s: float, seed: int
) -> tuple[VelocityField, dict[str, float]]:
    """Train a candidate for the budget; return its EMA model and the measured cost."""
    steps = spec.get("steps") or steps_for_budget(spec, split, budget_s, seed)
    trainer = make_trainer(spec, split, steps, seed)
    cpu, wall = time.process_time(), time.perf_counter()
    trainer.run()
    cost = {
        "steps": steps,
        "train_cpu_min": (time.process_time() - cpu) / 60,
        "train_wall_min": (time.perf_counter() - wall) / 60,
    }
    trainer.ema.copy_to(trainer.ema_model)
    return trainer.ema_model, cost


# --- sampling ---------------------------------------------------------------------------------
@torch.inference_mode()
def sample(
    model: VelocityField, target: str, cond: Condition, n: int, *, steps: int, solver: str,
    how: str, seed: int, guidance: float = 1.0,
) -> Tensor:  # fmt: skip
    """Tokens ``(n, L)`` through the library's sampler (``sampling.generate``): a denoiser run
    decodes its last step from the posterior (``argmax``/``sample``; ``x`` reads as argmax)."""
    if isinstance(model.backbone, SelfCond):
        model.backbone.last = None
    return torch.cat(list(generate_tokens(
        model, n=n, length=LENGTH, vocab=VOCAB, geometry=S, target=target, cond=cond,
        guidance=guidance, steps=steps, solver=solver, decoder="argmax" if how == "x" else how,
        seed=seed,
    )))  # fmt: skip


def generate(
    model: VelocityField, target: str, sampler: str, n: int, classes: int, seed: int,
    guidance: float = 1.0,
) -> tuple[list[Tensor], float]:  # fmt: skip
    """``n`` sequences per label and the CPU minutes it took."""
    solver, steps, how = sampler.split(":")
    model.eval()
    start = time.process_time()
    out = [
        sample(model, target, Condition(labels=torch.full((n,), c)), n, steps=int(steps),
               solver=solver, how=how, seed=seed + c, guidance=guidance)
        for c in range(classes)
    ]  # fmt: skip
    return out, (time.process_time() - start) / 60


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    return format(row[key], fmt) if row.get(key) is not None else "-"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The findings table of result rows (as :func:`main` writes them)."""
    head = ("| candidate | sampler | guidance | train CPU-min | steps | sample CPU-min | 6-mer JS "
            "| label acc | k-mer AUROC | CNN AUROC | copies |")  # fmt: skip
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        f = lambda key, fmt, r=r: _cell(r, key, fmt)  # noqa: E731
        lines.append(
            f"| {r['candidate']} | {r.get('sampler', '-')} | {f('guidance', 'g')} | "
            f"{f('train_cpu_min', '.1f')} | "
            f"{f('steps', 'd')} | {f('sample_cpu_min', '.1f')} | {r['js6']:.3f} | "
            f"{r['label_acc']:.3f} | {r['kmer_auroc']:.3f} | {r['cnn_auroc']:.3f} | {r['copies']} |"
        )
    return "\n".join(lines)


PLOTTED = {
    "denoiser-label1": ("dna preset, session 7 (fp32, uniform t)", "o--"),
    "denoiser-bf16-tfocus": ("dna preset now (bf16 on AMX, t_early 0.8)", "s-"),
}
"""The series :func:`plot_budget` draws (sampler midpoint:25:argmax, guidance 1): name ->
(legend, line style)."""


def plot_budget(rows: list[dict[str, Any]], path: Path) -> None:
    """AUROC (k-mer and CNN) of the ``dna`` preset (each :data:`PLOTTED` series) against its
    training CPU-minutes, with the real control and the order-4 Markov chain as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = {r["candidate"]: r for r in rows if r["candidate"] in ("real-control", "markov4")}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, name, colour in (("kmer_auroc", "k-mer", "C0"), ("cnn_auroc", "CNN", "C1")):
        for candidate, (legend, style) in PLOTTED.items():
            points = sorted(
                (r for r in rows if r["candidate"] == candidate and r.get("seed", 0) == 0
                 and r.get("sampler") == "midpoint:25:argmax" and r.get("guidance") == 1.0),
                key=lambda r: r["train_cpu_min"],
            )  # fmt: skip
            ax.plot([r["train_cpu_min"] for r in points], [r[key] for r in points], style,
                    color=colour, label=f"{legend}, {name}")  # fmt: skip
        for who, line in (("real-control", ":"), ("markov4", "-.")):
            if who in base:
                ax.axhline(base[who][key], color=colour, linestyle=line, linewidth=1,
                           label=f"{who}, {name}")  # fmt: skip
    ax.set_xlabel("training CPU-minutes (one thread)")
    ax.set_ylabel("AUROC vs real held-out (0.5 = real)")
    ax.set_title("DHS cell types: sample quality per CPU-minute")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- main -------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--candidates", default="", help=f"comma-separated, of {sorted(CANDIDATES)}")
    ap.add_argument(
        "--samplers",
        default="euler:100:x",
        help="comma-separated solver:steps:decode (decode x, argmax or sample)",
    )
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--baselines", action="store_true", help="score real-control and markov4")
    ap.add_argument("--budget-min", type=float, default=6.0, help="training CPU minutes each")
    ap.add_argument("--steps", type=int, default=0, help="fixed steps instead of a budget")
    ap.add_argument("--n", type=int, default=300, help="generated sequences per label")
    ap.add_argument("--train-per-label", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", default="/tmp/quality_budget")
    ap.add_argument("--reuse", action="store_true", help="load trained models from --run-dir")
    ap.add_argument("--json", default=None, help="append result rows (JSON lines) here")
    ap.add_argument("--table", default=None, help="print the markdown table of a --json file")
    ap.add_argument(
        "--plot", default=None, metavar="PNG",
        help="with --table: draw AUROC against training CPU-minutes of the dna preset "
        "(the PLOTTED series) into PNG",
    )  # fmt: skip
    args = ap.parse_args()
    if args.table:
        text = Path(args.table).read_text()
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        print(markdown(rows))
        if args.plot:
            plot_budget(rows, Path(args.plot))
        return
    torch.set_num_threads(1)

    split, cells = make_split(Path(args.data), args.train_per_label, args.n, args.seed)
    judge = Judge(
        torch.cat(split.train),
        torch.cat([torch.full((len(t),), c) for c, t in enumerate(split.train)]),
        split.reference, split.disc_reference,
    )  # fmt: skip
    rows: list[dict[str, Any]] = []

    def report(row: dict[str, Any], generated: list[Tensor]) -> None:
        start = time.process_time()
        row.update(dataclasses.asdict(judge.score(generated)))
        row["judge_cpu_s"] = time.process_time() - start
        row["n_per_label"] = args.n
        row["seed"] = args.seed
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a") as handle:
                handle.write(json.dumps(row) + "\n")

    if args.baselines:
        report({"candidate": "real-control"}, split.control)
        start = time.process_time()
        markov = [markov_sample(t, args.n, 4, args.seed + c) for c, t in enumerate(split.train)]
        report({"candidate": "markov4", "train_cpu_min": (time.process_time() - start) / 60},
               markov)  # fmt: skip
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in filter(None, args.candidates.split(",")):
        spec = dict(CANDIDATES[name], steps=args.steps)
        path = run_dir / f"{name}.pt"
        if args.reuse and path.exists():
            saved = torch.load(path, weights_only=False)
            model, cost = saved["model"], saved["cost"]
        else:
            model, cost = train(spec, split, args.budget_min * 60, args.seed)
            torch.save({"model": model, "cost": cost}, path)
        for sampler in args.samplers.split(","):
            generated, sample_min = generate(
                model, spec["target"], sampler, args.n, len(cells), args.seed, args.guidance
            )
            report({"candidate": name, "sampler": sampler, "guidance": args.guidance, **cost,
                    "sample_cpu_min": sample_min}, generated)  # fmt: skip


if __name__ == "__main__":
    main()
