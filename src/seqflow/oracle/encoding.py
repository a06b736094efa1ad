"""Sequences to padded tokens and one-hot tensors for oracles, and their input checks.

An oracle takes plain strings (generated or read), so it checks them itself: a letter outside
its alphabet or a sequence longer than its input length is a one-line
:class:`~seqflow.errors.InvalidInputError` naming the sequence's 0-based index in the list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from seqflow.errors import InvalidInputError
from seqflow.tokens import FlatTokens

PAD_MODES = ("center", "right")
"""Where a short sequence sits: ``center`` (padding split, the extra one on the right) or
``right`` (padding on the right)."""


def check_letters(letters: str, source: str) -> str:
    """``letters`` if they can be an oracle alphabet (>= 2 unique upper-case ASCII letters)."""
    ok = letters.isascii() and letters.isalpha() and letters == letters.upper()
    if not ok or len(letters) < 2 or len(set(letters)) != len(letters):
        raise InvalidInputError(
            f"{source}: alphabet {letters!r} must be >= 2 unique upper-case ASCII letters"
        )
    return letters


def last_line(err: Exception) -> str:
    """The last non-blank line of an error's message (torch's are long), or its type's name."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def check_count(name: str, value: int) -> int:
    """``value`` if it is an integer >= 1; InvalidInputError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} {value!r}: must be an integer >= 1")
    return value


def in_batches(fn: Callable[[Tensor], Tensor], tokens: Tensor, batch_size: int) -> Tensor:
    """``fn`` of ``tokens`` (N, L) taken ``batch_size`` rows at a time, concatenated (one call
    on the empty batch when N = 0)."""
    return torch.cat([
        fn(tokens[a : a + batch_size]) for a in range(0, max(len(tokens), 1), batch_size)
    ])  # fmt: skip


def encode(
    seqs: Sequence[str], letters: str, *, length: int, source: str, pad_mode: str = "right"
) -> np.ndarray:
    """Tokens of ``seqs`` laid out in rows of ``length``, padded with ``len(letters)``.

    Args:
        seqs: N sequences (case-insensitive), each at most ``length`` letters.
        letters: the alphabet; a letter's token is its index.
        length: row length L (the oracle's input length).
        source: the oracle, named at the start of error messages.
        pad_mode: one of :data:`PAD_MODES` (checked by the caller).

    Returns:
        tokens, shape (N, L), uint8; padding positions hold ``len(letters)``.

    Raises:
        InvalidInputError: not a list of strings, a sequence longer than ``length``, or a letter
            outside the alphabet (the message names the sequence index and letter position).
    """
    if isinstance(seqs, (str, bytes)):
        raise InvalidInputError(f"{source}: expects a list of sequences, got a single string")
    seqs = list(seqs)
    for i, seq in enumerate(seqs):
        if not isinstance(seq, str):
            raise InvalidInputError(f"{source}: sequence {i} is a {type(seq).__name__}, not str")
    flat = FlatTokens.of(seqs, letters)
    too_long = np.flatnonzero(flat.lengths > length)
    if too_long.size:
        i = int(too_long[0])
        raise InvalidInputError(
            f"{source}: sequence {i} has length {flat.lengths[i]} > the oracle's input length "
            f"{length}"
        )
    bad = flat.first_invalid()
    if bad is not None:
        i, pos = bad
        raise InvalidInputError(
            f"{source}: sequence {i} has letter {seqs[i][pos]!r} at position {pos + 1}, "
            f"not in the oracle's alphabet {letters}"
        )
    offsets = (length - flat.lengths) // 2 if pad_mode == "center" else None
    return flat.padded(length, len(letters), offsets)


def one_hot(tokens: Tensor, size: int, *, pad_value: float = 0.0) -> Tensor:
    """One-hot rows of ``tokens`` (batch, L) over K = ``size`` letters, with ``pad_value`` in
    every channel where the token is ``size`` (padding): shape (batch, L, K), float32."""
    table = torch.cat([torch.eye(size), torch.full((1, size), float(pad_value))])
    return table[tokens.long()]
