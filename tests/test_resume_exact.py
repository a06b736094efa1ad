"""Resume is exact or refuses (issue 18, point 4), and seeds are checked (point 2): a changed
``train.*`` setting applies to the live optimiser and is logged, a changed data file is refused
unless allowed, no step is logged twice, a link in a run folder is never written through."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seqflow import api
from seqflow.config import Config, load_preset
from seqflow.errors import ConfigError, InvalidInputError
from seqflow.run import METRICS_FILE, MODEL_FILE, STATE_FILE, check_resumable, step_folder
from seqflow.training.schedule import warmup_cosine


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, tiny_fasta, tiny_fit_kwargs):
    """A 30-step run with a checkpoint every 10 steps, on its own copy of the data."""
    root = tmp_path_factory.mktemp("resume")
    data = root / "data.fasta"
    shutil.copyfile(tiny_fasta, data)
    kwargs = {**tiny_fit_kwargs, "overrides": [*tiny_fit_kwargs["overrides"],
                                               "train.checkpoint_every=10"]}  # fmt: skip
    api.fit(data, out=root / "run", **kwargs)
    return root


@pytest.fixture
def run(base_run, tmp_path) -> tuple[Path, Path]:
    """A private copy of the run and of its data file (the copy's state records the original
    path: the tests pass the copy as DATA)."""
    shutil.copytree(base_run, tmp_path / "copy")
    return tmp_path / "copy" / "run", tmp_path / "copy" / "data.fasta"


def resume(run_dir: Path, data: Path, **kwargs) -> api.FitResult:
    return api.fit(data, resume=run_dir, device="cpu", **kwargs)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines()]


def test_a_new_learning_rate_applies_from_the_resumed_step_and_is_logged(run):
    run_dir, data = run
    resume(run_dir, data, steps=40, overrides=["train.lr=0.5"])
    last = records(run_dir)[-1]
    cfg = load_preset("dna").train
    factor = warmup_cosine(40, warmup=5, total=40, min_frac=cfg.min_lr_frac)  # TINY_SETS warmup
    assert last["step"] == 40 and last["lr"] == pytest.approx(0.5 * factor, rel=1e-12)
    assert last["resumed"] == {
        "step": 30, "changed": {"train.steps": [30, 40], "train.lr": [cfg.lr, 0.5]}
    }  # fmt: skip


def test_a_changed_data_file_is_refused_naming_it_unless_allowed(run):
    run_dir, data = run
    before = (run_dir / MODEL_FILE).read_bytes()
    with data.open("a") as handle:
        handle.write(">extra\nACGTACGTACGTACGTACGTACGT\n")
    with pytest.raises(InvalidInputError, match=rf"{data.name}: changed .*size \d+ -> \d+ bytes"):
        resume(run_dir, data, steps=40)
    assert (run_dir / MODEL_FILE).read_bytes() == before
    assert resume(run_dir, data, steps=40, allow_changed_data=True).steps == 40
    assert resume(run_dir, data, steps=50).steps == 50  # the new content is the recorded one


def test_an_edit_that_keeps_the_size_is_refused(run):
    run_dir, data = run
    text = data.read_text()
    data.write_text(text.replace("A", "C", 1))
    with pytest.raises(InvalidInputError, match="first or last MiB"):
        resume(run_dir, data, steps=40)


def test_no_step_is_logged_twice_after_resuming_from_an_older_checkpoint(run):
    """A kill during the checkpoint of step 30 (logged already): the run folder's own files
    are still step 20's, step 30's folder lacks its model, a temporary file is left."""
    run_dir, data = run
    for name in (MODEL_FILE, STATE_FILE):
        (run_dir / name).unlink()
        shutil.copyfile(step_folder(run_dir, 20) / name, run_dir / name)
    (step_folder(run_dir, 30) / MODEL_FILE).unlink()
    (run_dir / f".{MODEL_FILE}.0123abcd.tmp").write_bytes(b"half")
    with (run_dir / METRICS_FILE).open("a") as handle:
        handle.write('{"step": 40, "lo')  # a torn last line
    resume(run_dir, data, steps=40)
    steps = [r["step"] for r in records(run_dir)]
    assert steps == [10, 20, 30, 40]
    assert records(run_dir)[2]["resumed"]["step"] == 20


@pytest.mark.parametrize("name", [METRICS_FILE, "checkpoints"])
def test_a_link_in_the_run_folder_is_refused_not_written_through(run, tmp_path, name):
    run_dir, data = run
    target = tmp_path / "elsewhere"
    shutil.move(run_dir / name, target)
    before = sorted(p.name for p in target.rglob("*")) if target.is_dir() else target.read_bytes()
    (run_dir / name).symlink_to(target)
    with pytest.raises(InvalidInputError, match=f"{name}: is a symbolic link"):
        resume(run_dir, data, steps=40)
    after = sorted(p.name for p in target.rglob("*")) if target.is_dir() else target.read_bytes()
    assert after == before


def test_the_seed_cannot_change_on_resume():
    saved = Config()
    assert check_resumable(saved, saved.with_overrides({"train.lr": 0.1})) == {
        "train.lr": [saved.train.lr, 0.1]
    }
    with pytest.raises(ConfigError, match=r"'train\.seed'"):
        check_resumable(saved, saved.with_overrides({"train.seed": 1}))
    with pytest.raises(ConfigError, match=r"'model\.hidden' \(and 1 more\)"):
        check_resumable(saved, saved.with_overrides({"model.hidden": 8, "model.depth": 1}))


@pytest.mark.parametrize(
    "args",
    [["fit", "{data}", "--seed", "-1", "--out", "{tmp}/x"],
     ["sample", "{run}", "-n", "1", "--seed", "99999999999999999999999"],
     ["sample", "{run}", "-n", "1", "--steps", "0"]],
)  # fmt: skip
def test_seeds_and_ranges_are_one_line_naming_the_flag(run, tmp_path, cli_env, args):
    run_dir, data = run
    argv = [a.format(data=data, tmp=tmp_path, run=run_dir) for a in args]
    done = subprocess.run([sys.executable, "-m", "seqflow", *argv], capture_output=True,
                          text=True, env=cli_env, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    flag = argv[argv.index("-n") + 2] if "-n" in argv else "--seed"
    assert done.stderr.count("\n") == 1 and flag in done.stderr, done.stderr
    assert done.stdout == "" and not (tmp_path / "x").exists()


_KILLED_DURING_CHECKPOINT = """
import os, signal, sys
import seqflow.run.checkpoints as checkpoints
from seqflow import api

real = checkpoints.save_model

def dying(path, model_state, ema_state, meta):
    if meta.step == 20:  # the state of step 20 is written, its model not yet
        os.kill(os.getpid(), signal.SIGKILL)
    real(path, model_state, ema_state, meta)

checkpoints.save_model = dying
api.fit(sys.argv[1], out=sys.argv[2], preset="dna", steps=30, batch_size=16, device="cpu",
        seed=0, overrides=sys.argv[3:])
"""


def test_no_step_is_logged_twice_after_a_kill_9_during_a_checkpoint_write(
    tmp_path, tiny_fasta, tiny_fit_kwargs, cli_env
):
    run_dir = tmp_path / "run"
    sets = [*tiny_fit_kwargs["overrides"], "train.checkpoint_every=10"]
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_DURING_CHECKPOINT, str(tiny_fasta), str(run_dir), *sets],
        capture_output=True, text=True, env=cli_env, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert [r["step"] for r in records(run_dir)] == [10, 20]  # logged before the checkpoint
    resume(run_dir, tiny_fasta, steps=30)
    assert [r["step"] for r in records(run_dir)] == [10, 20, 30]
    assert records(run_dir)[1]["resumed"]["step"] == 10
    assert not list(run_dir.rglob("*.tmp"))
