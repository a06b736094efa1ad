"""Generate token sequences from a trained network.

Prior samples are carried to the data by an ODE solver (:mod:`~seqflow.sampling.solvers`) along
the guided field (:mod:`~seqflow.sampling.field`), and each end point's letter distribution
(:meth:`GuidedField.letters`) is decoded by argmax or a draw (:func:`decode`). Library mode
integrates clouds ``(size, length, vocab)`` whole, one time per cloud, so the set model sees
every cloud. Variable-length models have one more category, end/pad: a sequence ends at its
first position decoded as pad (never before ``min_length``) and every later position is pad.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.geometry import Geometry
from seqflow.models import Condition, SetVelocityField, VelocityField
from seqflow.sampling.field import Guide, GuidedField
from seqflow.sampling.solvers import integrate


def decode(
    p: Tensor,
    how: str,
    generator: torch.Generator | None = None,
    pad: int = -1,
    min_length: int = 1,
) -> Tensor:
    """Categories from probabilities ``p`` (batch, length, vocab) -> tokens ``(batch, length)``.

    Args:
        p: the end points' letter probabilities; changed in place.
        how: ``argmax`` (most likely category) or ``sample`` (draw from ``p``).
        pad: the end/pad category of a variable-length model, or -1.
        min_length: with ``pad``, the first ``min_length`` positions are never decoded as pad.
    """
    if pad >= 0:
        p[:, :min_length, pad] = 0.0
    if how == "argmax":
        tokens = p.argmax(dim=-1)
    elif how == "sample":
        flat = torch.multinomial(p.reshape(-1, p.shape[-1]), 1, generator=generator)
        tokens = flat.reshape(p.shape[:-1])
    else:
        raise ConfigError(f"sample.decode: unknown decoder {how}; choose argmax or sample")
    if pad >= 0:
        ended = (tokens == pad).cummax(dim=1).values
        tokens = tokens.masked_fill(ended, pad)
    return tokens


@torch.inference_mode()
def generate(
    model: VelocityField | SetVelocityField,
    *,
    n: int,
    length: int,
    vocab: int,
    geometry: Geometry,
    target: str = "velocity",
    size: int | None = None,
    cond: Condition | None = None,
    guidance: float = 1.0,
    steps: int = 100,
    solver: str = "euler",
    decoder: str = "argmax",
    pad: int | None = None,
    fixed: Tensor | None = None,
    min_length: int = 1,
    batch_size: int = 1024,
    seed: int = 0,
    device: torch.device | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[Tensor]:
    """Yield generated tokens, int64 on the CPU, in chunks ``(chunk, length)`` (or ``(chunk,
    size, length)``) of at most ``batch_size``; the same arguments give the same tokens on the
    same device (one seeded generator).

    Args:
        geometry, target: the model's geometry and ``flow.target``.
        size: with a set velocity field (library mode), each item is a library of ``size``
            sequences (any size); None: single sequences.
        cond: conditions with one row (shared by all ``n`` items) or ``n`` rows; None for an
            unconditional model.
        pad: the end/pad category of a variable-length model, or None.
        fixed: category per position ``(length,)``, -1 where free: positions clamped during
            integration (:mod:`~seqflow.sampling.solvers`); None leaves all free.
        min_length: with ``pad``, positions before this one never end the sequence.
    """
    device = device or next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    rows = 0 if cond is None or cond.empty else next(t for t in cond if t is not None).shape[0]
    if rows not in (0, 1, n):
        raise ValueError(f"cond has {rows} rows; expected 1 or n={n}")
    model.eval()
    field = GuidedField(model, geometry, target)
    if fixed is not None and not bool((fixed >= 0).any()):
        fixed = None
    done = 0
    while done < n:
        b = min(batch_size, n - done)
        shape = [b, length, vocab] if size is None else [b, size, length, vocab]
        x_0 = geometry.sample_prior(shape, generator, device)
        chunk = Condition()
        if cond is not None and rows:
            idx = torch.arange(done, done + b) if rows == n else torch.zeros(b, dtype=torch.long)
            chunk = cond.select(idx).to(device)
        guide = Guide(chunk.labels, chunk.values, chunk.signal, guidance)
        x_1 = integrate(field, x_0, geometry=geometry, steps=steps, solver=solver, guide=guide,
                        fixed=fixed)  # fmt: skip
        p = field.letters(x_1, guide, steps).reshape(-1, length, vocab)
        tokens = decode(p, decoder, generator, -1 if pad is None else pad, min_length)
        tokens = tokens.reshape(shape[:-1])
        if fixed is not None:
            tokens = torch.where(fixed.to(tokens.device) >= 0, fixed.to(tokens.device), tokens)
        tokens = tokens.cpu()
        done += b
        if on_batch is not None:
            on_batch(b)
        yield tokens
