"""``seqflow sample``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from seqflow import api
from seqflow.cli._app import _user_errors, app, err


@app.command()
@_user_errors
def sample(
    checkpoint: Annotated[str, typer.Argument(help="Run folder or model .safetensors file.")],
    n: Annotated[
        int | None,
        typer.Option(
            "-n",
            "--num",
            help="Number of sequences \\[default: 100, or one per --signal row].",
            show_default=False,
        ),
    ] = None,
    label: Annotated[
        str | None,
        typer.Option(
            help="Class label to condition on (a value of the training --label-col).",
            rich_help_panel="Conditions",
        ),
    ] = None,
    value: Annotated[
        float | None,
        typer.Option(
            help="Value to condition on, on the scale of the training --value-col.",
            rich_help_panel="Conditions",
        ),
    ] = None,
    signal: Annotated[
        str | None,
        typer.Option(
            help=".npy/.npz/text file of signal rows; one sequence per row.",
            rich_help_panel="Conditions",
        ),
    ] = None,
    guidance: Annotated[
        float | None,
        typer.Option(
            help="Classifier-free guidance weight: 1 = conditional, 0 = unconditional, "
            ">1 = stronger.",
            rich_help_panel="Conditions",
        ),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(help="Integration steps \\[default: from run].")
    ] = None,
    solver: Annotated[
        str | None, typer.Option(help="euler, midpoint, rk4 or dopri5 \\[default: from run].")
    ] = None,
    decode: Annotated[
        str | None,
        typer.Option(
            help="argmax (most likely letter) or sample (draw from the final probabilities)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same sequences.")] = 0,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="FASTA file to write; default or - is stdout."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Sequences per batch.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Generate sequences from a trained run and write them as FASTA.

    Headers carry the conditions (label=, value=, signal=FILE:ROW). Examples:

      seqflow sample runs/dhs -n 1000 -o designs.fasta

      seqflow sample runs/dhs_by_cell --label K562 --guidance 2 -n 500 > k562.fasta
    """
    to_file = output not in (None, "-")
    bar = None
    if to_file and err.is_terminal:
        bar = Progress(
            TextColumn("[bold]sample"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
        )
        bar.start()
    task = bar.add_task("sample", total=n) if bar is not None else None  # total set on progress

    def progress(done: int, total: int) -> None:
        if bar is not None and task is not None:
            bar.update(task, completed=done, total=total)

    try:
        result = api.sample(
            checkpoint, n=n, label=label, value=value, signal=signal, guidance=guidance,
            steps=steps, solver=solver,
            decode=decode, seed=seed, output=output, batch_size=batch_size, device=device,
            on_progress=progress,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.stop()
    if to_file:
        err.print(
            f"[green]wrote[/] {len(result.sequences)} sequences to {result.output} "
            f"in {result.seconds:.1f}s",
            soft_wrap=True,
        )
