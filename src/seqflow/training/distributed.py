"""Data-parallel training under ``torchrun``: who this process is and how ranks agree.

``torchrun --nproc_per_node=N -m seqflow fit ...`` starts N copies of the command with
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set; :func:`process_group` joins them (NCCL on CUDA,
gloo on CPU). seqflow has no launcher of its own.

Every rank draws the same global minibatch order, prior noise and times ``t``, and keeps its
contiguous shard of ``batch_size / world`` items; the OT coupling runs within each shard with a
per-rank, per-batch seed, and DistributedDataParallel averages the gradients. With the
independent coupling on the Fisher geometry a run on N processes computes the same steps as one
process with the same global batch, up to the order of floating-point sums.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seqflow.errors import ConfigError


@dataclass(frozen=True)
class Shard:
    """This process's place in a data-parallel run: global ``rank`` in ``[0, world)`` of
    ``world`` processes, and ``local_rank`` on this node (picks the GPU)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process writes files and reports progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process trains."""
        return self.world > 1

    def rows(self, batch: int) -> slice:
        """This rank's contiguous share of a global batch of ``batch`` sequences."""
        size = batch // self.world
        return slice(self.rank * size, (self.rank + 1) * size)


SINGLE = Shard()


def shard_from_env() -> Shard:
    """The shard ``torchrun`` describes in the environment (a single process without it)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError(
            "WORLD_SIZE, RANK and LOCAL_RANK must be integers (torchrun sets them)"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return Shard(rank=rank, world=world, local_rank=local)


@contextmanager
def process_group(device: torch.device) -> Iterator[tuple[Shard, torch.device]]:
    """Join the ``torchrun`` process group for a run on ``device`` when there is one (one GPU
    per local rank on CUDA), and leave it after if this call joined it. Yields this process's
    shard and its device."""
    joined = not dist.is_available() or not dist.is_initialized()
    shard = shard_from_env()
    joined = joined and shard.distributed
    if shard.distributed and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(shard.local_rank)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda" and shard.distributed:
        device = torch.device("cuda", shard.local_rank)
    try:
        yield shard, device
    finally:
        if joined and dist.is_initialized():
            dist.destroy_process_group()


def all_sum(x: torch.Tensor, shard: Shard) -> torch.Tensor:
    """Sum of ``x`` over ranks (``x`` itself in a single process); one collective."""
    if shard.distributed:
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def any_rank(flag: bool, shard: Shard, device: torch.device) -> bool:
    """Whether ``flag`` is set on any rank (a host sync; call it at log points only)."""
    if not shard.distributed:
        return flag
    value = torch.tensor(float(flag), device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def barrier(shard: Shard) -> None:
    """Wait for every rank (nothing in a single process)."""
    if shard.distributed:
        dist.barrier()
