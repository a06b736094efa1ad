"""The metrics log of a run: ``metrics.jsonl``, one JSON record per progress report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqflow.io_utils import reporting_writes
from seqflow.training import Progress


def metrics_logger(
    path: Path, on_progress: Callable[[Progress], None] | None
) -> Callable[[Progress], None]:
    """A progress callback that appends each report to ``path``, then passes it on."""

    def progress(p: Progress) -> None:
        record: dict[str, Any] = {
            "step": p.step, "loss": p.loss, "lr": p.lr,
            "steps_per_second": p.steps_per_second, "elapsed": p.elapsed,
        }  # fmt: skip
        if p.valid_loss is not None:
            record["valid_loss"] = p.valid_loss
        if p.skipped:
            record["skipped"] = p.skipped
        with reporting_writes(path), path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if on_progress is not None:
            on_progress(p)

    return progress
