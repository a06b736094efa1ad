"""The training loop: minibatches -> Fisher-Flow targets -> AdamW step -> EMA.

On CUDA the coupled minibatch of the next step is prepared by a CPU worker thread while the GPU
trains (the CPU is otherwise idle); on a CPU-only machine the network already uses every core,
and overlapping measured no faster than building the batch inline, so it is built inline.

The loop has no host synchronisation of its own: the loss is accumulated on the device and read
once every ``log_every`` steps (the OT coupling, when enabled, moves only the ``(B, B)`` cost
matrix to the host). Progress leaves through a callback; checkpoints are written by a callback
the caller provides, so this module does no file I/O.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from seqflow.config import TrainConfig
from seqflow.errors import SeqflowError
from seqflow.flow import FisherFlow
from seqflow.models import Condition, VelocityField
from seqflow.training.batches import CoupledBatch, CoupledBatchStream, coupling_groups
from seqflow.training.ema import EMA
from seqflow.training.schedule import warmup_cosine

VALID_MAX_SEQUENCES = 2048


class TrainingDivergedError(SeqflowError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainingSet:
    """Tokenised sequences for the engine.

    Attributes:
        tokens: shape ``(N, L)``, integer category indices (letters, and the end/pad category
            of variable-length data).
        cond: their conditions (labels ``(N,)``, values ``(N,)``, signal ``(N, L, C)``).
    """

    tokens: Tensor
    cond: Condition = field(default_factory=Condition)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


@dataclass(frozen=True)
class Progress:
    """One progress report of the training loop.

    ``loss`` is the mean training loss since the previous report; ``valid_loss`` is set on
    reports that follow a validation pass (EMA weights, fixed noise, so values are comparable).
    """

    step: int
    total: int
    loss: float | None
    valid_loss: float | None
    lr: float
    steps_per_second: float
    elapsed: float


class Trainer:
    """Fit a :class:`VelocityField` to a :class:`TrainingSet` with a :class:`FisherFlow`.

    Args:
        model: the velocity field (moved to ``device``).
        flow: prior, coupling and path.
        cfg: optimisation settings.
        train: training sequences; valid: held-out sequences or None.
        cond_dropout: probability of hiding a sequence's conditions (classifier-free guidance).
        device: where to train; bf16 autocast is used on CUDA when ``cfg.precision`` allows.
    """

    def __init__(
        self,
        model: VelocityField,
        flow: FisherFlow,
        cfg: TrainConfig,
        *,
        train: TrainingSet,
        valid: TrainingSet | None,
        cond_dropout: float,
        device: torch.device,
    ) -> None:
        if len(train) == 0:
            raise SeqflowError("no training sequences left after the validation split")
        self.cfg = cfg
        self.flow = flow
        self.device = device
        self.model = model.to(device)
        self.ema_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.ema = EMA(self.model, cfg.ema_decay)
        self.cond_dropout = cond_dropout if model.conditional else 0.0
        self.valid_set = valid if valid is not None and len(valid) else None
        self.stream = CoupledBatchStream(
            train.tokens, train.cond, flow, batch_size=cfg.batch_size, seed=cfg.seed + 1,
            prefetch=device.type == "cuda", pin_memory=device.type == "cuda",
        )  # fmt: skip
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: warmup_cosine(
                s, warmup=cfg.warmup_steps, total=cfg.steps, min_frac=cfg.min_lr_frac
            ),
        )
        self.generator = torch.Generator(device=device).manual_seed(cfg.seed)
        self.step = 0
        use_bf16 = device.type == "cuda" and cfg.precision in ("auto", "bf16")
        self.autocast: Any = (
            (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext
        )

    # --- one step -----------------------------------------------------------------------------
    def _loss(
        self, model: VelocityField, batch: CoupledBatch, generator: torch.Generator, drop: float
    ) -> Tensor:
        device = self.device
        tokens = batch.tokens.to(device, non_blocking=True)
        x_0 = batch.x_0.to(device, non_blocking=True)
        cond = batch.cond.to(device, non_blocking=True)
        t = torch.rand(tokens.shape[0], generator=generator, device=device)
        target = self.flow.path(x_0, tokens, t, generator)
        if drop > 0 and not cond.empty:
            cond = cond.drop_at_random(drop, model.num_labels, generator)
        with self.autocast():
            v = model(target.x_t, target.t, cond)
        return self.flow.loss(v, target.u_t)

    def train_step(self) -> Tensor:
        """One optimisation step; returns the detached loss (no host sync)."""
        self.model.train()
        loss = self._loss(self.model, self.stream.next(), self.generator, self.cond_dropout)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.ema.update()
        self.step += 1
        return loss.detach()

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean loss of the EMA weights on the held-out set with fixed noise, or None."""
        if self.valid_set is None:
            return None
        self.ema.copy_to(self.ema_model)
        generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 7)
        cpu_generator = torch.Generator().manual_seed(self.cfg.seed + 8)
        n = min(len(self.valid_set), VALID_MAX_SEQUENCES)
        total = torch.zeros((), device=self.device)
        for start in range(0, n, self.cfg.batch_size):
            rows = slice(start, min(n, start + self.cfg.batch_size))
            tokens, cond = self.valid_set.tokens[rows], self.valid_set.cond.select(rows)
            x_0 = self.flow.couple(tokens, generator=cpu_generator, groups=coupling_groups(cond))
            batch = CoupledBatch(tokens=tokens, cond=cond, x_0=x_0)
            loss = self._loss(self.ema_model, batch, generator, 0.0)
            total += loss * tokens.shape[0]
        return float(total / n)

    # --- the loop -----------------------------------------------------------------------------
    def run(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        on_checkpoint: Callable[[Trainer], None] | None = None,
    ) -> Progress:
        """Train until ``cfg.steps``; report progress and checkpoint on schedule.

        Returns:
            The last progress report (final training and validation loss).
        """
        try:
            return self._loop(on_progress, on_checkpoint)
        finally:
            self.stream.close()

    def _loop(
        self,
        on_progress: Callable[[Progress], None] | None,
        on_checkpoint: Callable[[Trainer], None] | None,
    ) -> Progress:
        cfg = self.cfg
        start_time = time.perf_counter()
        window_time, window_step = start_time, self.step
        loss_sum = torch.zeros((), device=self.device)
        last = Progress(self.step, cfg.steps, None, None, self.lr, 0.0, 0.0)
        while self.step < cfg.steps:
            loss_sum += self.train_step()
            step = self.step
            final = step == cfg.steps
            log_now = step % cfg.log_every == 0 or final
            eval_now = step % cfg.eval_every == 0 or final
            if not (log_now or eval_now):
                if on_checkpoint is not None and step % cfg.checkpoint_every == 0:
                    on_checkpoint(self)
                continue
            now = time.perf_counter()
            mean_loss = float(loss_sum) / max(1, step - window_step)
            if not math.isfinite(mean_loss):
                raise TrainingDivergedError(
                    f"training diverged: loss is {mean_loss} at step {step}; "
                    "lower train.lr or train.grad_clip"
                )
            last = Progress(
                step=step,
                total=cfg.steps,
                loss=mean_loss,
                valid_loss=self.validate() if eval_now else None,
                lr=self.lr,
                steps_per_second=(step - window_step) / max(now - window_time, 1e-9),
                elapsed=now - start_time,
            )
            loss_sum.zero_()
            window_time, window_step = time.perf_counter(), step
            if on_progress is not None:
                on_progress(last)
            if on_checkpoint is not None and (step % cfg.checkpoint_every == 0 or final):
                on_checkpoint(self)
        return last

    @property
    def lr(self) -> float:
        """Current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])

    # --- resumable state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit: optimiser, schedule, EMA, RNG, order."""
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "ema_updates": self.ema.num_updates,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "batches": self.stream.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"], int(state["ema_updates"]))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.stream.load_state_dict(state["batches"])
        self.step = int(state["step"])
