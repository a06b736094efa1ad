"""The file names of a run folder (what ``seqflow fit`` writes into ``runs/<name>/``).

- ``model.safetensors`` and ``state.safetensors``: the newest checkpoint (hard links to, or
  copies of, the newest ``checkpoints/step-NNNNNNNN`` folder); their format and their names
  (``MODEL_FILE``, ``STATE_FILE``, re-exported by :mod:`seqflow.run`) are
  :mod:`seqflow.checkpoint`'s.
- ``config.yaml``: the resolved configuration; ``metrics.jsonl``: one progress record a line.
- ``train.fasta.gz`` (sequence mode) or ``libraries.fasta.gz`` (library mode): the training
  data as gzipped FASTA.
"""

from __future__ import annotations

from pathlib import Path

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"
"""Folder of the last ``train.keep_checkpoints`` checkpoints, one ``step-NNNNNNNN`` folder each
(``model.safetensors`` + ``state.safetensors``)."""
TRAIN_FILE = "train.fasta.gz"
"""The training split (original ids): the reference of ``sample --min-novelty`` and
``evaluate --train``, kept with the run so the novelty check needs nothing else."""
LIBRARIES_FILE = "libraries.fasta.gz"
"""The training libraries (``library=NAME`` in each header): the real reference for
``evaluate --set-col library`` and for the run's own record."""


def step_folder(run_dir: Path, step: int) -> Path:
    """The kept checkpoint folder of ``step``."""
    return run_dir / CHECKPOINTS_DIR / f"step-{step:08d}"
