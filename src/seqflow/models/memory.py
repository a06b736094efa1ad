"""What a sequence-mode model will cost before it is built: its exact parameter count and an
upper-bound-ish estimate of one training step's memory, and the guard that refuses a run
which cannot fit (issue 18: a 100 MB sequence used to build a 1.7 G-parameter model and be
killed by the kernel).

Parameters (:func:`parameter_count`) follow the modules of :mod:`seqflow.models` term by term
and equal :func:`~seqflow.models.count_parameters` of :func:`~seqflow.models.build_model`.

A training step (:func:`step_bytes`) holds ``STATE_COPIES`` fp32 copies of the weights (the
weights, their gradients, AdamW's two moments, the EMA's shadow and its model) and the tensors
autograd saves for the backward pass, in ``B * L`` positions of ``H`` channels:

- CNN: ``CNN_SAVED_PER_BLOCK`` ``(B, H, L)`` tensors per residual block (norm, dilated conv,
  FiLM, GELU, output conv), so ``O(B * H * L * depth)``;
- transformer: ``ATTN_SAVED_PER_LAYER`` ``(B, L, H)`` tensors per layer (projections, MLP of
  width 4H, norms, gates) plus ``ATTN_SCORES_PER_LAYER`` ``(B, heads, L, L)`` score tensors
  (the attention matrix and its softmax when no fused kernel is used), so ``O(B * heads * L^2)``;
- both: ``IO_SAVED`` ``(B, L, vocab + H)`` tensors around the backbone (input projection,
  head, tangent projection and loss).

Every element counts 4 bytes whatever ``train.precision``: bf16 autocast keeps norms, softmax
and the loss in fp32, so this stays an upper bound. ``tests/test_memory_guard.py`` checks the
activation term against the bytes autograd really saves on small models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from seqflow.config import Config, ModelConfig
from seqflow.errors import ConfigError
from seqflow.models.velocity import resolve_arch

BYTES = 4
STATE_COPIES = 6
CNN_SAVED_PER_BLOCK = 8
ATTN_SAVED_PER_LAYER = 20
ATTN_SCORES_PER_LAYER = 2
IO_SAVED = 6
LIMIT_FRACTION = 0.75
NO_GUARD_ENV = "SEQFLOW_NO_MEMORY_GUARD"


def parameter_count(
    cfg: ModelConfig, *, vocab: int, length: int, num_labels: int = 0, value: bool = False,
    signal_channels: int = 0,
) -> int:  # fmt: skip
    """The trainable parameters of ``build_model(cfg, vocab=..., length=..., ...)``, exactly,
    without building it (same arguments as :func:`~seqflow.models.build_model`)."""
    h, c, d, v = cfg.hidden, cfg.time_dim, cfg.depth, vocab
    extra = signal_channels + 1 if signal_channels else 0
    io = (v + extra) * h + h + length * h + 2 * h + h * v + v  # inp, pos, norm, head
    if resolve_arch(cfg, vocab) == "cnn":
        block = 2 * h + h * h * cfg.kernel_size + h + c * 2 * h + 2 * h + h * h + h
    else:  # attention in/out projections, MLP of width 4h, adaLN modulation
        block = 3 * h * h + 3 * h + h * h + h + 8 * h * h + 5 * h + c * 6 * h + 6 * h
    time = 2 * (c * c + c)
    labels = (num_labels + 1) * c if num_labels > 0 else 0
    values = (c + 1) * c + c + c * c + c + c if value else 0
    return io + d * block + time + labels + values


def activation_bytes(cfg: ModelConfig, *, vocab: int, length: int, batch: int) -> int:
    """Upper-bound-ish bytes autograd saves for one forward pass of ``batch`` sequences of
    ``length`` positions (see the module docstring for the terms)."""
    h, positions = cfg.hidden, batch * length
    per_block = (
        CNN_SAVED_PER_BLOCK * positions * h
        if resolve_arch(cfg, vocab) == "cnn"
        else ATTN_SAVED_PER_LAYER * positions * h
        + ATTN_SCORES_PER_LAYER * batch * cfg.heads * length * length
    )
    return BYTES * (cfg.depth * per_block + IO_SAVED * positions * (vocab + h))


def step_bytes(
    cfg: Config, *, vocab: int, length: int, num_labels: int = 0, value: bool = False,
    signal_channels: int = 0,
) -> int:  # fmt: skip
    """Estimated peak bytes of one training step: weights, gradients, optimizer and EMA state
    plus the activations of a ``cfg.train.batch_size`` batch."""
    params = parameter_count(
        cfg.model, vocab=vocab, length=length, num_labels=num_labels, value=value,
        signal_channels=signal_channels,
    )  # fmt: skip
    acts = activation_bytes(cfg.model, vocab=vocab, length=length, batch=cfg.train.batch_size)
    return STATE_COPIES * BYTES * params + acts


@dataclass(frozen=True)
class MemoryEstimate:
    """A model's cost next to what the machine offers.

    Attributes:
        parameters: exact trainable parameters.
        step: estimated bytes of one training step (:func:`step_bytes`).
        available: bytes free on the training device (RAM, or GPU memory on CUDA).
        fitting_length: the longest sequence length whose step fits under the limit
            (0: none does).
    """

    parameters: int
    step: int
    available: int
    fitting_length: int

    @property
    def fits(self) -> bool:
        """Whether the step stays under ``LIMIT_FRACTION`` of the available memory."""
        return self.step <= LIMIT_FRACTION * self.available


def available_bytes(device: torch.device) -> int:
    """Free memory of ``device``: ``torch.cuda.mem_get_info`` on CUDA, else ``MemAvailable``
    of ``/proc/meminfo`` (or the free physical pages where there is none)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def estimate(
    cfg: Config, *, vocab: int, length: int, available: int, num_labels: int = 0,
    value: bool = False, signal_channels: int = 0,
) -> MemoryEstimate:  # fmt: skip
    """The :class:`MemoryEstimate` of the model ``cfg`` builds for this data."""

    def step(n: int) -> int:
        return step_bytes(
            cfg, vocab=vocab, length=n, num_labels=num_labels, value=value,
            signal_channels=signal_channels,
        )  # fmt: skip

    lo, hi = 0, length  # the step grows with the length: bisect the longest that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if step(mid) <= LIMIT_FRACTION * available else (lo, mid - 1)
    params = parameter_count(
        cfg.model, vocab=vocab, length=length, num_labels=num_labels, value=value,
        signal_channels=signal_channels,
    )  # fmt: skip
    return MemoryEstimate(params, step(length), available, lo)


