"""``evaluate``: score generated sequences against real ones, with or without an oracle.

Oracle-free metrics come from :mod:`seqflow.metrics`, for the whole set and per condition when
the generated headers carry ``label=`` and the reference has labels. With an oracle, its
embeddings and outputs give Frechet distance, conditional accuracy and MSEs
(:mod:`seqflow.metrics.oracle`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqflow import metrics
from seqflow.api._plots import write_plots
from seqflow.api._sets import read_generated, read_set
from seqflow.config import check_seed
from seqflow.errors import InvalidInputError
from seqflow.io_utils import atomic_write
from seqflow.metrics import EvaluationReport, OracleReport, evaluate_by_condition, evaluate_sets
from seqflow.oracle import Oracle


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
    check_seed(seed)
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
        outputs = oracle.predict(gen.seqs), oracle.predict(ref.seqs)
        oracle_report = metrics.oracle_report(
            oracle_name, (oracle.embed(gen.seqs), oracle.embed(ref.seqs)), outputs,
            (gen.labels, ref.labels), values=gen.values,
            classes=oracle.output_names if oracle.kind == "classifier" else None,
        )  # fmt: skip
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
