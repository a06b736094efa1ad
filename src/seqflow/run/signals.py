"""Stop signals: a clean stop after the current training step, with a final checkpoint."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1")
"""Signals that stop training cleanly with a final checkpoint (SIGUSR1: SLURM's
``--signal=USR1@<seconds>`` warning before the time limit)."""


class Stoppable(Protocol):
    """A training loop that can be asked to stop after its current step."""

    def request_stop(self, reason: str, exit_code: int = 2) -> None: ...


@contextmanager
def stop_on_signals(trainer: Stoppable, *, enabled: bool) -> Iterator[None]:
    """While training, turn the stop signals into a clean stop after the current step.

    A second signal of the same kind falls back to the previous handler (a second Ctrl-C
    interrupts at once); ignored signals stay ignored (SIGHUP under ``nohup``). Off the main
    thread, or with ``enabled`` False, nothing changes.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    previous = {n: signal.getsignal(n) for n in numbers}
    previous = {n: old for n, old in previous.items() if old is not signal.SIG_IGN}  # nohup

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signum, previous[signum])
        trainer.request_stop(signal.Signals(signum).name, 128 + signum)

    try:
        for n in previous:
            signal.signal(n, handler)
        yield
    finally:
        for n, old in previous.items():
            signal.signal(n, old)
