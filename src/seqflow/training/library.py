"""Library mode's task: minibatches of libraries, each a cloud paired with a prior cloud.

Every step draws ``cfg.batch_size`` libraries (without replacement while the minibatch is not
larger than the data), subsamples each to ``size`` sequences without replacement and pairs them
with prior clouds by a :class:`~seqflow.flow.LibraryCoupling`. The global draw comes from one
CPU generator that every rank runs alike; each rank couples its contiguous share alone, with a
generator seeded per rank and batch. The generator's state and the batch count are the
resumable state: a run resumes bit-exactly on any number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqflow.config import TrainConfig
from seqflow.errors import ConfigError, InvalidInputError
from seqflow.flow import LibraryCoupling
from seqflow.models import Condition
from seqflow.training.batches import CoupledBatch, seeded_generator
from seqflow.training.distributed import SINGLE, Shard


@dataclass(frozen=True)
class LibrarySet:
    """Libraries of tokenised sequences for the engine.

    Attributes:
        libraries: one tensor per library, shape ``(n_i, length)``, integer; every ``n_i`` at
            least the set size the trainer draws.
        labels: class per library, shape ``(N,)`` int64, or None.
        label_names: the name of every class (index = label).
    """

    libraries: list[Tensor]
    labels: Tensor | None = None
    label_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.libraries)

    @property
    def length(self) -> int:
        """The common sequence length L."""
        return int(self.libraries[0].shape[1])


def raise_if_unusable(data: LibrarySet, size: int) -> None:
    """Raise :class:`InvalidInputError` unless every library has ``size`` sequences of one
    length and the labels (if any) match the libraries."""
    if len(data) == 0:
        raise InvalidInputError("no libraries to train on")
    for i, lib in enumerate(data.libraries):
        if lib.dim() != 2 or lib.shape[1] != data.length:
            raise InvalidInputError(
                f"library {i}: shape {tuple(lib.shape)}, expected (n, {data.length})"
            )
        if lib.shape[0] < size:
            raise InvalidInputError(
                f"library {i}: {lib.shape[0]} sequences, fewer than the set size {size}"
            )
    if data.labels is not None and data.labels.shape != (len(data),):
        raise InvalidInputError(
            f"labels: shape {tuple(data.labels.shape)}, expected ({len(data)},)"
        )


class LibraryTask:
    """Library mode for the :class:`~seqflow.training.Trainer` (no validation set).

    Args:
        coupling: pairs prior clouds with libraries; its flow gives the prior, path and loss.
        cfg: ``batch_size`` (libraries in the global batch) and ``seed`` (draws take ``seed + 1``).
        size: sequences per library in a training cloud (S).
    """

    def __init__(
        self,
        coupling: LibraryCoupling,
        cfg: TrainConfig,
        data: LibrarySet,
        *,
        size: int,
        shard: Shard = SINGLE,
    ) -> None:
        raise_if_unusable(data, size)
        if cfg.batch_size % shard.world:
            raise ConfigError(
                f"train.batch_size: {cfg.batch_size} libraries do not split evenly over "
                f"{shard.world} processes (it is the global batch)"
            )
        self.coupling = coupling
        self.flow = coupling.flow
        self.data = data
        self.size = size
        self.batch_size = cfg.batch_size
        self.shard = shard
        self.seed = cfg.seed + 1
        self.generator = torch.Generator().manual_seed(self.seed)
        self.batches = 0

    def next_batch(self) -> CoupledBatch:
        """This rank's share of the next global minibatch of clouds, on the CPU: tokens
        ``(batch / world, size, length)``, labels, coupled prior clouds."""
        libraries, g, b = self.data.libraries, self.generator, self.batch_size
        n = len(libraries)
        idx = torch.randperm(n, generator=g)[:b] if b <= n else torch.randint(n, (b,), generator=g)
        picks = [torch.randperm(len(libraries[i]), generator=g)[: self.size] for i in idx.tolist()]
        noise = self.flow.prior(
            (b, self.size, self.data.length), generator=g, device=torch.device("cpu")
        )
        rows = self.shard.rows(b)
        mine = zip(idx[rows].tolist(), picks[rows], strict=True)
        tokens = torch.stack([libraries[i][p] for i, p in mine]).long()
        labels = self.data.labels[idx[rows]] if self.data.labels is not None else None
        x_0 = self.coupling.couple(
            tokens, generator=seeded_generator(self.seed, self.shard.rank, self.batches),
            groups=labels, x_0=noise[rows],
        )  # fmt: skip
        self.batches += 1
        return CoupledBatch(tokens=tokens, cond=Condition(labels=labels), x_0=x_0)

    @staticmethod
    def valid_batches(batch_size: int, generator: torch.Generator) -> None:
        """Library mode holds no libraries out."""
        return None

    @staticmethod
    def model_condition(cond: Condition) -> Tensor | None:
        """The set model's condition argument: the library labels."""
        return cond.labels

    def state_dict(self) -> dict[str, Any]:
        """The draw generator's state and the batch count."""
        return {"generator": self.generator.get_state(), "batches": self.batches}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`, or the whole state of an older
        library trainer (its ``data_generator`` drew the libraries)."""
        if "data_generator" in state:
            state = {"generator": state["data_generator"], "batches": state["step"]}
        self.generator.set_state(state["generator"])
        self.batches = int(state["batches"])

    def close(self) -> None:
        """Nothing runs in the background."""
