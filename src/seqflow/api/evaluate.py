"""``evaluate``: score generated sequences against real ones, with or without an oracle.

Oracle-free metrics come from :mod:`seqflow.metrics`, for the whole set and per condition when
the generated headers carry ``label=`` and the reference has labels. With an oracle:

- Frechet distance between the oracle embeddings of generated and real sets (squared, pooled
  over the whole sets, as in Stark et al. 2024);
- conditional accuracy: the share of samples for class c the oracle assigns to c (class names
  of a classifier oracle matched to the labels);
- oracle MSE (Sei-style; Avdeyev et al. 2023, Davis et al. 2024): mean squared difference of
  oracle outputs between generated sequence i and real sequence i of the same condition, when
  both sets hold the same number (as when sampling one sequence per reference signal row);
- value MSE: for ``value=`` headers and a one-output oracle, mean squared difference between
  the oracle's prediction and the value asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqflow.api._plots import write_plots
from seqflow.api._sets import SeqSet, read_generated, read_set
from seqflow.errors import InvalidInputError
from seqflow.io_utils import atomic_write
from seqflow.metrics import EvaluationReport, evaluate_by_condition, evaluate_sets, frechet_distance
from seqflow.oracle import Oracle


@dataclass(frozen=True)
class OracleReport:
    """Oracle-based metrics (None where one does not apply).

    Attributes:
        name: the oracle file.
        frechet: squared Frechet distance of embeddings, generated vs reference.
        frechet_by_label: the same per condition.
        accuracy_by_label: share of samples for each class the oracle assigns to it.
        mse_paired: mean squared oracle-output difference of generated/real pairs per condition.
        mse_value: mean squared difference between predicted and requested values.
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


@dataclass(frozen=True)
class EvaluateResult:
    """Outcome of ``evaluate``.

    Attributes:
        overall: oracle-free metrics of the whole generated set.
        by_label: the same per condition (empty without labels on both sides).
        oracle: oracle-based metrics, or None without an oracle.
        generated, reference, train: the sources read.
        json_path: where the JSON report was written, or None.
    """

    overall: EvaluationReport
    by_label: dict[str, EvaluationReport]
    oracle: OracleReport | None
    generated: str
    reference: str
    train: str | None
    json_path: str | None
    seconds: float
    plots: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        return {
            "generated": self.generated, "reference": self.reference, "train": self.train,
            "overall": self.overall.to_dict(),
            "by_label": {k: v.to_dict() for k, v in self.by_label.items()},
            "oracle": self.oracle.to_dict() if self.oracle else None,
            "seconds": self.seconds, "plots": list(self.plots),
        }  # fmt: skip


