"""``seqflow plot``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from seqflow import api
from seqflow.cli._app import _in, _user_errors, app, err

_OUTPUT = _in(None, "PNG to write \\[default: RUN/loss.png].", "--output", "-o", show_default=False)


@app.command()
@_user_errors
def plot(
    run: Annotated[str, typer.Argument(help="Run folder (holding metrics.jsonl).")],
    output: Annotated[str | None, _OUTPUT] = None,
) -> None:
    """Draw a run's training and validation loss against the step (needs matplotlib:
    pip install "seqflow\\[plots]").

    The y axis is logarithmic when the losses span more than a decade; resumes from an
    earlier checkpoint are marked. Works while the run trains. Example:

      seqflow plot runs/dhs -o dhs_loss.png
    """
    path = api.plot_run(run, output=output)
    err.print(f"[green]wrote[/] {escape(str(path))}", soft_wrap=True)
