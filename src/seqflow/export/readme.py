"""The README written beside an export (and into a TorchScript file): what the file holds and a
copy-paste snippet that loads it."""

from __future__ import annotations

from dataclasses import dataclass

from seqflow.export.scripted import SamplerSpec


@dataclass(frozen=True)
class ExportFacts:
    """What a README says about the exported model.

    Attributes:
        file_name, source, version: the exported file's name, the checkpoint it came from and
            the seqflow version that wrote it.
        arch: the velocity backbone (``cnn`` or ``transformer``).
        alphabet: the alphabet's name (``dna``, ``protein``, ...).
        step: training steps of the checkpoint.
        spec: letters, conditions and sampling defaults.
        signal_channels: channels of the signal condition (0: none).
        inputs: the velocity's input names (see :mod:`seqflow.export.inputs`).
    """

    file_name: str
    source: str
    version: str
    arch: str
    alphabet: str
    step: int
    spec: SamplerSpec
    signal_channels: int
    inputs: tuple[str, ...]


POINTS = {
    "fisher": "on the positive orthant of the unit sphere per position (square roots of "
    "probabilities)",
    "simplex": "probabilities per position (points of the simplex)",
    "dirichlet": "probabilities per position (points of the simplex)",
    "egeodesic": "mean-free logits per position",
}
"""What a point ``x`` is in each geometry."""


def render_readme(fmt: str, facts: ExportFacts) -> str:
    """Markdown README for an export of format ``fmt`` (torchscript, onnx or safetensors)."""
    body = {"torchscript": _torchscript, "onnx": _onnx, "safetensors": _safetensors}[fmt](facts)
    return _header(fmt, facts) + body


def _header(fmt: str, f: ExportFacts) -> str:
    s = f.spec
    shape = f"length {s.length}, {s.vocab} categories per position"
    if s.pad is not None:
        shape += f"; variable length: category {s.pad} is the end/pad category"
    conditions = []
    if s.labels:
        conditions.append(f"class label ({', '.join(s.labels)}; index {len(s.labels)} = none)")
    if s.value_mean is not None:
        conditions.append(
            f"scalar value (standardised: (value - {s.value_mean:.6g}) / {s.value_std:.6g})"
        )
    if f.signal_channels:
        conditions.append(f"signal track ({f.signal_channels} channel(s), standardised)")
    return (
        f"# {f.file_name}: seqflow {fmt} export\n\n"
        f"Written by seqflow {f.version} from `{f.source}` (EMA weights after {f.step} "
        "training steps).\n\n"
        f"- Model: {f.arch} network of a {s.geometry} flow, {f.alphabet} alphabet `{s.letters}` "
        f"(token i is letter i), {shape}.\n"
        f"- Conditions: {'; '.join(conditions) if conditions else 'none'}.\n"
        f"- The run samples with solver {s.solver}, {s.steps} steps, decode {s.decode}, "
        f"guidance {s.guidance:g}, batch size {s.batch_size}.\n"
    )


def _torchscript(f: ExportFacts) -> str:
    s = f.spec
    label = f', label="{s.labels[0]}", guidance=2.0' if s.labels else ""
    return f"""
## Contents

One TorchScript archive: the network and the whole sampler (the {s.geometry} geometry's prior,
the fixed-step solvers euler, midpoint and rk4, classifier-free guidance, decoding, end/pad
handling), compiled from seqflow's own code. It runs with torch alone; seqflow
need not be installed. Inside the archive: `README.md` (this text) and `seqflow.json` (run
config, alphabet, labels, length, value standardisation, sampling defaults, seqflow version).

With the same seed, steps and conditions, `sample` gives the same sequences as
`seqflow sample CHECKPOINT -n N --seed S --steps K` on the same device and thread settings
(keep the default `batch_size`: one seeded random stream runs across the batches).
Not included: the adaptive `dopri5` solver, signal conditions (the velocity takes a signal;
the sampler samples without one) and fixed positions. Recent torch versions warn that
`torch.jit` is deprecated; the archive still loads and runs.

## Load

```python
import json
import torch

extra = {{"seqflow.json": ""}}
model = torch.jit.load("{f.file_name}", map_location="cpu", _extra_files=extra)
info = json.loads(extra["seqflow.json"])           # config, alphabet, labels, ...
seqs = model.sample_sequences(10, seed=0{label})  # list of strings
tokens = model.sample(10, seed=0, steps={s.steps})  # int64 tensor (10, {s.length})
```

Keyword arguments of `sample` and `sample_sequences` (None: the run's default): `n`, `seed`,
`steps`, `label` (name or index), `value` (on the training scale), `guidance`, `solver`
(euler, midpoint, rk4), `decode` (argmax, sample), `batch_size`. `model.velocity(x, t,
labels, values, signal)` is the network: x (batch, {s.length}, {s.vocab}) {POINTS[s.geometry]},
t (batch,), and the conditions the model takes (labels int64, index {len(s.labels)} = none; values
standardised, NaN = none).
"""


