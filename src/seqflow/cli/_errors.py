"""The command line's boundary with the operating system: an OS error becomes one line naming
the file and the cause, standard output that fails (closed, full, a pipe whose reader left) is
handled like a file, and SIGTERM/SIGHUP unwind the command, so that every atomic write removes
its temporary file on the way out.

Exit codes: 2 for an OS error (as for every user-facing error); ``128 + N`` for signal ``N``
(143 for SIGTERM, 129 for SIGHUP); :data:`BROKEN_PIPE_EXIT` (141), silently, when the reader
of standard output left (``seqflow sample | head``).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, TextIO

from seqflow.io_utils import os_cause, reporting_writes

BROKEN_PIPE_EXIT = 128 + 13
"""Exit code when standard output's reader left: a shell's code for a process that SIGPIPE
ended (``128 + SIGPIPE``), as ``yes | head`` shows for ``yes``."""

UNWINDING_SIGNALS = ("SIGTERM", "SIGHUP")
"""Signals that unwind a command (``SystemExit(128 + N)``) instead of killing it in place.
Signals set to be ignored (``nohup``) stay ignored; ``fit`` turns them into a clean stop with a
checkpoint while it trains (:mod:`seqflow.run.signals`)."""

STDOUT = "standard output"


class _Stdout:
    """``sys.stdout`` whose OS errors name it (``cannot write standard output: ...``). A closed
    standard output (``>&-``, where Python's ``sys.stdout`` is None) fails on the first write.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        with reporting_writes(STDOUT):
            if self.stream is None:
                raise OSError(errno.EBADF, "Closed")
            return self.stream.write(text)

    def flush(self) -> None:
        if self.stream is not None:
            with reporting_writes(STDOUT):
                self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _unwind(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def _unwinding_on_signals() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [getattr(signal, name) for name in UNWINDING_SIGNALS if hasattr(signal, name)]
    previous = {n: signal.getsignal(n) for n in numbers}
    for n, handler in previous.items():
        if handler is signal.SIG_DFL:
            signal.signal(n, _unwind)
    try:
        yield
    finally:
        for n, handler in previous.items():
            signal.signal(n, handler)


@contextmanager
def os_boundary() -> Iterator[None]:
    """Run a command with standard output guarded and SIGTERM/SIGHUP unwinding; standard
    output is flushed before the block ends, so its errors surface here (as an
    :class:`~seqflow.errors.OutputError`), not at interpreter exit. After a broken pipe it
    points at ``os.devnull``, so that the exit's own flush cannot fail again."""
    real = sys.stdout
    sys.stdout = _Stdout(real)  # type: ignore[assignment]
    try:
        with _unwinding_on_signals():
            yield
            sys.stdout.flush()
    except BrokenPipeError:
        with suppress(AttributeError, OSError, ValueError):  # no descriptor: tests' capture
            os.dup2(os.open(os.devnull, os.O_WRONLY), real.fileno())  # type: ignore[union-attr]
        raise SystemExit(BROKEN_PIPE_EXIT) from None
    finally:
        sys.stdout = real


def os_error_line(error: OSError) -> str:
    """One line for an OS error that no writer named: ``PATH: CAUSE`` (``PATH -> PATH2: CAUSE``
    for a rename or link), or the cause alone."""
    names = [str(f) for f in (error.filename, error.filename2) if f is not None]
    cause = os_cause(error)
    return f"{' -> '.join(names)}: {cause}" if names else cause
