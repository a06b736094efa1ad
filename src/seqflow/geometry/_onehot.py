"""The one-hot code of token rows, flattened: the right factor of every OT cost matrix."""

from __future__ import annotations

import torch
from torch import Tensor


def flat_onehot(tokens: Tensor, vocab: int, like: Tensor) -> Tensor:
    """``onehot(tokens)`` reshaped to ``(B1, L * vocab)`` with ``like``'s dtype and device.

    A cost that is linear in the one-hot code of the targets, ``C = A @ flat_onehot(...).T``
    with ``A`` of shape ``(B0, L * vocab)``, is then one matrix product.

    Args:
        tokens: integer tokens, shape ``(B1, L)``.
    """
    length = tokens.shape[1]
    index = tokens.long() + torch.arange(length, device=tokens.device) * vocab  # (B1, L)
    return like.new_zeros(tokens.shape[0], length * vocab).scatter_(1, index, 1.0)
