"""What every oracle offers: predictions and embeddings of plain sequences; metrics and
guidance use an oracle through this protocol only."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

KINDS = ("classifier", "regressor", "external")
"""Values of :attr:`Oracle.kind`."""


@runtime_checkable
class Oracle(Protocol):
    """A sequence scorer.

    Attributes:
        kind: ``classifier``, ``regressor`` or ``external``.
        input_length: the longest sequence the oracle takes (shorter ones are padded).
        output_names: one name per output column (class names for a classifier).
    """

    @property
    def kind(self) -> str: ...

    @property
    def input_length(self) -> int: ...

    @property
    def output_names(self) -> tuple[str, ...]: ...

    def predict(self, seqs: list[str], batch_size: int = 256) -> np.ndarray:
        """Class probabilities or regression outputs, shape (N, len(output_names)), float32."""
        ...

    def embed(self, seqs: list[str], batch_size: int = 256) -> np.ndarray:
        """Penultimate features (for the Frechet distance), shape (N, D), float32."""
        ...
