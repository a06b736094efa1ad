"""A self-contained TorchScript sampler: the velocity network plus seqflow's own sampling
pieces (:mod:`seqflow.sampling`: prior, guided field, fixed-step solvers, decoding, condition
checks), compiled as they are so that they run where only torch is installed. The same seed,
steps and conditions give the same tokens as ``seqflow sample`` on the same device and thread
settings (``seqflow export`` checks this before it writes a file). Not included: ``dopri5``
(torchdiffeq does not compile), signal conditions (sampled without one, as ``seqflow sample``
without ``--signal``) and fixed positions (templates).
"""

# No ``from __future__ import annotations`` here: TorchScript reads the class annotations of
# ScriptedSampler as types, not strings.
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from seqflow import sampling
from seqflow.geometry import Geometry
from seqflow.models import VelocityField
from seqflow.sampling import FIXED_STEP_SOLVERS, FixedStepSolver, Guide, GuidedField

#: Solvers the scripted sampler runs.
SCRIPTED_SOLVERS = FIXED_STEP_SOLVERS


@dataclass(frozen=True)
class SamplerSpec:
    """What the scripted sampler needs beside the network: plain values from the checkpoint.

    Attributes:
        letters: the alphabet's letters in token order.
        labels: class names in index order (empty for a model without labels).
        length: sequence length L (the maximum for variable length).
        pad: the end/pad category of a variable-length model, or None.
        value_mean, value_std: standardisation of the value condition (None without one).
        steps, solver, decode, guidance, batch_size: the run's ``sample`` defaults.
        geometry, target: the run's ``flow.geometry`` and ``flow.target``.
    """

    letters: str
    labels: tuple[str, ...]
    length: int
    pad: int | None
    value_mean: float | None
    value_std: float | None
    steps: int
    solver: str
    decode: str
    guidance: float
    batch_size: int
    geometry: str
    target: str = "velocity"

    @property
    def vocab(self) -> int:
        """Categories per position: the letters, and the end/pad category if any."""
        return len(self.letters) + int(self.pad is not None)


