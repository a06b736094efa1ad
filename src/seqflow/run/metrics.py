"""The metrics log of a run: ``metrics.jsonl``, one JSON record per progress report, each
step at most once."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seqflow.io_utils import atomic_write, reporting_writes
from seqflow.training import Progress


def metrics_logger(
    path: Path,
    on_progress: Callable[[Progress], None] | None,
    *,
    first: dict[str, Any] | None = None,
) -> Callable[[Progress], None]:
    """A progress callback that appends each report to ``path``, then passes it on; ``first``:
    fields added to the first record (a resumed run's ``resumed`` note)."""
    pending = dict(first or {})

    def progress(p: Progress) -> None:
        record: dict[str, Any] = {
            "step": p.step, "loss": p.loss, "lr": p.lr,
            "steps_per_second": p.steps_per_second, "elapsed": p.elapsed,
        }  # fmt: skip
        if p.valid_loss is not None:
            record["valid_loss"] = p.valid_loss
        if p.skipped:
            record["skipped"] = p.skipped
        record.update(pending)
        pending.clear()
        with reporting_writes(path):
            # never through a symbolic link put in the run folder: O_NOFOLLOW fails on one
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
        if on_progress is not None:
            on_progress(p)

    return progress


def trim_metrics(path: Path, step: int) -> None:
    """Keep the records of ``path`` up to ``step`` (where a resumed run continues; 0 for a new
    run) so that no step is logged twice, and drop a torn last line. The file is rewritten
    atomically (a link there is replaced, not followed)."""
    if not os.path.lexists(path):
        return
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.readlines()
    kept = [line for line in lines if line.endswith("\n") and _step(line) <= step]
    if len(kept) < len(lines):
        with atomic_write(path) as handle:
            handle.writelines(kept)


def _step(line: str) -> float:
    """The step of a record, or infinity for a line that is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return float("inf")
    ok = isinstance(record, dict) and isinstance(record.get("step"), int)
    return record["step"] if ok else float("inf")
