"""Learning-rate schedule: linear warmup, then cosine decay to a floor."""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, *, warmup: int, total: int, min_frac: float) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based): linear from ``1/warmup`` to
    1 over ``warmup`` steps, then a half cosine from 1 down to ``min_frac`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_frac + (1.0 - min_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))


def retune(
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    *,
    lr: float,
    weight_decay: float,
) -> None:
    """Make ``lr`` the base learning rate of a restored ``scheduler`` from its current step on,
    and ``weight_decay`` the optimiser's (unchanged values keep the very learning rate)."""
    scheduler.base_lrs = [lr for _ in optimizer.param_groups]
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas, strict=True):
        group["initial_lr"] = lr
        group["lr"] = lr * factor(scheduler.last_epoch)
        group["weight_decay"] = weight_decay