class ScriptedSampler(nn.Module):
    """The velocity network (EMA weights) ``field`` trained on ``geometry``, with
    ``sample``/``sample_sequences`` methods for the ``spec``, ready for ``torch.jit.script``."""

    labels: list[str]  # TorchScript infers the other attributes' types from their values
    value_mean: float | None
    value_std: float | None
    guidance: float

    def __init__(self, field: VelocityField, geometry: Geometry, spec: SamplerSpec) -> None:
        super().__init__()
        self.field = field.eval()
        self.geometry = geometry
        self.guided = GuidedField(self.field, geometry, spec.target)
        self.ode = FixedStepSolver(self.guided, geometry)
        self.letters = spec.letters
        self.labels = list(spec.labels)
        self.length = spec.length
        self.vocab = spec.vocab
        self.pad = -1 if spec.pad is None else spec.pad
        self.value_mean = spec.value_mean
        self.value_std = spec.value_std
        self.steps = spec.steps
        self.solver = spec.solver
        self.decode = spec.decode
        self.guidance = spec.guidance
        self.batch_size = spec.batch_size

    @torch.jit.export
    def velocity(
        self,
        x: Tensor,
        t: Tensor,
        labels: Tensor | None = None,
        values: Tensor | None = None,
        signal: Tensor | None = None,
    ) -> Tensor:
        """The network's output (a denoiser's: logits) at ``x`` (batch, length, vocab) and times
        ``t`` (batch,); labels ``(batch,)`` int64 (``len(labels)`` = none), standardised values
        ``(batch,)`` and signal ``(batch, length, channels)`` (NaN = none)."""
        return self.field.velocity(x, t, labels, values, signal)

    forward = velocity

    @torch.jit.export
    def sample(
        self,
        n: int,
        seed: int = 0,
        steps: int | None = None,
        label: str | int | None = None,
        value: float | None = None,
        guidance: float | None = None,
        solver: str | None = None,
        decode: str | None = None,
        batch_size: int | None = None,
    ) -> Tensor:
        """Tokens of ``n`` generated sequences, shape ``(n, length)``, int64, on the model's
        device; None takes the run's default. ``label`` is a class name or index, ``value`` is
        on the training scale. Variable-length models: positions from the end on are ``pad``."""
        n_steps = self.steps if steps is None else steps
        how = self.decode if decode is None else decode
        method = self.solver if solver is None else solver
        size = self.batch_size if batch_size is None else batch_size
        w = self.guidance if guidance is None else guidance
        if n < 1 or n_steps < 1 or size < 1:
            raise ValueError("n, steps and batch_size must be >= 1")
        if method not in ["euler", "midpoint", "rk4"]:
            raise ValueError(
                f"solver {method}: the TorchScript sampler runs euler, midpoint or rk4 "
                "(dopri5 needs torchdiffeq: use seqflow sample); pass solver='rk4'"
            )
        if how not in ["argmax", "sample"]:
            raise ValueError(f"decode {how}: choose argmax or sample")
        index = self._label_index(label)
        std_value: float | None = None
        if value is not None:
            std_value = sampling.standardise_value(value, self.value_mean, self.value_std)
        device = self.field.time.w.device
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        chunks: list[Tensor] = []
        done = 0
        with torch.no_grad():
            while done < n:
                b = min(size, n - done)
                x_0 = self.geometry.sample_prior([b, self.length, self.vocab], generator, device)
                labels: Tensor | None = None
                values: Tensor | None = None
                if index >= 0:
                    labels = torch.full([b], index, dtype=torch.long, device=device)
                if std_value is not None:
                    values = torch.full([b], std_value, dtype=torch.float32, device=device)
                guide = Guide(labels, values, None, w)
                x_1 = self.ode(x_0, guide, n_steps, method, None)
                p = self.guided.letters(x_1, guide, n_steps)
                chunks.append(sampling.decode(p, how, generator, self.pad, 1))
                done += b
        return torch.cat(chunks)

    @torch.jit.export
    def sample_sequences(
        self,
        n: int,
        seed: int = 0,
        steps: int | None = None,
        label: str | int | None = None,
        value: float | None = None,
        guidance: float | None = None,
        solver: str | None = None,
        decode: str | None = None,
        batch_size: int | None = None,
    ) -> list[str]:
        """:meth:`sample` as strings of the alphabet's letters (without end/pad)."""
        tokens = self.sample(n, seed, steps, label, value, guidance, solver, decode, batch_size)
        rows: list[list[int]] = tokens.cpu().tolist()
        out: list[str] = []
        for row in rows:  # every position after the first pad is pad
            end = row.index(self.pad) if self.pad in row else len(row)
            out.append("".join([self.letters[token] for token in row[:end]]))
        return out

    def _label_index(self, label: str | int | None) -> int:
        """The class index of a name or index; -1 for None."""
        if label is None:
            return -1
        if isinstance(label, str):
            return sampling.label_index(self.labels, label)
        if label < 0 or label >= len(self.labels):
            raise ValueError(f"label {label}: index out of range 0..{len(self.labels) - 1}")
        return label


@contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence recent torch's deprecation warnings for ``torch.jit`` (it still works)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        yield


def script_sampler(
    field: VelocityField, geometry: Geometry, spec: SamplerSpec
) -> torch.jit.ScriptModule:
    """Compile :class:`ScriptedSampler` (``field`` on the CPU)."""
    with _quiet_jit():
        return torch.jit.script(ScriptedSampler(field, geometry, spec))


def save_scripted(
    module: torch.jit.ScriptModule, path: str | Path, extra_files: dict[str, str]
) -> None:
    """Write ``module`` to ``path`` with ``extra_files`` (name -> text) inside the archive."""
    with _quiet_jit():
        torch.jit.save(module, str(path), _extra_files=extra_files)


def load_scripted(path: str | Path) -> torch.jit.ScriptModule:
    """Read a TorchScript archive onto the CPU."""
    with _quiet_jit():
        return torch.jit.load(str(path), map_location="cpu")
