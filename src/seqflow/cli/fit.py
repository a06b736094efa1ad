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
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from seqflow import api
from seqflow.cli._app import _in, _preset_help, _user_errors, app, err, option, use_threads
from seqflow.config import list_presets
from seqflow.options import THREADS, flag_keywords
from seqflow.run.scalars import ScalarLog
from seqflow.training import Progress as TrainProgress
from seqflow.training import TrainingStopped
from seqflow.training.distributed import shard_from_env


def _clock(seconds: float | None) -> str:
    """``H:MM:SS``, or ``-:--:--`` while unknown."""
    if seconds is None:
        return "-:--:--"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


class _EtaColumn(ProgressColumn):
    """Time left at the mean speed since the bar started (Rich's own estimate waits for a
    30 s window): shown from the first step on."""

    def render(self, task: Task) -> Text:
        done = task.completed - task.fields["first"]
        left = None
        if task.total is not None and task.elapsed and done > 0:
            left = task.elapsed / done * (task.total - task.completed)
        return Text(f"ETA {_clock(left)}", style="progress.remaining")


class _FitView:
    """Renders engine callbacks: a live bar on a terminal (moved every step), plain log lines
    with the ETA otherwise (every ``train.log_every`` steps); hands the scalars to ``--log``'s
    ``scalars`` too."""

    def __init__(self, scalars: ScalarLog | None) -> None:
        self.scalars = scalars
        self.bar: Progress | None = None
        self.task: Any = None
        self.valid: float | None = None

    def start(self, plan: api.FitPlan) -> None:
        if self.scalars is not None:
            self.scalars.start(plan.run_dir)
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
        if plan.budget:
            err.print(plan.budget, soft_wrap=True)
        if plan.read_summary:
            err.print(f"[yellow]read[/]: {plan.read_summary}", soft_wrap=True)
        err.print(
            f"seqflow fit: {plan.n_train:,} train / {plan.n_valid:,} valid{test} sequences of "
            f"length {length}; alphabet {plan.alphabet}{detected}{cond}; {plan.arch} with "
            f"{plan.parameters:,} parameters on {plan.device}; preset {plan.preset}; "
            f"run folder {plan.run_dir}",
            soft_wrap=True,
        )
        if err.is_terminal:
            self.bar = Progress(
                TextColumn("[bold]fit"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"), TextColumn("valid {task.fields[valid]}"),
                TextColumn("{task.fields[speed]} steps/s"), TimeElapsedColumn(), _EtaColumn(),
                console=err,
            )  # fmt: skip
            self.bar.start()
            self.task = self.bar.add_task(
                "fit", total=plan.steps, completed=plan.start_step, loss="-", valid="-", speed="-",
                first=plan.start_step,
            )  # fmt: skip

    def step(self, step: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step)

    def progress(self, p: TrainProgress) -> None:
        if self.scalars is not None:
            self.scalars(p)
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
                f"{p.steps_per_second:.1f} steps/s {p.elapsed:.0f}s ETA {_clock(p.eta)}"
                + (f" skipped {p.skipped} non-finite steps" if p.skipped else ""),
                soft_wrap=True,
            )

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.scalars is not None:
            self.scalars.close()


_OPTIONS = {
    "data": typer.Argument(help="FASTA, FASTQ, CSV or TSV (plain or .gz); - reads standard input. "
                           "Optional with --resume (the run remembers its file).",
                           show_default=False),
    "preset": _in(None, "Preset name (see `seqflow presets`); default: dna for DNA/RNA, protein "
                  "otherwise."),
    "config": _in(None, "YAML config file (same sections as a preset).", "--config"),
    "overrides": _in(None, "Override one config key, e.g. --set train.lr=3e-4 (repeatable).",
                     "--set"),
    "out": _in(None, "Run folder for checkpoints and metrics \\[default: runs/<data name>].",
               "--out", "-o"),
    "resume": _in(None, "Continue the run in RUN_DIR from its last intact checkpoint (same data "
                  "order, random state, optimizer, EMA and schedule); e.g. seqflow fit --resume "
                  "runs/dhs --steps 8000.", "--resume", metavar="RUN_DIR"),
    "allow_changed_data": _in(None, "With --resume: train on the data file even though it "
                              "changed since the run recorded it (else refused).",
                              "--allow-changed-data"),
    "log": _in(None, "Also log the scalars of metrics.jsonl to RUN/tensorboard/ (tensorboard; "
               "needs pip install 'seqflow\\[tensorboard]') or RUN/metrics.csv (csv).", "--log",
               metavar="tensorboard|csv"),
    "strict": _in(None, "Stop when --preset is made for another alphabet than the data's "
                  "(otherwise a warning).", "--strict"),
}  # fmt: skip
"""The argument and the options of ``fit`` that set no config key (the others:
:data:`seqflow.options.FLAGS`)."""


