"""``--time-budget``: durations, the closed-form step count, the probe that leaves the trainer
as it was, the schedule's end, bit-exact resume without a second measurement, torchrun, and
the command line's errors."""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import random
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from seqflow import api
from seqflow.checkpoint import ModelMeta, load_state
from seqflow.cli import app
from seqflow.config import Config, ModelConfig, TrainConfig
from seqflow.data import read_sequences
from seqflow.duration import parse_duration
from seqflow.errors import ConfigError
from seqflow.flow import FlowMatching, make_coupling
from seqflow.models import Condition, build_model
from seqflow.run import CONFIG_FILE, MODEL_FILE, STATE_FILE
from seqflow.run.budget import (
    PROBE_SHARE,
    PROBE_WARMUP,
    SAFETY,
    Costs,
    affordable_steps,
    choose_steps,
)
from seqflow.training import SequenceTask, Trainer, TrainingSet, TrainingStopped
from seqflow.training.distributed import SINGLE

CPU = torch.device("cpu")
FIT = importlib.import_module("seqflow.api.fit")  # the module; ``seqflow.api.fit`` is the function


@pytest.fixture(scope="module")
def labelled(tiny_csv) -> tuple[TrainingSet, TrainingSet]:
    """tiny.csv as (train, valid) with cell-type labels: 56 + 8 sequences of length 24."""
    table = read_sequences(tiny_csv, label_col="cell_type")
    assert table.labels is not None
    train = TrainingSet(tokens=table.tokens[:56], cond=Condition(labels=table.labels[:56]))
    return train, TrainingSet(tokens=table.tokens[56:], cond=Condition(labels=table.labels[56:]))


