"""Constrained sampling for ``sample``: the design options checked against the model.

Fixed positions are clamped during integration (:func:`seqflow.sampling.generate`); every other
rule is enforced by rejection (:func:`seqflow.design.draw_designs`). What cannot be met fails
with one line, before sampling when the fixed letters alone decide it
(:meth:`~seqflow.design.Rules.infeasible`).
"""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from seqflow.api._sets import read_set
from seqflow.checkpoint import ModelMeta
from seqflow.design import Rules, Template
from seqflow.errors import InvalidInputError
from seqflow.metrics import nearest_distance
from seqflow.run import TRAIN_FILE

MAX_IMPLICIT_REFERENCE = 200_000
"""Largest recorded training set searched for the novelty column when nobody asked for it."""
DEFAULT_BUDGET = 10
"""Default candidate budget, as a multiple of the sequences asked for (at least 1,000)."""


@dataclass(frozen=True)
class Design:
    """What a designed sequence must satisfy.

    Attributes:
        template: fixed letters, or None.
        fixed: category per position, shape ``(length,)``, -1 where free (positions past a
            shorter template of a variable-length model hold the end/pad category), or None.
        min_length: positions that may not end a variable-length sequence.
        rules: forbidden motifs, homopolymer and GC limits.
        min_novelty: smallest distance to the training set kept, or None.
        train: the novelty reference sequences, or None when there is none.
        train_source: where they came from.
        max_candidates: the candidate budget.
    """

    template: Template | None
    fixed: Tensor | None
    min_length: int
    rules: Rules
    min_novelty: int | None
    train: list[str] | None
    train_source: str | None
    max_candidates: int

    @property
    def rejects(self) -> bool:
        """Whether any candidate may be rejected."""
        return self.rules.active or self.min_novelty is not None

    def failures(self, seqs: Sequence[str]) -> list[list[str]]:
        """The rules each sequence breaks (empty list: it passes)."""
        out = [self.rules.failures(s) for s in seqs]
        if self.template is not None:
            for s, fails in zip(seqs, out, strict=True):
                if not self.template.matches(s):  # clamping makes this a bug check
                    fails.append("template")
        floor = self.min_novelty
        found = self.novelty(seqs) if floor is not None else None
        if floor is not None and found is not None:
            for d, fails in zip(found[0], out, strict=True):
                if d < floor:
                    fails.append(f"novelty < {floor}")
        return out

    def novelty(self, seqs: Sequence[str]) -> tuple[list[int], str] | None:
        """Distance of each sequence to its nearest training sequence and the distance's name
        (``hamming`` or ``levenshtein``), or None without a reference."""
        if not self.train:
            return None
        dist, metric = nearest_distance(list(seqs), self.train)
        return dist.tolist(), metric


