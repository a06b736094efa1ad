"""The ``torchrun`` process group of a ``fit``: joined for the run, left when the run joined it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from seqflow.training.distributed import Shard, init_from_env, shutdown


@contextmanager
def process_group(device: torch.device) -> Iterator[tuple[torch.device, Shard]]:
    """Join the process group ``torchrun`` describes (nothing in a single process).

    Yields:
        this process's device (``cuda:LOCAL_RANK`` for a CUDA run under ``torchrun``) and its
        shard. A group this call joined is left on exit; one joined before stays.
    """
    joined = not torch.distributed.is_available() or not torch.distributed.is_initialized()
    shard = init_from_env(device.type)
    joined = joined and shard.distributed
    if device.type == "cuda" and shard.distributed:
        device = torch.device("cuda", shard.local_rank)
    try:
        yield device, shard
    finally:
        if joined:
            shutdown(shard)
