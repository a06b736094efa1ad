"""Train into a run folder: the one path both modes take, under the folder's lock, stop signals
and failure clean-up."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from seqflow.checkpoint import ModelMeta
from seqflow.io_utils import atomic_write
from seqflow.run.checkpoints import write_checkpoint
from seqflow.run.failure import failure_handling, make_folder
from seqflow.run.files import CONFIG_FILE, METRICS_FILE, refuse_links
from seqflow.run.lock import run_lock
from seqflow.run.metrics import metrics_logger, trim_metrics
from seqflow.run.signals import stop_on_signals
from seqflow.run.stamps import data_stamps
from seqflow.training import Progress, Trainer
from seqflow.training.distributed import SINGLE, Shard, barrier


def train_in_folder(
    run_dir: Path,
    trainer: Trainer,
    meta: ModelMeta,
    *,
    write_data: Callable[[Path], None],
    source: str,
    shard: Shard = SINGLE,
    on_progress: Callable[[Progress], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    handle_signals: bool = True,
    changed: dict[str, Any] | None = None,
) -> Progress:
    """Run ``trainer`` and keep the run in ``run_dir``; returns the last progress report. Only
    the main process writes, holding the folder's lock throughout.

    Writes ``config.yaml`` (``meta.config``) and the training data (``write_data(run_dir)``),
    appends every progress report to ``metrics.jsonl`` (after dropping records past the
    trainer's step; a resumed run's first record notes ``resumed``: the step and the ``changed``
    settings) and checkpoints on the trainer's schedule. A stop signal or Ctrl-C ends with a
    checkpoint; a failure before the first checkpoint removes the folders this run created.

    Args:
        source: the data file as :func:`~seqflow.run.resume.data_source` records it; the
            checkpoints record it and its :func:`~seqflow.run.stamps.data_stamps` as of now.
        on_progress, on_step: the trainer's report and per-step callbacks (main process only).
        changed: the settings a resumed run changes, ``{key: [saved, new]}``.
    """
    cfg = meta.config
    stamps = data_stamps(source) if shard.main else []
    resumed = {"resumed": {"step": trainer.step, "changed": changed or {}}} if trainer.step else {}

    def checkpoint(tr: Trainer) -> None:
        write_checkpoint(
            run_dir, tr.model.state_dict(), tr.ema.state_dict(),
            {**tr.state_dict(), "data_source": source, "data_stamps": stamps},
            replace(meta, step=tr.step),
            keep=cfg.train.keep_checkpoints,
        )  # fmt: skip

    created = make_folder(run_dir) if shard.main else []
    with run_lock(run_dir) if shard.main else nullcontext(), failure_handling(run_dir, created):
        if shard.main:
            refuse_links(run_dir)
            trim_metrics(run_dir / METRICS_FILE, trainer.step)
            with atomic_write(run_dir / CONFIG_FILE) as handle:
                yaml.safe_dump(cfg.to_dict(), handle, sort_keys=False)
            write_data(run_dir)
        try:
            with stop_on_signals(trainer, enabled=handle_signals):
                last = trainer.run(
                    on_progress=metrics_logger(run_dir / METRICS_FILE, on_progress, first=resumed)
                    if shard.main
                    else None,
                    on_checkpoint=checkpoint if shard.main else None,
                    on_step=on_step if shard.main else None,
                )
            barrier(shard)  # rank 0's last checkpoint is written before anyone returns
        except KeyboardInterrupt:
            if trainer.step > 0 and shard.main:
                checkpoint(trainer)
            raise
    return last
