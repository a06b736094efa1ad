"""Sequence mode's task: minibatches with their coupled prior samples, optionally prepared
ahead, and the held-out sequences.

The coupling needs only the data and fresh prior noise, never the model, so with ``prefetch``
the minibatch of step n+1 is built on the CPU (SciPy's assignment and torch release the GIL)
while the network trains on step n. Each batch is a pure function of the stream's generator
state and its batch counter, and the saved state is the one *before* the pending batch, so a
resumed run rebuilds exactly the batch it would have used, on any number of ranks
(:mod:`seqflow.training.distributed` splits a global batch).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from seqflow.config import TrainConfig
from seqflow.errors import ConfigError, SeqflowError
from seqflow.flow import FlowMatching
from seqflow.models import Condition
from seqflow.training.distributed import SINGLE, Shard

VALID_MAX_SEQUENCES = 2048


@dataclass(frozen=True)
class TrainingSet:
    """Tokenised sequences for the engine.

    Attributes:
        tokens: shape ``(N, L)``, integer category indices (letters, and the end/pad category
            of variable-length data).
        cond: their conditions (labels ``(N,)``, values ``(N,)``, signal ``(N, L, C)``).
    """

    tokens: Tensor
    cond: Condition = field(default_factory=Condition)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


@dataclass(frozen=True)
class CoupledBatch:
    """One training minibatch on the CPU (of sequences, or of clouds in library mode).

    Attributes:
        tokens: data tokens, shape ``(batch, length)`` (clouds: ``(batch, size, length)``).
        cond: the items' conditions (labels ``(batch,)``, values ``(batch,)``, signal
            ``(batch, length, channels)``; each optional).
        x_0: prior samples paired with the tokens, shape ``(*tokens.shape, vocab)``.
    """

    tokens: Tensor
    cond: Condition
    x_0: Tensor


VALUE_BINS = 4
"""Scalar values split a minibatch into this many quantile groups for the coupling."""


def coupling_groups(cond: Condition) -> Tensor | None:
    """Groups within which prior samples are paired with data, shape ``(batch,)``, or None.

    Sampling draws ``x_0`` from the prior whatever the condition; pairing only within a class
    (and a value's quantile bin) keeps the coupled ``x_0`` close to that given the condition.
    """
    groups = cond.labels.long() if cond.labels is not None else None
    if cond.values is not None and len(cond.values) >= 2 * VALUE_BINS:
        edges = torch.quantile(
            cond.values.float(), torch.linspace(0, 1, VALUE_BINS + 1)[1:-1].to(cond.values.device)
        )
        bins = torch.bucketize(cond.values.float(), edges)
        groups = bins if groups is None else groups * VALUE_BINS + bins
    return groups


class CoupledBatchStream:
    """An endless, reproducible stream of coupled minibatches (epochs without replacement).

    The epoch order comes from the stream's generator; the rest of batch ``n`` (prior noise,
    the coupling's random choices) from generators seeded by ``(seed, n)`` and
    ``(seed, rank, n)``, so ``workers`` threads can build batches ahead in any order.

    Args:
        tokens: all training tokens, shape ``(N, L)``; cond: their conditions.
        batch_size: the global batch (capped at N); this rank gets ``batch_size / world``.
        prefetch: build batches ahead in worker threads (False: build on demand).
        pin_memory: pin the batch tensors for asynchronous copies to a GPU.
        workers: threads building batches ahead when ``prefetch`` (``data.num_workers``).
    """

    def __init__(
        self,
        tokens: Tensor,
        cond: Condition,
        flow: FlowMatching,
        *,
        batch_size: int,
        seed: int,
        prefetch: bool = True,
        pin_memory: bool = False,
        shard: Shard = SINGLE,
        workers: int = 1,
    ) -> None:
        self.tokens = tokens.cpu()
        self.cond = cond.to(torch.device("cpu"))
        self.flow = flow
        self.shard = shard
        cap = len(self.tokens) - len(self.tokens) % shard.world
        self.batch_size = min(batch_size, cap)
        if self.batch_size < shard.world:
            raise ConfigError(
                f"{len(self.tokens)} training sequences cannot feed {shard.world} processes"
            )
        if self.batch_size % shard.world:
            raise ConfigError(
                f"train.batch_size: {self.batch_size} does not split evenly over "
                f"{shard.world} processes (it is the global batch)"
            )
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(self.tokens), generator=self.generator)
        self.cursor = 0
        self.batches = 0
        self.pin_memory = pin_memory
        self.depth = max(1, workers) if prefetch else 0
        self._pool = (
            ThreadPoolExecutor(max_workers=self.depth, initializer=_single_threaded)
            if self.depth
            else None
        )
        self._pending: deque[tuple[dict[str, Any], Future[CoupledBatch]]] = deque()

    def _state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "order": self.order.clone(),
            "cursor": self.cursor,
            "batches": self.batches,
            "seed": self.seed,
        }

    def _draw(self) -> tuple[dict[str, Any], Tensor, int]:
        """Advance the order by one global batch: (state before, its indices, batch number)."""
        before = self._state()
        if self.cursor + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.tokens), generator=self.generator)
            self.cursor = 0
        batch = self.order[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        self.batches += 1
        return before, batch, self.batches - 1

    def _build(self, batch: Tensor, number: int) -> CoupledBatch:
        """This rank's share of global batch ``batch`` (indices), coupled."""
        rows = self.shard.rows(self.batch_size)
        shape = (self.batch_size, self.tokens.shape[1])
        noise = self.flow.prior(
            shape, generator=seeded_generator(self.seed, -1, number), device=torch.device("cpu")
        )
        idx = batch[rows]
        tokens = self.tokens[idx]
        cond = self.cond.select(idx)
        x_0 = self.flow.couple(
            tokens, generator=seeded_generator(self.seed, self.shard.rank, number),
            groups=coupling_groups(cond), x_0=noise[rows],
        )  # fmt: skip
        if self.pin_memory:
            tokens, x_0 = tokens.pin_memory(), x_0.pin_memory()
            cond = Condition(*(t.pin_memory() if t is not None else None for t in cond))
        return CoupledBatch(tokens=tokens, cond=cond, x_0=x_0)

    def _fill(self) -> None:
        assert self._pool is not None
        while len(self._pending) < self.depth:
            before, batch, number = self._draw()
            self._pending.append((before, self._pool.submit(self._build, batch, number)))

    def next(self) -> CoupledBatch:
        """The next minibatch (and keep ``workers`` more in preparation)."""
        if self._pool is None:
            _, batch, number = self._draw()
            return self._build(batch, number)
        self._fill()
        _, future = self._pending.popleft()
        self._fill()
        return future.result()

    def state_dict(self) -> dict[str, Any]:
        """The state from which the next :meth:`next` call's batch is rebuilt."""
        if self._pending:
            return self._pending[0][0]
        return self._state()

    def _drop_pending(self) -> None:
        for _, future in self._pending:
            future.cancel()
        for _, future in self._pending:
            if not future.cancelled():
                future.exception()  # wait; an error of a dropped batch does not matter
        self._pending.clear()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` (drops any prepared batch)."""
        self._drop_pending()
        self.generator.set_state(state["generator"])
        self.order = state["order"].long()
        self.cursor = int(state["cursor"])
        self.batches = int(state.get("batches", 0))
        self.seed = int(state.get("seed", self.seed))

    def close(self) -> None:
        """Stop the worker threads; the stream rewinds to before any prepared batch."""
        state = self.state_dict()
        self._drop_pending()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.load_state_dict(state)


class SequenceTask:
    """Sequence mode for the :class:`~seqflow.training.Trainer`: a :class:`CoupledBatchStream`
    and validation on held-out sequences.

    Args:
        cfg: ``batch_size`` (the global batch) and ``seed`` (the stream takes ``seed + 1``).
        train: training sequences; valid: held-out sequences or None (only rank 0 validates).
        device: on CUDA batches are pinned and, with ``workers`` None, built ahead by one
            thread; on a CPU they are built inline (the network already uses every core).
        shard: this process's place in a ``torchrun`` job.
        workers: threads building batches ahead (``data.num_workers``); 0: built inline.
    """

    def __init__(
        self,
        flow: FlowMatching,
        cfg: TrainConfig,
        train: TrainingSet,
        valid: TrainingSet | None = None,
        *,
        device: torch.device,
        shard: Shard = SINGLE,
        workers: int | None = None,
    ) -> None:
        if len(train) == 0:
            raise SeqflowError("no training sequences left after the validation split")
        self.flow = flow
        self.valid = valid if valid is not None and len(valid) and shard.main else None
        self.stream = CoupledBatchStream(
            train.tokens, train.cond, flow, batch_size=cfg.batch_size, seed=cfg.seed + 1,
            prefetch=device.type == "cuda" if workers is None else workers > 0,
            pin_memory=device.type == "cuda", shard=shard, workers=workers or 1,
        )  # fmt: skip

    def next_batch(self) -> CoupledBatch:
        """This rank's share of the next global minibatch."""
        return self.stream.next()

    def valid_batches(
        self, batch_size: int, generator: torch.Generator
    ) -> Iterator[CoupledBatch] | None:
        """The first ``VALID_MAX_SEQUENCES`` held-out sequences in batches, coupled with
        prior samples of the CPU ``generator``; None without a held-out set."""
        if self.valid is None:
            return None
        return self._valid_batches(self.valid, batch_size, generator)

    def _valid_batches(
        self, valid: TrainingSet, batch_size: int, generator: torch.Generator
    ) -> Iterator[CoupledBatch]:
        n = min(len(valid), VALID_MAX_SEQUENCES)
        for start in range(0, n, batch_size):
            rows = slice(start, min(n, start + batch_size))
            tokens, cond = valid.tokens[rows], valid.cond.select(rows)
            x_0 = self.flow.couple(tokens, generator=generator, groups=coupling_groups(cond))
            yield CoupledBatch(tokens=tokens, cond=cond, x_0=x_0)

    @staticmethod
    def model_condition(cond: Condition) -> Condition:
        """The model's condition argument: the conditions themselves."""
        return cond

    def state_dict(self) -> dict[str, Any]:
        """The stream's state (the order, the next batch)."""
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict`."""
        self.stream.load_state_dict(state)

    def close(self) -> None:
        """Stop the stream's worker threads."""
        self.stream.close()


def seeded_generator(*key: int) -> torch.Generator:
    """A CPU generator seeded by ``key`` (Python hashes tuples of ints the same way in every
    process)."""
    return torch.Generator().manual_seed(hash(key) & (2**63 - 1))


def _single_threaded() -> None:
    """Run the worker's torch ops on one thread (a per-thread setting): a second OpenMP team
    would spin on the cores the network step is using."""
    torch.set_num_threads(1)
