"""Usage errors (an unknown option, a missing argument, a bad choice) as one line on stderr
with exit code 2, like every other user mistake, instead of Typer's boxed usage text."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

_err = Console(stderr=True, highlight=False)
# click's exception classes, found from a public one: recent Typer vendors its own click
_CLICK = {c.__name__: c for c in typer.BadParameter.__mro__}
UsageError: type[Exception] = _CLICK["UsageError"]
ClickException: type[Exception] = _CLICK["ClickException"]


class OneLineUsage(TyperGroup):
    """The app's command group: its ``main`` prints a usage error as ``error: <command>:
    <problem> (see <command> -h)``; help, ``--version`` and commands run as usual."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # bare ``seqflow``: the help
                e.show()  # type: ignore[attr-defined]
                sys.exit(getattr(e, "exit_code", 2))
            ctx = getattr(e, "ctx", None)
            where = ctx.command_path if ctx is not None else "seqflow"
            problem = " ".join(e.format_message().split())  # type: ignore[attr-defined]
            _fail(f"{where}: {problem} (see {where} -h)", e)
        except ClickException as e:
            _fail(" ".join(e.format_message().split()), e)  # type: ignore[attr-defined]
        except typer.Abort:
            _err.print("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, error: Exception) -> None:
    _err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    sys.exit(getattr(error, "exit_code", 2))
