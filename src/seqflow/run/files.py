"""The file names of a run folder (what ``seqflow fit`` writes into ``runs/<name>/``).

``model.safetensors`` and ``state.safetensors`` (:mod:`seqflow.checkpoint`'s) are the newest
checkpoint: hard links to, or copies of, the newest ``checkpoints/step-NNNNNNNN`` folder.
"""

from __future__ import annotations

from pathlib import Path

from seqflow.checkpoint import MODEL_FILE, STATE_FILE
from seqflow.errors import InvalidInputError

CONFIG_FILE = "config.yaml"  # the resolved configuration
METRICS_FILE = "metrics.jsonl"  # one progress record a line
CHECKPOINTS_DIR = "checkpoints"  # the last train.keep_checkpoints checkpoints, a folder each
TRAIN_FILE = "train.fasta.gz"
"""The training split (original ids), gzipped FASTA: the reference of ``sample --min-novelty``
and ``evaluate --train``, kept with the run so the novelty check needs nothing else."""
LIBRARIES_FILE = "libraries.fasta.gz"
"""Library mode's training libraries (``library=NAME`` in each header): the real reference for
``evaluate --set-col library``."""


def step_folder(run_dir: Path, step: int) -> Path:
    """The kept checkpoint folder of ``step``."""
    return run_dir / CHECKPOINTS_DIR / f"step-{step:08d}"


def refuse_links(run_dir: Path) -> None:
    """Refuse a run folder where a file or folder ``fit`` writes is a symbolic link (writing
    would go through it; the run folder itself may be a link)."""
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
