"""A self-contained TorchScript sampler: the velocity field plus the sampling loop of
:func:`seqflow.sampling.generate`, compiled so that it runs where only torch is installed.

The network and the geometry are the package's own code, compiled as they are
(:meth:`VelocityField.velocity <seqflow.models.VelocityField.velocity>` and the
:class:`~seqflow.geometry.PositiveSphere` methods). The loop itself is a copy of
``seqflow.sampling`` (prior, the fixed-step solvers ``euler``/``midpoint``/``rk4``, guidance
mixture, decoding, chunks of ``batch_size`` drawn from one seeded generator), written out here
because ``sampling`` hands Python closures to its solvers, which TorchScript cannot compile. It
mirrors that code operation for operation, so the same seed, steps and conditions give the same
tokens on the same device and thread settings; ``seqflow export`` checks this before it writes
a file, and ``tests/test_export.py`` checks it against ``seqflow sample``.

Not included: ``dopri5`` (adaptive, torchdiffeq), signal conditions (the field takes them; the
sampler samples signal models without one, as ``seqflow sample`` without ``--signal`` does),
and fixed positions (templates).
"""

# No ``from __future__ import annotations`` here: TorchScript reads the class annotations of
# ScriptedSampler as types, not strings.
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from seqflow.geometry import PositiveSphere
from seqflow.models import VelocityField

#: Solvers the scripted sampler runs.
SCRIPTED_SOLVERS = ("euler", "midpoint", "rk4")


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


