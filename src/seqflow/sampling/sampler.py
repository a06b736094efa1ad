"""Generate token sequences from a trained velocity field.

Prior samples on the positive orthant are carried to the data by an ODE solver; the velocity is
the model's, or with a label and guidance weight ``w`` the classifier-free-guidance mixture
``v_u + w (v_c - v_u)`` (Ho and Salimans 2022): ``w = 1`` is the plain conditional model,
``w = 0`` the unconditional one, ``w > 1`` sharpens the condition. Each end point is decoded to
letters by argmax of its probabilities ``x**2`` or by drawing from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from seqflow.errors import ConfigError
from seqflow.geometry import PositiveSphere
from seqflow.models import VelocityField
from seqflow.sampling.solvers import VectorField, integrate

DECODERS = ("argmax", "sample")


def guided_field(model: VelocityField, labels: Tensor | None, guidance: float) -> VectorField:
    """The vector field to integrate for ``labels`` (batch,) at guidance weight ``guidance``."""
    if labels is None or guidance == 1.0:
        return lambda x, t: model(x, t, labels)
    if guidance == 0.0:
        return lambda x, t: model(x, t, None)
    null = torch.full_like(labels, model.num_labels)

    def field(x: Tensor, t: Tensor) -> Tensor:
        both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
        v_c, v_u = both.chunk(2)
        return v_u + guidance * (v_c - v_u)

    return field


def decode(x_1: Tensor, how: str, generator: torch.Generator | None = None) -> Tensor:
    """Letters from end points ``x_1`` (batch, length, vocab) -> tokens ``(batch, length)``."""
    if how == "argmax":
        return x_1.argmax(dim=-1)
    if how == "sample":
        p = PositiveSphere.to_simplex(x_1.float())
        flat = torch.multinomial(p.reshape(-1, p.shape[-1]), 1, generator=generator)
        return flat.reshape(p.shape[:-1])
    raise ConfigError(f"sample.decode: unknown decoder {how!r}; choose one of {DECODERS}")


@torch.inference_mode()
def generate(
    model: VelocityField,
    *,
    n: int,
    length: int,
    vocab: int,
    label: int | None = None,
    guidance: float = 1.0,
    steps: int = 100,
    solver: str = "euler",
    decoder: str = "argmax",
    batch_size: int = 1024,
    seed: int = 0,
    device: torch.device | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[Tensor]:
    """Yield generated tokens in chunks of at most ``batch_size`` sequences.

    The same arguments give the same tokens on the same device (one seeded generator draws the
    prior and the decoder's randomness).

    Yields:
        Tokens on the CPU, shape ``(chunk, length)``, int64.
    """
    device = device or next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    model.eval()
    done = 0
    while done < n:
        b = min(batch_size, n - done)
        x_0 = PositiveSphere.sample_uniform((b, length, vocab), generator=generator, device=device)
        labels = (
            torch.full((b,), label, dtype=torch.long, device=device) if label is not None else None
        )
        x_1 = integrate(guided_field(model, labels, guidance), x_0, steps=steps, solver=solver)
        tokens = decode(x_1, decoder, generator).cpu()
        done += b
        if on_batch is not None:
            on_batch(b)
        yield tokens