def make_trainer(data: tuple[TrainingSet, TrainingSet], *, steps: int = 20) -> Trainer:
    """A tiny labelled CNN with exact OT and condition dropout (every random draw in play)."""
    cfg = TrainConfig(steps=steps, batch_size=16, lr=3e-3, warmup_steps=3, ema_decay=0.9,
                      log_every=5, eval_every=10, checkpoint_every=10, seed=3)  # fmt: skip
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="cnn", hidden=16, depth=2, kernel_size=3,
                                    dilations=(1, 2), time_dim=16), vocab=4, length=24,
                        num_labels=4)  # fmt: skip
    task = SequenceTask(FlowMatching(make_coupling("exact"), 4), cfg, *data, device=CPU)
    return Trainer(model, task, cfg, cond_dropout=0.5, device=CPU)


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("20m", 1200), ("4h", 14400), ("1h30m", 5400), ("1h0m30s", 3630),
     ("1.5h", 5400), ("2d", 172800), ("5400", 5400), ("0.5", 0.5), (" 20m ", 1200)],
)  # fmt: skip
def test_parse_duration_reads_units_in_order_and_bare_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["20x", "-5m", "0s", "0", "0h0m", "", "m", "30m1h", "1h1h", "1 h", "1e3s", "inf", "nan",
     "1h-5m", "1H", "9" * 400 + "d"],
)  # fmt: skip
def test_parse_duration_refuses_anything_else(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_config_checks_the_budget_and_reads_yaml_seconds():
    with pytest.raises(ConfigError, match=r"train\.time_budget \(--time-budget\): '20x'"):
        Config().with_overrides({"train.time_budget": "20x"})
    assert Config().with_overrides({"train.time_budget": 5400}).train.time_budget == "5400"
    assert Config().train.time_budget is None


# --- the step count ---------------------------------------------------------------------------


def run_seconds(n: int, costs: Costs, train: TrainConfig) -> float:
    """The time of an ``n``-step run, counted as the trainer does: a validation every
    ``eval_every`` steps and at the end, a checkpoint every ``checkpoint_every`` and at the end."""
    e, k = train.eval_every, train.checkpoint_every
    return (
        n * costs.step + math.ceil(n / e) * costs.validation + math.ceil(n / k) * costs.checkpoint
    )


def test_affordable_steps_is_the_closed_form_and_fits():
    train = TrainConfig(eval_every=100, checkpoint_every=200)
    costs = Costs(step=0.125, validation=2.0, checkpoint=1.0)
    n = affordable_steps(1000.0, costs, train)
    assert n == (1000 - 2 - 1) // (0.125 + 2 / 100 + 1 / 200) == 6646
    assert run_seconds(n, costs, train) <= 1000 < run_seconds(n + 30, costs, train)
    assert affordable_steps(2.9, costs, train) == 0  # not even the final validation+checkpoint


class StepClock:
    """A fake clock that the trainer's steps advance by ``step`` seconds and its validations
    by ``validation`` (a checkpoint takes no time): a deterministic step rate."""

    def __init__(self, trainer: Trainer, monkeypatch, *, step: float, validation: float):
        self.now = 0.0
        train_step, validate = trainer.train_step, trainer.validate

        def timed_step():
            self.now += step
            return train_step()

        def timed_validation():
            self.now += validation
            return validate()

        monkeypatch.setattr(trainer, "train_step", timed_step)
        monkeypatch.setattr(trainer, "validate", timed_validation)

    def __call__(self) -> float:
        return self.now


def meta_of(trainer: Trainer, budget: str) -> ModelMeta:
    config = Config(train=dataclasses.replace(trainer.cfg, time_budget=budget))
    return ModelMeta(config=config, alphabet={"letters": "ACGT"}, labels=(), length=24, step=0)


def test_a_budgeted_trainer_is_the_trainer_of_the_chosen_steps(labelled, monkeypatch):
    """Steps of 0.125 s, validations of 0.5 s, an 8 s budget: the probe times 4 steps after the
    5 untimed ones (4 x 0.125 >= 5% of 8 s), so 9 x 0.125 + 0.5 = 1.625 s are spent and

        N = floor(((8 - 1.625) x 0.9 - 0.5) / (0.125 + 0.5 / 10)) = 29.

    The probe leaves no trace: trained to N, the weights, EMA and learning rates equal those of
    a trainer made for N steps, and the schedule ends at N (the floor of the cosine)."""
    budgeted = make_trainer(labelled, steps=1000)
    clock = StepClock(budgeted, monkeypatch, step=0.125, validation=0.5)
    chosen = choose_steps(budgeted, meta_of(budgeted, "8s"), started=0.0, shard=SINGLE,
                          clock=clock)  # fmt: skip
    timed = math.ceil(PROBE_SHARE * 8 / 0.125)
    spent = (PROBE_WARMUP + timed) * 0.125 + 0.5
    assert (timed, spent) == (4, 1.625)
    expected = math.floor(((8 - spent) * (1 - SAFETY) - 0.5) / (0.125 + 0.5 / 10))
    assert chosen.steps == expected == 29
    assert chosen.costs == Costs(step=0.125, validation=0.5, checkpoint=0.0)
    assert chosen.spent == spent
    assert chosen.describe().startswith("time budget 8s: 29 steps at 8.0 steps/s")
    assert budgeted.step == 0 and budgeted.cfg.steps == 29

    plain = make_trainer(labelled, steps=29)
    lrs = {"budgeted": [], "plain": []}
    budgeted.run(on_progress=lambda p: lrs["budgeted"].append(p.lr))
    plain.run(on_progress=lambda p: lrs["plain"].append(p.lr))
    assert budgeted.step == plain.step == 29
    for name, value in plain.model.state_dict().items():
        assert torch.equal(value, budgeted.model.state_dict()[name]), name
    for name, value in plain.ema.state_dict().items():
        assert torch.equal(value, budgeted.ema.state_dict()[name]), name
    assert lrs["budgeted"] == lrs["plain"]
    assert budgeted.lr == pytest.approx(3e-3 * budgeted.cfg.min_lr_frac)


def test_a_budget_too_short_for_one_step_is_an_error(labelled, monkeypatch):
    trainer = make_trainer(labelled)
    clock = StepClock(trainer, monkeypatch, step=0.5, validation=0.0)
    with pytest.raises(ConfigError, match=r"--time-budget 3s: too short: 3\.0s went to"):
        choose_steps(trainer, meta_of(trainer, "3s"), started=0.0, shard=SINGLE, clock=clock)


# --- through the API: recorded, resumed bit for bit, not measured again ------------------------


@pytest.fixture
def fake_clock(monkeypatch):
    """``api.fit``'s budget measured with a :class:`StepClock` (steps of 0.125 s, validations
    of 0.25 s) that starts with the call."""

    def measured(trainer, meta, **kwargs):
        clock = StepClock(trainer, monkeypatch, step=0.125, validation=0.25)
        return choose_steps(trainer, meta, **{**kwargs, "started": 0.0, "clock": clock})

    monkeypatch.setattr(FIT, "choose_steps", measured)


def test_a_budget_run_resumes_bit_exactly_without_measuring_again(
    fake_clock, tiny_fasta, tiny_fit_kwargs, tmp_path, monkeypatch
):
    """A 10 s budget run, stopped by SIGTERM at step 20 and resumed, ends at the steps it chose
    (recorded in config.yaml and the checkpoint) with the weights of an uninterrupted run of
    that many steps, and the resumed run does not measure."""
    kwargs = {k: v for k, v in tiny_fit_kwargs.items() if k != "steps"}
    run_dir, plans = tmp_path / "run", []

    def stop_at_20(p):
        if p.step == 20:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingStopped):
        api.fit(tiny_fasta, out=run_dir, time_budget="10s", on_start=plans.append,
                on_progress=stop_at_20, **kwargs)  # fmt: skip
    steps = plans[0].steps
    assert plans[0].budget.startswith(f"time budget 10s: {steps} steps at 8.0 steps/s")
    recorded = yaml.safe_load((run_dir / CONFIG_FILE).read_text())["train"]
    assert (recorded["steps"], recorded["time_budget"]) == (steps, "10s")
    assert load_state(run_dir / STATE_FILE)["step"] == 20 < steps

    def measuring(*args, **kw):
        raise AssertionError("a resumed run measured again")

    monkeypatch.setattr(FIT, "choose_steps", measuring)
    resumed_plans = []
    resumed = api.fit(resume=run_dir, on_start=resumed_plans.append)
    assert resumed.steps == steps
    assert (
        resumed_plans[0].budget == f"time budget 10s: not measured again; training to step {steps}"
    )

    reference = api.fit(tiny_fasta, out=tmp_path / "plain", **{**tiny_fit_kwargs, "steps": steps})
    a, b = load_file(str(run_dir / MODEL_FILE)), load_file(str(reference.run_dir / MODEL_FILE))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_run_keeps_its_budget(fake_clock, tiny_fasta, tiny_fit_kwargs, tmp_path):
    kwargs = {k: v for k, v in tiny_fit_kwargs.items() if k not in ("steps", "preset")}
    run_dir = tmp_path / "run"
    api.fit(tiny_fasta, out=run_dir, preset="dna", time_budget="3s", **kwargs)
    with pytest.raises(ConfigError, match=r"keeps its budget \(3s\).*change the length with"):
        api.fit(resume=run_dir, time_budget="1h")
    steps = load_state(run_dir / STATE_FILE)["step"]
    assert api.fit(resume=run_dir, steps=steps + 5).steps == steps + 5  # --steps still extends


