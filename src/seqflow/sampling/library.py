"""Generate whole libraries: prior clouds carried to libraries by a set velocity field.

A cloud ``(size, length, vocab)`` of prior points is integrated as one state by the ordinary
solvers (:func:`~seqflow.sampling.solvers.integrate`) along the same guided field
(:class:`~seqflow.sampling.field.GuidedField`): their steps act on the last axis and take
one time per leading item, so a batch of clouds ``(batch, size, length, vocab)`` with times
``(batch,)`` goes through unchanged, and the model sees every cloud whole. Each end point is
decoded by argmax (:func:`~seqflow.sampling.decode`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqflow.geometry import Geometry
from seqflow.models.set_transformer import SetVelocityField
from seqflow.sampling.field import Guide, GuidedField
from seqflow.sampling.sampler import decode
from seqflow.sampling.solvers import integrate


@torch.inference_mode()
def generate_libraries(
    model: SetVelocityField,
    *,
    m: int,
    size: int,
    length: int,
    vocab: int,
    geometry: Geometry,
    labels: Tensor | None = None,
    guidance: float = 1.0,
    steps: int = 100,
    solver: str = "euler",
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
        geometry: the geometry the model was trained on.
        labels: library class, shape ``(1,)`` (shared) or ``(m,)``; None: unconditional.
        guidance: classifier-free guidance weight (1: the plain conditional model).
        steps, solver: the ODE solver (see :func:`~seqflow.sampling.integrate`).
        batch_size: clouds integrated at once.
        seed: seed of the prior draws.

    Returns:
        Tokens on the CPU, shape ``(m, size, length)``, int64.
    """
    device = device or next(model.parameters()).device
    if labels is not None and labels.shape[0] not in (1, m):
        raise ValueError(f"labels has {labels.shape[0]} rows; expected 1 or m={m}")
    generator = torch.Generator(device=device).manual_seed(seed)
    model.eval()
    field = GuidedField(model, geometry)
    chunks = []
    for start in range(0, m, batch_size):
        b = min(batch_size, m - start)
        x_0 = geometry.sample_prior([b, size, length, vocab], generator, device)
        y = None
        if labels is not None:
            y = labels.to(device).long().expand(m) if labels.shape[0] == 1 else labels.to(device)
            y = y[start : start + b]
        x_1 = integrate(field, x_0, geometry=geometry, steps=steps, solver=solver,
                        guide=Guide(labels=y, weight=guidance))  # fmt: skip
        tokens = decode(geometry.to_simplex(x_1.flatten(0, 1).float()), "argmax")
        chunks.append(tokens.reshape(b, size, length).cpu())
    return torch.cat(chunks)
