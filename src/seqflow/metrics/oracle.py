"""Oracle-based metrics of a generated set against a real one, from the oracle's outputs
(:mod:`seqflow.oracle` turns sequences into embeddings and predictions).

The Frechet distance of embeddings is pooled over the whole sets, as in Stark et al. 2024; the
paired oracle MSE is Sei-style (Avdeyev et al. 2023, Davis et al. 2024): generated sequence i
against real sequence i of the same condition, when both sets hold the same number (as when
sampling one sequence per reference signal row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqflow.metrics.frechet import frechet_distance


@dataclass(frozen=True)
class OracleReport:
    """Oracle-based metrics (None where one does not apply).

    Attributes:
        name: the oracle file.
        frechet: squared Frechet distance of embeddings, generated vs reference.
        frechet_by_label: the same per condition.
        accuracy_by_label: share of samples for each class a classifier assigns to it (output
            names matched to labels).
        mse_paired: mean squared oracle-output difference of generated/real pairs per condition.
        mse_value: mean squared difference between predicted and requested values (one-output
            oracle).
    """

    name: str
    frechet: float
    frechet_by_label: dict[str, float] = field(default_factory=dict)
    accuracy_by_label: dict[str, float] = field(default_factory=dict)
    mse_paired: float | None = None
    mse_value: float | None = None

    @property
    def accuracy(self) -> float | None:
        """Mean conditional accuracy over classes, or None."""
        acc = self.accuracy_by_label
        return float(np.mean(list(acc.values()))) if acc else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name, "frechet": self.frechet, "frechet_by_label": self.frechet_by_label,
            "accuracy": self.accuracy, "accuracy_by_label": self.accuracy_by_label,
            "mse_paired": self.mse_paired, "mse_value": self.mse_value,
        }  # fmt: skip


def oracle_report(
    name: str,
    embeddings: tuple[np.ndarray, np.ndarray],
    outputs: tuple[np.ndarray, np.ndarray],
    labels: tuple[Sequence[str | None] | None, Sequence[str | None] | None],
    *,
    classes: Sequence[str] | None = None,
    values: Sequence[float] | None = None,
) -> OracleReport:
    """The oracle metrics of generated vs real sequences (see :class:`OracleReport`).

    Args:
        name: the oracle's name (its file), for the report.
        embeddings: oracle embeddings of the generated and the real set, shapes ``(N, D)`` and
            ``(M, D)``.
        outputs: oracle outputs of the generated and the real set, shapes ``(N, K)``, ``(M, K)``.
        labels: the label of each generated and each real sequence (None where unknown), or
            None for a set without labels.
        classes: a classifier's output names (column k is class ``classes[k]``), or None.
        values: the value each generated sequence was asked for (NaN where none), or None.
    """
    (gen_emb, ref_emb), (gen_out, ref_out) = embeddings, outputs
    report: dict[str, Any] = {"name": name, "frechet": frechet_distance(gen_emb, ref_emb)}
    gen_idx, ref_idx = _groups(labels[0]), _groups(labels[1])
    shared = [c for c in gen_idx if c in ref_idx]
    report["frechet_by_label"] = {
        c: frechet_distance(gen_emb[gen_idx[c]], ref_emb[ref_idx[c]])
        for c in shared
        if len(gen_idx[c]) > 1 and len(ref_idx[c]) > 1
    }
    if classes is not None:
        names = list(classes)
        hits = gen_out.argmax(axis=1)
        report["accuracy_by_label"] = {
            c: float((hits[idx] == names.index(c)).mean()) for c, idx in gen_idx.items()
            if c in names
        }  # fmt: skip
    pairs = [(gen_idx[c], ref_idx[c]) for c in shared] or [
        (np.arange(len(gen_out)), np.arange(len(ref_out)))
    ]
    if all(len(g) == len(r) for g, r in pairs):
        diffs = [gen_out[g] - ref_out[r] for g, r in pairs]
        report["mse_paired"] = float(np.mean(np.concatenate(diffs) ** 2))
    if values is not None and gen_out.shape[1] == 1:
        target = np.asarray(values)
        ok = ~np.isnan(target)
        report["mse_value"] = float(np.mean((gen_out[ok, 0] - target[ok]) ** 2))
    return OracleReport(**report)


def _groups(labels: Sequence[str | None] | None) -> dict[str, np.ndarray]:
    """Row indices of each label (empty without labels)."""
    if labels is None:
        return {}
    out: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        if label is not None:
            out.setdefault(label, []).append(i)
    return {k: np.asarray(v) for k, v in out.items()}
