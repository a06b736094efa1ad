"""Minibatches with their coupled prior samples, optionally prepared one step ahead.

The coupling needs only the data and fresh prior noise, never the model, so with ``prefetch``
the minibatch of step n+1 (indices, tokens, prior samples, OT assignment) is built on the CPU
while the network trains on step n; the trainer enables it on CUDA, where the CPU is otherwise
idle. SciPy's assignment solver and torch release the GIL, so the two really overlap. The
stream is deterministic: each batch is a pure function of the stream's generator state, and
:meth:`state_dict` returns the state *before* the pending batch, so a resumed run rebuilds
exactly the batch it would have used.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from seqflow.flow import FisherFlow
from seqflow.models import Condition


@dataclass(frozen=True)
class CoupledBatch:
    """One training minibatch on the CPU.

    Attributes:
        tokens: data tokens, shape ``(batch, length)``.
        cond: the sequences' conditions (labels ``(batch,)``, values ``(batch,)``, signal
            ``(batch, length, channels)``; each optional).
        x_0: prior samples paired with the tokens, shape ``(batch, length, vocab)``.
    """

    tokens: Tensor
    cond: Condition
    x_0: Tensor


VALUE_BINS = 4
"""Scalar values split a minibatch into this many quantile groups for the coupling."""


def coupling_groups(cond: Condition) -> Tensor | None:
    """Groups within which prior samples are paired with data, shape ``(batch,)``, or None.

    A coupling computed on the whole batch makes ``x_0`` depend on the data and hence on the
    condition, while sampling draws ``x_0`` from the prior whatever the condition. Pairing only
    within a class (and, for a scalar value, within one of ``VALUE_BINS`` quantile bins of the
    batch) keeps ``x_0`` close to prior-distributed given the condition.
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

    Args:
        tokens: all training tokens, shape ``(N, L)`` (CPU).
        cond: conditions of all sequences (CPU); labels and value bins also group the
            coupling (see :func:`coupling_groups`).
        flow: supplies the prior and the coupling.
        batch_size: sequences per batch (capped at N).
        seed: seed of the stream's generator.
        prefetch: build the next batch in a worker thread (False: build on demand).
        pin_memory: pin the batch tensors for asynchronous copies to a GPU.
    """

    def __init__(
        self,
        tokens: Tensor,
        cond: Condition,
        flow: FisherFlow,
        *,
        batch_size: int,
        seed: int,
        prefetch: bool = True,
        pin_memory: bool = False,
    ) -> None:
        self.tokens = tokens.cpu()
        self.cond = cond.to(torch.device("cpu"))
        self.flow = flow
        self.batch_size = min(batch_size, len(self.tokens))
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(self.tokens), generator=self.generator)
        self.cursor = 0
        self.pin_memory = pin_memory
        self._pool = (
            ThreadPoolExecutor(max_workers=1, initializer=_single_threaded) if prefetch else None
        )
        self._pending: Future[tuple[dict[str, Any], CoupledBatch]] | None = None

    def _state(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "order": self.order.clone(),
            "cursor": self.cursor,
        }

    def _produce(self) -> tuple[dict[str, Any], CoupledBatch]:
        before = self._state()
        if self.cursor + self.batch_size > len(self.order):
            self.order = torch.randperm(len(self.tokens), generator=self.generator)
            self.cursor = 0
        idx = self.order[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        tokens = self.tokens[idx]
        cond = self.cond.select(idx)
        x_0 = self.flow.couple(tokens, generator=self.generator, groups=coupling_groups(cond))
        if self.pin_memory:
            tokens, x_0 = tokens.pin_memory(), x_0.pin_memory()
            cond = Condition(*(t.pin_memory() if t is not None else None for t in cond))
        return before, CoupledBatch(tokens=tokens, cond=cond, x_0=x_0)

    def _submit(self) -> None:
        if self._pool is not None:
            self._pending = self._pool.submit(self._produce)

    def next(self) -> CoupledBatch:
        """The next minibatch (and start preparing the one after it)."""
        if self._pending is None:
            _, batch = self._produce()
        else:
            _, batch = self._pending.result()
        self._submit()
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The state from which the next :meth:`next` call's batch is rebuilt."""
        if self._pending is not None:
            return self._pending.result()[0]
        return self._state()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` (drops any prepared batch)."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
        self.generator.set_state(state["generator"])
        self.order = state["order"].long()
        self.cursor = int(state["cursor"])

    def close(self) -> None:
        """Stop the worker thread; the stream rewinds to before any prepared batch."""
        state = self.state_dict()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._pending = None
        self.load_state_dict(state)


def _single_threaded() -> None:
    """Run the worker's torch ops on one thread (a per-thread setting): a second OpenMP team
    would spin on the cores the network step is using."""
    torch.set_num_threads(1)