@app.command(epilog=_preset_help())
@_user_errors
def fit(
    data: Annotated[str | None, _OPTIONS["data"]] = None,
    preset: Annotated[str | None, _OPTIONS["preset"]] = None,
    config: Annotated[str | None, _OPTIONS["config"]] = None,
    overrides: Annotated[list[str] | None, _OPTIONS["overrides"]] = None,
    out: Annotated[str | None, _OPTIONS["out"]] = None,
    steps: Annotated[int | None, option("train.steps")] = None,
    time_budget: Annotated[str | None, option("train.time_budget")] = None,
    batch_size: Annotated[int | None, option("train.batch_size")] = None,
    device: Annotated[str | None, option("train.device")] = None,
    seed: Annotated[int | None, option("train.seed")] = None,
    compile: Annotated[bool | None, option("train.compile")] = None,
    resume: Annotated[str | None, _OPTIONS["resume"]] = None,
    allow_changed_data: Annotated[bool, _OPTIONS["allow_changed_data"]] = False,
    log: Annotated[str | None, _OPTIONS["log"]] = None,
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
    threads: Annotated[int | None, option(THREADS)] = None,
    strict: Annotated[bool, _OPTIONS["strict"]] = False,
) -> None:
    """Train a model on DATA and write a run folder (checkpoint, config, metrics.jsonl).

    Examples:

      seqflow fit examples/dhs_4k.fasta --out runs/dhs

      seqflow fit examples/dhs_4k.csv --label-col cell_type --out runs/dhs_by_cell

      seqflow fit peptides.csv --value-col activity --max-length 60 --crop \\
          --preset protein

      seqflow fit --resume runs/dhs --steps 8000

      seqflow fit examples/dhs_4k.fasta --time-budget 20m

      seqflow fit rounds.csv --mode library --set-col round --label-col target \\
          --out runs/lib

    SIGTERM, SIGINT (Ctrl-C), SIGHUP and SIGUSR1 stop after the current step with a final
    checkpoint (exit code 128 + signal number); continue with --resume.
    """
    given = locals()
    use_threads(threads)
    view = _FitView(ScalarLog(log) if log is not None else None)
    try:
        result = api.fit(
            data, preset=preset, config_file=config, overrides=overrides or [], out=out,
            resume=resume if resume is not None else False,
            allow_changed_data=allow_changed_data, **flag_keywords("fit", given),
            strict=strict, on_start=view.start, on_progress=view.progress, on_step=view.step,
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
    ran = result.steps - result.start_step
    total = f" ({result.steps} in all)" if result.start_step else ""
    err.print(
        f"[green]done[/]: {ran} steps{total} in {result.seconds:.0f}s, loss {loss}{valid}; "
        f"checkpoint {result.checkpoint}", soft_wrap=True,
    )  # fmt: skip


@app.command()
@_user_errors
def presets() -> None:
    """List the presets: which hardware each is for and what it trains."""
    table = Table("preset", "for", "model", "steps", "batch", "description")
    for name, cfg in list_presets().items():
        m, t = cfg.model, cfg.train
        model = f"{m.arch} {m.hidden}x{m.depth}"
        table.add_row(name, cfg.hardware.upper(), model, str(t.steps), str(t.batch_size),
                      cfg.description)  # fmt: skip
    Console().print(table)
