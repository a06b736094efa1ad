"""Shared fixtures: test data paths, a tiny training configuration, single-threaded torch.

Tiny models on tiny data are dominated by thread start-up and contention, not arithmetic: on a
shared 2-core machine a forward pass of a 16-channel CNN took ~40x longer with two intra-op
threads than with one. Every test therefore runs torch on one thread, and subprocesses get
``OMP_NUM_THREADS=1`` through the ``cli_env`` fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

DATA = Path(__file__).parent / "data"

#: ``--set`` overrides for a model that trains in about a second on a CPU: 16 channels,
#: 2 blocks, kernel 3; with ``steps=30, batch_size=16`` it logs at 10/20/30 and validates at 20/30.
#: Uniform training times: with the ``dna`` preset's ``flow.t_early=0.8`` a 30-step model sees
#: too few late times to copy ``x_t`` at the end of the path, and its samples fill with
#: homopolymers (from 100 steps on they do not).
TINY_SETS = (
    "flow.t_early=0.5",
    "model.hidden=16",
    "model.depth=2",
    "model.kernel_size=3",
    "model.time_dim=16",
    "train.log_every=10",
    "train.eval_every=20",
    "train.warmup_steps=5",
    "sample.steps=10",
)
TINY_STEPS = 30
TINY_BATCH = 16


@pytest.fixture(scope="session")
def tiny_fasta() -> Path:
    """64 DNA records of 24 bp (headers carry ``cell_type=...``, not used as labels)."""
    return DATA / "tiny.fasta"


@pytest.fixture(scope="session")
def tiny_csv() -> Path:
    """The same 64 sequences as CSV with columns ``id,sequence,cell_type``."""
    return DATA / "tiny.csv"


@pytest.fixture(scope="session")
def tiny_fit_kwargs() -> dict:
    """Keyword arguments of :func:`seqflow.api.fit` for the tiny configuration."""
    return {
        "preset": "dna",
        "overrides": list(TINY_SETS),
        "steps": TINY_STEPS,
        "batch_size": TINY_BATCH,
        "device": "cpu",
        "seed": 0,
    }


@pytest.fixture(scope="session")
def tiny_cli_args() -> list[str]:
    """The tiny configuration as ``seqflow fit`` options."""
    args = ["--preset", "dna", "--steps", str(TINY_STEPS), "--batch-size", str(TINY_BATCH)]
    args += ["--device", "cpu", "--seed", "0"]
    for item in TINY_SETS:
        args += ["--set", item]
    return args


@pytest.fixture(scope="session")
def cli_env() -> dict[str, str]:
    """Environment for ``python -m seqflow`` subprocesses: one thread, no colour."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NO_COLOR="1", TERM="dumb")
    env.pop("FORCE_COLOR", None)
    return env


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder path that does not exist yet."""
    return tmp_path / "runs" / "tiny"
