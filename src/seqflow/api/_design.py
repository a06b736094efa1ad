"""Constrained sampling for ``sample``: templates, synthesis rules, novelty and oracle scores.

Fixed positions are clamped during integration (:func:`seqflow.sampling.generate`); every other
rule is enforced by rejection: candidates are drawn in rounds until ``n`` pass or the candidate
budget is spent. Round 0 draws ``n`` candidates with the user's seed, so a request whose
candidates all pass returns what plain sampling returns; later rounds are sized from the
acceptance seen so far and seeded from ``(seed, round)``. What cannot be met fails with one line
naming the rules that rejected the candidates, before sampling when the fixed letters alone
decide it (:meth:`~seqflow.design.Rules.infeasible`).
"""

from __future__ import annotations

import gzip
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqflow.api._sets import read_set
from seqflow.checkpoint import ModelMeta
from seqflow.design import Rules, Template, gc_fraction, longest_run, nucleic
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
        if self.min_novelty is not None and self.train:
            dist, _ = nearest_distance(list(seqs), self.train)
            for d, fails in zip(dist.tolist(), out, strict=True):
                if d < self.min_novelty:
                    fails.append(f"novelty < {self.min_novelty}")
        return out


@dataclass
class Tally:
    """Candidates drawn and why they were rejected (a candidate may break several rules)."""

    candidates: int = 0
    passed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    @property
    def acceptance(self) -> float:
        """Share of candidates that passed every rule."""
        return self.passed / self.candidates if self.candidates else 1.0

    def reasons(self) -> str:
        """The rejection reasons, most frequent first, e.g. ``GC window 0.4-0.6 x812``."""
        return ", ".join(f"{name} x{count}" for name, count in self.rejected.most_common())


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


def _round_seed(seed: int, round_: int) -> int:
    """Round 0 uses ``seed`` itself; later rounds a hash of ``(seed, round)``."""
    if round_ == 0:
        return seed
    state = np.random.SeedSequence([abs(seed), round_, int(seed < 0)]).generate_state(1)
    return int(state[0])


def draw_designs(
    draw: Callable[[int, int], list[str]], n: int, design: Design, seed: int
) -> tuple[list[tuple[int, str]], Tally]:
    """Draw candidates in rounds until ``n`` pass the design.

    Args:
        draw: ``draw(count, seed)`` -> ``count`` candidate sequences (the round's seed).
        n: sequences wanted.
        seed: the user's seed (round 0's).

    Returns:
        ``(candidate number, sequence)`` of the first ``n`` accepted, in draw order (1-based
        numbers over all rounds), and the tally.

    Raises:
        InvalidInputError: the budget ran out first; the message names the rules that
            rejected candidates and how often.
    """
    kept: list[tuple[int, str]] = []
    tally = Tally()
    round_ = 0
    while len(kept) < n and tally.candidates < design.max_candidates:
        need = n - len(kept)
        if round_ == 0:
            count = n
        else:  # aim for what is missing at the acceptance so far, plus a margin
            rate = max(tally.acceptance, 1.0 / (tally.candidates + 1))
            count = max(math.ceil(1.2 * need / rate), 16)
        count = min(count, design.max_candidates - tally.candidates)
        seqs = draw(count, _round_seed(seed, round_))
        fails = design.failures(seqs)
        for offset, (seq, why) in enumerate(zip(seqs, fails, strict=True)):
            if why:
                tally.rejected.update(why)
                continue
            tally.passed += 1
            if len(kept) < n:
                kept.append((tally.candidates + offset + 1, seq))
        tally.candidates += len(seqs)
        round_ += 1
    if len(kept) < n:
        raise InvalidInputError(
            f"constraints not met: {len(kept)} of {n} sequences passed in {tally.candidates} "
            f"candidates (acceptance {100 * tally.acceptance:.1f}%, budget --max-candidates "
            f"{design.max_candidates}); rejected by {tally.reasons()}: relax these or raise "
            "--max-candidates"
        )
    return kept, tally


def annotate(
    rows: list[dict[str, Any]],
    design: Design,
    meta: ModelMeta,
    *,
    label: str | None,
    value: float | None,
    guidance: float,
    cond: object | None,
) -> None:
    """Add the order sheet's columns to each row (``sequence`` set) in place.

    The checks are recomputed on the final sequences, independently of the sampling loop:
    conditions, length, GC (DNA/RNA), longest homopolymer run, one ``*_ok`` column per rule
    in force, and the distance to the nearest training sequence when a reference is known.
    """
    letters = str(meta.alphabet["letters"])
    seqs = [str(r["sequence"]) for r in rows]
    dist, metric = nearest_distance(seqs, design.train) if design.train else (None, None)
    rules = design.rules
    for i, (row, seq) in enumerate(zip(rows, seqs, strict=True)):
        if label is not None:
            row["label"] = label
        if value is not None:
            row["value"] = value
        if cond is not None and guidance != 1.0:
            row["guidance"] = guidance
        row["length"] = len(seq)
        if nucleic(letters):
            row["gc"] = round(gc_fraction(seq), 4)
        row["max_run"] = longest_run(seq)
        if design.template is not None:
            row["template_ok"] = design.template.matches(seq)
        if rules.forbid:
            row["forbid_ok"] = not any(m in seq for m in rules.forbid)
        if rules.max_homopolymer is not None:
            row["homopolymer_ok"] = longest_run(seq) <= rules.max_homopolymer
        if rules.gc_window:
            gc = gc_fraction(seq)
            row["gc_ok"] = (rules.gc_min is None or gc >= rules.gc_min) and (
                rules.gc_max is None or gc <= rules.gc_max
            )
        if dist is not None:
            row["novelty"] = int(dist[i])
            row["novelty_metric"] = metric
            if design.min_novelty is not None:
                row["novelty_ok"] = int(dist[i]) >= design.min_novelty
