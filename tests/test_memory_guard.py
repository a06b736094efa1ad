"""The memory guard (issue 18, point 2): the exact parameter count and the training-step
estimate of :mod:`seqflow.models.memory`, and ``fit`` refusing, before any file is written, a
model that cannot fit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seqflow.api import fit
from seqflow.config import Config, ModelConfig, TrainConfig
from seqflow.errors import ConfigError
from seqflow.models import build_model, count_parameters, memory, parameter_count

HUGE = "model.hidden=1000000"


@pytest.fixture(autouse=True)
def _guard_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memory.NO_GUARD_ENV, raising=False)


@pytest.mark.parametrize("arch,vocab", [("cnn", 4), ("cnn", 5), ("transformer", 21)])
@pytest.mark.parametrize(
    "num_labels,value,signal_channels", [(0, False, 0), (3, False, 0), (0, True, 0), (2, True, 3)]
)
def test_parameter_count_equals_the_built_model(
    arch: str, vocab: int, num_labels: int, value: bool, signal_channels: int
) -> None:
    cfg = ModelConfig(arch=arch, hidden=24, depth=3, kernel_size=5, heads=4, time_dim=16)
    kw = dict(vocab=vocab, length=37, num_labels=num_labels, value=value,
              signal_channels=signal_channels)  # fmt: skip
    assert parameter_count(cfg, **kw) == count_parameters(build_model(cfg, **kw))  # type: ignore[arg-type]


def saved_bytes(cfg: ModelConfig, vocab: int, length: int, batch: int) -> int:
    """Bytes of the distinct non-parameter storages autograd saves in a forward pass and a
    squared-error loss."""
    torch.manual_seed(0)
    model = build_model(cfg, vocab=vocab, length=length)
    x = torch.rand(batch, length, vocab)
    x = x / x.norm(dim=-1, keepdim=True)
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        ((model(x, torch.rand(batch)) - x) ** 2).sum()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    return sum(n for ptr, n in storages.items() if ptr not in weights)


@pytest.mark.parametrize(
    "arch,vocab,length,batch", [("cnn", 4, 200, 16), ("cnn", 5, 64, 8), ("transformer", 21, 96, 4)]
)
def test_activation_estimate_bounds_the_saved_tensors(
    arch: str, vocab: int, length: int, batch: int
) -> None:
    """The estimate is an upper bound within a factor 3 of what autograd really saves
    (measured: 1.4x to 2.3x)."""
    cfg = ModelConfig(arch=arch, hidden=64, depth=4, heads=4, time_dim=32)
    measured = saved_bytes(cfg, vocab, length, batch)
    estimated = memory.activation_bytes(cfg, vocab=vocab, length=length, batch=batch)
    assert measured <= estimated <= 3 * measured


def test_refusal_names_the_estimate_and_a_length_that_fits(monkeypatch: pytest.MonkeyPatch):
    available = 10**9
    monkeypatch.setattr(memory, "available_bytes", lambda device: available)
    cfg = Config(train=TrainConfig(batch_size=64))
    length, cpu = 2_000_000, torch.device("cpu")
    with pytest.raises(ConfigError) as err:
        memory.raise_if_too_big(cfg, vocab=4, length=length, device=cpu)
    est = memory.estimate(cfg, vocab=4, length=length, available=available)
    n = est.fitting_length
    assert 0 < n < length
    assert memory.step_bytes(cfg, vocab=4, length=n) <= 0.75 * available
    assert memory.step_bytes(cfg, vocab=4, length=n + 1) > 0.75 * available
    message = str(err.value)
    assert "\n" not in message
    assert f"--max-length {n} --crop" in message and "1 GB free memory" in message
    assert f"({memory._si(est.parameters)} parameters, length 2,000,000)" in message


def test_escape_hatch_skips_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10**6)
    cfg, cpu = Config(model=ModelConfig(hidden=1_000_000)), torch.device("cpu")
    with pytest.raises(ConfigError, match=r"model\.hidden"):
        memory.raise_if_too_big(cfg, vocab=4, length=1000, device=cpu)
    monkeypatch.setenv(memory.NO_GUARD_ENV, "1")
    memory.raise_if_too_big(cfg, vocab=4, length=1000, device=cpu)


@pytest.mark.filterwarnings("ignore:no validation sequences")
def test_fit_refuses_one_long_sequence_before_writing(
    tmp_path: Path, tiny_fit_kwargs: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2 * 10**9)
    data = tmp_path / "long.fasta"
    data.write_text(">chr\n" + "ACGT" * 500_000 + "\n")
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"length 2,000,000\).*--max-length \d+ --crop"):
        fit(data, out=out, cache="auto", **tiny_fit_kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.fasta"]  # no run, no cache


@pytest.mark.filterwarnings("ignore:no validation sequences")
def test_fit_without_a_preset_guards_the_fresh_read_with_the_default_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No preset named: the data's default preset (dna), with the command line's flags, guards
    the fresh read before its cache is written."""
    monkeypatch.setattr(memory, "available_bytes", lambda device: 2 * 10**9)
    data = tmp_path / "long.fasta"
    data.write_text(">chr\n" + "ACGT" * 500_000 + "\n")
    with pytest.raises(ConfigError, match=r"length 2,000,000\).*--max-length \d+ --crop"):
        fit(data, out=tmp_path / "run", cache="on", device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.fasta"]  # no run, no cache


def test_fit_refuses_a_huge_hidden_before_writing(
    tmp_path: Path, tiny_fasta: Path, tiny_fit_kwargs: dict
) -> None:
    kwargs = dict(tiny_fit_kwargs, overrides=[*tiny_fit_kwargs["overrides"], HUGE])
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"T parameters.*smaller model\.hidden"):
        fit(tiny_fasta, out=out, **kwargs)
    assert not out.exists()


def test_cli_huge_hidden_is_one_line_exit_2(
    tmp_path: Path, tiny_fasta: Path, tiny_cli_args: list[str], cli_env: dict[str, str]
) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "seqflow", "fit", str(tiny_fasta), "--out", str(out),
         *tiny_cli_args, "--set", HUGE],
        capture_output=True, text=True, env={**cli_env, memory.NO_GUARD_ENV: ""}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert "parameters" in lines[0] and memory.NO_GUARD_ENV in lines[0]
    assert not out.exists()


def test_library_mode_refuses_a_huge_hidden_before_writing(tmp_path: Path) -> None:
    data = tmp_path / "libs.csv"
    rows = [f"L{i % 2},{'ACGT' * 4}" for i in range(8)]
    data.write_text("library,sequence\n" + "\n".join(rows) + "\n")
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=r"T parameters.*smaller model\.hidden"):
        fit(data, out=out, mode="library", set_col="library", steps=1, device="cpu",
            overrides=["library.size=4", HUGE])  # fmt: skip
    assert not out.exists()
