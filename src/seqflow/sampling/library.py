"""Generate whole libraries: prior clouds carried to libraries by a set velocity field.

A cloud ``(size, length, vocab)`` of prior points is integrated as one state by the ordinary
solvers (:func:`~seqflow.sampling.solvers.integrate`): their steps act on the last axis and take
one time per leading item, so a batch of clouds ``(batch, size, length, vocab)`` with times
``(batch,)`` goes through unchanged, and the model sees every cloud whole. Classifier-free
guidance mixes the labelled and unlabelled fields as :func:`~seqflow.sampling.guided_field`
does; each end point is decoded by argmax (:func:`~seqflow.sampling.decode`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqflow.geometry import Geometry, PositiveSphere
from seqflow.models.set_transformer import SetVelocityField
from seqflow.sampling.sampler import decode
from seqflow.sampling.solvers import VectorField, integrate


def guided_set_field(
    model: SetVelocityField, labels: Tensor | None, guidance: float
) -> VectorField:
    """The field of clouds ``(batch, size, length, vocab)`` at times ``(batch,)`` for library
    labels ``(batch,)`` (None: unconditional) at guidance weight ``guidance``:
    ``v_u + w (v_c - v_u)`` (Ho and Salimans 2022)."""
    if labels is None or guidance == 1.0:
        return lambda x, t: model(x, t, labels)
    if guidance == 0.0:
        return lambda x, t: model(x, t, None)
    both = torch.cat([labels, torch.full_like(labels, model.num_labels)])

    def field(x: Tensor, t: Tensor) -> Tensor:
        v_c, v_u = model(torch.cat([x, x]), torch.cat([t, t]), both).chunk(2)
        return v_u + guidance * (v_c - v_u)

    return field


@torch.inference_mode()
def generate_libraries(
    model: SetVelocityField,
    *,
    m: int,
    size: int,
    length: int,
    vocab: int,
    labels: Tensor | None = None,
    guidance: float = 1.0,
    steps: int = 100,
    solver: str = "euler",
    geometry: Geometry | None = None,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | None = None,
) -> Tensor:
    """Generate ``m`` libraries of ``size`` sequences each.

    The same arguments give the same tokens on the same device (one seeded generator draws the
    prior clouds).

    Args:
        model: the trained set velocity field (put in eval mode).
        m: number of libraries; size: sequences per library (S; need not be the training S,
            the set layers take any S); length: sequence length L; vocab: categories V.
        labels: library class, shape ``(1,)`` (shared) or ``(m,)``; None: unconditional.
        guidance: classifier-free guidance weight (1: the plain conditional model).
        steps, solver: the ODE solver (see :func:`~seqflow.sampling.integrate`).
        geometry: the geometry the model was trained on (default: the Fisher sphere).
        batch_size: clouds integrated at once.
        seed: seed of the prior draws.

    Returns:
        Tokens on the CPU, shape ``(m, size, length)``, int64.
    """
    device = device or next(model.parameters()).device
    if labels is not None and labels.shape[0] not in (1, m):
        raise ValueError(f"labels has {labels.shape[0]} rows; expected 1 or m={m}")
    g = geometry if geometry is not None else PositiveSphere()
    generator = torch.Generator(device=device).manual_seed(seed)
    model.eval()
    chunks = []
    for start in range(0, m, batch_size):
        b = min(batch_size, m - start)
        x_0 = g.sample_prior((b, size, length, vocab), generator=generator, device=device)
        y = None
        if labels is not None:
            y = labels.to(device).long().expand(m) if labels.shape[0] == 1 else labels.to(device)
            y = y[start : start + b]
        x_1 = integrate(
            guided_set_field(model, y, guidance), x_0, steps=steps, solver=solver, geometry=g
        )
        tokens = decode(x_1.flatten(0, 1), "argmax", geometry=g)
        chunks.append(tokens.reshape(b, size, length).cpu())
    return torch.cat(chunks)
