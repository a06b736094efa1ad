"""The vector field a sampler integrates: the network's output, classifier-free guided, read as
a velocity. A TorchScript-compatible module (``seqflow export`` scripts it as it is).

Guidance (Ho and Salimans 2022) mixes the conditional and unconditional outputs as
``o_u + w (o_c - o_u)``: ``w = 1`` is the plain conditional model, ``w = 0`` the unconditional
one, ``w > 1`` sharpens the condition. Both outputs come from one network call on a batch of
twice the size, the second half with every condition hidden (label ``num_labels``, NaN value,
all-NaN signal).

The readout turns the (guided) output into a velocity: a velocity-regression network's output
is the velocity; a denoiser's output is logits, which its geometry turns into a velocity
(Dirichlet FM, :meth:`~seqflow.geometry.DirichletPath.velocity`). A further denoiser (e.g. a
posterior-mixture velocity on the sphere) is one more ``velocity`` method on its geometry,
chosen in :func:`readout`.
"""

# No ``from __future__ import annotations`` here: TorchScript reads the fields of the Guide
# NamedTuple as types, not strings.
import math
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor, nn

from seqflow.geometry import Denoiser, Geometry
from seqflow.models import SetVelocityField, VelocityField


class Guide(NamedTuple):
    """The conditions the field is evaluated for, and the guidance weight.

    Attributes:
        labels: class indices ``(batch,)`` int64, or None.
        values: standardised values ``(batch,)``, or None.
        signal: standardised tracks ``(batch, length, channels)``, or None.
        weight: the guidance weight ``w`` (see module docstring).
    """

    labels: Tensor | None = None
    values: Tensor | None = None
    signal: Tensor | None = None
    weight: float = 1.0


class NetworkVelocity(nn.Module):
    """Readout of a velocity-regression network: its output is the velocity."""

    def forward(self, x: Tensor, t: Tensor, out: Tensor) -> Tensor:
        """``out`` as it is, shape ``(batch, length, vocab)``."""
        return out


class DenoiserVelocity(nn.Module):
    """Readout of a denoiser: the geometry's velocity at ``x`` from the network's logits."""

    if TYPE_CHECKING:  # for mypy; TorchScript reads the submodule's own type
        geometry: Denoiser

    def __init__(self, geometry: Denoiser) -> None:
        super().__init__()
        self.geometry = geometry

    def forward(self, x: Tensor, t: Tensor, out: Tensor) -> Tensor:
        """Velocity at ``x`` (batch, length, vocab), times ``t`` (batch,), logits ``out``."""
        return self.geometry.velocity(x, t, out)


def readout(geometry: Geometry) -> nn.Module:
    """The readout of a network trained on ``geometry``."""
    if geometry.denoiser:
        return DenoiserVelocity(geometry)  # type: ignore[arg-type]  # a denoiser by its flag
    return NetworkVelocity()


class GuidedField(nn.Module):
    """``v(x, t)`` for conditions at a guidance weight.

    Args:
        network: a velocity network with ``velocity(x, t, labels, values, signal)`` and
            ``num_labels`` (:class:`~seqflow.models.VelocityField`,
            :class:`~seqflow.models.SetVelocityField`).
        geometry: the geometry the network was trained on (picks the readout).
    """

    if TYPE_CHECKING:  # for mypy; TorchScript reads the submodule's own type
        network: VelocityField | SetVelocityField

    def __init__(self, network: VelocityField | SetVelocityField, geometry: Geometry) -> None:
        super().__init__()
        self.network = network
        self.readout = readout(geometry)
        self.num_labels = network.num_labels

    def forward(self, x: Tensor, t: Tensor, guide: Guide) -> Tensor:
        """The velocity at ``x`` (batch, ..., vocab) and times ``t`` (batch,) for ``guide``."""
        labels, values, signal, guidance = guide.labels, guide.values, guide.signal, guide.weight
        given = labels is not None or values is not None or signal is not None
        if not given or guidance == 1.0:
            out = self.network.velocity(x, t, labels, values, signal)
        elif guidance == 0.0:
            out = self.network.velocity(x, t, None, None, None)
        else:
            if labels is not None:
                labels = torch.cat([labels, torch.full_like(labels, self.num_labels)])
            if values is not None:
                values = torch.cat([values, torch.full_like(values, math.nan)])
            if signal is not None:
                signal = torch.cat([signal, torch.full_like(signal, math.nan)])
            both = self.network.velocity(torch.cat([x, x]), torch.cat([t, t]), labels, values,
                                         signal)  # fmt: skip
            o_c, o_u = both.chunk(2)
            out = o_u + guidance * (o_c - o_u)
        return self.readout(x, t, out)
