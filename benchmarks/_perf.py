"""Shared by the issue-7 performance benchmarks (``step_overhead.py``, ``sample_overhead.py``,
``memory_overhead.py``, ``throughput.py``): the preset's network at a given length, a library
:class:`~seqflow.training.Trainer` on random DNA, interleaved block timing, markdown tables and
``--json`` output.

The data are uniformly random letters over a 4-letter alphabet: no step of training or sampling
depends on which letters they are, only on the shapes. Everything engine-side is the library's
own code (``build_model`` as ``build_velocity_field`` calls it, ``FlowMatching``, ``make_coupling``,
``Trainer`` with its real ``CoupledBatchStream``, ``generate``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqflow.config import Config
from seqflow.flow import FlowMatching, make_coupling
from seqflow.geometry import make_geometry
from seqflow.models import VelocityField, build_model
from seqflow.training import SequenceTask, Trainer, TrainingSet

VOCAB = 4
"""DNA: A, C, G, T."""


def add_common_args(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--compile``, ``--preset``, ``--geometry``, ``--seed``, ``--json``."""
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda when present)")
    p.add_argument("--compile", action="store_true", help="torch.compile the network in place")
    p.add_argument("--preset", default="dna", help="preset whose model (and settings) to use")
    p.add_argument("--geometry", default="fisher")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the figures to this JSON file")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def sync(device: torch.device) -> None:
    """Wait for queued device work (timing boundaries on CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bf16(device: torch.device, on: bool) -> AbstractContextManager[Any]:
    """bf16 autocast on CUDA (as the trainer uses it) when ``on``, else nothing."""
    if on and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def dna_tokens(n: int, length: int, seed: int) -> torch.Tensor:
    """Uniformly random DNA tokens, shape ``(n, length)``, int64 (CPU)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, (n, length), generator=g)


def build(
    cfg: Config, length: int, device: torch.device, *, geometry: str = "fisher", seed: int = 0
) -> VelocityField:
    """The preset's velocity network for DNA of ``length`` on ``device`` (seeded init)."""
    torch.manual_seed(seed)
    tangent = make_geometry(geometry).tangent
    return build_model(cfg.model, vocab=VOCAB, length=length, tangent=tangent).to(device)


def make_trainer(
    model: VelocityField,
    cfg: Config,
    *,
    coupling: str,
    batch: int,
    length: int,
    device: torch.device,
    geometry: str = "fisher",
    precision: str = "auto",
    seed: int = 0,
) -> Trainer:
    """A :class:`Trainer` of ``model`` with the preset's optimisation settings on random DNA
    (``8 * batch`` sequences), differing from ``seqflow fit`` only in batch size and schedule
    length; the CoupledBatchStream prefetches on CUDA as the trainer decides."""
    train = dataclasses.replace(
        cfg.train,
        batch_size=batch,
        steps=10**6,
        log_every=10**6,
        eval_every=10**6,
        checkpoint_every=10**6,
        seed=seed,
        device=device.type,
        precision=precision,  # type: ignore[arg-type]
    )
    flow = FlowMatching(make_coupling(coupling), VOCAB, geometry=make_geometry(geometry))
    tokens = dna_tokens(8 * batch, length, seed + 1)
    task = SequenceTask(flow, train, TrainingSet(tokens=tokens), device=device)
    return Trainer(model, task, train, cond_dropout=0.0, device=device)


@dataclass(frozen=True)
class Blocks:
    """Seconds per call of each arm, one entry per timed block.

    Attributes:
        wall: wall-clock time (what a user waits; on CUDA the only meaningful one).
        cpu: CPU time of this process (``time.process_time``): on a CPU shared with other
            jobs it leaves out the time the process waited for a core, so with one torch
            thread it is far less noisy than ``wall`` (not meaningful on CUDA).
    """

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def interleaved(
    arms: dict[str, Callable[[], object]],
    *,
    rounds: int,
    block: int,
    warmup: int,
    device: torch.device,
) -> Blocks:
    """Time each arm: after ``warmup`` untimed calls of every arm, ``rounds`` rounds each run a
    block of ``block`` calls of every arm, in an order that reverses every round, so a shared
    machine's drift falls on all arms alike."""
    for fn in arms.values():
        for _ in range(warmup):
            fn()
    sync(device)
    out = Blocks(wall={name: [] for name in arms}, cpu={name: [] for name in arms})
    order = list(arms)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            fn = arms[name]
            sync(device)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(block):
                fn()
            sync(device)
            out.wall[name].append((time.perf_counter() - t0) / block)
            out.cpu[name].append((time.process_time() - c0) / block)
    return out


def paired(num: list[float], den: list[float]) -> float:
    """Median over rounds of the ratio of two arms' blocks of the same round."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, object]:
    """Where the figures were taken."""
    info: dict[str, object] = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def dump(path: str | None, payload: dict[str, object]) -> None:
    """Write ``payload`` (plus the machine) as JSON to ``path`` when given."""
    if path:
        Path(path).write_text(json.dumps({**payload, "machine": machine()}, indent=2) + "\n")