class ScriptedSampler(nn.Module):
    """The velocity field with ``sample``/``sample_sequences`` methods, ready for
    ``torch.jit.script``.

    Args:
        field: the trained velocity field (EMA weights), in eval mode.
        spec: alphabet, conditions and sampling defaults.
    """

    letters: str
    labels: list[str]
    length: int
    vocab: int
    pad: int
    num_labels: int
    has_value: bool
    value_mean: float
    value_std: float
    steps: int
    solver: str
    decode: str
    guidance: float
    batch_size: int

    def __init__(self, field: VelocityField, spec: SamplerSpec) -> None:
        super().__init__()
        self.field = field.eval()
        self.letters = spec.letters
        self.labels = list(spec.labels)
        self.length = spec.length
        self.vocab = len(spec.letters) + int(spec.pad is not None)
        self.pad = -1 if spec.pad is None else spec.pad
        self.num_labels = len(spec.labels)
        self.has_value = spec.value_mean is not None
        self.value_mean = spec.value_mean if spec.value_mean is not None else 0.0
        self.value_std = spec.value_std if spec.value_std is not None else 1.0
        self.steps = spec.steps
        self.solver = spec.solver
        self.decode = spec.decode
        self.guidance = spec.guidance
        self.batch_size = spec.batch_size

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        labels: Tensor | None = None,
        values: Tensor | None = None,
        signal: Tensor | None = None,
    ) -> Tensor:
        """The velocity field: :meth:`velocity`."""
        return self.velocity(x, t, labels, values, signal)

    @torch.jit.export
    def velocity(
        self,
        x: Tensor,
        t: Tensor,
        labels: Tensor | None = None,
        values: Tensor | None = None,
        signal: Tensor | None = None,
    ) -> Tensor:
        """Tangent velocity at ``x`` (batch, length, vocab) and times ``t`` (batch,); labels
        ``(batch,)`` int64 (``num_labels`` = none), standardised values ``(batch,)`` (NaN =
        none) and signal ``(batch, length, channels)`` (NaN = none) as the model takes them."""
        return self.field.velocity(x, t, labels, values, signal)

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
        std_value = self._standardise(value)
        device = self.field.time.w.device
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        chunks: list[Tensor] = []
        done = 0
        with torch.no_grad():
            while done < n:
                b = min(size, n - done)
                z = torch.randn(
                    [b, self.length, self.vocab], generator=generator, device=device,
                    dtype=torch.float32,
                )  # fmt: skip
                x_0 = PositiveSphere.from_normal(z)
                labels: Tensor | None = None
                values: Tensor | None = None
                if index >= 0:
                    labels = torch.full([b], index, dtype=torch.long, device=device)
                if std_value is not None:
                    values = torch.full([b], std_value, dtype=torch.float32, device=device)
                x_1 = self._integrate(x_0, labels, values, w, n_steps, method)
                chunks.append(self._decode(x_1, how, generator))
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
        for row in rows:
            letters: list[str] = []
            for token in row:
                if token == self.pad:
                    break
                letters.append(self.letters[token])
            out.append("".join(letters))
        return out

    # --- the loop of seqflow.sampling, one operation for one operation -----------------------
    def _label_index(self, label: str | int | None) -> int:
        if label is None:
            return -1
        if self.num_labels == 0:
            raise ValueError("label: this model was trained without labels")
        if isinstance(label, str):
            if label not in self.labels:
                raise ValueError(
                    f"label {label}: unknown label; the model knows {', '.join(self.labels)}"
                )
            return self.labels.index(label)
        if label < 0 or label >= self.num_labels:
            raise ValueError(f"label {label}: index out of range 0..{self.num_labels - 1}")
        return label

    def _standardise(self, value: float | None) -> float | None:
        if value is None:
            return None
        if not self.has_value:
            raise ValueError("value: this model was trained without a value column")
        if not math.isfinite(value):
            raise ValueError("value: must be a finite number")
        raw = torch.tensor([value], dtype=torch.float32).double()
        return float(((raw - self.value_mean) / self.value_std).float()[0])

    def _field(
        self, x: Tensor, t: Tensor, labels: Tensor | None, values: Tensor | None, w: float
    ) -> Tensor:
        """``guided_field``: the model's field, or the guidance mixture ``v_u + w (v_c - v_u)``
        from one batch of twice the size (one call site, so TorchScript's graph stays small)."""
        guided = (labels is not None or values is not None) and w != 1.0 and w != 0.0
        if w == 0.0:
            labels, values = None, None
        if guided:
            x, t = torch.cat([x, x]), torch.cat([t, t])
            if labels is not None:
                labels = torch.cat([labels, torch.full_like(labels, self.num_labels)])
            if values is not None:
                values = torch.cat([values, torch.full_like(values, math.nan)])
        v = self.field.velocity(x, t, labels, values, None)
        if not guided:
            return v
        v_c, v_u = v.chunk(2)
        return v_u + w * (v_c - v_u)

    def _integrate(
        self,
        x_0: Tensor,
        labels: Tensor | None,
        values: Tensor | None,
        w: float,
        steps: int,
        solver: str,
    ) -> Tensor:
        h = 1.0 / steps
        batch = x_0.shape[0]
        x = x_0
        for i in range(steps):
            t = torch.full([batch], i * h, device=x.device, dtype=x.dtype)
            if solver == "euler":
                x = _step(x, self._field(x, t, labels, values, w), h)
            elif solver == "midpoint":
                x_mid = _step(x, self._field(x, t, labels, values, w), h / 2)
                v_mid = PositiveSphere.proj_tangent(
                    x_mid, self._field(x_mid, t + h / 2, labels, values, w)
                )
                x = _step(x, v_mid, h)
            else:
                k1 = self._ambient(x, t, labels, values, w)
                k2 = self._ambient(x + h / 2 * k1, t + h / 2, labels, values, w)
                k3 = self._ambient(x + h / 2 * k2, t + h / 2, labels, values, w)
                k4 = self._ambient(x + h * k3, t + h, labels, values, w)
                x = PositiveSphere.proj_orthant(x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
        return x

    def _ambient(
        self, y: Tensor, t: Tensor, labels: Tensor | None, values: Tensor | None, w: float
    ) -> Tensor:
        x = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
        return PositiveSphere.proj_tangent(x, self._field(x, t, labels, values, w))

    def _decode(self, x_1: Tensor, how: str, generator: torch.Generator) -> Tensor:
        p = PositiveSphere.to_simplex(x_1.float())
        if self.pad >= 0:
            p[:, :1, self.pad] = 0.0
        if how == "argmax":
            tokens = p.argmax(dim=-1)
        else:
            flat = torch.multinomial(p.reshape(-1, p.shape[-1]), 1, generator=generator)
            tokens = flat.reshape(p.shape[:-1])
        if self.pad >= 0:
            ended = (tokens == self.pad).cummax(dim=1).values
            tokens = tokens.masked_fill(ended, self.pad)
        return tokens


def _step(x: Tensor, v: Tensor, h: float) -> Tensor:
    """One geodesic step ``proj_orthant(exp_x(h P_x v))``."""
    return PositiveSphere.proj_orthant(PositiveSphere.exp(x, h * PositiveSphere.proj_tangent(x, v)))


@contextmanager
def _quiet_jit() -> Iterator[None]:
    """Silence torch's deprecation warnings for ``torch.jit`` (recent torch marks it
    deprecated; it still works, and library code does not print)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated")
        yield


def script_sampler(field: VelocityField, spec: SamplerSpec) -> torch.jit.ScriptModule:
    """Compile :class:`ScriptedSampler` for ``field`` (on the CPU, eval mode) and ``spec``."""
    with _quiet_jit():
        return torch.jit.script(ScriptedSampler(field, spec))


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
