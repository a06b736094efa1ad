"""``seqflow fit`` and ``seqflow presets``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
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
from seqflow.cli._app import _preset_help, _user_errors, app, err, option
from seqflow.config import list_presets
from seqflow.options import flag_keywords
from seqflow.training import Progress as TrainProgress
from seqflow.training import TrainingStopped
from seqflow.training.distributed import shard_from_env


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
                f"{p.steps_per_second:.1f} steps/s {p.elapsed:.0f}s"
                + (f" skipped {p.skipped} non-finite steps" if p.skipped else ""),
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
        str | None,
        typer.Argument(
            help="FASTA, FASTQ, CSV or TSV (plain or .gz); - reads standard input. "
            "Optional with --resume (the run remembers its file).",
            show_default=False,
        ),
    ] = None,
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
    steps: Annotated[int | None, option("train.steps")] = None,
    batch_size: Annotated[int | None, option("train.batch_size")] = None,
    device: Annotated[str | None, option("train.device")] = None,
    seed: Annotated[int | None, option("train.seed")] = None,
    compile: Annotated[bool | None, option("train.compile")] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_DIR",
            help="Continue the run in RUN_DIR from its last intact checkpoint (same data "
            "order, random state, optimizer, EMA and schedule); e.g. seqflow fit --resume "
            "runs/dhs --steps 8000.",
        ),
    ] = None,
    allow_changed_data: Annotated[
        bool,
        typer.Option(
            "--allow-changed-data",
            help="With --resume: train on the data file even though it changed since the run "
            "recorded it (else refused).",
        ),
    ] = False,
    seq_col: Annotated[str | None, option("data.seq_col")] = None,
    label_col: Annotated[str | None, option("data.label_col")] = None,
    value_col: Annotated[str | None, option("data.value_col")] = None,
    signal_col: Annotated[str | None, option("data.signal_col")] = None,
    signal_file: Annotated[str | None, option("data.signal_file")] = None,
    split_col: Annotated[str | None, option("data.split_col")] = None,
    mode: Annotated[str | None, option("mode")] = None,
    set_col: Annotated[str | None, option("data.set_col")] = None,
    valid_frac: Annotated[float | None, option("data.valid_frac")] = None,
    alphabet: Annotated[str | None, option("data.alphabet")] = None,
    fmt: Annotated[str | None, option("data.format")] = None,
    on_invalid: Annotated[str | None, option("data.on_invalid")] = None,
    max_length: Annotated[int | None, option("data.max_length")] = None,
    crop: Annotated[bool | None, option("data.crop")] = None,
    cache: Annotated[str | None, option("data.cache")] = None,
    num_workers: Annotated[int | None, option("data.num_workers")] = None,
) -> None:
    """Train a model on DATA and write a run folder (checkpoint, config, metrics.jsonl).

    Examples:

      seqflow fit examples/dhs_4k.fasta --out runs/dhs

      seqflow fit examples/dhs_4k.csv --label-col cell_type --out runs/dhs_by_cell

      seqflow fit peptides.csv --value-col activity --max-length 60 --crop --preset protein

      seqflow fit --resume runs/dhs --steps 8000

      seqflow fit rounds.csv --mode library --set-col round --label-col target --out runs/lib

    SIGTERM, SIGINT (Ctrl-C), SIGHUP and SIGUSR1 stop after the current step with a final
    checkpoint (exit code 128 + signal number); continue with --resume.
    """
    given = locals()
    view = _FitView()
    try:
        result = api.fit(
            data, preset=preset, config_file=config, overrides=overrides or [], out=out,
            resume=resume if resume is not None else False,
            allow_changed_data=allow_changed_data, **flag_keywords("fit", given),
            on_start=view.start, on_progress=view.progress,
        )  # fmt: skip
    except TrainingStopped as stop:
        view.stop()
        if shard_from_env().main:
            err.print(f"[yellow]stopped[/]: {escape(str(stop))}", soft_wrap=True)
        raise typer.Exit(stop.exit_code) from None
    except KeyboardInterrupt:
        view.stop()
        err.print(
            "[yellow]interrupted[/]: the last step is checkpointed; continue with "
            "seqflow fit --resume RUN_DIR",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    finally:
        view.stop()
    if not shard_from_env().main:  # under torchrun, rank 0 speaks for the run
        return
    loss = f"{result.loss:.4g}" if result.loss is not None else "-"
    valid = f", valid loss {result.valid_loss:.4g}" if result.valid_loss is not None else ""
    err.print(
        f"[green]done[/]: {result.steps} steps in {result.seconds:.0f}s, loss {loss}{valid}; "
        f"checkpoint {result.checkpoint}", soft_wrap=True,
    )  # fmt: skip


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
