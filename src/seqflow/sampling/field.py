"""The vector field a sampler integrates: the network's output, classifier-free guided, read as
a velocity. A TorchScript-compatible module (``seqflow export`` scripts it as it is).

Guidance (Ho and Salimans 2022) mixes the conditional and unconditional outputs as
``o_u + w (o_c - o_u)`` (``w = 1``: conditional, ``w = 0``: unconditional, ``w > 1`` sharpens),
both from one network call on a doubled batch whose second half has every condition hidden.
A denoiser's output is logits of ``p(x_1 | x_t)``, which its geometry's ``velocity`` turns into
the posterior mixture of its conditional velocities, evaluated at ``t <= t_max`` (the sphere's
and simplex's mixtures are singular at ``t = 1``).
"""

# No ``from __future__ import annotations`` here: TorchScript reads the fields of the Guide
# NamedTuple as types, not strings.
import math
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor, nn

from seqflow.geometry import Geometry, PosteriorMixture
from seqflow.geometry.sphere import T_MAX
from seqflow.models import SetVelocityField, VelocityField


class Guide(NamedTuple):
    """The conditions the field is evaluated for (class ``labels`` ``(batch,)`` int64,
    standardised ``values`` ``(batch,)`` and ``signal`` ``(batch, length, channels)``, each
    optional) and the guidance ``weight`` ``w``."""

    labels: Tensor | None = None
    values: Tensor | None = None
    signal: Tensor | None = None
    weight: float = 1.0


class NetworkVelocity(nn.Module):
    """Readout of a velocity-regression network: its output is the velocity."""

    t_max: float
    posterior: bool

    def __init__(self) -> None:
        super().__init__()
        self.t_max = 1.0
        self.posterior = False

    def forward(self, x: Tensor, t: Tensor, out: Tensor) -> Tensor:
        """``out`` as it is, shape ``(batch, length, vocab)``."""
        return out


class DenoiserVelocity(nn.Module):
    """Readout of a denoiser: the ``geometry``'s posterior-mixture velocity at ``x`` from the
    network's logits, read at times up to ``t_max`` (1, or :data:`T_MAX`)."""

    t_max: float
    posterior: bool
    if TYPE_CHECKING:  # for mypy; TorchScript reads the submodule's own type
        geometry: PosteriorMixture

    def __init__(self, geometry: PosteriorMixture, t_max: float) -> None:
        super().__init__()
        self.geometry = geometry
        self.t_max = t_max
        self.posterior = True

    def forward(self, x: Tensor, t: Tensor, out: Tensor) -> Tensor:
        """Velocity at ``x`` (batch, length, vocab), times ``t`` (batch,), logits ``out``."""
        return self.geometry.velocity(x, t, out)


def readout(geometry: Geometry, target: str = "velocity") -> NetworkVelocity | DenoiserVelocity:
    """The readout of a network trained on ``geometry`` for ``target``."""
    if geometry.denoiser:  # Dirichlet FM: a denoiser by its geometry, regular at t = 1
        return DenoiserVelocity(geometry, 1.0)  # type: ignore[arg-type]  # by its flag
    if target == "denoiser":
        return DenoiserVelocity(geometry, T_MAX)  # type: ignore[arg-type]  # checked in config
    return NetworkVelocity()


class GuidedField(nn.Module):
    """``v(x, t)`` for conditions at a guidance weight.

    Args:
        network: a :class:`~seqflow.models.VelocityField` or
            :class:`~seqflow.models.SetVelocityField`.
        geometry: the geometry the network was trained on; target: ``flow.target``.
    """

    if TYPE_CHECKING:  # for mypy; TorchScript reads the submodule's own type
        network: VelocityField | SetVelocityField

    def __init__(
        self, network: VelocityField | SetVelocityField, geometry: Geometry,
        target: str = "velocity",
    ) -> None:  # fmt: skip
        super().__init__()
        self.network = network
        self.geometry = geometry
        self.readout = readout(geometry, target)
        self.num_labels = network.num_labels
        self.t_max: float = self.readout.t_max
        self.posterior: bool = self.readout.posterior

    def forward(self, x: Tensor, t: Tensor, guide: Guide) -> Tensor:
        """The velocity at ``x`` (batch, ..., vocab) and times ``t`` (batch,) for ``guide``;
        times are capped at ``t_max``."""
        t = t.clamp(max=self.t_max)
        return self.readout(x, t, self.output(x, t, guide))

    @torch.jit.export
    def letters(self, x: Tensor, guide: Guide, steps: int) -> Tensor:
        """What end points ``x`` (batch, ..., vocab) of ``steps`` steps decode from, float32
        of x's shape: a denoiser's posterior (``softmax`` of its guided logits), else the
        points' letter distribution (:meth:`~seqflow.geometry.Geometry.letters`).

        The posterior is read at ``t = 1`` where the field is regular (Dirichlet FM), else at
        ``1 - 1 / steps`` (at most ``t_max``), where the end points of every solver lie in its
        support (at ``t_max`` that support is within ``(1 - t_max) pi / 2`` of a vertex, which
        RK4's last step does not reach)."""
        if self.posterior:
            t_end = self.t_max if self.t_max >= 1.0 else min(self.t_max, 1.0 - 1.0 / steps)
            t = torch.full([x.shape[0]], t_end, device=x.device, dtype=x.dtype)
            return torch.softmax(self.output(x, t, guide).float(), dim=-1)
        return self.geometry.letters(x)

    def output(self, x: Tensor, t: Tensor, guide: Guide) -> Tensor:
        """The network's guided output at ``x`` (batch, ..., vocab), times ``t`` (batch,)."""
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
        return out
