"""``train.time_budget``: choose ``train.steps`` so that a run fits a wall-clock budget.

Before the first step the trainer is timed on a short probe (untimed warm-up steps, timed
steps, one validation pass, one checkpoint to a temporary folder), then rewound bit for bit and
given the chosen steps: the run is exactly the run of ``train.steps`` = that number (the
schedule ends there, and ``--resume`` continues to it without measuring again). The steps fill
what is left of the budget after reading the data, building the model and the probe, less
:data:`SAFETY` of it, with the validations and checkpoints they entail
(:func:`affordable_steps`). Under ``torchrun`` every rank takes rank 0's choice. Python's
start-up before ``fit`` is outside the budget.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqflow.checkpoint import ModelMeta
from seqflow.config import Config, TrainConfig, parse_override
from seqflow.duration import parse_duration
from seqflow.errors import ConfigError
from seqflow.run.checkpoints import write_checkpoint
from seqflow.training import Trainer
from seqflow.training.distributed import Shard, all_sum, any_rank

PROBE_WARMUP = 5  # probe steps that are not timed (allocation, autotuning, torch.compile)
PROBE_STEPS = 20  # most probe steps timed
PROBE_SHARE = 0.05  # share of the budget after which no further probe step is timed
SAFETY = 0.1  # share of the time left that no step is planned in (jitter, writing the data)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Costs:
    """Measured wall times in seconds of one training step, one validation pass and writing one
    checkpoint (the last two 0 on ranks > 0; validation 0 without a held-out set)."""

    step: float
    validation: float
    checkpoint: float


@dataclass(frozen=True)
class StepBudget:
    """The ``steps`` chosen for a ``budget`` as given (``20m``; ``seconds``), from rank 0's
    ``costs`` and the seconds ``spent`` before the choice (reading, building, the probe)."""

    budget: str
    seconds: float
    steps: int
    costs: Costs
    spent: float

    def describe(self) -> str:
        """One line, e.g. ``time budget 20m: 2,340 steps at 8.1 steps/s (...)``."""
        c = self.costs
        return (
            f"time budget {self.budget}: {self.steps:,} steps at {1 / c.step:.1f} steps/s "
            f"(validation {c.validation:.2g}s, checkpoint {c.checkpoint:.2g}s; "
            f"{self.spent:.1f}s before training)"
        )


def affordable_steps(seconds: float, costs: Costs, train: TrainConfig) -> int:
    """The most steps ``N`` (0 when none) with ``N c_step + (N / e + 1) c_validation +
    (N / k + 1) c_checkpoint <= seconds`` for ``e = train.eval_every`` and
    ``k = train.checkpoint_every`` (the run also validates and checkpoints after the last)."""
    per_step = (
        costs.step + costs.validation / train.eval_every + costs.checkpoint / train.checkpoint_every
    )
    return max(0, math.floor((seconds - costs.validation - costs.checkpoint) / per_step))


def measure_costs(
    trainer: Trainer,
    meta: ModelMeta,
    *,
    limit: float,
    shard: Shard,
    clock: Callable[[], float] = time.perf_counter,
) -> Costs:
    """Time the trainer's steps (none more after ``limit`` seconds), a validation pass and a
    checkpoint of ``meta``, then rewind the trainer to its whole state before."""
    before = copy.deepcopy(trainer.state_dict())
    for _ in range(PROBE_WARMUP):
        loss = trainer.train_step()
    float(loss)  # wait for the device
    start, timed = clock(), 0
    while timed < PROBE_STEPS and not any_rank(
        timed > 0 and clock() - start >= limit, shard, trainer.device
    ):  # the same steps on every rank
        loss = trainer.train_step()
        timed += 1
    float(loss)
    step = (clock() - start) / timed
    validation = checkpoint = 0.0
    if shard.main:
        start = clock()
        trainer.validate()
        validation = clock() - start
        with tempfile.TemporaryDirectory(prefix="seqflow-budget-") as folder:
            start = clock()
            write_checkpoint(
                Path(folder), trainer.model.state_dict(), trainer.ema.state_dict(), before,
                meta, keep=1,
            )  # fmt: skip
            checkpoint = clock() - start
    trainer.load_state_dict(before)
    return Costs(step=step, validation=validation, checkpoint=checkpoint)


def choose_steps(
    trainer: Trainer,
    meta: ModelMeta,
    *,
    started: float,
    shard: Shard,
    clock: Callable[[], float] = time.perf_counter,
) -> StepBudget:
    """Measure the trainer and set its steps to fill what is left of
    ``meta.config.train.time_budget`` since the ``clock()`` reading ``started``.

    Raises:
        ConfigError: the budget leaves no time for a single step.
    """
    budget = meta.config.train.time_budget
    assert budget is not None
    seconds = parse_duration(budget)
    costs = measure_costs(trainer, meta, limit=PROBE_SHARE * seconds, shard=shard, clock=clock)
    spent = clock() - started
    steps = affordable_steps((seconds - spent) * (1 - SAFETY), costs, trainer.cfg)
    mine = torch.tensor(steps if shard.main else 0, device=trainer.device)
    steps = int(all_sum(mine, shard))
    if steps < 1:
        raise ConfigError(
            f"--time-budget {budget}: too short: {spent:.1f}s went to reading the data, "
            f"building the model and timing it, and a step takes {costs.step:.2g}s"
        )
    trainer.set_steps(steps)
    chosen = StepBudget(budget=budget, seconds=seconds, steps=steps, costs=costs, spent=spent)
    log.info(chosen.describe())
    return chosen


def check_budget(
    cfg: Config,
    flags: Mapping[str, Any],
    overrides: Sequence[str],
    *,
    saved: Config | None = None,
) -> None:
    """Refuse a time budget beside explicit steps (``--steps``, ``--set train.steps``; a
    preset's or config file's steps give way), and on ``--resume`` (``saved``: the run's
    configuration) a budget other than the run's: a resumed run does not measure again."""
    budget = cfg.train.time_budget
    if saved is not None:
        if budget != saved.train.time_budget:
            raise ConfigError(
                f"--time-budget: a resumed run keeps its budget ({saved.train.time_budget}) "
                f"and continues to its recorded train.steps ({saved.train.steps}); change "
                "the length with --steps"
            )
        return
    given = "train.steps" in flags or any(
        parse_override(item)[0] == "train.steps" for item in overrides
    )
    if budget is not None and given:
        raise ConfigError(
            f"--time-budget {budget} chooses train.steps; leave out --steps and --set train.steps"
        )


def recorded_budget(train: TrainConfig) -> str | None:
    """What a resumed run says of the budget its steps were chosen for, if any."""
    if train.time_budget is None:
        return None
    return f"time budget {train.time_budget}: not measured again; training to step {train.steps:,}"
