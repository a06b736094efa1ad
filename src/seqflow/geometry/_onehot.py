"""The one-hot code of token rows, flattened: the right factor of every OT cost matrix."""

from __future__ import annotations

import torch
from torch import Tensor


def flat_onehot(tokens: Tensor, vocab: int, like: Tensor) -> Tensor:
    """``onehot(tokens)`` of integer ``tokens`` (B1, L) reshaped to ``(B1, L * vocab)`` with
    ``like``'s dtype and device: a cost linear in it is ``C = A @ flat_onehot(...).T``."""
    length = tokens.shape[1]
    index = tokens.long() + torch.arange(length, device=tokens.device) * vocab  # (B1, L)
    return like.new_zeros(tokens.shape[0], length * vocab).scatter_(1, index, 1.0)