def evaluate(
    generated: str | Path,
    *,
    reference: str | Path,
    train: str | Path | None = None,
    oracle: Oracle | None = None,
    oracle_name: str = "",
    alphabet: str = "auto",
    label_col: str | None = None,
    value_col: str | None = None,
    split_col: str | None = None,
    reference_split: str | None = None,
    train_split: str | None = None,
    ks: Sequence[int] = (1, 2, 3, 4, 5, 6),
    json_out: str | Path | None = None,
    plots: str | Path | None = None,
    seed: int = 0,
) -> EvaluateResult:
    """Compare ``generated`` (FASTA, e.g. from ``seqflow sample``) with ``reference``.

    Args:
        reference, train: real sets in any reader format; ``label_col``/``value_col`` name
            their condition columns, and ``split_col`` with ``reference_split``/``train_split``
            (``train``, ``valid``, ``test``) picks one split of a file for each.
        oracle: a loaded oracle (see :mod:`seqflow.oracle`), or None for oracle-free metrics.
        json_out: write the report as JSON here (atomically).
        plots: draw PNG plots into this folder (needs matplotlib; see ``api._plots``).
    """
    started = time.perf_counter()
    gen = read_generated(generated, alphabet=alphabet)
    ref = read_set(reference, alphabet=alphabet, label_col=label_col, value_col=value_col,
                   split_col=split_col, split=reference_split)  # fmt: skip
    trn = None
    if train is not None:
        trn = read_set(train, alphabet=alphabet, split=train_split,
                       split_col=split_col if train_split else None)  # fmt: skip
    if gen.letters != ref.letters and set(gen.letters) != set(ref.letters):
        raise InvalidInputError(
            f"{gen.source}: alphabet {gen.letters} differs from the reference's {ref.letters}"
        )
    letters = ref.letters
    overall = evaluate_sets(gen.seqs, ref.seqs, train=trn.seqs if trn else None, ks=ks,
                            letters=letters, seed=seed)  # fmt: skip
    by_label: dict[str, EvaluationReport] = {}
    gen_groups, ref_groups = gen.by_label(), ref.by_label()
    if set(gen_groups) & set(ref_groups):
        by_label = evaluate_by_condition(
            gen_groups, ref_groups, train=trn.seqs if trn else None, ks=ks, letters=letters,
            seed=seed,
        )  # fmt: skip
    oracle_report, outputs = None, None
    if oracle is not None:
        oracle_report, outputs = _oracle_metrics(oracle, oracle_name, gen, ref)
    drawn: list[Path] = []
    if plots is not None:
        scores = (outputs[0][:, 0], outputs[1][:, 0]) if outputs is not None else None
        drawn = write_plots(plots, gen.seqs, ref.seqs, letters, scores)
    result = EvaluateResult(
        overall=overall, by_label=by_label, oracle=oracle_report, generated=gen.source,
        reference=ref.source, train=trn.source if trn else None,
        json_path=str(json_out) if json_out else None, seconds=time.perf_counter() - started,
        plots=tuple(str(p) for p in drawn),
    )  # fmt: skip
    if json_out is not None:
        with atomic_write(json_out) as handle:
            json.dump(result.to_dict(), handle, indent=1, allow_nan=True)
            handle.write("\n")
    return result


def _oracle_metrics(
    oracle: Oracle, name: str, gen: SeqSet, ref: SeqSet
) -> tuple[OracleReport, tuple[np.ndarray, np.ndarray]]:
    """The oracle report, and the oracle outputs of generated and real sequences."""
    gen_emb, ref_emb = oracle.embed(gen.seqs), oracle.embed(ref.seqs)
    report: dict[str, Any] = {"name": name, "frechet": frechet_distance(gen_emb, ref_emb)}
    gen_idx, ref_idx = _groups(gen), _groups(ref)
    shared = [c for c in gen_idx if c in ref_idx]
    report["frechet_by_label"] = {
        c: frechet_distance(gen_emb[gen_idx[c]], ref_emb[ref_idx[c]])
        for c in shared
        if len(gen_idx[c]) > 1 and len(ref_idx[c]) > 1
    }
    gen_out = oracle.predict(gen.seqs)
    if oracle.kind == "classifier":
        names = list(oracle.output_names)
        hits = gen_out.argmax(axis=1)
        report["accuracy_by_label"] = {
            c: float((hits[idx] == names.index(c)).mean()) for c, idx in gen_idx.items()
            if c in names
        }  # fmt: skip
    ref_out = oracle.predict(ref.seqs)
    pairs = [(gen_idx[c], ref_idx[c]) for c in shared] or [
        (np.arange(len(gen.seqs)), np.arange(len(ref.seqs)))
    ]
    if all(len(g) == len(r) for g, r in pairs):
        diffs = [gen_out[g] - ref_out[r] for g, r in pairs]
        report["mse_paired"] = float(np.mean(np.concatenate(diffs) ** 2))
    if gen.values is not None and gen_out.shape[1] == 1:
        target = np.asarray(gen.values)
        ok = ~np.isnan(target)
        report["mse_value"] = float(np.mean((gen_out[ok, 0] - target[ok]) ** 2))
    return OracleReport(**report), (gen_out, ref_out)


def _groups(s: SeqSet) -> dict[str, np.ndarray]:
    """Row indices of each label (empty without labels)."""
    if s.labels is None:
        return {}
    out: dict[str, list[int]] = {}
    for i, label in enumerate(s.labels):
        if label is not None:
            out.setdefault(label, []).append(i)
    return {k: np.asarray(v) for k, v in out.items()}
