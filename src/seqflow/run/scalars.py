"""Optional scalar logs beside ``metrics.jsonl`` (``fit --log tensorboard|csv``).

Each log is a progress callback writing the scalars of ``metrics.jsonl`` (``loss``,
``valid_loss``, ``lr``, ``steps_per_second``, against ``step``):

- ``tensorboard``: event files in ``RUN/tensorboard/`` (``torch.utils.tensorboard``; needs the
  extra ``seqflow[tensorboard]``), one more file per resumed session;
- ``csv``: ``RUN/metrics.csv``, one row per report (``valid_loss`` empty where none), appended
  to on resume; needs nothing.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqflow.errors import InvalidInputError
from seqflow.io_utils import reporting_writes
from seqflow.training import Progress

SCALARS = ("loss", "valid_loss", "lr", "steps_per_second")
TENSORBOARD_DIR = "tensorboard"
CSV_FILE = "metrics.csv"
LOGS = ("tensorboard", "csv")


class TensorBoardLog:
    """Scalars as TensorBoard events in ``folder`` (created)."""

    def __init__(self, folder: Path, writer_class: Callable[..., Any]) -> None:
        self.writer = writer_class(log_dir=str(folder))

    def __call__(self, p: Progress) -> None:
        for name in SCALARS:
            value = getattr(p, name)
            if value is not None:
                self.writer.add_scalar(name, value, p.step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class CsvLog:
    """Scalars as rows ``step,loss,valid_loss,lr,steps_per_second`` of ``path`` (a header
    first when the file is new)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, p: Progress) -> None:
        new = not self.path.exists()
        row = [p.step, *("" if getattr(p, n) is None else getattr(p, n) for n in SCALARS)]
        with reporting_writes(self.path), self.path.open("a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["step", *SCALARS])
            writer.writerow(row)

    def close(self) -> None:
        """Nothing to close: each row is appended and closed."""


class ScalarLog:
    """The ``--log`` of ``fit``: checked when made (before training starts), opened in the run
    folder when the run starts, then called with each progress report.

    Raises:
        InvalidInputError: ``kind`` is not one of :data:`LOGS`, or its package is missing.
    """

    def __init__(self, kind: str) -> None:
        if kind not in LOGS:
            raise InvalidInputError(f"--log: {kind!r} is not one of {', '.join(LOGS)}")
        self.writer_class: Callable[..., Any] | None = None
        if kind == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise InvalidInputError(
                    "--log tensorboard needs tensorboard: pip install 'seqflow[tensorboard]'"
                ) from None
            self.writer_class = SummaryWriter
        self.log: TensorBoardLog | CsvLog | None = None

    def start(self, run_dir: Path) -> None:
        """Open the log in ``run_dir``."""
        if self.writer_class is not None:
            self.log = TensorBoardLog(run_dir / TENSORBOARD_DIR, self.writer_class)
        else:
            self.log = CsvLog(run_dir / CSV_FILE)

    def __call__(self, p: Progress) -> None:
        if self.log is not None:
            self.log(p)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
