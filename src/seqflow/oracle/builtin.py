"""The built-in oracle: a trained :class:`~seqflow.oracle.network.OracleCNN` on one-hot
sequences right-padded with all-zero rows to ``input_length``, and what it needs."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from seqflow.oracle.encoding import check_count, encode, in_batches, one_hot
from seqflow.oracle.network import NetworkConfig, OracleCNN

METRICS = {"classifier": "accuracy", "regressor": "r2"}
"""Held-out metric of each built-in kind."""


@dataclass(frozen=True, eq=False)
class BuiltinOracle:
    """A CNN classifier or regressor on one-hot sequences.

    Attributes:
        network: the trained network (kept in eval mode).
        config: its size, saved beside the weights.
        letters: the alphabet; token i is ``letters[i]``.
        input_length: the longest sequence taken.
        output_names: class names (classifier) or the value's name (regressor).
        kind: ``classifier`` or ``regressor``.
        value_mean, value_std: mean and standard deviation of a regressor's training values
            (0 and 1 for a classifier).
        metric: held-out accuracy (classifier) or R^2 (regressor) measured when it was fitted.
        source: how error messages name it (its file once saved or loaded).
    """

    network: OracleCNN
    config: NetworkConfig
    letters: str
    input_length: int
    output_names: tuple[str, ...]
    kind: str
    value_mean: float = 0.0
    value_std: float = 1.0
    metric: float = math.nan
    source: str = "oracle"

    @property
    def metric_name(self) -> str:
        """``accuracy`` or ``r2``."""
        return METRICS[self.kind]

    def _run(self, seqs: list[str], batch_size: int, fn: Callable[[Tensor], Tensor]) -> Tensor:
        check_count("batch_size", batch_size)
        tokens = torch.from_numpy(
            encode(seqs, self.letters, length=self.input_length, source=self.source)
        )
        self.network.eval()
        with torch.inference_mode():
            return in_batches(lambda t: fn(one_hot(t, len(self.letters))), tokens, batch_size)

    def predict(self, seqs: list[str], batch_size: int = 256) -> np.ndarray:
        """Class probabilities (rows summing to 1) or values of N sequences of the oracle's
        alphabet (any case) of at most ``input_length``, ``batch_size`` per forward pass: shape
        (N, len(output_names)), float32.

        Raises:
            InvalidInputError: a letter outside the alphabet or a sequence too long (the
                message names the sequence index).
        """
        return self._run(seqs, batch_size, self.outputs).numpy()

    def embed(self, seqs: list[str], batch_size: int = 256) -> np.ndarray:
        """Penultimate features of ``seqs``, shape (N, config.hidden), float32."""
        return self._run(seqs, batch_size, self.network.features).numpy()

    def outputs(self, x: Tensor) -> Tensor:
        """Softmax probabilities, or values on the training data's scale, of one-hot ``x``:
        shape (batch, L, K) -> (batch, outputs)."""
        y = self.network(x)
        if self.kind == "classifier":
            return torch.softmax(y, dim=-1)
        return y * self.value_std + self.value_mean
