"""Rejection sampling of designs: candidates are drawn in rounds until ``n`` pass the rules.

Round 0 draws ``n`` candidates with the user's seed, so a request whose candidates all pass
returns what plain sampling returns; later rounds are sized from the acceptance seen so far and
seeded from ``(seed, round)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from seqflow.errors import InvalidInputError


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


def round_seed(seed: int, round_: int) -> int:
    """Round 0 uses ``seed`` itself; later rounds a hash of ``(seed, round)``."""
    if round_ == 0:
        return seed
    state = np.random.SeedSequence([abs(seed), round_, int(seed < 0)]).generate_state(1)
    return int(state[0])


def draw_designs(
    draw: Callable[[int, int], list[str]],
    n: int,
    failures: Callable[[Sequence[str]], list[list[str]]],
    *,
    max_candidates: int,
    seed: int,
) -> tuple[list[tuple[int, str]], Tally]:
    """Draw candidates in rounds until ``n`` pass.

    Args:
        draw: ``draw(count, seed)`` -> ``count`` candidate sequences (the round's seed).
        n: sequences wanted.
        failures: the rules each of a list of sequences breaks (an empty list: it passes).
        max_candidates: the candidate budget.
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
    while len(kept) < n and tally.candidates < max_candidates:
        need = n - len(kept)
        if round_ == 0:
            count = n
        else:  # aim for what is missing at the acceptance so far, plus a margin
            rate = max(tally.acceptance, 1.0 / (tally.candidates + 1))
            count = max(math.ceil(1.2 * need / rate), 16)
        count = min(count, max_candidates - tally.candidates)
        seqs = draw(count, round_seed(seed, round_))
        for offset, (seq, why) in enumerate(zip(seqs, failures(seqs), strict=True)):
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
            f"{max_candidates}); rejected by {tally.reasons()}: relax these or raise "
            "--max-candidates"
        )
    return kept, tally
