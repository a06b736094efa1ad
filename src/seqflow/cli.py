"""The ``seqflow`` command line: parse options, call :mod:`seqflow.api`, draw with Rich.

User mistakes (``SeqflowError``) print one red line on stderr and exit with code 2; generated
sequences go to stdout only when no ``-o`` file is given, so ``seqflow sample`` pipes.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from seqflow import api
from seqflow._version import __version__
from seqflow.config import list_presets
from seqflow.errors import SeqflowError
from seqflow.training import Progress as TrainProgress

err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])


def _preset_help() -> str:
    try:
        presets = list_presets()
    except SeqflowError:
        return ""
    lines = [f"{name} ({cfg.hardware.upper()}): {cfg.description}" for name, cfg in presets.items()]
    return "Presets: " + "; ".join(lines) + "."


app = typer.Typer(
    name="seqflow",
    help="Train and sample Fisher-Flow generative models of DNA, RNA and protein sequences.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """Warnings from the library as one yellow line each (no source line, no traceback)."""
    err.print(f"[bold yellow]warning:[/] {message}", soft_wrap=True, markup=True, highlight=False)


def _user_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                warnings.showwarning = _show_warning
                return fn(*args, **kwargs)
        except SeqflowError as error:
            err.print(f"[bold red]error:[/] {error}", soft_wrap=True, markup=True)
            raise typer.Exit(error.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seqflow {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")
    ] = False,
) -> None:
    """Train and sample Fisher-Flow generative models of DNA, RNA and protein sequences."""


class _FitView:
    """Renders engine callbacks: a live bar on a terminal, plain log lines otherwise."""

    def __init__(self) -> None:
        self.live = err.is_terminal
        self.bar: Progress | None = None
        self.task: Any = None
        self.valid: float | None = None

    def start(self, plan: api.FitPlan) -> None:
        conditions = []
        if plan.labels:
            conditions.append(f"{len(plan.labels)} labels")
        if plan.value:
            conditions.append(f"value {plan.value}")
        if plan.signal_channels:
            conditions.append(f"{plan.signal_channels}-channel signal")
        detected = " (detected)" if plan.alphabet_detected else ""
        length = f"up to {plan.length}" if plan.variable_length else f"{plan.length}"
        test = f" / {plan.n_test:,} test (held out)" if plan.n_test else ""
        cond = f"; conditioned on {', '.join(conditions)}" if conditions else ""
        if plan.read_summary:
            err.print(f"[yellow]read[/]: {plan.read_summary}", soft_wrap=True)
        err.print(
            f"seqflow fit: {plan.n_train:,} train / {plan.n_valid:,} valid{test} sequences of "
            f"length {length}; alphabet {plan.alphabet}{detected}{cond}; {plan.arch} with "
            f"{plan.parameters:,} parameters on {plan.device}; preset {plan.preset}; "
            f"run folder {plan.run_dir}",
            soft_wrap=True,
        )
        if self.live:
            self.bar = Progress(
                TextColumn("[bold]fit"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"), TextColumn("valid {task.fields[valid]}"),
                TextColumn("{task.fields[speed]} steps/s"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), console=err,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(
                "fit", total=plan.steps, completed=plan.start_step, loss="-", valid="-", speed="-"
            )

    def progress(self, p: TrainProgress) -> None:
        if p.valid_loss is not None:
            self.valid = p.valid_loss
        loss = f"{p.loss:.4g}" if p.loss is not None else "-"
        valid = f"{self.valid:.4g}" if self.valid is not None else "-"
        if self.bar is not None:
            self.bar.update(
                self.task,
                completed=p.step,
                loss=loss,
                valid=valid,
                speed=f"{p.steps_per_second:.1f}",
            )
        else:
            err.print(
                f"step {p.step}/{p.total} loss {loss} valid {valid} "
                f"{p.steps_per_second:.1f} steps/s {p.elapsed:.0f}s",
                soft_wrap=True,
            )

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@app.command(epilog=_preset_help())
@_user_errors
def fit(
    data: Annotated[
        str,
        typer.Argument(help="FASTA, FASTQ, CSV or TSV (plain or .gz); - reads standard input."),
    ],
    preset: Annotated[
        str | None,
        typer.Option(
            help="Preset name (see `seqflow presets`); default: dna for DNA/RNA, protein otherwise."
        ),
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", help="YAML config file (same sections as a preset).")
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override one config key, e.g. --set train.lr=3e-4 (repeatable)."
        ),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Run folder for checkpoints and metrics \\[default: runs/<data name>].",
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps (train.steps).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Minibatch size (train.batch_size).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (train.device).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (train.seed).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    seq_col: Annotated[
        str | None,
        typer.Option(
            help="CSV/TSV column with sequences \\[default: sequence or seq].",
            rich_help_panel="Data",
        ),
    ] = None,
    label_col: Annotated[
        str | None,
        typer.Option(
            help="CSV/TSV column of class labels; sample with --label.",
            rich_help_panel="Conditions",
        ),
    ] = None,
    value_col: Annotated[
        str | None,
        typer.Option(
            help="CSV/TSV column of a number per sequence (e.g. activity); sample with --value.",
            rich_help_panel="Conditions",
        ),
    ] = None,
    signal_col: Annotated[
        str | None,
        typer.Option(
            help="CSV/TSV column of per-position numbers (one per letter, separated "
            "by spaces, commas or ;); sample with --signal.",
            rich_help_panel="Conditions",
        ),
    ] = None,
    signal_file: Annotated[
        str | None,
        typer.Option(
            help=".npy/.npz (N, L[, C]) or text file of signal rows, matched to the "
            "records by order; sample with --signal.",
            rich_help_panel="Conditions",
        ),
    ] = None,
    split_col: Annotated[
        str | None,
        typer.Option(
            help="CSV/TSV column train/valid/test; test rows are left out.", rich_help_panel="Data"
        ),
    ] = None,
    valid_frac: Annotated[
        float | None,
        typer.Option(
            help="Share held out for validation when there is no --split-col \\[default: 0.05].",
            rich_help_panel="Data",
        ),
    ] = None,
    alphabet: Annotated[
        str | None,
        typer.Option(
            help="dna, rna, protein, auto (detected and reported), or the letters "
            "themselves, e.g. ACGTN.",
            rich_help_panel="Data",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="auto (from the suffix, else the content), fasta, fastq, csv or tsv.",
            rich_help_panel="Data",
        ),
    ] = None,
    on_invalid: Annotated[
        str | None,
        typer.Option(
            help="Letters outside the alphabet (e.g. N): error (default; names the "
            "record and position), skip the record, or replace with a random letter.",
            rich_help_panel="Data",
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        typer.Option(
            help="Longest sequence to model \\[default: the longest in the data]. "
            "Unequal lengths are modelled with an end category.",
            rich_help_panel="Data",
        ),
    ] = None,
    crop: Annotated[
        bool | None,
        typer.Option(
            "--crop/--no-crop",
            help="Cut sequences longer than --max-length instead of stopping with an error.",
            rich_help_panel="Data",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Train a model on DATA and write a run folder (checkpoint, config, metrics.jsonl).

    Examples:

      seqflow fit examples/dhs_4k.fasta --out runs/dhs

      seqflow fit examples/dhs_4k.csv --label-col cell_type --out runs/dhs_by_cell

      seqflow fit peptides.csv --value-col activity --max-length 60 --crop --preset protein
    """
    view = _FitView()
    try:
        result = api.fit(
            data, preset=preset, config_file=config, overrides=overrides or [], out=out,
            steps=steps, batch_size=batch_size, device=device, seed=seed, resume=resume,
            seq_col=seq_col, label_col=label_col, value_col=value_col, signal_col=signal_col,
            signal_file=signal_file, split_col=split_col, valid_frac=valid_frac,
            alphabet=alphabet, fmt=fmt, on_invalid=on_invalid, max_length=max_length, crop=crop,
            on_start=view.start, on_progress=view.progress,
        )  # fmt: skip
    except KeyboardInterrupt:
        view.stop()
        err.print(
            "[yellow]interrupted[/]: the last step is checkpointed; continue with --resume",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    finally:
        view.stop()
    loss = f"{result.loss:.4g}" if result.loss is not None else "-"
    valid = f", valid loss {result.valid_loss:.4g}" if result.valid_loss is not None else ""
    err.print(
        f"[green]done[/]: {result.steps} steps in {result.seconds:.0f}s, loss {loss}{valid}; "
        f"checkpoint {result.checkpoint}", soft_wrap=True,
    )  # fmt: skip


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


@app.command()
@_user_errors
def presets() -> None:
    """List the presets: which hardware each is for and what it trains."""
    table = Table("preset", "for", "model", "steps", "batch", "description")
    for name, cfg in list_presets().items():
        m = cfg.model
        table.add_row(
            name,
            cfg.hardware.upper(),
            f"{m.arch} {m.hidden}x{m.depth}",
            str(cfg.train.steps),
            str(cfg.train.batch_size),
            cfg.description,
        )
    Console().print(table)


def run() -> None:
    """Console-script entry point."""
    app()
