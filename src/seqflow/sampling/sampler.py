"""Generate token sequences from a trained velocity field.

Prior samples on the positive orthant are carried to the data by an ODE solver; the velocity is
the model's, or with conditions and guidance weight ``w`` the classifier-free-guidance mixture
``v_u + w (v_c - v_u)`` (Ho and Salimans 2022): ``w = 1`` is the plain conditional model,
``w = 0`` the unconditional one, ``w > 1`` sharpens the condition. Each end point is decoded to
letters by argmax of its probabilities ``x**2`` or by drawing from them.

Variable-length models have one more category than letters, the end/pad category: a sequence
ends at its first position decoded as pad (never position 0), and every later position is set
to pad, so the tokens' lengths are ``(tokens != pad).sum(-1)``.

Fixed positions (inpainting, a template with given flanks) are clamped *during* integration,
not overwritten at the end: after every step at time t a fixed position is put back on the
conditional path the model was trained on, the geodesic from its own prior point x_0 to the
vertex of its letter, ``x_t = geodesic(x_0, e_a, t)`` (Davis et al. 2024, Sec. 3). The free
positions thus see their context as it looks at that time in training, and every fixed
position reaches its letter exactly at t = 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.geometry import Denoiser, Geometry, PositiveSphere
from seqflow.models import Condition, VelocityField
from seqflow.sampling.solvers import Constraint, VectorField, integrate

DECODERS = ("argmax", "sample")
_SPHERE = PositiveSphere()


def guided_field(
    model: VelocityField, cond: Condition | None, guidance: float, geometry: Geometry | None = None
) -> VectorField:
    """The vector field to integrate for conditions ``cond`` at guidance weight ``guidance``.

    For a denoiser geometry (Dirichlet FM) the guidance mixture acts on the model's logits,
    which the geometry then turns into a velocity.
    """
    if cond is None or cond.empty or guidance == 1.0:
        out: VectorField = lambda x, t: model(x, t, cond)  # noqa: E731
    elif guidance == 0.0:
        out = lambda x, t: model(x, t, None)  # noqa: E731
    else:
        both = Condition.cat(cond, cond.null(model.num_labels))

        def out(x: Tensor, t: Tensor) -> Tensor:
            v_c, v_u = model(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
            return v_u + guidance * (v_c - v_u)

    if geometry is None or not geometry.denoiser:
        return out
    readout = cast(Denoiser, geometry).velocity
    return lambda x, t: readout(x, t, out(x, t))


def clamp_fixed(x_0: Tensor, fixed: Tensor, geometry: Geometry | None = None) -> Constraint:
    """The constraint that keeps positions on the conditional path to their fixed letters.

    Args:
        x_0: the prior points of the batch, shape ``(batch, length, vocab)``.
        fixed: category per position, shape ``(length,)``, int64; -1 marks a free position.
        geometry: the flow's geometry (default: the Fisher sphere, whose path is the geodesic).
    """
    m = geometry if geometry is not None else _SPHERE
    where = fixed >= 0
    cols = torch.nonzero(where).flatten().to(x_0.device)
    x_0f = x_0[:, cols]
    x_1f = m.embed(fixed[where].to(x_0.device)[None], x_0.shape[-1], x_0.dtype)
    x_1f = x_1f.expand_as(x_0f)

    def constrain(x: Tensor, t: float) -> Tensor:
        times = torch.full((x.shape[0],), t, device=x.device, dtype=x.dtype)
        x[:, cols] = m.interpolate(x_0f, x_1f, times).x_t  # x is the step's own new tensor
        return x

    return constrain


def decode(
    x_1: Tensor,
    how: str,
    generator: torch.Generator | None = None,
    pad: int | None = None,
    min_length: int = 1,
    geometry: Geometry | None = None,
) -> Tensor:
    """Categories from end points ``x_1`` (batch, length, vocab) -> tokens ``(batch, length)``.

    Args:
        how: ``argmax`` (most likely category) or ``sample`` (draw from ``x**2``).
        pad: the end/pad category of a variable-length model, or None.
        min_length: with ``pad``, the first ``min_length`` positions are never decoded as the
            end (a sequence has at least one letter).
        geometry: the flow's geometry, which maps points to probabilities (default: sphere).
    """
    p = (geometry if geometry is not None else _SPHERE).to_simplex(x_1.float())
    if pad is not None:
        p[:, :min_length, pad] = 0.0
    if how == "argmax":
        tokens = p.argmax(dim=-1)
    elif how == "sample":
        flat = torch.multinomial(p.reshape(-1, p.shape[-1]), 1, generator=generator)
        tokens = flat.reshape(p.shape[:-1])
    else:
        raise ConfigError(f"sample.decode: unknown decoder {how!r}; choose one of {DECODERS}")
    if pad is not None:
        ended = (tokens == pad).cummax(dim=1).values
        tokens = tokens.masked_fill(ended, pad)
    return tokens


@torch.inference_mode()
def generate(
    model: VelocityField,
    *,
    n: int,
    length: int,
    vocab: int,
    cond: Condition | None = None,
    guidance: float = 1.0,
    steps: int = 100,
    solver: str = "euler",
    decoder: str = "argmax",
    pad: int | None = None,
    fixed: Tensor | None = None,
    min_length: int = 1,
    geometry: Geometry | None = None,
    batch_size: int = 1024,
    seed: int = 0,
    device: torch.device | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[Tensor]:
    """Yield generated tokens in chunks of at most ``batch_size`` sequences.

    The same arguments give the same tokens on the same device (one seeded generator draws the
    prior and the decoder's randomness).

    Args:
        cond: conditions with one row (shared by all ``n`` sequences) or ``n`` rows (one per
            sequence, e.g. a signal track each); None for an unconditional model.
        pad: the end/pad category of a variable-length model (see module docstring), or None.
        fixed: category per position, shape ``(length,)``, -1 where free: positions clamped
            during integration (see module docstring); None leaves every position free.
        min_length: with ``pad``, positions before this one never end the sequence.
        geometry: the geometry the model was trained on (default: the Fisher sphere).

    Yields:
        Tokens on the CPU, shape ``(chunk, length)``, int64.
    """
    device = device or next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    rows = _rows(cond)
    if rows not in (0, 1, n):
        raise ValueError(f"cond has {rows} rows; expected 1 or n={n}")
    model.eval()
    m = geometry if geometry is not None else _SPHERE
    done = 0
    while done < n:
        b = min(batch_size, n - done)
        x_0 = m.sample_prior((b, length, vocab), generator=generator, device=device)
        chunk = None
        if cond is not None and rows:
            idx = torch.arange(done, done + b) if rows == n else torch.zeros(b, dtype=torch.long)
            chunk = cond.select(idx).to(device)
        constrain = clamp_fixed(x_0, fixed, m) if fixed is not None and (fixed >= 0).any() else None
        field = guided_field(model, chunk, guidance, m)
        x_1 = integrate(field, x_0, steps=steps, solver=solver, constrain=constrain, geometry=m)
        tokens = decode(x_1, decoder, generator, pad, min_length, m)
        if constrain is not None:
            assert fixed is not None
            tokens = torch.where(fixed.to(tokens.device) >= 0, fixed.to(tokens.device), tokens)
        tokens = tokens.cpu()
        done += b
        if on_batch is not None:
            on_batch(b)
        yield tokens


def _rows(cond: Condition | None) -> int:
    if cond is None or cond.empty:
        return 0
    return int(next(t for t in cond if t is not None).shape[0])
