"""Export engines: a self-contained TorchScript sampler, an ONNX velocity graph, and the README
written beside each export. The API (:func:`seqflow.api.export`) loads the checkpoint, checks
every export against the model and writes the files."""

from seqflow.export.inputs import input_names, velocity_inputs, velocity_kwargs
from seqflow.export.onnx_graph import ONNX_HINT, require_onnx, run_onnx, save_onnx
from seqflow.export.readme import ExportFacts, render_readme
from seqflow.export.scripted import (
    SCRIPTED_SOLVERS,
    SamplerSpec,
    ScriptedSampler,
    load_scripted,
    save_scripted,
    script_sampler,
)

__all__ = [
    "ONNX_HINT",
    "SCRIPTED_SOLVERS",
    "ExportFacts",
    "SamplerSpec",
    "ScriptedSampler",
    "input_names",
    "load_scripted",
    "render_readme",
    "require_onnx",
    "run_onnx",
    "save_onnx",
    "save_scripted",
    "script_sampler",
    "velocity_inputs",
    "velocity_kwargs",
]
