"""``--help`` in click's words under any Typer: option types as ``TEXT``/``INTEGER``, usage
lines with ``NAME``, prose paragraphs wrapped to the terminal and examples kept line by line.
Usage errors (an unknown option, a missing argument, a bad choice) print as one line on stderr
with exit code 2, like every other user mistake, instead of Typer's boxed usage text."""

from __future__ import annotations

import inspect
import re
import sys
import typing
from typing import Any

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

_TYPE_WORDS = {str: "TEXT", int: "INTEGER", float: "FLOAT"}
_err = Console(stderr=True, highlight=False)
# click's exception classes, found from a public one: recent Typer vendors its own click
_CLICK = {c.__name__: c for c in typer.BadParameter.__mro__}
UsageError: type[Exception] = _CLICK["UsageError"]
ClickException: type[Exception] = _CLICK["ClickException"]


class _ClickWords:
    """Help in click's words: option types as ``TEXT``, ``INTEGER``, ``FLOAT`` (Typer 0.2x
    prints ``<str>``, ``<int>``; flags print none) and required arguments in the usage line as
    ``NAME`` (not ``{name}``). Mixed into the Typer command and group classes; older Typers
    (no ``type_descriptor``) already print these."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for p in params:
            described = getattr(p, "type_descriptor", None)
            if p.metavar is not None or described is None:
                continue
            if isinstance(p, typer.core.TyperArgument):
                p.metavar = (p.name or "").upper()
                p.display_type_rich = lambda ctx: None  # type: ignore[method-assign]  # no <str>
            elif getattr(p, "is_flag", False) or getattr(p, "count", False):
                p.metavar = ""
            else:
                kind = described.annotation
                kind = typing.get_args(kind)[0] if described.is_list else kind
                p.metavar = _TYPE_WORDS.get(kind, "TEXT")
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)  # type: ignore[misc]
        return [re.sub(r"^\{(.*)\}", r"\1", piece) for piece in pieces]


def _laid_out(text: str) -> str:
    """Help text with each prose paragraph on one line, for Rich to wrap to the terminal; a
    paragraph with indented lines (examples, with indented continuation lines) or one that
    starts with a ``\\b`` line (click's keep-as-is mark, which Typer 0.2x prints) keeps its
    line breaks (Typer 0.2x keeps every line break of a docstring, so prose breaks raggedly)."""
    paragraphs = []
    for p in inspect.cleandoc(text).split("\n\n"):
        lines = p.split("\n")
        if lines[0].strip() == "\b":
            paragraphs.append("\n".join(lines[1:]))
        elif any(line[:1].isspace() for line in lines):
            paragraphs.append(p)
        else:
            paragraphs.append(" ".join(p.split()))
    return "\n\n".join(paragraphs)


class _Command(_ClickWords, typer.core.TyperCommand):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.help:
            self.help = _laid_out(self.help)


class _Group(_ClickWords, typer.core.TyperGroup):
    """A command group whose ``main`` prints a usage error as ``error: <command>: <problem>
    (see <command> -h)``; help, ``--version`` and commands run as usual."""

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


class Typer(typer.Typer):
    """A Typer app whose commands and groups write help in click's words (:class:`_ClickWords`)
    and, run as the program, print a usage error as one line (:class:`_Group`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=_Group, **kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Any:
        return super().command(*args, cls=_Command, **kwargs)
