"""``seqflow plot RUN``: the training and validation loss of a run against the step, drawn from
its ``metrics.jsonl`` into a PNG (matplotlib, an optional extra: ``seqflow[plots]``).

The y axis is logarithmic when the losses span more than one decade (and are all positive).
A record whose step is not above the one before it starts a new session: the run was resumed
from an earlier checkpoint. Each session is drawn as its own line segment (so every record
appears once, in file order) and its start is marked by a dotted vertical line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seqflow.api._plots import _pyplot
from seqflow.errors import InvalidInputError
from seqflow.io_utils import atomic_path
from seqflow.run.files import METRICS_FILE

LOSS_FILE = "loss.png"


Session = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""The arrays ``(step, loss, valid_step, valid_loss)`` of one session; records without a
training loss (all steps skipped) are left out of ``loss``."""


def read_loss_curves(path: str | Path) -> list[Session]:
    """The losses of a ``metrics.jsonl`` file (one JSON record a line, each with ``step``), split
    into sessions at each resume.

    Raises:
        InvalidInputError: the file is missing, empty, or a line is not a record with a step.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"{path}: no such metrics file (is this a run folder?)")
    records: list[list[dict]] = []
    last = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = int(record["step"])
        except (ValueError, KeyError, TypeError):
            raise InvalidInputError(f"{path}:{number}: not a metrics record with a step") from None
        if last is None or step <= last:
            records.append([])
        records[-1].append(record)
        last = step
    if not records:
        raise InvalidInputError(f"{path}: no records yet (training logs every train.log_every)")

    def arrays(session: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
        kept = [(r["step"], r[key]) for r in session if r.get(key) is not None]
        steps, values = zip(*kept, strict=True) if kept else ((), ())
        return np.asarray(steps, dtype=int), np.asarray(values, dtype=float)

    return [(*arrays(s, "loss"), *arrays(s, "valid_loss")) for s in records]


def plot_run(run: str | Path, *, output: str | Path | None = None) -> Path:
    """Draw the training and validation loss of run folder ``run`` against the step.

    Args:
        output: the PNG to write; default ``RUN/loss.png``.

    Returns:
        the PNG written (atomically).

    Raises:
        InvalidInputError: no metrics in ``run``, or matplotlib is missing.
    """
    run = Path(run)
    sessions = read_loss_curves(run / METRICS_FILE)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (step, loss, valid_step, valid_loss) in enumerate(sessions):
        ax.plot(step, loss, color="C0", lw=1.2, label=None if i else "training loss")
        ax.plot(valid_step, valid_loss, "o-", color="C1", ms=3, lw=1.2,
                label=None if i else "validation loss")  # fmt: skip
        if i:  # a resume: the session's first step
            start = step[0] if step.size else valid_step[0]
            ax.axvline(start, color="0.5", ls=":", lw=1, label="resumed" if i == 1 else None)
    values = np.concatenate([np.concatenate([s[1], s[3]]) for s in sessions])
    if values.size and values.min() > 0 and values.max() / values.min() > 10:
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="loss", title=f"{run.resolve().name}: loss against step")
    ax.legend()
    path = Path(output) if output is not None else run / LOSS_FILE
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
