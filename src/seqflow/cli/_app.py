"""The Typer application, the stderr console, and the wrapper that turns user mistakes into
one red line and exit code 2 (library warnings into one yellow line)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from seqflow._version import __version__
from seqflow.cli._usage import OneLineUsage
from seqflow.config import list_presets
from seqflow.errors import SeqflowError
from seqflow.options import FLAGS

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
    cls=OneLineUsage,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def option(key: str) -> Any:
    """The Typer option of the flag that sets config ``key`` (:data:`seqflow.options.FLAGS`)."""
    f = FLAGS[key]
    return typer.Option(
        f.flag, help=f.help, rich_help_panel=f.panel, metavar=f.metavar, min=f.min,
        show_default=False,
    )  # fmt: skip


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """Warnings from the library as one yellow line each (no source line, no traceback)."""
    text = escape(str(message))  # a message's own brackets (seqflow[onnx]) are not markup
    err.print(f"[bold yellow]warning:[/] {text}", soft_wrap=True, markup=True, highlight=False)


def _user_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("default")
                warnings.showwarning = _show_warning
                return fn(*args, **kwargs)
        except SeqflowError as error:
            err.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True, markup=True)
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


def run() -> None:
    """Console-script entry point."""
    app()
