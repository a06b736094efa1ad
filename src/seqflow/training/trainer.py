"""The training loop of both modes: minibatches -> flow-matching targets -> AdamW step -> EMA.

A :class:`Task` (:class:`~seqflow.training.batches.SequenceTask`,
:class:`~seqflow.training.library.LibraryTask`) supplies the coupled minibatches; times, path,
condition dropout, bf16 autocast, DDP, ``torch.compile``, EMA and checkpoints are this one loop.
It has no host synchronisation of its own: the loss is read every ``log_every`` steps, progress
and checkpoints leave through callbacks (no file I/O here).

A step whose loss or gradient norm is not finite is skipped on the device: the fused AdamW's
``found_inf`` flag (``torch.amp.GradScaler``'s mechanism) leaves weights, moments and step count
untouched and the EMA moves by zero; ``train.max_bad_steps`` consecutive skips raise
:class:`TrainingDivergedError`. A stop request (:meth:`Trainer.request_stop`) is honoured after
the current step: the checkpoint callback runs and :class:`TrainingStopped` is raised.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from torch import Tensor

from seqflow.config import TrainConfig
from seqflow.errors import SeqflowError
from seqflow.flow import FlowMatching
from seqflow.models import Condition, SetVelocityField, VelocityField
from seqflow.training.batches import CoupledBatch
from seqflow.training.distributed import SINGLE, Shard, all_sum, any_rank
from seqflow.training.ema import EMA
from seqflow.training.schedule import retune, warmup_cosine


class TrainingDivergedError(SeqflowError):
    """The loss or the gradients stayed NaN or infinite for ``train.max_bad_steps`` steps."""


class TrainingStopped(SeqflowError):
    """Training stopped early on request (``reason``, e.g. ``SIGTERM``) at ``step``; the state
    was checkpointed first."""

    def __init__(self, message: str, *, step: int, reason: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.step = step
        self.reason = reason
        self.exit_code = exit_code


class Task(Protocol):
    """What one training mode gives the :class:`Trainer`: its ``flow`` (prior, path and loss of
    its items, sequences or clouds) and its minibatches."""

    flow: FlowMatching

    def next_batch(self) -> CoupledBatch:
        """This rank's share of the next global minibatch, coupled, on the CPU."""

    def valid_batches(
        self, batch_size: int, generator: torch.Generator
    ) -> Iterator[CoupledBatch] | None:
        """Held-out batches coupled with the CPU ``generator``'s noise, or None."""

    def model_condition(self, cond: Condition) -> Any:
        """The model's third argument for a batch's conditions."""

    def state_dict(self) -> dict[str, Any]:
        """The state from which the next batch is rebuilt."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""

    def close(self) -> None:
        """Stop any background work."""


@dataclass(frozen=True)
class Progress:
    """One progress report of the training loop.

    ``loss``: mean training loss of the steps not skipped since the previous report (None when
    all were); ``valid_loss``: after a validation pass (EMA weights, fixed noise), else None;
    ``skipped``: non-finite steps skipped since step 0; ``elapsed``: training seconds since
    step 0 over every session; ``eta``: seconds to ``total`` at this session's mean speed.
    """

    step: int
    total: int
    loss: float | None
    valid_loss: float | None
    lr: float
    steps_per_second: float
    elapsed: float
    skipped: int = 0
    eta: float | None = None


def fast_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast speeds training up on ``device``: CUDA, or a CPU with AMX tiles
    (Intel Xeon 4th generation and later), where a ``dna`` preset step takes 0.49x the time of
    fp32 on one thread (``benchmarks/quality_budget_findings.md``). Other CPUs emulate bf16
    matrix products and stay in fp32."""
    if device.type == "cuda":
        return True
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private, torch >= 2.1
    return device.type == "cpu" and amx is not None and bool(amx())


