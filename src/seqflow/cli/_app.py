"""The Typer application, the stderr console, and the wrapper that turns user mistakes and OS
errors into one red line and exit code 2 (library warnings into one yellow line; standard
output and signals: :mod:`seqflow.cli._errors`)."""

from __future__ import annotations

import contextlib
import functools
import logging
import warnings
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import torch
import typer
from rich.console import Console
from rich.markup import escape

from seqflow._version import __version__
from seqflow.cli._errors import os_boundary, os_error_line
from seqflow.cli._help import Typer
from seqflow.config import list_presets
from seqflow.errors import SeqflowError
from seqflow.options import FLAGS, Flag

err = Console(stderr=True, highlight=False)
log = logging.getLogger("seqflow")
F = TypeVar("F", bound=Callable[..., Any])


def _preset_help() -> str:
    try:
        presets = list_presets()
    except SeqflowError:
        return ""
    lines = [f"{name} ({cfg.hardware.upper()}): {cfg.description}" for name, cfg in presets.items()]
    return (
        "Presets: " + "; ".join(lines) + ". The dna preset's defaults (flow.target denoiser, "
        "flow.t_early 0.8, midpoint sampler, 25 steps, guidance 1.5 for labels) are what "
        "benchmarks/quality_budget.py chose on real DNA per CPU-minute (README: quality per "
        "CPU-minute); the others keep velocity. train.precision auto trains in bf16 on a GPU "
        "and on a CPU with AMX (2x the steps per CPU-minute), in fp32 elsewhere."
    )


app = Typer(
    name="seqflow",
    help="Train and sample Fisher-Flow generative models of DNA, RNA and protein sequences.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def option(key: str | Flag) -> Any:
    """The Typer option of the flag that sets config ``key`` (:data:`seqflow.options.FLAGS`),
    or of a flag declared outside the table (e.g. :data:`seqflow.options.THREADS`)."""
    f = FLAGS[key] if isinstance(key, str) else key
    return typer.Option(
        f.flag, help=f.help, rich_help_panel=f.panel, metavar=f.metavar, min=f.min,
        show_default=False,
    )  # fmt: skip


def _in(panel: str | None, help: str, *decls: str, **kwargs: Any) -> Any:
    """A Typer option (declared as ``decls``, else after its parameter) in ``--help`` panel
    ``panel`` (None: the main one)."""
    return typer.Option(*decls, help=help, rich_help_panel=panel, **kwargs)


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """Warnings from the library as one yellow line each (no source line, no traceback)."""
    text = escape(str(message))  # a message's own brackets (seqflow[onnx]) are not markup
    err.print(f"[bold yellow]warning:[/] {text}", soft_wrap=True, markup=True, highlight=False)


def _user_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings(), os_boundary():
                warnings.simplefilter("default")
                warnings.showwarning = _show_warning
                return fn(*args, **kwargs)
        except (SeqflowError, OSError) as error:
            err.quiet = False  # --quiet keeps errors
            line = str(error) if isinstance(error, SeqflowError) else os_error_line(error)
            err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True, markup=True)
            raise typer.Exit(getattr(error, "exit_code", 2)) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seqflow {__version__}")
        raise typer.Exit()


class _ConsoleHandler(logging.Handler):
    """Log records of the ``seqflow`` logger as dim lines on the stderr console."""

    def emit(self, record: logging.LogRecord) -> None:
        text = escape(self.format(record))
        err.print(f"[dim]{record.levelname.lower()}:[/] {text}", soft_wrap=True, markup=True)


def use_threads(threads: int | None) -> None:
    """Run torch on ``threads`` CPU threads (``--threads``; None keeps torch's default).

    Intra-op threads are set each time; inter-op threads only where torch still allows it
    (once per process, before any parallel work). The counts in use are logged at DEBUG.
    """
    if threads is not None:
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # already set, or parallel work has started
            torch.set_num_interop_threads(threads)
    log.debug(
        "torch threads: %d intra-op, %d inter-op",
        torch.get_num_threads(), torch.get_num_interop_threads(),
    )  # fmt: skip


_MAIN = {
    "version": _in(None, "Show version.", "--version", callback=_version, is_eager=True),
    "quiet": _in(None, "Print errors only (no progress, no warnings); before the command, e.g. "
                 "seqflow -q fit DATA.", "--quiet", "-q"),
    "verbose": _in(None, "Print debug messages as well (e.g. the torch threads in use); before "
                   "the command.", "--verbose", "-v"),
}  # fmt: skip


@app.callback()
def main(
    version: Annotated[bool, _MAIN["version"]] = False,
    quiet: Annotated[bool, _MAIN["quiet"]] = False,
    verbose: Annotated[bool, _MAIN["verbose"]] = False,
) -> None:
    """Train and sample Fisher-Flow generative models of DNA, RNA and protein sequences."""
    if quiet and verbose:
        raise typer.BadParameter("give --quiet or --verbose, not both")
    err.quiet = quiet
    if not any(isinstance(h, _ConsoleHandler) for h in log.handlers):
        log.addHandler(_ConsoleHandler())
    log.setLevel(logging.ERROR if quiet else logging.DEBUG if verbose else logging.WARNING)


def run() -> None:
    """Console-script entry point."""
    app()
