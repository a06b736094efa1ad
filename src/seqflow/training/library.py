"""The training loop of library mode: minibatches of libraries -> cloud targets -> AdamW -> EMA.

Every step draws ``cfg.batch_size`` libraries (without replacement while the minibatch is not
larger than the data), subsamples each to ``size`` sequences without replacement, pairs them
with prior clouds by :class:`~seqflow.flow.library.LibraryFlow` and regresses the velocity of
every point. All randomness comes from two seeded generators (a CPU one for the data, the prior
and the couplings, a device one for times and label dropout), both part of the resumable state,
so a run is deterministic and resumes bit-exactly. Progress leaves through the same
:class:`~seqflow.training.trainer.Progress` reports as the sequence trainer; this module does no
file I/O.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqflow.config import TrainConfig
from seqflow.errors import InvalidInputError
from seqflow.flow.library import LibraryFlow
from seqflow.models.set_transformer import SetVelocityField
from seqflow.training.ema import EMA
from seqflow.training.schedule import warmup_cosine
from seqflow.training.trainer import Progress, TrainingStopped, make_adamw


@dataclass(frozen=True)
class LibrarySet:
    """Libraries of tokenised sequences for the engine.

    Attributes:
        libraries: one tensor per library, shape ``(n_i, length)``, integer; every ``n_i`` at
            least the set size the trainer draws.
        labels: class per library, shape ``(N,)`` int64, or None.
        label_names: the name of every class (index = label).
    """

    libraries: list[Tensor]
    labels: Tensor | None = None
    label_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.libraries)

    @property
    def length(self) -> int:
        """The common sequence length L."""
        return int(self.libraries[0].shape[1])


def raise_if_unusable(data: LibrarySet, size: int) -> None:
    """Raise :class:`InvalidInputError` unless every library has ``size`` sequences of one
    length and the labels (if any) match the libraries."""
    if len(data) == 0:
        raise InvalidInputError("no libraries to train on")
    for i, lib in enumerate(data.libraries):
        if lib.dim() != 2 or lib.shape[1] != data.length:
            raise InvalidInputError(
                f"library {i}: shape {tuple(lib.shape)}, expected (n, {data.length})"
            )
        if lib.shape[0] < size:
            raise InvalidInputError(
                f"library {i}: {lib.shape[0]} sequences, fewer than the set size {size}"
            )
    if data.labels is not None and data.labels.shape != (len(data),):
        raise InvalidInputError(
            f"labels: shape {tuple(data.labels.shape)}, expected ({len(data)},)"
        )


class LibraryTrainer:
    """Fit a :class:`SetVelocityField` to a :class:`LibrarySet` with a :class:`LibraryFlow`.

    Args:
        model: the velocity field (moved to ``device``).
        flow: prior clouds, couplings and path.
        cfg: optimisation settings (``batch_size`` counts libraries).
        train: the libraries.
        size: sequences per library in a training cloud (S).
        cond_dropout: probability of hiding a library's label (classifier-free guidance).
        device: where the network trains; the data and the couplings stay on the CPU.
    """

    def __init__(
        self,
        model: SetVelocityField,
        flow: LibraryFlow,
        cfg: TrainConfig,
        *,
        train: LibrarySet,
        size: int,
        cond_dropout: float = 0.1,
        device: torch.device | None = None,
    ) -> None:
        raise_if_unusable(train, size)
        self.cfg = cfg
        self.flow = flow
        self.data = train
        self.size = size
        self.device = device or torch.device("cpu")
        self.model = model.to(self.device)
        self.ema_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.ema = EMA(self.model, cfg.ema_decay)
        self.cond_dropout = cond_dropout if model.conditional else 0.0
        self.optimizer, self._found_inf = make_adamw(self.model, cfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: warmup_cosine(
                s, warmup=cfg.warmup_steps, total=cfg.steps, min_frac=cfg.min_lr_frac
            ),
        )
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.data_generator = torch.Generator().manual_seed(cfg.seed + 1)
        self.step = 0
        self.skipped = 0
        self._stop_reason: tuple[str, int] | None = None

    def request_stop(self, reason: str, exit_code: int = 2) -> None:
        """Checkpoint and raise :class:`TrainingStopped` after the current step (signal-safe)."""
        self._stop_reason = (reason, exit_code)

    # --- one step -----------------------------------------------------------------------------
    def draw(self) -> tuple[Tensor, Tensor | None]:
        """The next minibatch: tokens ``(batch, size, length)`` and labels ``(batch,)`` or
        None, on the CPU."""
        n, g = len(self.data), self.data_generator
        b = self.cfg.batch_size
        idx = torch.randperm(n, generator=g)[:b] if b <= n else torch.randint(n, (b,), generator=g)
        tokens = torch.stack(
            [
                self.data.libraries[i][torch.randperm(self.data.libraries[i].shape[0], generator=g)]
                [: self.size]
                for i in idx.tolist()
            ]
        )  # fmt: skip
        labels = self.data.labels[idx] if self.data.labels is not None else None
        return tokens.long(), labels

    def loss(self, tokens: Tensor, labels: Tensor | None) -> Tensor:
        """The flow-matching loss of a minibatch of libraries (tokens on the CPU)."""
        x_0 = self.flow.couple(tokens, generator=self.data_generator, groups=labels)
        tokens, x_0 = tokens.to(self.device), x_0.to(self.device)
        t = torch.rand(tokens.shape[0], generator=self.generator, device=self.device)
        target = self.flow.path(x_0, tokens, t)
        if labels is not None:
            labels = labels.to(self.device)
            if self.cond_dropout > 0:
                u = torch.rand(labels.shape, generator=self.generator, device=self.device)
                labels = torch.where(u < self.cond_dropout, self.model.num_labels, labels)
        v = self.model(target.x_t, target.t, labels if self.model.conditional else None)
        return self.flow.loss(v, target.u_t)

    def train_step(self) -> Tensor:
        """One optimisation step; a non-finite loss or gradient skips the update. Returns the
        detached loss."""
        self.model.train()
        loss = self.loss(*self.draw())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        ok = bool(torch.isfinite(norm) & torch.isfinite(loss.detach()))
        if ok:
            if self._found_inf is not None:
                self._found_inf.zero_()
            self.optimizer.step()
        self.scheduler.step()
        self.ema.update(weight=torch.tensor(float(ok), device=self.device))
        self.skipped += not ok
        self.step += 1
        return loss.detach()

    # --- the loop -----------------------------------------------------------------------------
    def run(
        self,
        on_progress: Callable[[Progress], None] | None = None,
        on_checkpoint: Callable[[LibraryTrainer], None] | None = None,
    ) -> Progress:
        """Train until ``cfg.steps``, reporting every ``cfg.log_every`` steps and calling
        ``on_checkpoint`` every ``cfg.checkpoint_every`` steps and at the end.

        Returns:
            The last progress report.
        """
        cfg = self.cfg
        start = time.perf_counter()
        window_time, window_step = start, self.step
        loss_sum, good = 0.0, 0
        last = Progress(self.step, cfg.steps, None, None, self.lr, 0.0, 0.0, self.skipped)
        while self.step < cfg.steps:
            loss = float(self.train_step())
            if math.isfinite(loss):
                loss_sum, good = loss_sum + loss, good + 1
            final = self.step == cfg.steps
            if self.step % cfg.log_every == 0 or final:
                now = time.perf_counter()
                last = Progress(
                    step=self.step, total=cfg.steps, loss=loss_sum / good if good else None,
                    valid_loss=None, lr=self.lr,
                    steps_per_second=(self.step - window_step) / max(now - window_time, 1e-9),
                    elapsed=now - start, skipped=self.skipped,
                )  # fmt: skip
                loss_sum, good = 0.0, 0
                window_time, window_step = now, self.step
                if on_progress is not None:
                    on_progress(last)
            stop = self._stop_reason
            if on_checkpoint is not None and (
                self.step % cfg.checkpoint_every == 0 or final or stop is not None
            ):
                on_checkpoint(self)
            if stop is not None:
                raise TrainingStopped(
                    f"stopped by {stop[0]} at step {self.step} of {cfg.steps}",
                    step=self.step, reason=stop[0], exit_code=stop[1],
                )  # fmt: skip
        return last

    @property
    def lr(self) -> float:
        """Current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])

    def averaged(self) -> SetVelocityField:
        """The EMA weights in a model in eval mode (the weights to sample from)."""
        self.ema.copy_to(self.ema_model)
        return self.ema_model

    # --- resumable state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit: weights, optimiser, schedule, EMA, RNG."""
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "ema_updates": self.ema.num_updates,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "data_generator": self.data_generator.get_state(),
            "skipped": self.skipped,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"], int(state["ema_updates"]))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        self.data_generator.set_state(state["data_generator"])
        self.step = int(state["step"])
        self.skipped = int(state["skipped"])
