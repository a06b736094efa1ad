"""Crash-proof training: kill -9 mid-run and mid-write, SIGTERM, damaged checkpoints, NaN steps.

The kill tests run ``python -m seqflow fit`` as users do, in subprocesses with one torch thread
(deterministic on a CPU), and compare the final weights of the interrupted-and-resumed run with
an uninterrupted run of the same length, tensor for tensor.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqflow import api
from seqflow.checkpoint import load_model, load_state
from seqflow.errors import CheckpointError, InvalidInputError
from seqflow.flow import FlowMatching
from seqflow.io_utils import CHECKSUM_KEY
from seqflow.run import CHECKPOINTS_DIR, MODEL_FILE, STATE_FILE
from seqflow.training import TrainingDivergedError, TrainingStopped

STEPS = 240
EXTRA = [
    "--steps",
    str(STEPS),
    "--set",
    "train.checkpoint_every=20",
    "--set",
    "train.eval_every=60",
]


@pytest.fixture(scope="module")
def fit_args(tiny_cli_args) -> list[str]:
    """The tiny configuration for STEPS steps, a checkpoint every 20 (the last option wins)."""
    return [*tiny_cli_args, *EXTRA]


KILL_DURING_WRITE = """
import os, signal, sys
import seqflow.io_utils as io
real, calls = io.save_file, [0]
def dying(tensors, path, metadata=None):
    calls[0] += 1
    real(tensors, path, metadata)
    if calls[0] == int(os.environ["KILL_AT_WRITE"]):  # half a file, then kill -9 mid-write
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
io.save_file = dying
from seqflow.cli import run
sys.argv = ["seqflow", *sys.argv[1:]]
run()
"""


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"}


def seqflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqflow", *args]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env(), timeout=300, stdin=subprocess.DEVNULL, **kw
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"fit ended (rc {proc.returncode}) before {path} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def step_folder(run_dir: Path, step: int) -> Path:
    return run_dir / CHECKPOINTS_DIR / f"step-{step:08d}"


def assert_same_final_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(str(a / MODEL_FILE)), load_file(str(b / MODEL_FILE))
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    sa, sb = load_state(a / STATE_FILE), load_state(b / STATE_FILE)
    assert sa["step"] == sb["step"] == STEPS


@pytest.fixture(scope="module")
def reference(tiny_fasta, fit_args, tmp_path_factory) -> Path:
    """An uninterrupted run of STEPS steps."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    proc = run(seqflow("fit", str(tiny_fasta), "--out", str(run_dir), *fit_args))
    assert proc.returncode == 0, proc.stderr
    return run_dir


def test_sigkill_mid_run_then_resume_gives_identical_weights(
    reference, tiny_fasta, fit_args, tmp_path
):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        seqflow("fit", str(tiny_fasta), "--out", str(run_dir), *fit_args),
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(step_folder(run_dir, 60) / MODEL_FILE, proc)
    finally:
        proc.kill()  # SIGKILL: no handler, no cleanup
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_state(run_dir / STATE_FILE)["step"]
    assert 40 <= killed_at < STEPS  # step 60 may not be published yet

    resumed = run(seqflow("fit", "--resume", str(run_dir)))  # the run remembers its data
    assert resumed.returncode == 0, resumed.stderr
    assert_same_final_weights(reference, run_dir)
    kept = sorted(p.name for p in (run_dir / CHECKPOINTS_DIR).iterdir())
    assert kept == [f"step-{s:08d}" for s in (200, 220, 240)]  # train.keep_checkpoints = 3