def test_a_budget_library_run_is_the_run_of_the_chosen_steps(fake_clock, tmp_path):
    """Library mode takes the same path: with the fake clock's rate, a budget run equals a
    plain run of the steps it chose."""
    rng = random.Random(0)
    data = tmp_path / "libs.csv"
    rows = [f"L{i},{'AB'[i % 2]},{''.join(rng.choice('ACGT') for _ in range(16))}"
            for i in range(8) for _ in range(12)]  # fmt: skip
    data.write_text("library,target,sequence\n" + "\n".join(rows) + "\n")
    kwargs = dict(mode="library", set_col="library", label_col="target", device="cpu", seed=0,
                  overrides=["library.size=8", "train.batch_size=4", "model.hidden=16",
                             "model.depth=2", "model.kernel_size=3", "model.time_dim=16",
                             "library.set_layers=1", "library.point_layers=1"])  # fmt: skip
    budgeted = api.fit(data, out=tmp_path / "budget", time_budget="6s", **kwargs)
    plain = api.fit(data, out=tmp_path / "plain", steps=budgeted.steps, **kwargs)
    a = load_file(str(budgeted.run_dir / MODEL_FILE))
    b = load_file(str(plain.run_dir / MODEL_FILE))
    assert budgeted.steps > 0 and all(torch.equal(a[k], b[k]) for k in a)


# --- torchrun -----------------------------------------------------------------------------------


RANKED_CLOCK = """
import importlib, os, sys
from seqflow.run.budget import choose_steps
fit_module = importlib.import_module("seqflow.api.fit")
step_time = 0.125 * (1 + int(os.environ["RANK"]))  # rank 1 alone would choose fewer steps
def measured(trainer, meta, **kwargs):
    now, train_step = [0.0], trainer.train_step
    def timed():
        now[0] += step_time
        return train_step()
    trainer.train_step = timed
    return choose_steps(trainer, meta, **{**kwargs, "started": 0.0, "clock": lambda: now[0]})
fit_module.choose_steps = measured
from seqflow.cli import run
sys.argv = ["seqflow", *sys.argv[1:]]
run()
"""


def test_torchrun_ranks_train_the_steps_rank0_chose(tiny_fasta, tiny_cli_args, cli_env, tmp_path):
    """Under ``torchrun --nproc_per_node=2`` the ranks' clocks disagree (steps of 0.125 s on
    rank 0, 0.25 s on rank 1); they stop the probe together after 2 timed steps, once rank 1
    has used 5% of the 6 s budget, and take rank 0's count,
    N = floor((6 - 7 x 0.125) x 0.9 / 0.125) = 36 (rank 1's own would be 15, and a
    disagreement ends in a failed all-reduce)."""
    args = list(tiny_cli_args)
    at = args.index("--steps")
    del args[at : at + 2]
    script = tmp_path / "ranked_clock.py"
    script.write_text(RANKED_CLOCK)
    run_dir = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), "fit", str(tiny_fasta), "--out", str(run_dir), *args,
           "--set", "flow.coupling=independent", "--time-budget", "6s"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=cli_env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("time budget 6s: 36 steps at 8.0 steps/s") == 1
    assert proc.stderr.count("done:") == 1
    assert yaml.safe_load((run_dir / CONFIG_FILE).read_text())["train"]["steps"] == 36
    assert load_state(run_dir / STATE_FILE)["step"] == 36


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time-budget", "20x"], "--time-budget): '20x' is not a duration"),
        (["--time-budget", "-5m"], "--time-budget): '-5m' is not a duration"),
        (["--time-budget", "0s"], "--time-budget): '0s' is not a positive duration"),
        (["--time-budget", "1m", "--steps", "5"], "--time-budget 1m chooses train.steps"),
        (["--set", "train.steps=5", "--time-budget", "1m"], "leave out --steps and --set"),
    ],
)
def test_cli_bad_budgets_are_one_line_and_exit_2(args, message, tiny_fasta, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["fit", str(tiny_fasta), "--preset", "dna", *args])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr
    assert list(tmp_path.iterdir()) == []
