"""``seqflow export``."""

from __future__ import annotations

from typing import Annotated

import typer

from seqflow import api
from seqflow.cli._app import _in, _user_errors, app, err

_OPTIONS = {
    "format": _in(None, "torchscript, onnx or safetensors.", "--format", "-f", show_default=False),
    "output": _in(None, "File to write; PATH.README.md goes beside it.", "--output", "-o"),
}


@app.command()
@_user_errors
def export(
    checkpoint: Annotated[str, typer.Argument(help="Run folder or model .safetensors file.")],
    format: Annotated[str, _OPTIONS["format"]],
    output: Annotated[str, _OPTIONS["output"]],
) -> None:
    """Export a trained run's EMA model for use outside seqflow training.

    \b
    torchscript  the velocity network and the whole sampler in one TorchScript
                 file that needs only torch: model = torch.jit.load(PATH);
                 model.sample_sequences(10, seed=0) gives the sequences
                 `seqflow sample RUN -n 10 --seed 0` gives (solvers euler,
                 midpoint, rk4; labels and values; every geometry; no signal
                 conditions).
    onnx         the velocity network as an ONNX graph (inputs x, t and the
                 model's label/value/signal; dynamic batch); needs
                 pip install "seqflow\\[onnx]".
    safetensors  an inference bundle: EMA weights and metadata, no optimizer
                 or raw weights; `seqflow sample PATH` reads it.

    Each export is loaded back and checked against the run's model before it is written, and
    a README with a loading snippet is written to PATH.README.md. Examples:

      seqflow export runs/dhs --format torchscript -o dhs.pt

      seqflow export runs/dhs -f safetensors -o dhs.safetensors
    """
    result = api.export(checkpoint, format=format, output=output)
    checked = f"velocity max |diff| {result.max_abs_diff:.2g}"
    if result.sequences_checked:
        checked += f", {result.sequences_checked} sequences equal to seqflow sample's"
    err.print(
        f"[green]wrote[/] {result.output} ({result.contents}) and {result.readme} in "
        f"{result.seconds:.1f}s; checked: {checked}",
        soft_wrap=True,
    )
