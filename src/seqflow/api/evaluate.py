"""``evaluate``: score generated sequences against real ones, with or without an oracle.

Oracle-free metrics come from :mod:`seqflow.metrics`, for the whole set and per condition when
the generated headers carry ``label=`` and the reference has labels; an oracle's embeddings and
outputs give Frechet distance, conditional accuracy and MSEs (:mod:`seqflow.metrics.oracle`).
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
from seqflow.api._sets import SeqSet, read_generated, read_set
from seqflow.config import check_seed
from seqflow.errors import InvalidInputError
from seqflow.io_utils import open_output
from seqflow.metrics import EvaluationReport, OracleReport, evaluate_by_condition, evaluate_sets
from seqflow.metrics.markov import markov_baseline
from seqflow.oracle import Oracle


@dataclass(frozen=True)
class SetScores:
    """Every metric of one generated set.

    Attributes:
        overall: oracle-free metrics of the whole set.
        by_label: the same per condition (empty without labels on both sides).
        oracle: oracle-based metrics, or None without an oracle.
    """

    overall: EvaluationReport
    by_label: dict[str, EvaluationReport]
    oracle: OracleReport | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "overall": self.overall.to_dict(),
            "by_label": {k: v.to_dict() for k, v in self.by_label.items()},
            "oracle": self.oracle.to_dict() if self.oracle else None,
        }


@dataclass(frozen=True)
class MarkovScores:
    """The order-``order`` Markov baseline, sampled and scored like the generated set."""

    order: int
    scores: SetScores

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the order beside the scores."""
        return {"order": self.order, **self.scores.to_dict()}


@dataclass(frozen=True)
class EvaluateResult:
    """Outcome of ``evaluate``.

    Attributes:
        overall, by_label, oracle: the generated set's metrics, as in :class:`SetScores`.
        generated, reference, train: the sources read.
        json_path: where the JSON report was written, or None.
        markov: the Markov baseline's metrics (with ``markov``), or None.
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
    markov: MarkovScores | None = None

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready data."""
        return {
            "generated": self.generated, "reference": self.reference, "train": self.train,
            **SetScores(self.overall, self.by_label, self.oracle).to_dict(),
            "seconds": self.seconds, "plots": list(self.plots),
            "markov": self.markov.to_dict() if self.markov else None,
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
    discriminator: bool = False,
    markov: int | None = None,
) -> EvaluateResult:
    """Compare ``generated`` (FASTA, e.g. from ``seqflow sample``) with ``reference``.

    Args:
        reference, train: real sets in any reader format; ``label_col``/``value_col`` name
            their condition columns, and ``split_col`` with ``reference_split``/``train_split``
            (``train``, ``valid``, ``test``) picks one split of a file for each.
        oracle: a loaded oracle (see :mod:`seqflow.oracle`), or None for oracle-free metrics.
        json_out: write the report as JSON here (atomically; gzip for ``.gz``; ``-`` is
            standard output).
        plots: draw PNG plots into this folder (needs matplotlib; see ``api._plots``).
        discriminator: add the classifier two-sample test (k-mer and CNN AUROC) of the whole
            set (:mod:`seqflow.metrics.discriminator`).
        markov: fit an order-``markov`` chain per label on ``train`` (labels from
            ``label_col`` of a CSV/TSV ``train``; a FASTA ``train`` gives one chain for all),
            sample as many sequences per label as ``generated`` has, and score them too.
    """
    check_seed(seed)
    started = time.perf_counter()
    if markov is not None and markov < 0:
        raise InvalidInputError(f"--markov {markov}: the order must be 0 or more")
    if markov is not None and train is None:
        raise InvalidInputError("--markov: needs --train (the chain is fitted on it)")
    gen = read_generated(generated, alphabet=alphabet)
    ref = read_set(reference, alphabet=alphabet, label_col=label_col, value_col=value_col,
                   split_col=split_col, split=reference_split)  # fmt: skip
    trn = None
    if train is not None:
        trn = read_set(train, alphabet=alphabet, split=train_split,
                       split_col=split_col if train_split else None,
                       label_col=label_col if markov is not None and _is_table(train)
                       else None)  # fmt: skip
    if gen.letters != ref.letters and set(gen.letters) != set(ref.letters):
        raise InvalidInputError(
            f"{gen.source}: alphabet {gen.letters} differs from the reference's {ref.letters}"
        )
    letters = ref.letters
    common = (ref, trn, oracle, oracle_name, letters, ks, seed, discriminator)
    scores, outputs = _score(gen, *common)
    baseline = None
    if markov is not None:
        assert trn is not None
        baseline = MarkovScores(markov, _score(_markov_set(gen, trn, letters, markov, seed),
                                               *common)[0])  # fmt: skip
    drawn: list[Path] = []
    if plots is not None:
        values = (outputs[0][:, 0], outputs[1][:, 0]) if outputs is not None else None
        drawn = write_plots(plots, gen.seqs, ref.seqs, letters, values, (gen.labels, ref.labels))
    result = EvaluateResult(
        overall=scores.overall, by_label=scores.by_label, oracle=scores.oracle,
        generated=gen.source, reference=ref.source, train=trn.source if trn else None,
        json_path=str(json_out) if json_out else None, seconds=time.perf_counter() - started,
        plots=tuple(str(p) for p in drawn), markov=baseline,
    )  # fmt: skip
    if json_out is not None:
        with open_output(json_out) as handle:
            json.dump(result.to_dict(), handle, indent=1, allow_nan=True)
            handle.write("\n")
    return result


def _score(
    gen: SeqSet, ref: SeqSet, trn: SeqSet | None, oracle: Oracle | None, oracle_name: str,
    letters: str, ks: Sequence[int], seed: int, discriminator: bool,
) -> tuple[SetScores, Any]:  # fmt: skip
    """Every metric of ``gen`` against ``ref``, and the oracle's outputs (gen, ref) or None."""
    overall = evaluate_sets(gen.seqs, ref.seqs, train=trn.seqs if trn else None, ks=ks,
                            letters=letters, seed=seed, discriminator=discriminator)  # fmt: skip
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
    return SetScores(overall, by_label, oracle_report), outputs


def _is_table(path: str | Path) -> bool:
    """True for a CSV/TSV file (optionally gzipped): one that can have a label column."""
    return bool({".csv", ".tsv"} & set(Path(path).suffixes))


def _markov_set(gen: SeqSet, trn: SeqSet, letters: str, order: int, seed: int) -> SeqSet:
    """Samples of an order-``order`` chain, as many per label as ``gen`` has: fitted on that
    label's training sequences, or on the whole training set for a label it lacks (or none)."""
    labels = gen.labels if gen.labels is not None else [None] * len(gen.seqs)
    groups = trn.by_label()
    seqs: list[str] = [""] * len(labels)
    for i, label in enumerate(dict.fromkeys(labels)):
        where = [j for j, other in enumerate(labels) if other == label]
        pool = groups.get(label, trn.seqs) if label is not None else trn.seqs
        drawn = markov_baseline(pool, len(where), letters, order, seed=seed + i)
        for j, s in zip(where, drawn, strict=True):
            seqs[j] = s
    return SeqSet(seqs, gen.labels, None, f"markov{order}", letters)