def _onnx(f: ExportFacts) -> str:
    s = f.spec
    rows = {
        "x": f"float32 (batch, {s.length}, {s.vocab}): points {POINTS[s.geometry]}",
        "t": "float32 (batch,): time in [0, 1]",
        "label": f"int64 (batch,): class index, {len(s.labels)} = no label",
        "value": "float32 (batch,): standardised value (see above), NaN = no value",
        "signal": f"float32 (batch, {s.length}, {f.signal_channels}): standardised signal, "
        "an all-NaN row = no signal",
    }
    table = "\n".join(f"| `{name}` | {rows[name]} |" for name in f.inputs)
    feeds = ", ".join(f'"{name}": {name}' for name in f.inputs)
    shape = f"8, {s.length}, {s.vocab}"
    setup = {
        "x": f"z = np.abs(rng.standard_normal(({shape}))).astype(np.float32)\n"
        "x = z / np.linalg.norm(z, axis=-1, keepdims=True)  # prior points",
        "t": "t = np.zeros(8, dtype=np.float32)",
        "label": "label = np.zeros(8, dtype=np.int64)"
        + (f"  # class {s.labels[0]}" if s.labels else ""),
        "value": "value = np.full(8, np.nan, dtype=np.float32)  # no value",
        "signal": f"signal = np.full((8, {s.length}, {f.signal_channels}), np.nan, "
        "dtype=np.float32)  # no signal",
    }
    lines = "\n".join(setup[name] for name in f.inputs)
    return f"""
## Contents

The velocity network alone, as an ONNX graph (opset 17) with a dynamic batch axis; the
sampler is not included. The graph's metadata property `seqflow` holds the run's config,
alphabet, labels and standardisations as JSON.

| input | meaning |
|---|---|
{table}

{_onnx_output(s)}

## Load

```python
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession("{f.file_name}", providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
{lines}
v = session.run(["v"], {{{feeds}}})[0]  # ({shape})
```
"""


def _onnx_output(s: SamplerSpec) -> str:
    shape = f"float32 (batch, {s.length}, {s.vocab})"
    if s.geometry != "fisher" or s.target == "denoiser":
        logits = s.geometry == "dirichlet" or s.target == "denoiser"
        what = "logits of the letters" if logits else "the velocity"
        return (
            f"Output `v`: {shape}, {what}. Sampling follows seqflow's {s.geometry} geometry "
            "(prior, steps, decoding); the torchscript export carries that sampler."
        )
    return f"""Output `v`: {shape}, the velocity, tangent to the sphere at
`x`. To sample, start from `|z| / ||z||` with `z` standard normal, take {s.steps} {s.solver}
steps from t = 0 to 1 on the sphere (an Euler step is `x <- exp_x(h v)`, then clamp at 0 and
renormalise), and decode each position by the argmax of `x**2`."""


def _safetensors(f: ExportFacts) -> str:
    return f"""
## Contents

An inference bundle: the EMA weights (tensors `ema.*`) and the checkpoint's metadata (run
config, alphabet, labels, length, value and signal standardisation, format and seqflow
versions). No optimizer or trainer state and no raw (non-EMA) weights. seqflow reads it as it
reads a run's `model.safetensors`, and it samples the same sequences as the run.

## Load

```bash
seqflow sample {f.file_name} -n 100 --seed 0 -o designs.fasta
```

```python
from seqflow.checkpoint import load_model

model, meta = load_model("{f.file_name}")  # VelocityField (eval mode), ModelMeta
```

Without seqflow: `safetensors.safe_open("{f.file_name}", "pt").metadata()` holds the JSON
metadata, and `safetensors.torch.load_file` the weights.
"""
