"""Sequences to padded tokens and one-hot tensors, checked letter by letter, for oracles.

An oracle takes plain strings (generated or read), so it checks them itself: a letter outside
its alphabet or a sequence longer than its input length is a one-line
:class:`~seqflow.errors.InvalidInputError` naming the sequence's 0-based index in the list.
The whole batch is converted in one vectorised table lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from seqflow.errors import InvalidInputError

PAD_MODES = ("center", "right")
"""Where a short sequence sits: ``center`` (padding split, the extra one on the right) or
``right`` (padding on the right)."""

_INVALID = 255


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


def _lookup(letters: str) -> np.ndarray:
    """Code point to token table, shape (256,), uint8; both cases map, others are invalid."""
    table = np.full(256, _INVALID, dtype=np.uint8)
    for token, letter in enumerate(letters):
        table[ord(letter)] = table[ord(letter.lower())] = token
    return table


def encode(
    seqs: Sequence[str], letters: str, *, length: int, source: str, pad_mode: str = "right"
) -> np.ndarray:
    """Tokens of ``seqs`` laid out in rows of ``length``, padded with ``len(letters)``.

    Args:
        seqs: N sequences (case-insensitive), each at most ``length`` letters.
        letters: the alphabet; a letter's token is its index.
        length: row length L (the oracle's input length).
        source: the oracle, named at the start of error messages.
        pad_mode: one of :data:`PAD_MODES`.

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
    n, size = len(seqs), len(letters)
    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=n)
    too_long = np.flatnonzero(lengths > length)
    if too_long.size:
        i = int(too_long[0])
        raise InvalidInputError(
            f"{source}: sequence {i} has length {lengths[i]} > the oracle's input length {length}"
        )
    codes = np.frombuffer("".join(seqs).encode("utf-32-le"), dtype=np.uint32)
    flat = np.full(codes.shape, _INVALID, dtype=np.uint8)
    ascii_ = codes < 256
    flat[ascii_] = _lookup(letters)[codes[ascii_]]
    starts = np.cumsum(lengths) - lengths
    bad = np.flatnonzero(flat == _INVALID)
    if bad.size:
        i = int(np.searchsorted(starts, bad[0], side="right")) - 1
        pos = int(bad[0] - starts[i])
        raise InvalidInputError(
            f"{source}: sequence {i} has letter {seqs[i][pos]!r} at position {pos + 1}, "
            f"not in the oracle's alphabet {letters}"
        )
    if pad_mode not in PAD_MODES:
        raise InvalidInputError(f"pad_mode {pad_mode!r}: must be one of {', '.join(PAD_MODES)}")
    offsets = (length - lengths) // 2 if pad_mode == "center" else np.zeros_like(lengths)
    tokens = np.full((n, length), size, dtype=np.uint8)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(len(flat)) - np.repeat(starts - offsets, lengths)
    tokens[rows, cols] = flat
    return tokens


def one_hot(tokens: Tensor, size: int, *, pad_value: float = 0.0) -> Tensor:
    """One-hot rows of ``tokens``, with ``pad_value`` in every channel at padding positions.

    Args:
        tokens: letter tokens, shape (batch, L), integer; ``size`` marks padding.
        size: alphabet size K.
        pad_value: value of every channel at a padding position (0 for the built-in oracle,
            0.25 for Sei-style models).

    Returns:
        shape (batch, L, K), float32.
    """
    table = torch.cat([torch.eye(size), torch.full((1, size), float(pad_value))])
    return table[tokens.long()]