class Trainer:
    """Fit a velocity field to a :class:`Task` (sequences or libraries) by flow matching.

    Args:
        model: the velocity field (a set model for libraries), moved to ``device``.
        cond_dropout: probability of hiding an item's conditions (classifier-free guidance).
        device: where to train; bf16 autocast with ``cfg.precision: bf16``, or ``auto`` where it
            is fast (:func:`fast_bf16`).
        shard: this process's place in a ``torchrun`` job
            (:mod:`seqflow.training.distributed`); with ``world > 1`` the model is wrapped in
            DistributedDataParallel, ``cfg.batch_size`` is the global batch, only rank 0
            validates, and stop requests take effect at the next log point on every rank.
    """

    def __init__(
        self,
        model: VelocityField | SetVelocityField,
        task: Task,
        cfg: TrainConfig,
        *,
        cond_dropout: float,
        device: torch.device,
        shard: Shard = SINGLE,
    ) -> None:
        self.cfg = cfg
        self.task = task
        self.device = device
        self.shard = shard
        self.model = model.to(device)
        self.net: torch.nn.Module = self.model
        if shard.distributed:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
        if cfg.compile:  # the training forward only; EMA, validation and sampling stay eager
            self.net = cast(torch.nn.Module, torch.compile(self.net))
        self.ema_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.ema = EMA(self.model, cfg.ema_decay)
        self.num_labels = model.num_labels
        self.cond_dropout = cond_dropout if model.conditional else 0.0
        self.optimizer, self._found_inf = make_adamw(self.model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: warmup_cosine(  # self.cfg: set_steps moves the schedule's end
                s, warmup=cfg.warmup_steps, total=self.cfg.steps, min_frac=cfg.min_lr_frac
            ),
        )
        self.generator = torch.Generator(device=device).manual_seed(cfg.seed)
        self.step = 0
        self.elapsed = 0.0  # training seconds before this session (from a resumed state)
        self.skipped = torch.zeros((), dtype=torch.long, device=device)
        self.bad_run = torch.zeros((), dtype=torch.long, device=device)
        self._ok = torch.ones((), dtype=torch.bool, device=device)
        self._stop_reason: tuple[str, int] | None = None
        self._started = time.perf_counter()  # start of this session, for ``elapsed``
        use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and fast_bf16(device))
        self.autocast: Any = (
            (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if use_bf16 else nullcontext
        )

    # --- one step -----------------------------------------------------------------------------
    def _loss(
        self,
        model: torch.nn.Module,
        batch: CoupledBatch,
        generator: torch.Generator,
        drop: float,
    ) -> Tensor:
        device, flow = self.device, self.task.flow
        tokens = batch.tokens.to(device, non_blocking=True)
        x_0 = batch.x_0.to(device, non_blocking=True)
        cond = batch.cond.to(device, non_blocking=True)
        # times for the global batch, this rank's slice: the same draws on any number of ranks
        total = tokens.shape[0] * self.shard.world
        rows = self.shard.rows(total)
        t = flow.times(torch.rand(total, generator=generator, device=device)[rows])
        target = flow.path(x_0, tokens, t, generator)
        if drop > 0 and not cond.empty:
            cond = cond.drop_at_random(drop, self.num_labels, generator, total=total, rows=rows)
        with self.autocast():
            v = model(target.x_t, target.t, self.task.model_condition(cond))
        return flow.loss(v, target.u_t)

    def train_step(self) -> Tensor:
        """One optimisation step; returns the detached loss (no host sync). A non-finite step
        is skipped and counted in :attr:`skipped` and :attr:`bad_run` (consecutive)."""
        self.model.train()
        loss = self._loss(self.net, self.task.next_batch(), self.generator, self.cond_dropout)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        ok = torch.isfinite(norm)  # the all-reduced gradients: every rank agrees
        if not self.shard.distributed:
            ok &= torch.isfinite(loss.detach())
        self._ok = ok
        if self._found_inf is not None:
            self._found_inf.copy_(~ok)
            self.optimizer.step()
        elif bool(ok):  # no fused AdamW for these parameters: one host sync per step
            self.optimizer.step()
        self.scheduler.step()
        self.ema.update(weight=ok)
        self.skipped += ~ok
        self.bad_run.mul_(~ok).add_(~ok)
        self.step += 1
        return loss.detach()

    def set_steps(self, steps: int) -> None:
        """Train to ``steps`` instead of ``cfg.steps`` (the loop's and the schedule's end)."""
        self.cfg = dataclasses.replace(self.cfg, steps=steps)

    def request_stop(self, reason: str, exit_code: int = 2) -> None:
        """Ask the loop to checkpoint and stop after the current step (signal-handler safe)."""
        self._stop_reason = (reason, exit_code)

    @torch.no_grad()
    def validate(self) -> float | None:
        """Mean loss of the EMA weights on the held-out set with fixed noise, or None."""
        cpu_generator = torch.Generator().manual_seed(self.cfg.seed + 8)
        batches = self.task.valid_batches(self.cfg.batch_size, cpu_generator)
        if batches is None:
            return None
        self.ema.copy_to(self.ema_model)
        generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 7)
        total, n = torch.zeros((), device=self.device), 0
        for batch in batches:
            loss = self._loss(self.ema_model, batch, generator, 0.0)
            total += loss * batch.tokens.shape[0]
            n += batch.tokens.shape[0]
        return float(total / n)

    # --- the loop -----------------------------------------------------------------------------
    def run(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        on_checkpoint: Callable[[Trainer], None] | None = None,
        on_step: Callable[[int], None] | None = None,
    ) -> Progress:
        """Train until ``cfg.steps``, report progress and checkpoint on schedule; returns the
        last progress report.

        Args:
            on_progress: called every ``log_every`` steps (and at the last) with a report.
            on_checkpoint: called on the checkpoint schedule and before a stop.
            on_step: called after every step with the step number only (reading the loss
                would make the host wait for the device).
        """
        with closing(self.task):
            return self._loop(on_progress, on_checkpoint, on_step)

    def _loop(self, on_progress: Any, on_checkpoint: Any, on_step: Any) -> Progress:
        cfg = self.cfg
        start_time, start_step = time.perf_counter(), self.step
        self._started = start_time
        window_time, window_step = start_time, self.step
        loss_sum = torch.zeros((), device=self.device)
        good = torch.zeros((), device=self.device)
        last = Progress(self.step, cfg.steps, None, None, self.lr, 0.0, self.elapsed)
        last_checkpoint: int | None = None
        while self.step < cfg.steps:
            loss = self.train_step()
            loss_sum += torch.where(self._ok, loss, 0.0)
            good += self._ok
            step = self.step
            if on_step is not None:
                on_step(step)
            final = step == cfg.steps
            eval_now = step % cfg.eval_every == 0 or final
            log_now = step % cfg.log_every == 0 or eval_now
            checkpoint_now = step % cfg.checkpoint_every == 0 or final
            if log_now:
                bad_run = int(self.bad_run)
                if bad_run >= cfg.max_bad_steps:
                    kept = (
                        f"the checkpoint of step {last_checkpoint} is the last good one"
                        if last_checkpoint is not None
                        else "no checkpoint was written in this session"
                    )
                    raise TrainingDivergedError(
                        f"training diverged: {bad_run} steps in a row up to step {step} had a "
                        f"non-finite loss or gradient; {kept}; lower train.lr or "
                        "train.grad_clip, or check the data"
                    )
                now = time.perf_counter()
                sums = all_sum(torch.stack([loss_sum, good]), self.shard)
                n_good = float(sums[1])
                last = Progress(
                    step=step,
                    total=cfg.steps,
                    loss=float(sums[0]) / n_good if n_good else None,
                    valid_loss=self.validate() if eval_now else None,
                    lr=self.lr,
                    steps_per_second=(step - window_step) / max(now - window_time, 1e-9),
                    elapsed=self.elapsed + now - start_time,
                    skipped=int(self.skipped),
                    eta=(now - start_time) / (step - start_step) * (cfg.steps - step),
                )
                loss_sum.zero_()
                good.zero_()
                window_time, window_step = time.perf_counter(), step
                if on_progress is not None:
                    on_progress(last)
            stop = self._stop_reason
            if self.shard.distributed:  # a signal reaches ranks at different steps: agree at logs
                asked = log_now and any_rank(stop is not None, self.shard, self.device)
                stop = (stop or ("a stop on another rank", 2)) if asked else None
            if on_checkpoint is not None and (checkpoint_now or stop is not None):
                on_checkpoint(self)
                last_checkpoint = step
            if stop is not None:
                reason, code = stop
                raise TrainingStopped(
                    f"stopped by {reason} at step {step} of {cfg.steps}",
                    step=step, reason=reason, exit_code=code,
                )  # fmt: skip
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
            "batches": self.task.state_dict(),
            "skipped": self.skipped,
            "bad_run": self.bad_run,
            "elapsed": self.elapsed + time.perf_counter() - self._started,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`; learning rate and weight decay are this
        trainer's ``cfg`` from the restored step on (a resumed run may change them)."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"], int(state["ema_updates"]))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        retune(self.optimizer, self.scheduler, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        self.generator.set_state(state["generator"])
        # the library trainer before the one loop kept its draws' state at the top level
        self.task.load_state_dict(state.get("batches", state))
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))  # absent from older states
        for name in ("skipped", "bad_run"):  # absent from states before 0.4
            if name in state:
                getattr(self, name).fill_(state[name])


def make_adamw(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.optim.AdamW, Tensor | None]:
    """AdamW, fused when this torch has a fused kernel for the model's device and dtype.

    Returns:
        The optimiser and its ``found_inf`` flag (a float scalar on the device: 1 skips the next
        update without a host sync), or None for the unfused fallback (one host sync per step).
    """
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay), None
    device = params[0].device if params else torch.device("cpu")
    found_inf = torch.zeros((), dtype=torch.float32, device=device)
    optimizer.found_inf = found_inf  # type: ignore[attr-defined]  # read by the fused step
    optimizer.grad_scale = None  # type: ignore[attr-defined]
    return optimizer, found_inf
