"""``export``: a trained run as a TorchScript sampler, an ONNX velocity graph or a clean
safetensors bundle, with a README beside it (``PATH.README.md``).

Each export is written to temporary files, loaded back and checked against the checkpoint's
model (velocity on random inputs; for TorchScript also sequences against
:func:`seqflow.sampling.generate`; for safetensors the weights, bit for bit); only then are
the file and its README renamed into place, so a failure leaves no output.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from seqflow._version import __version__
from seqflow.api._conditions import condition, standardised_value
from seqflow.checkpoint import (
    FORMAT_VERSION,
    ModelMeta,
    load_model,
    resolve_checkpoint,
    save_model,
)
from seqflow.errors import ExportError, InvalidInputError
from seqflow.export import (
    SCRIPTED_SOLVERS,
    ExportFacts,
    SamplerSpec,
    input_names,
    load_scripted,
    render_readme,
    require_onnx,
    run_onnx,
    save_onnx,
    save_scripted,
    script_sampler,
    velocity_inputs,
    velocity_kwargs,
)
from seqflow.io_utils import atomic_path, atomic_write
from seqflow.models import VelocityField, resolve_arch
from seqflow.sampling import generate

README_SUFFIX = ".README.md"
#: Largest velocity difference to the model an export may show (ONNX reorders float sums).
TOLERANCE = {"torchscript": 1e-6, "onnx": 1e-4, "safetensors": 0.0}
CHECK_BATCH = 5  # random velocity inputs (the ONNX graph is traced with 2: a dynamic batch)
CHECK_N, CHECK_CHUNK, CHECK_STEPS = 5, 2, 8  # sequences, batch size (3 chunks), steps at most


@dataclass(frozen=True)
class ExportResult:
    """Outcome of ``export``.

    Attributes:
        output: the file written.
        readme: the README written beside it.
        format: ``torchscript``, ``onnx`` or ``safetensors``.
        contents: one line on what the file holds.
        max_abs_diff: largest velocity difference to the checkpoint's model on random inputs.
        sequences_checked: sequences sampled from the export and found equal to the model's.
        seconds: wall time.
    """

    output: str
    readme: str
    format: str
    contents: str
    max_abs_diff: float
    sequences_checked: int
    seconds: float


CONTENTS = {
    "torchscript": "TorchScript sampler and velocity network, needs only torch",
    "onnx": "ONNX velocity network with a dynamic batch axis",
    "safetensors": "EMA weights and checkpoint metadata, no optimizer state or raw weights",
}


def export(checkpoint: str | Path, *, format: str, output: str | Path) -> ExportResult:
    """Export a run folder or checkpoint's EMA model to ``output`` (and ``output.README.md``).

    Args:
        checkpoint: a run folder or a model ``.safetensors`` file.
        format: ``torchscript`` (sampler + network, needs only torch), ``onnx`` (velocity
            network; needs ``seqflow[onnx]``) or ``safetensors`` (inference bundle that
            ``seqflow sample`` reads).
        output: the file to write; its folder must exist. An existing file is replaced.

    Raises:
        InvalidInputError: unknown format, missing onnx extra, unusable output path.
        CheckpointError: missing or damaged checkpoint.
        ExportError: the written export did not reproduce the model (nothing is written).
    """
    started = time.perf_counter()
    if format not in _WRITERS:
        raise InvalidInputError(
            f"--format {format}: unknown format; choose torchscript, onnx or safetensors"
        )
    if format == "onnx":
        require_onnx()
    source = resolve_checkpoint(checkpoint)
    target = Path(output)
    if target.exists() and not target.is_file() and not target.is_dir():
        raise InvalidInputError(f"-o {output}: not a regular file; give a file path")
    if target.resolve() == source.resolve():
        raise InvalidInputError(f"-o {output}: would overwrite the checkpoint it exports")
    model, meta = load_model(source, device="cpu")
    spec = _spec(meta)
    facts = ExportFacts(
        file_name=target.name, source=str(checkpoint), version=__version__,
        arch=resolve_arch(meta.config.model, meta.vocab), alphabet=str(meta.alphabet["name"]),
        step=meta.step, spec=spec, signal_channels=model.signal_channels,
        inputs=input_names(model),
    )  # fmt: skip
    readme = render_readme(format, facts)
    readme_path = Path(str(target) + README_SUFFIX)
    with atomic_path(target) as tmp, atomic_write(readme_path) as handle:
        diff, checked = _WRITERS[format](model, meta, spec, tmp, readme)
        if diff > TOLERANCE[format]:
            raise ExportError(
                f"{format} export differs from the model by {diff:.3g} "
                f"(> {TOLERANCE[format]:g}); nothing was written"
            )
        handle.write(readme)
    return ExportResult(
        output=str(target), readme=str(readme_path), format=format, contents=CONTENTS[format],
        max_abs_diff=diff, sequences_checked=checked, seconds=time.perf_counter() - started,
    )  # fmt: skip


def _spec(meta: ModelMeta) -> SamplerSpec:
    s = meta.config.sample
    value = meta.value
    return SamplerSpec(
        letters=str(meta.alphabet["letters"]), labels=meta.labels, length=meta.length,
        pad=meta.pad, value_mean=value.mean[0] if value else None,
        value_std=value.std[0] if value else None, steps=s.steps, solver=s.solver,
        decode=s.decode, guidance=s.guidance, batch_size=s.batch_size,
        geometry=meta.config.flow.geometry, target=meta.config.flow.target,
    )  # fmt: skip


def _info(meta: ModelMeta, fmt: str) -> str:
    """The metadata stored inside a TorchScript or ONNX export, as JSON."""
    return json.dumps({
        "format": f"seqflow-{fmt}", "seqflow_version": __version__,
        "checkpoint_format_version": FORMAT_VERSION, "config": meta.config.to_dict(),
        "alphabet": meta.alphabet, "labels": list(meta.labels), "length": meta.length,
        "variable_length": meta.variable_length, "pad": meta.pad, "step": meta.step,
        "value": meta.value.to_dict() if meta.value else None,
        "signal": meta.signal.to_dict() if meta.signal else None,
    })  # fmt: skip


def _velocity_diff(model: VelocityField, meta: ModelMeta, fn: Callable[..., Tensor]) -> float:
    """Largest |fn(inputs) - model.velocity(inputs)| on random inputs."""
    inputs = velocity_inputs(model, length=meta.length, vocab=meta.vocab, batch=CHECK_BATCH,
                             seed=1)  # fmt: skip
    with torch.no_grad():
        want = model.velocity(inputs["x"], inputs["t"], **velocity_kwargs(inputs))
        got = fn(inputs)
    return float((got - want).abs().max())


def _torchscript(
    model: VelocityField, meta: ModelMeta, spec: SamplerSpec, tmp: Path, readme: str
) -> tuple[float, int]:
    extra = {"README.md": readme, "seqflow.json": _info(meta, "torchscript")}
    save_scripted(script_sampler(model, meta.geometry, spec), tmp, extra)
    loaded = load_scripted(tmp)
    diff = _velocity_diff(
        model, meta, lambda i: loaded.velocity(i["x"], i["t"], **velocity_kwargs(i))
    )
    solver = spec.solver
    if solver not in SCRIPTED_SOLVERS:
        warnings.warn(
            f"the run samples with {solver}, which the TorchScript sampler does not run; "
            "call sample(..., solver='rk4') (or euler, midpoint) on the exported model",
            stacklevel=2,
        )
        solver = "rk4"
    cases: list[tuple[int | None, float | None, float]] = [(None, None, spec.guidance)]
    if meta.labels or meta.value:
        cases.append((0 if meta.labels else None, meta.value.mean[0] if meta.value else None, 2.0))
    steps = min(spec.steps, CHECK_STEPS)
    for label, value, guidance in cases:
        got = loaded.sample(CHECK_N, 0, steps, label, value, guidance, solver, None, CHECK_CHUNK)
        want = torch.cat(list(generate(
            model, n=CHECK_N, length=meta.length, vocab=meta.vocab,
            cond=condition(label, standardised_value(meta, value), None), guidance=guidance,
            steps=steps, solver=solver, decoder=spec.decode, pad=meta.pad,
            geometry=meta.geometry, target=spec.target, batch_size=CHECK_CHUNK, seed=0,
        )))  # fmt: skip
        if not torch.equal(got, want):
            raise ExportError(
                "the TorchScript sampler's sequences differ from seqflow sample's "
                f"(label={label}, value={value}, solver {solver}); nothing was written"
            )
    return diff, CHECK_N * len(cases)


def _onnx(
    model: VelocityField, meta: ModelMeta, spec: SamplerSpec, tmp: Path, readme: str
) -> tuple[float, int]:
    example = velocity_inputs(model, length=meta.length, vocab=meta.vocab, batch=2)
    save_onnx(model, tmp, example, {"seqflow": _info(meta, "onnx")})
    return _velocity_diff(model, meta, lambda inputs: run_onnx(tmp, inputs)), 0


def _safetensors(
    model: VelocityField, meta: ModelMeta, spec: SamplerSpec, tmp: Path, readme: str
) -> tuple[float, int]:
    state = model.state_dict()
    save_model(tmp, None, state, meta)
    loaded, _ = load_model(tmp, device="cpu")
    if any(not torch.equal(v, state[k]) for k, v in loaded.state_dict().items()):
        raise ExportError(
            "the safetensors bundle's weights differ from the run's; nothing was written"
        )
    return _velocity_diff(
        model, meta, lambda i: loaded.velocity(i["x"], i["t"], **velocity_kwargs(i))
    ), 0


_WRITERS = {"torchscript": _torchscript, "onnx": _onnx, "safetensors": _safetensors}
