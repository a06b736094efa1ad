"""Data parallelism through ``torchrun``: sharded batches, rank-0 files, and the same result as
one process with the same global batch."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import load_file

from seqflow import api
from seqflow.errors import ConfigError
from seqflow.flow import FlowMatching, make_coupling
from seqflow.models import Condition
from seqflow.run import MODEL_FILE
from seqflow.training.batches import CoupledBatchStream
from seqflow.training.distributed import Shard, shard_from_env

WORLD = 2


def stream(tokens, coupling: str, shard: Shard, batch: int = 8) -> CoupledBatchStream:
    flow = FlowMatching(make_coupling(coupling), 4)
    return CoupledBatchStream(
        tokens, Condition(), flow, batch_size=batch, seed=5, prefetch=False, shard=shard
    )


@pytest.fixture
def tokens():
    return torch.randint(0, 4, (40, 6), generator=torch.Generator().manual_seed(0))


def test_shards_of_the_independent_stream_are_the_halves_of_the_single_stream(tokens):
    single = stream(tokens, "independent", Shard())
    ranks = [stream(tokens, "independent", Shard(rank=r, world=WORLD)) for r in range(WORLD)]
    for _ in range(7):  # crosses an epoch boundary (40 rows, batches of 8)
        whole = single.next()
        parts = [s.next() for s in ranks]
        assert torch.equal(torch.cat([p.tokens for p in parts]), whole.tokens)
        assert torch.equal(torch.cat([p.x_0 for p in parts]), whole.x_0)


def test_exact_ot_couples_within_each_rank_shard(tokens):
    """Each rank pairs its own rows with a permutation of its own slice of the shared noise."""
    noise = stream(tokens, "independent", Shard(rank=0, world=1)).next().x_0
    for rank in range(WORLD):
        part = stream(tokens, "exact", Shard(rank=rank, world=WORLD)).next()
        mine = noise[rank * 4 : (rank + 1) * 4].flatten(1)
        got = part.x_0.flatten(1)
        # every coupled row is one of this shard's noise rows, each used once
        match = (got[:, None, :] == mine[None, :, :]).all(-1)
        assert torch.equal(match.sum(0), torch.ones(4, dtype=torch.long))
        assert torch.equal(match.sum(1), torch.ones(4, dtype=torch.long))


def test_shard_states_resume_every_rank(tokens):
    """The saved state is shared: rank 1 restored from rank 0's state continues as rank 1."""
    a = stream(tokens, "sinkhorn", Shard(rank=1, world=WORLD))
    a.next()
    state = stream_state_of_rank0_after_one_batch(tokens)
    b = stream(tokens, "sinkhorn", Shard(rank=1, world=WORLD))
    b.load_state_dict(state)
    nxt_a, nxt_b = a.next(), b.next()
    assert torch.equal(nxt_a.tokens, nxt_b.tokens)
    assert torch.equal(nxt_a.x_0, nxt_b.x_0)


def stream_state_of_rank0_after_one_batch(tokens):
    s = stream(tokens, "sinkhorn", Shard(rank=0, world=WORLD))
    s.next()
    return s.state_dict()


def test_a_global_batch_that_does_not_split_is_an_error(tokens):
    with pytest.raises(ConfigError, match="does not split evenly over 3 processes"):
        stream(tokens, "independent", Shard(rank=0, world=3), batch=8)


def test_shard_from_env_reads_torchrun_variables(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert shard_from_env() == Shard(rank=3, world=4, local_rank=1)
    assert Shard(rank=3, world=4).rows(16) == slice(12, 16)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="outside WORLD_SIZE=4"):
        shard_from_env()


