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

from seqflow.checkpoint import MODEL_FILE, STATE_FILE
from seqflow.errors import InvalidInputError

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


def refuse_links(run_dir: Path) -> None:
    """Refuse a run folder where a file or folder ``fit`` writes is a symbolic link: writing
    would go through it to wherever it points (the run folder itself may be a link)."""
    names = (CONFIG_FILE, METRICS_FILE, CHECKPOINTS_DIR, TRAIN_FILE, LIBRARIES_FILE,
             MODEL_FILE, STATE_FILE)  # fmt: skip
    steps = run_dir / CHECKPOINTS_DIR
    inside = list(steps.iterdir()) if steps.is_dir() and not steps.is_symlink() else []
    for path in [run_dir / name for name in names] + inside:
        if path.is_symlink():
            raise InvalidInputError(
                f"{path}: is a symbolic link; a run folder's files must be its own (remove "
                "the link, or choose another --out)"
            )
