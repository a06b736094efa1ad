"""The order sheet: one row per designed sequence, with the checks a lab reads before ordering,
recomputed on the final sequences independently of the sampling loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seqflow.design.constraints import Rules, Template, gc_fraction, longest_run, nucleic

COLUMNS = ("id", "sequence", "length", "label", "value", "guidance", "gc", "max_run",
           "template_ok", "forbid_ok", "homopolymer_ok", "gc_ok", "novelty", "novelty_metric",
           "novelty_ok", "score", "candidate")  # fmt: skip
"""Columns of a CSV/TSV/JSONL order sheet, in order; a column no row has is left out."""


def annotate(
    rows: list[dict[str, Any]],
    *,
    letters: str,
    rules: Rules,
    template: Template | None = None,
    label: str | None = None,
    value: float | None = None,
    guidance: float | None = None,
    novelty: tuple[Sequence[int], str] | None = None,
    min_novelty: int | None = None,
) -> None:
    """Add the order sheet's columns to each row (``sequence`` set) in place.

    Args:
        letters: the alphabet's letters (GC is reported for DNA/RNA only).
        rules: the synthesis rules in force; each gives its ``*_ok`` column.
        template: the fixed letters, or None.
        label, value: the conditions asked for, or None.
        guidance: the guidance weight when it is not 1 on a conditioned request, else None.
        novelty: the distance of each row's sequence to its nearest training sequence and the
            name of that distance, or None without a reference.
        min_novelty: the novelty floor, or None.
    """
    asked = {"label": label, "value": value, "guidance": guidance}
    for i, row in enumerate(rows):
        seq = str(row["sequence"])
        row.update({k: v for k, v in asked.items() if v is not None})
        row["length"] = len(seq)
        if nucleic(letters):
            row["gc"] = round(gc_fraction(seq), 4)
        row["max_run"] = longest_run(seq)
        if template is not None:
            row["template_ok"] = template.matches(seq)
        if rules.forbid:
            row["forbid_ok"] = not any(m in seq for m in rules.forbid)
        if rules.max_homopolymer is not None:
            row["homopolymer_ok"] = row["max_run"] <= rules.max_homopolymer
        if rules.gc_window:
            row["gc_ok"] = rules.gc_ok(seq)
        if novelty is not None:
            row["novelty"] = int(novelty[0][i])
            row["novelty_metric"] = novelty[1]
            if min_novelty is not None:
                row["novelty_ok"] = int(novelty[0][i]) >= min_novelty
