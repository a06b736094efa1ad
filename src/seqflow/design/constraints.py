"""Synthesis rules for designed sequences: a template, forbidden motifs, homopolymers, GC.

A candidate is ordered only if a vendor can make it and the lab can clone it: fixed flanks
(primer or adapter sites), no site of the cloning enzyme (e.g. BsaI ``GGTCTC``, on either strand
for DNA/RNA), no long runs of one letter, GC content inside the vendor's window.
:meth:`Rules.infeasible` makes impossible requests fail before any sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from seqflow.errors import InvalidInputError

WILDCARDS = "N?."
"""Template characters for a free position when they are not letters of the alphabet (``X``
too for alphabets without it, e.g. DNA; proteins use ``?`` or ``.``)."""

_COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "U": "A"}


def nucleic(letters: str) -> bool:
    """Whether an alphabet is DNA or RNA (strands and GC content make sense)."""
    return set(letters) <= set("ACGTUN") and set("ACG") <= set(letters)


def reverse_complement(motif: str) -> str:
    """Reverse complement of a DNA/RNA motif (``U`` pairs with ``A``; RNA keeps ``U``)."""
    rna = "U" in motif and "T" not in motif
    out = "".join(_COMPLEMENT[c] for c in reversed(motif))
    return out.replace("T", "U") if rna else out


@dataclass(frozen=True)
class Template:
    """Fixed letters at given positions; every other position is free.

    Attributes:
        text: the template as given, upper case, e.g. ``ACGTNNNNNNACGT``.
        fixed: letter per position, ``None`` where free; its length is the length designed.
        open_end: the template fixes only the start of longer sequences (variable-length model).
    """

    text: str
    fixed: tuple[str | None, ...]
    open_end: bool = False

    @classmethod
    def parse(cls, text: str, letters: str, *, option: str = "--template") -> Template:
        """Read a template over ``letters``; wildcards (:data:`WILDCARDS`, ``X``) are free."""
        text = text.strip().upper()
        if not text:
            raise InvalidInputError(f"{option}: empty template")
        free = {c for c in WILDCARDS + "X" if c not in letters}
        fixed: list[str | None] = []
        for i, c in enumerate(text, start=1):
            if c in letters:
                fixed.append(c)
            elif c in free:
                fixed.append(None)
            else:
                raise InvalidInputError(
                    f"{option}: position {i} {c!r} is neither a letter of the model ({letters}) "
                    f"nor a free-position wildcard ({''.join(sorted(free))})"
                )
        return cls(text, tuple(fixed))

    @classmethod
    def flanks(cls, prefix: str, suffix: str, length: int, letters: str) -> Template:
        """``prefix + free positions + suffix`` filling ``length``."""
        free = length - len(prefix) - len(suffix)
        if free < 0:
            raise InvalidInputError(
                f"--prefix/--suffix: {len(prefix) + len(suffix)} fixed letters do not fit the "
                f"model's length {length}"
            )
        wild = next(c for c in WILDCARDS + "X" if c not in letters)
        for option, part in (("--prefix", prefix), ("--suffix", suffix)):
            bad = sorted({c for c in part.upper() if c not in letters})
            if bad:
                raise InvalidInputError(
                    f"{option} {part}: {bad[0]!r} is not a letter of the model ({letters})"
                )
        return cls.parse(prefix + wild * free + suffix, letters, option="--prefix/--suffix")

    @property
    def length(self) -> int:
        """Length of the designed sequences."""
        return len(self.fixed)

    def matches(self, seq: str) -> bool:
        """Whether ``seq`` has the fixed letters, and this length unless the end is open."""
        if len(seq) < self.length or (len(seq) > self.length and not self.open_end):
            return False
        return all(c is None or c == s for c, s in zip(self.fixed, seq, strict=False))


@dataclass(frozen=True)
class Rules:
    """Checks a sequence must pass to be ordered.

    Attributes:
        forbid: motifs that must not occur (upper case); for DNA/RNA also on the other strand.
        max_homopolymer: longest run of one letter allowed, or None.
        gc_min, gc_max: window of the GC fraction (G + C over the length), or None.
        letters: the alphabet's letters.
    """

    letters: str
    forbid: tuple[str, ...] = ()
    max_homopolymer: int | None = None
    gc_min: float | None = None
    gc_max: float | None = None

    @classmethod
    def build(
        cls,
        letters: str,
        *,
        forbid: Sequence[str] = (),
        max_homopolymer: int | None = None,
        gc_min: float | None = None,
        gc_max: float | None = None,
    ) -> Rules:
        """Validate the options and add reverse complements of DNA/RNA motifs."""
        motifs: list[str] = []
        for raw in forbid:
            motif = raw.strip().upper()
            bad = sorted({c for c in motif if c not in letters})
            if not motif or bad:
                what = "is empty" if not motif else f"has {bad[0]!r}, not a letter of {letters}"
                raise InvalidInputError(f"--forbid {raw!r}: the motif {what}")
            motifs += [motif, reverse_complement(motif)] if nucleic(letters) else [motif]
        if max_homopolymer is not None and max_homopolymer < 1:
            raise InvalidInputError(f"--max-homopolymer {max_homopolymer}: must be >= 1")
        for option, value in (("--gc-min", gc_min), ("--gc-max", gc_max)):
            if value is None:
                continue
            if not nucleic(letters):
                raise InvalidInputError(f"{option}: GC content needs a DNA/RNA model ({letters})")
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{option} {value}: a GC fraction between 0 and 1")
        if gc_min is not None and gc_max is not None and gc_min > gc_max:
            raise InvalidInputError(f"--gc-min {gc_min} is above --gc-max {gc_max}")
        return cls(letters, tuple(dict.fromkeys(motifs)), max_homopolymer, gc_min, gc_max)

    @property
    def active(self) -> bool:
        """Whether any rule is set."""
        return bool(self.forbid) or self.max_homopolymer is not None or self.gc_window

    @property
    def gc_window(self) -> bool:
        """Whether a GC bound is set."""
        return self.gc_min is not None or self.gc_max is not None

    def describe_gc(self) -> str:
        """The window as text, e.g. ``GC window 0.4-0.6``."""
        lo = "0" if self.gc_min is None else f"{self.gc_min:g}"
        hi = "1" if self.gc_max is None else f"{self.gc_max:g}"
        return f"GC window {lo}-{hi}"

    def gc_ok(self, seq: str) -> bool:
        """Whether the GC fraction of ``seq`` lies inside the window."""
        gc = gc_fraction(seq)
        return (self.gc_min is None or gc >= self.gc_min) and (
            self.gc_max is None or gc <= self.gc_max
        )

    def failures(self, seq: str) -> list[str]:
        """Names of the rules ``seq`` breaks (empty: it passes), e.g. ``forbid GGTCTC``."""
        out = [f"forbid {m}" for m in self.forbid if m in seq]
        if self.max_homopolymer is not None and longest_run(seq) > self.max_homopolymer:
            out.append(f"homopolymer > {self.max_homopolymer}")
        if self.gc_window and not self.gc_ok(seq):
            out.append(self.describe_gc())
        return out

    def infeasible(self, template: Template | None, length: int) -> str | None:
        """Why no sequence of ``length`` with ``template`` can pass, or None if some may: a
        forbidden motif or too long a run among the fixed letters, or a GC window out of reach."""
        if template is not None:
            for part in "".join(c or "\0" for c in template.fixed).split("\0"):
                run = longest_run(part)
                if self.max_homopolymer is not None and run > self.max_homopolymer:
                    return (
                        f"--max-homopolymer {self.max_homopolymer}: the template's fixed "
                        f"letters already hold a run of {run}"
                    )
                hit = next((m for m in self.forbid if m in part), None)
                if hit is not None:
                    return f"--forbid: the template's fixed letters contain {hit}"
        if self.gc_window and not (template is not None and template.open_end):
            fixed = template.fixed if template is not None else (None,) * length
            gc_fixed = sum(c in "GC" for c in fixed if c is not None)
            free = sum(c is None for c in fixed)
            lo, hi = gc_fixed / len(fixed), (gc_fixed + free) / len(fixed)
            if (self.gc_min is not None and hi < self.gc_min) or (
                self.gc_max is not None and lo > self.gc_max
            ):
                return (
                    f"{self.describe_gc()}: with the template's fixed letters the GC fraction "
                    f"can only lie in {lo:.3f}-{hi:.3f}"
                )
        return None


def longest_run(seq: str) -> int:
    """Length of the longest run of one letter (0 for an empty sequence)."""
    return max((len(list(run)) for _, run in groupby(seq)), default=0)


def gc_fraction(seq: str) -> float:
    """(G + C) / length; 0 for an empty sequence."""
    return (seq.count("G") + seq.count("C")) / len(seq) if seq else 0.0
