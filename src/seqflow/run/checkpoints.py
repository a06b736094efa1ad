"""Checkpoints of a run folder: write a step folder, publish it as the run's own files, prune."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from seqflow.checkpoint import MODEL_FILE, STATE_FILE, ModelMeta, save_model, save_state
from seqflow.io_utils import atomic_path
from seqflow.run.files import CHECKPOINTS_DIR, step_folder


def write_checkpoint(
    run_dir: Path,
    model_state: dict[str, Any],
    ema_state: dict[str, Any],
    state: dict[str, Any],
    meta: ModelMeta,
    *,
    keep: int,
) -> None:
    """Write ``checkpoints/step-N/``, publish it as the run's own ``state.safetensors`` then
    ``model.safetensors``, and drop all but the ``keep`` newest step folders. Every file
    appears atomically: a kill at any moment leaves the previous checkpoint readable."""
    folder = step_folder(run_dir, meta.step)
    save_state(folder / STATE_FILE, state)
    save_model(folder / MODEL_FILE, model_state, ema_state, meta)
    for name in (STATE_FILE, MODEL_FILE):
        publish(folder / name, run_dir / name)
    for old in step_folders(run_dir)[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def publish(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source`` (a copy where links are not possible),
    replacing it atomically."""
    with atomic_path(target) as temp:
        temp.unlink()
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)


def step_folders(run_dir: Path) -> list[Path]:
    """The kept checkpoint folders of a run, newest first."""
    folder = run_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-")]
    return sorted(found, key=lambda p: p.name, reverse=True)