def raise_if_too_big(
    cfg: Config, *, vocab: int, length: int, device: torch.device, num_labels: int = 0,
    value: bool = False, signal_channels: int = 0,
) -> None:  # fmt: skip
    """:class:`ConfigError` (one line: the estimate and the fix) when a training step of the
    sequence-mode model ``cfg`` builds for this data (the arguments of :func:`step_bytes`)
    would need more than ``LIMIT_FRACTION`` of ``device``'s free memory; the environment
    variable ``SEQFLOW_NO_MEMORY_GUARD=1`` skips the check."""
    if os.environ.get(NO_GUARD_ENV, "") not in ("", "0"):
        return
    est = estimate(
        cfg, vocab=vocab, length=length, available=available_bytes(device),
        num_labels=num_labels, value=value, signal_channels=signal_channels,
    )  # fmt: skip
    _refuse(est, length, device)


def raise_if_weights_too_big(parameters: int, *, length: int, device: torch.device) -> None:
    """The weights-only form of :func:`raise_if_too_big`, for a model without an activation
    estimate (library mode's set velocity field): refuse when the ``STATE_COPIES`` copies of
    its ``parameters`` weights alone exceed the limit."""
    if os.environ.get(NO_GUARD_ENV, "") not in ("", "0"):
        return
    _refuse(MemoryEstimate(parameters, STATE_COPIES * BYTES * parameters,
                           available_bytes(device), 0), length, device)  # fmt: skip


def _refuse(est: MemoryEstimate, length: int, device: torch.device) -> None:
    """:class:`ConfigError` naming the estimate and the fix, unless ``est`` fits."""
    if est.fits:
        return
    shorter = f"--max-length {est.fitting_length} --crop" if est.fitting_length else ""
    fix = shorter or "a smaller model.hidden or model.depth"
    where = "GPU" if device.type == "cuda" else "machine"
    raise ConfigError(
        f"the model ({_si(est.parameters)} parameters, length {length:,}) and a training step "
        f"(~{_si(est.step)}B) need more than {LIMIT_FRACTION:.0%} of this {where}'s "
        f"{_si(est.available)}B free memory; use {fix}, a smaller --batch-size, or a smaller "
        f"preset ({NO_GUARD_ENV}=1 skips this check)"
    )


def _si(n: float) -> str:
    """``n`` with a decimal prefix: 1.7 G, 41 T, 950 k."""
    for unit in ("", " k", " M", " G", " T", " P", " E"):
        if abs(n) < 1000:
            return f"{n:.3g}{unit}" if unit else f"{n:.0f}"
        n /= 1000
    return f"{n:.3g} Z"
