"""Optional scalar logs beside ``metrics.jsonl`` (``fit --log tensorboard|csv``): the
:data:`SCALARS` against ``step``, as TensorBoard events in ``RUN/tensorboard/`` (the extra
``seqflow[tensorboard]``; one more file per resumed session) or as rows of ``RUN/metrics.csv``
(``valid_loss`` empty where none; appended to on resume).
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


class ScalarLog:
    """The ``--log`` of ``fit``: checked when made (before training starts), opened in the run
    folder by :meth:`start`, then called with each progress report.

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
        self.writer: Any = None  # the TensorBoard writer once started
        self.csv: Path | None = None  # the CSV file once started

    def start(self, run_dir: Path) -> None:
        """Open the log in ``run_dir``."""
        if self.writer_class is not None:
            self.writer = self.writer_class(log_dir=str(run_dir / TENSORBOARD_DIR))
        else:
            self.csv = run_dir / CSV_FILE

    def __call__(self, p: Progress) -> None:
        values = [getattr(p, name) for name in SCALARS]
        if self.writer is not None:
            for name, value in zip(SCALARS, values, strict=True):
                if value is not None:
                    self.writer.add_scalar(name, value, p.step)
            self.writer.flush()
        elif self.csv is not None:
            new = not self.csv.exists()
            with reporting_writes(self.csv), self.csv.open("a", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                if new:
                    writer.writerow(["step", *SCALARS])
                writer.writerow([p.step, *("" if v is None else v for v in values)])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = self.csv = None