def test_torchrun_two_processes_equal_one_process_with_the_same_global_batch(
    tiny_fasta, tiny_cli_args, tiny_fit_kwargs, cli_env, tmp_path
):
    """``torchrun --nproc_per_node=2`` on gloo: both ranks train (DDP averages their
    gradients), only rank 0 writes, and the weights equal a one-process run to float rounding.

    The independent coupling makes the two runs compute the same steps: both draw the same
    order, noise and times for the global batch of 16. With ``flow.coupling=exact`` they would
    differ by design: each rank solves OT within its own 8 sequences, one process within all
    16 (``test_exact_ot_couples_within_each_rank_shard`` checks the per-rank pairing). Both
    train in fp32: bf16 autocast (``auto`` on a CPU with AMX) rounds 8-row and 16-row products
    differently, by ~1e-4 after 30 steps.
    """
    import subprocess

    pinned = ["flow.coupling=independent", "train.precision=fp32"]
    args = [*tiny_cli_args, *(a for p in pinned for a in ("--set", p))]
    ddp_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={WORLD}", "-m", "seqflow", "fit", str(tiny_fasta),
           "--out", str(ddp_dir), *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cli_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("done:") == 1  # rank 0 reports; rank 1 is silent
    assert f"cpu x {WORLD} processes" in proc.stderr

    one_dir = tmp_path / "one"
    overrides = [*tiny_fit_kwargs["overrides"], *pinned]
    api.fit(tiny_fasta, out=one_dir, **{**tiny_fit_kwargs, "overrides": overrides})

    names = sorted(p.name for p in ddp_dir.rglob("*"))
    assert names == sorted(p.name for p in one_dir.rglob("*"))  # no rank-1 or temporary files
    lines = (ddp_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [10, 20, 30]  # written once
    a, b = load_file(str(ddp_dir / MODEL_FILE)), load_file(str(one_dir / MODEL_FILE))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst

    # the checkpoint loads and samples, and resumes in a single process (any world size)
    sampled = api.sample(ddp_dir, n=4, steps=5, seed=0, output=tmp_path / "s.fasta", device="cpu")
    assert len(sampled.sequences) == 4 and all(len(s) == 24 for s in sampled.sequences)
    api.fit(resume=ddp_dir, steps=40)
    api.fit(resume=one_dir, steps=40)
    a, b = load_file(str(ddp_dir / MODEL_FILE)), load_file(str(one_dir / MODEL_FILE))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


@pytest.mark.parametrize("workers", [1, 3])
def test_batches_built_ahead_by_worker_threads_equal_batches_built_inline(tokens, workers):
    """``data.num_workers`` threads build batches in any order with the same result, and a
    state taken mid-stream (batches in flight) resumes to the same next batch."""
    flow = FlowMatching(make_coupling("exact"), 4)

    def make(prefetch: bool) -> CoupledBatchStream:
        return CoupledBatchStream(
            tokens, Condition(), flow, batch_size=8, seed=5, prefetch=prefetch, workers=workers
        )

    inline, ahead = make(False), make(True)
    for _ in range(4):
        a, b = inline.next(), ahead.next()
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.x_0, b.x_0)
    state = ahead.state_dict()
    assert state["batches"] == 4  # the batches in flight are not counted as used
    resumed = make(False)
    resumed.load_state_dict(state)
    ahead.close()
    for _ in range(3):
        a, b = inline.next(), resumed.next()
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.x_0, b.x_0)


LIBRARY_SETS = [
    "library.size=6", "model.hidden=16", "model.depth=2", "model.kernel_size=3",
    "model.time_dim=16", "library.set_layers=1", "library.point_layers=1",
    "train.log_every=5", "train.warmup_steps=2", "flow.coupling=exact",
    "train.precision=fp32",  # bf16 (auto on an AMX CPU) rounds 2 x 2 and 4 rows differently
]  # fmt: skip


def test_torchrun_library_mode_equals_one_process_with_the_same_global_batch(cli_env, tmp_path):
    """Library mode under ``torchrun --nproc_per_node=2`` (gloo): each rank trains its half of
    the global batch of 4 labelled libraries, only rank 0 writes, and the weights equal a
    one-process run to float rounding. The exact inner coupling pairs within one library, so
    sharding the libraries changes no pairing (``library.outer: exact`` would pair within
    each rank's libraries, by design); the label dropout and the times are drawn for the
    global batch."""
    import csv
    import subprocess

    data = tmp_path / "libs.csv"
    g = torch.Generator().manual_seed(0)
    with data.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["library", "target", "sequence"])
        for lib in range(6):
            for row in torch.randint(0, 4, (8, 12), generator=g):
                out.writerow([f"L{lib}", "AB"[lib % 2], "".join("ACGT"[c] for c in row.tolist())])
    args = ["--mode", "library", "--set-col", "library", "--label-col", "target", "--steps",
            "10", "--batch-size", "4", "--device", "cpu", "--seed", "0"]  # fmt: skip
    args += [a for s in LIBRARY_SETS for a in ("--set", s)]
    ddp_dir, one_dir = tmp_path / "ddp", tmp_path / "one"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={WORLD}", "-m", "seqflow", "fit", str(data),
           "--out", str(ddp_dir), *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cli_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("done:") == 1
    assert f"cpu x {WORLD} processes" in proc.stderr

    api.fit(data, out=one_dir, mode="library", set_col="library", label_col="target", steps=10,
            batch_size=4, device="cpu", seed=0, overrides=LIBRARY_SETS)  # fmt: skip
    names = sorted(p.name for p in ddp_dir.rglob("*"))
    assert names == sorted(p.name for p in one_dir.rglob("*"))
    lines = (ddp_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [5, 10]
    a, b = load_file(str(ddp_dir / MODEL_FILE)), load_file(str(one_dir / MODEL_FILE))
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst
    # a single process resumes the two-process run exactly as it resumes the one-process run
    api.fit(resume=ddp_dir, steps=14)
    api.fit(resume=one_dir, steps=14)
    a, b = load_file(str(ddp_dir / MODEL_FILE)), load_file(str(one_dir / MODEL_FILE))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5
