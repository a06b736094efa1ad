"""The velocity field as an ONNX graph, run back with onnxruntime to check it.

Inputs, each with a dynamic batch axis: ``x`` (batch, length, vocab) float32, ``t`` (batch,)
float32, and as the model takes them ``label`` (batch,) int64 (``num_labels`` = no label),
``value`` (batch,) float32 (standardised; NaN = no value) and ``signal`` (batch, length,
channels) float32 (standardised; all-NaN row = no signal). Output ``v`` (batch, length, vocab).

The graph comes from torch.onnx's TorchScript-based exporter (``dynamo=False``, opset 17):
faster and quieter than the ``torch.export``-based one, it needs only ``onnx`` and traces this
static network on every supported torch (its deprecation warning from 2.9 is silenced). onnx
and onnxruntime are an optional extra (``pip install "seqflow[onnx]"``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from seqflow.errors import InvalidInputError
from seqflow.export.inputs import velocity_kwargs
from seqflow.models import VelocityField

OPSET = 17
ONNX_HINT = 'the onnx format needs onnx and onnxruntime: pip install "seqflow[onnx]"'


def require_onnx() -> Any:
    """The onnxruntime module; :class:`InvalidInputError` with the install hint when onnx or
    onnxruntime is missing."""
    try:
        import onnx  # noqa: F401  # the exporter writes through it
        import onnxruntime
    except ImportError:
        raise InvalidInputError(ONNX_HINT) from None
    return onnxruntime


class _Graph(nn.Module):
    """``forward(x, t, *conditions)`` with the conditions named by ``names``."""

    def __init__(self, field: VelocityField, names: tuple[str, ...]) -> None:
        super().__init__()
        self.field = field
        self.names = names

    def forward(self, x: Tensor, t: Tensor, *conditions: Tensor) -> Tensor:
        given = dict(zip(self.names, conditions, strict=True))
        return self.field.velocity(x, t, **velocity_kwargs(given))


def save_onnx(
    field: VelocityField, path: str | Path, inputs: dict[str, Tensor], metadata: dict[str, str]
) -> None:
    """Export ``field`` (CPU, eval mode) to ``path`` with string ``metadata``
    (``metadata_props``); example ``inputs`` by ONNX name, in order, fix the graph's inputs."""
    import onnx

    names = tuple(inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Graph(field, names[2:]),
            tuple(inputs.values()),
            str(path),
            input_names=list(names),
            output_names=["v"],
            dynamic_axes={name: {0: "batch"} for name in (*names, "v")},
            opset_version=OPSET,
            dynamo=False,
        )
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(graph, metadata)
    onnx.save(graph, str(path))


def run_onnx(path: str | Path, inputs: dict[str, Tensor]) -> Tensor:
    """Velocity from the ONNX graph at ``path`` on the CPU with onnxruntime, as a tensor."""
    ort = require_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no console chatter
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feeds = {name: value.cpu().numpy() for name, value in inputs.items()}
    return torch.from_numpy(session.run(["v"], feeds)[0])
