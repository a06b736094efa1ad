"""Failure clean-up: a stopped run says how to resume; a run that fails before its first
checkpoint leaves nothing half-made behind."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqflow.checkpoint import MODEL_FILE
from seqflow.training import TrainingStopped


@contextmanager
def failure_handling(run_dir: Path, created: Path | None) -> Iterator[None]:
    """A stop request becomes a message saying how to resume; any other failure before the
    first checkpoint removes ``created``, the folders this run created."""
    try:
        yield
    except TrainingStopped as stop:
        raise TrainingStopped(
            f"{stop}; checkpoint saved in {run_dir}; continue with: "
            f"seqflow fit --resume {run_dir}",
            step=stop.step, reason=stop.reason, exit_code=stop.exit_code,
        ) from None  # fmt: skip
    except BaseException:
        if created is not None and not (run_dir / MODEL_FILE).exists():
            shutil.rmtree(created, ignore_errors=True)
        raise


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what a failure must remove)."""
    top = None
    while not path.exists():
        top, path = path, path.parent
    return top