def test_sigkill_during_a_checkpoint_write_then_sigterm_then_resume(
    reference, tiny_fasta, fit_args, tmp_path
):
    """Killed while writing (the 9th file: the state of step 100, half written), resumed and
    stopped by SIGTERM, resumed again: the same weights as the uninterrupted run."""
    run_dir = tmp_path / "run"
    script = tmp_path / "dying.py"
    script.write_text(KILL_DURING_WRITE)
    killed = subprocess.run(
        [sys.executable, str(script), "fit", str(tiny_fasta), "--out", str(run_dir), *fit_args],
        capture_output=True, text=True, timeout=300, env={**env(), "KILL_AT_WRITE": "9"},
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = list(run_dir.rglob(".*.tmp"))
    assert leftovers, "the kill should leave the half-written temporary file behind"
    assert load_state(run_dir / STATE_FILE)["step"] == 80  # the last complete checkpoint

    proc = subprocess.Popen(
        seqflow("fit", "--resume", str(run_dir)),
        env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(step_folder(run_dir, 140) / MODEL_FILE, proc)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert not list(run_dir.rglob(".*.tmp"))  # resume removed the stale temporary file
    assert "stopped" in stderr and "SIGTERM" in stderr
    assert f"seqflow fit --resume {run_dir}" in " ".join(stderr.split())
    assert "Traceback" not in stderr
    stopped_at = load_state(run_dir / STATE_FILE)["step"]
    assert 140 <= stopped_at < STEPS
    assert step_folder(run_dir, stopped_at).is_dir()  # a checkpoint of the very step it stopped

    finished = run(seqflow("fit", str(tiny_fasta), "--resume", str(run_dir)))
    assert finished.returncode == 0, finished.stderr
    assert_same_final_weights(reference, run_dir)


# --- in process: checkpoint files ------------------------------------------------------------


@pytest.fixture
def two_checkpoints(tiny_fasta, tiny_fit_kwargs, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    kwargs = {**tiny_fit_kwargs, "overrides": [*tiny_fit_kwargs["overrides"],
              "train.checkpoint_every=10", "train.keep_checkpoints=2"]}  # fmt: skip
    api.fit(tiny_fasta, out=run_dir, **kwargs)
    return run_dir


def test_only_the_last_k_checkpoints_are_kept_and_the_newest_is_published(two_checkpoints):
    run_dir = two_checkpoints
    kept = sorted(p.name for p in (run_dir / CHECKPOINTS_DIR).iterdir())
    assert kept == ["step-00000020", "step-00000030"]
    newest = run_dir / CHECKPOINTS_DIR / "step-00000030"
    for name in (MODEL_FILE, STATE_FILE):
        assert (run_dir / name).read_bytes() == (newest / name).read_bytes()


def test_checkpoints_record_a_checksum_of_their_tensors(two_checkpoints):
    from safetensors import safe_open

    with safe_open(str(two_checkpoints / MODEL_FILE), "pt") as handle:
        assert handle.metadata()[CHECKSUM_KEY].startswith("blake2b-128+metadata:")


def flip_last_byte(path: Path) -> None:
    """Alter the tensor data (the end of a safetensors file) without touching the header;
    ``path`` may be a hard link, so it is rewritten as a new file."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.unlink()
    path.write_bytes(bytes(data))


def test_an_altered_checkpoint_is_refused_before_use(two_checkpoints):
    flip_last_byte(two_checkpoints / MODEL_FILE)
    with pytest.raises(CheckpointError, match="checksum mismatch") as info:
        load_model(two_checkpoints)
    assert "\n" not in str(info.value)


def test_a_truncated_checkpoint_is_a_clear_error(two_checkpoints):
    path = two_checkpoints / STATE_FILE
    data = path.read_bytes()
    path.unlink()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_state(path)


def test_resume_falls_back_to_the_newest_intact_checkpoint(
    two_checkpoints, tiny_fasta, tiny_fit_kwargs
):
    run_dir = two_checkpoints
    flip_last_byte(run_dir / STATE_FILE)
    flip_last_byte(run_dir / CHECKPOINTS_DIR / "step-00000030" / STATE_FILE)
    plans = []
    with pytest.warns(UserWarning, match=r"checksum mismatch.*step-00000020 \(step 20\)"):
        api.fit(
            tiny_fasta, steps=40, out=run_dir, resume=True, on_start=plans.append,
        )  # fmt: skip
    assert plans[0].start_step == 20
    assert load_state(run_dir / STATE_FILE)["step"] == 40


def test_resume_with_every_checkpoint_damaged_is_an_error(two_checkpoints, tiny_fasta):
    for path in two_checkpoints.rglob(STATE_FILE):
        flip_last_byte(path)
    with pytest.raises(CheckpointError, match="no intact older checkpoint"):
        api.fit(tiny_fasta, resume=two_checkpoints)


def test_resume_without_data_reads_the_recorded_file_and_says_when_it_is_gone(
    tiny_fasta, tiny_fit_kwargs, tmp_path
):
    data = tmp_path / "data.fasta"
    data.write_bytes(tiny_fasta.read_bytes())
    run_dir = tmp_path / "run"
    api.fit(data, out=run_dir, **tiny_fit_kwargs)
    assert load_state(run_dir / STATE_FILE)["data_source"] == str(data.resolve())
    result = api.fit(resume=run_dir, steps=35)  # no data: the recorded file is read
    assert result.steps == 35
    data.unlink()
    with pytest.raises(InvalidInputError, match=r"data\.fasta is gone.*seqflow fit DATA --resume"):
        api.fit(resume=run_dir, steps=40)
    with pytest.raises(InvalidInputError, match="fit needs a data file"):
        api.fit()


def test_stop_request_checkpoints_and_says_how_to_resume(tiny_fasta, tiny_fit_kwargs, tmp_path):
    run_dir = tmp_path / "run"

    def stop_at_20(p):
        if p.step == 20:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler fit installs turns it into a stop

    with pytest.raises(TrainingStopped) as info:
        api.fit(tiny_fasta, out=run_dir, on_progress=stop_at_20, **tiny_fit_kwargs)
    assert info.value.exit_code == 128 + signal.SIGTERM
    assert f"continue with: seqflow fit --resume {run_dir}" in str(info.value)
    assert load_state(run_dir / STATE_FILE)["step"] == 20
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored after fit


def test_persistent_nan_stops_and_the_last_checkpoint_loads(
    tiny_fasta, tiny_fit_kwargs, tmp_path, monkeypatch
):
    run_dir = tmp_path / "run"
    kwargs = {**tiny_fit_kwargs, "overrides": [*tiny_fit_kwargs["overrides"],
              "train.checkpoint_every=10", "train.max_bad_steps=5"]}  # fmt: skip
    real, calls = FlowMatching.loss, [0]

    def nan_after_step_12(self, v, u_t):
        calls[0] += 1
        loss = real(self, v, u_t)
        return loss * float("nan") if calls[0] > 12 else loss

    monkeypatch.setattr(FlowMatching, "loss", nan_after_step_12)
    with pytest.raises(TrainingDivergedError, match="checkpoint of step 10 is the last good one"):
        api.fit(tiny_fasta, out=run_dir, **kwargs)
    model, meta = load_model(run_dir)
    assert meta.step == 10
    assert all(torch.isfinite(p).all() for p in model.parameters())
