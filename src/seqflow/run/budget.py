"""``train.time_budget``: choose ``train.steps`` so that a run fits a wall-clock budget.

Before the run's first step the trainer is timed on a short probe: :data:`PROBE_WARMUP` steps
that are not timed (allocation, autotuning, ``torch.compile``), then up to :data:`PROBE_STEPS`
timed steps (fewer once they have taken :data:`PROBE_SHARE` of the budget), one validation
pass and one checkpoint written to a temporary folder. The trainer is then rewound to its
state before the probe, bit for bit, and given the chosen steps, so the run is exactly the run
of ``train.steps`` = that number: the learning-rate schedule ends there, and the run folder's
configuration records it, so ``--resume`` continues to it without measuring again.

The steps fill what is left of the budget after everything before them (reading the data,
building the model, the probe; counted from ``started``), less :data:`SAFETY` of it for jitter
and for writing the training data, with the validations and checkpoints of
``train.eval_every`` and ``train.checkpoint_every`` and the final ones
(:func:`affordable_steps`). Under ``torchrun`` every rank takes the steps rank 0 chose.
Python's start-up before ``fit`` (imports: seconds) is outside the budget.

Steps given explicitly beside a budget (``--steps``, ``--set train.steps``) are an error, not
silently overruled; a preset's or config file's steps give way to the budget
(:func:`check_budget`).
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

PROBE_WARMUP = 5
"""Probe steps that are not timed (steps 1-5)."""

PROBE_STEPS = 20
"""Most probe steps timed (steps 6-25)."""

PROBE_SHARE = 0.05
"""Share of the budget after which the probe stops timing steps (at least one is timed)."""

SAFETY = 0.1
"""Share of the time left that no step is planned in."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Costs:
    """Measured wall times, in seconds.

    Attributes:
        step: one training step.
        validation: one validation pass (0 without a held-out set, and on ranks > 0).
        checkpoint: writing one checkpoint (0 on ranks > 0, which write none).
    """

    step: float
    validation: float
    checkpoint: float


@dataclass(frozen=True)
class StepBudget:
    """The steps chosen for a time budget and what they were chosen from.

    Attributes:
        budget: the budget as given (``20m``); seconds: the same in seconds.
        steps: the chosen ``train.steps``.
        costs: rank 0's measured costs.
        spent: seconds from ``started`` to the choice (reading, building, the probe).
    """

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
    """The most steps ``N`` (0 when none) with, for ``e = train.eval_every`` and
    ``k = train.checkpoint_every``,

        N c_step + (N / e + 1) c_validation + (N / k + 1) c_checkpoint <= seconds,

    an upper bound of the run's time: it validates and checkpoints every ``e`` and ``k`` steps
    and after the last.
    """
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
    """Time the trainer's steps, a validation pass and a checkpoint of ``meta``, then rewind
    the trainer to its state before (weights, optimiser, schedule, EMA, random state, data
    order).

    Args:
        limit: seconds after which no further step is timed.
    """
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
    """Measure the trainer (:func:`measure_costs`) and set its steps to fill what is left of
    ``meta.config.train.time_budget`` (:func:`affordable_steps`); rank 0 chooses for all.

    Args:
        started: the ``clock()`` reading at which the budget began.

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
    """Refuse a time budget together with explicit steps (``--steps``, ``--set train.steps``;
    a preset's or config file's steps give way to the budget), and, on ``--resume`` (the run's
    ``saved`` configuration), a budget other than the run's: a resumed run does not measure
    again, it continues to the steps recorded when it began."""
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
