"""Failure clean-up: a stopped run says how to resume; a run that fails before its first
checkpoint leaves nothing half-made behind."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqflow.checkpoint import MODEL_FILE
from seqflow.errors import InvalidInputError, OutputError
from seqflow.io_utils import os_cause
from seqflow.training import TrainingStopped


@contextmanager
def failure_handling(run_dir: Path, created: list[Path]) -> Iterator[None]:
    """A stop request becomes a message saying how to resume; any other failure before the first
    checkpoint removes ``created``, the folders this run made (the run folder with all it holds,
    its parents only when empty), or in a folder that existed already (``--out .``) the entries
    this run added."""
    before = set(os.listdir(run_dir)) if not created and run_dir.is_dir() else None
    try:
        yield
    except TrainingStopped as stop:
        raise TrainingStopped(
            f"{stop}; checkpoint saved in {run_dir}; continue with: "
            f"seqflow fit --resume {run_dir}",
            step=stop.step, reason=stop.reason, exit_code=stop.exit_code,
        ) from None  # fmt: skip
    except BaseException:
        if before is not None and not (run_dir / MODEL_FILE).exists():
            for name in set(os.listdir(run_dir)) - before:
                entry = run_dir / name
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        if created and not (run_dir / MODEL_FILE).exists():
            for folder in reversed(created):
                if folder == run_dir:
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    try:
                        os.rmdir(folder)
                    except OSError:  # not empty: another run's folder is in it
                        break
        raise


def make_folder(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents; returns the folders this call created,
    outermost first (a folder another process creates meanwhile is not counted)."""
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"{path}: is a file, not a run folder; choose another --out")
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise InvalidInputError(f"{folder}: is a file, not a folder") from None
            continue
        except OSError as error:
            raise OutputError(f"cannot create {folder}: {os_cause(error)}") from None
        created.append(folder)
    return created