def build_design(
    meta: ModelMeta,
    checkpoint: str | Path,
    *,
    n: int,
    template: str | None = None,
    prefix: str | None = None,
    suffix: str | None = None,
    forbid: Sequence[str] = (),
    max_homopolymer: int | None = None,
    gc_min: float | None = None,
    gc_max: float | None = None,
    min_novelty: int | None = None,
    train: str | Path | None = None,
    max_candidates: int | None = None,
    novelty_column: bool = False,
) -> Design:
    """Check the design options against the model and each other (``InvalidInputError``).

    The novelty reference is read only when ``min_novelty`` or ``train`` asks for it, or for
    ``novelty_column`` (a table output) when the run's recorded training set is small enough
    (:data:`MAX_IMPLICIT_REFERENCE` sequences; beyond it a warning says how to get it).
    """
    letters = str(meta.alphabet["letters"])
    tmpl = _template(meta, letters, template, prefix, suffix)
    rules = Rules.build(
        letters, forbid=forbid, max_homopolymer=max_homopolymer, gc_min=gc_min, gc_max=gc_max
    )
    reason = rules.infeasible(tmpl, meta.length)
    if reason is not None:
        raise InvalidInputError(f"impossible constraints: {reason}")
    if min_novelty is not None and min_novelty < 0:
        raise InvalidInputError(f"--min-novelty {min_novelty}: must be >= 0")
    reference, source = _reference(
        checkpoint, train, letters, needed=min_novelty is not None, wanted=novelty_column
    )
    budget = max(DEFAULT_BUDGET * n, 1000) if max_candidates is None else max_candidates
    if budget < n:
        raise InvalidInputError(f"--max-candidates {budget}: must be at least -n {n}")
    fixed, min_length = None, 1
    if tmpl is not None:
        fixed = torch.full((meta.length,), -1, dtype=torch.long)
        for i, c in enumerate(tmpl.fixed):
            if c is not None:
                fixed[i] = letters.index(c)
        if meta.pad is not None and tmpl.length < meta.length and not tmpl.open_end:
            fixed[tmpl.length :] = meta.pad
        # an open end (a prefix) leaves at least one letter to design after it
        min_length = max(1, tmpl.length + int(tmpl.open_end and tmpl.length < meta.length))
    return Design(
        template=tmpl, fixed=fixed, min_length=min_length, rules=rules, min_novelty=min_novelty,
        train=reference, train_source=source, max_candidates=budget,
    )  # fmt: skip


def _template(
    meta: ModelMeta, letters: str, template: str | None, prefix: str | None, suffix: str | None
) -> Template | None:
    if template is not None and (prefix or suffix):
        raise InvalidInputError("--template: give either a template or --prefix/--suffix")
    if template is not None:
        tmpl = Template.parse(template, letters)
        if tmpl.length > meta.length or (meta.pad is None and tmpl.length != meta.length):
            need = f"at most {meta.length}" if meta.pad is not None else f"{meta.length}"
            raise InvalidInputError(
                f"--template: {tmpl.length} positions; this model makes sequences of {need}"
            )
        return tmpl
    if not prefix and not suffix:
        return None
    if meta.pad is not None:
        if suffix:
            raise InvalidInputError(
                "--suffix: a variable-length model has no fixed end; give --template with the "
                "whole sequence (free positions as N) to fix letters at its end"
            )
        if len(prefix or "") > meta.length:
            raise InvalidInputError(
                f"--prefix: {len(prefix or '')} letters; this model makes sequences of at most "
                f"{meta.length}"
            )
        tmpl = Template.flanks(prefix or "", "", len(prefix or ""), letters)
        return Template(tmpl.text, tmpl.fixed, open_end=True)  # the rest is free, end included
    return Template.flanks(prefix or "", suffix or "", meta.length, letters)


def _reference(
    checkpoint: str | Path, train: str | Path | None, letters: str, *, needed: bool,
    wanted: bool,
) -> tuple[list[str] | None, str | None]:  # fmt: skip
    """The novelty reference: ``train`` (any readable sequence file) or the run's own copy,
    or None when nothing asks for it."""
    if train is not None:
        return read_set(train, alphabet=letters).seqs, str(train)
    if not needed and not wanted:
        return None, None
    folder = Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent
    recorded = folder / TRAIN_FILE
    if not recorded.is_file():
        if needed:
            raise InvalidInputError(
                f"--min-novelty: {folder} holds no {TRAIN_FILE} (runs before seqflow 0.2 and "
                "exported bundles do not); give the training data with --train"
            )
        return None, None
    with gzip.open(recorded, "rt", encoding="utf-8") as handle:
        seqs = [line.strip() for line in handle if line.strip() and not line.startswith(">")]
    if not needed and len(seqs) > MAX_IMPLICIT_REFERENCE:
        warnings.warn(
            f"novelty column left out: {recorded} holds {len(seqs):,} sequences (the search "
            f"covers all of them); ask for it with --min-novelty 0 or --train FILE",
            stacklevel=3,
        )
        return None, None
    return seqs, str(recorded)
