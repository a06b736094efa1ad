"""``benchmarks/gpu_check.sh`` (issue 20) cannot rot while no GPU is lent: its ``--dry-run``
runs every section on the CPU with tiny sizes (about 40 s on 2 cores), and the JSON it writes
holds every key with sane figures."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"

TOP_KEYS = {"schema", "dry_run", "command", "date", "device", "budget_s", "wall_s", "sections",
            "failed", "incomplete", "pytest", "step", "sampling", "memory", "profile"}  # fmt: skip
DEVICE_KEYS = {"type", "name", "gpu_count", "torch", "cuda", "cudnn", "python", "cpu_threads"}
SECTIONS = {"pytest", "step", "sampling", "memory", "profile"}
PYTEST_KEYS = {"tests", "passed", "failed", "errors", "skipped", "junit"}
STEP_CASES = {"dna-large_L200", "dna-large_L1024", "protein-large_L200"}
ARMS = {"fp32_eager", "bf16_eager", "fp32_compile", "bf16_compile"}
STEP_KEYS = {"preset", "length", "batch", "vocab", *ARMS, "bf16_speedup", "compile_speedup",
             "compile_speedup_fp32"}  # fmt: skip
ARM_KEYS = {"step_s", "bare_step_s", "overhead", "overhead_paired"}
SAMPLING_KEYS = {"preset", "length", "n", "solver", "precision", "steps_25", "steps_100",
                 "overhead"}  # fmt: skip
SAMPLING_STEP_KEYS = {"seq_per_s", "sample_s", "nfe", "bare_forward_s", "overhead",
                      "overhead_parts"}  # fmt: skip
MEMORY_KEYS = {"preset", "length", "kind", "precision", "batch", "peak_bytes", "peak_gib",
               "largest_batch", "largest_batch_capped", "search"}  # fmt: skip
PROFILE_KEYS = {"preset", "length", "batch", "steps", "file", "top_ops"}


def assert_schema(report: dict) -> None:
    """Every key of ``gpu_check.json`` is present (values may be null)."""
    assert set(report) == TOP_KEYS
    assert set(report["device"]) == DEVICE_KEYS
    assert set(report["sections"]) == SECTIONS
    assert set(report["pytest"]) == PYTEST_KEYS
    assert set(report["step"]) == STEP_CASES
    for case in report["step"].values():
        assert set(case) - {"errors"} == STEP_KEYS
    assert set(report["sampling"]) == SAMPLING_KEYS
    assert set(report["memory"]) == MEMORY_KEYS
    assert set(report["profile"]) == PROFILE_KEYS


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.gpu_check")


def test_dry_run_writes_every_figure(cli_env, tmp_path):
    out = tmp_path / "out"
    # a loaded 2-core machine needs more than the dry run's default 110 s to finish each section
    env = {**cli_env, "PYTHON": sys.executable, "GPU_CHECK_BUDGET": "240"}
    env.pop("OUT", None)
    proc = subprocess.run(["bash", str(SCRIPT), str(out), "--dry-run"], capture_output=True,
                          text=True, env=env, timeout=300, cwd=tmp_path)  # fmt: skip
    logs = "\n".join(f"{p.name}:\n{p.read_text()[-1500:]}" for p in (out / "logs").glob("*.log"))
    assert proc.returncode == 0, proc.stderr[-3000:] + logs

    report = json.loads((out / "gpu_check.json").read_text())
    assert_schema(report)
    assert report["dry_run"] is True and report["device"]["type"] == "cpu"
    assert report["command"].endswith("--dry-run") and report["date"].startswith("20")
    assert report["failed"] == [] and report["incomplete"] == []
    assert all(s["status"] == "ok" and s["seconds"] >= 0 for s in report["sections"].values())
    assert 0 < report["wall_s"] <= report["budget_s"]
    tests = report["pytest"]  # no CUDA: every gpu test collected and skipped
    assert tests["tests"] >= 7 and tests["skipped"] == tests["tests"] and tests["failed"] == 0
    assert (out / tests["junit"]).is_file()

    for case in report["step"].values():
        assert case["length"] > 0 and case["batch"] > 0
        for arm in ARMS:
            figures = case[arm]
            assert set(figures) == ARM_KEYS
            assert figures["step_s"] > 0 and figures["bare_step_s"] > 0
            assert figures["overhead"] == pytest.approx(figures["step_s"] / figures["bare_step_s"])
        for ratio in ("bf16_speedup", "compile_speedup", "compile_speedup_fp32"):
            assert case[ratio] > 0

    sampling = report["sampling"]
    for steps in (25, 100):
        figures = sampling[f"steps_{steps}"]
        assert set(figures) == SAMPLING_STEP_KEYS
        assert figures["nfe"] == steps  # Euler: one network evaluation per step
        assert figures["seq_per_s"] == pytest.approx(sampling["n"] / figures["sample_s"])
        assert figures["overhead"] > 0 and figures["overhead_parts"] >= 1
    assert sampling["overhead"] == sampling["steps_100"]["overhead"]

    memory = report["memory"]
    assert memory["kind"] == "cpu_max_rss" and memory["peak_bytes"] > 2**20
    assert memory["largest_batch"] == 32 and memory["largest_batch_capped"] is True
    assert [s["batch"] for s in memory["search"]] == [8, 16, 32]

    profile = report["profile"]
    text = (out / profile["file"]).read_text()
    assert profile["steps"] == 20 and 5 <= len(profile["top_ops"]) <= 15
    assert all(op in text for op in profile["top_ops"])
    assert any(op.startswith("aten::") for op in profile["top_ops"])


def test_merge_without_sections_keeps_every_key_null(gpu_check, tmp_path):
    """A run whose sections all failed or were skipped still writes the whole schema."""
    (tmp_path / "status.tsv").write_text("pytest\tfailed\t3\nstep\tskipped\t\n")
    report = gpu_check.merge(tmp_path, True, "cmd", 110.0, 5.0)
    assert json.loads((tmp_path / "gpu_check.json").read_text()) == report
    assert_schema(report)
    assert report["failed"] == ["pytest"]
    assert report["incomplete"] == ["step", "sampling", "memory", "profile"]
    assert report["sections"]["step"] == {"status": "skipped", "seconds": None,
                                          "log": "logs/step.log"}  # fmt: skip
    assert all(v is None for v in report["pytest"].values())
    for case in report["step"].values():
        assert all(case[arm] is None for arm in ARMS) and case["bf16_speedup"] is None
    assert report["sampling"]["steps_100"] is None and report["memory"]["peak_bytes"] is None
    assert report["profile"]["top_ops"] is None


@pytest.mark.parametrize(("limit", "start", "cap"), [(1000, 256, 1 << 16), (256, 256, 4096),
                                                     (100, 8, 96), (5000, 8, 64)])  # fmt: skip
def test_largest_batch_finds_the_limit_within_a_sixteenth(gpu_check, limit, start, cap):
    tried = []

    def fits(b: int) -> bool:
        tried.append(b)
        return b <= limit

    best, capped = gpu_check.largest_batch(fits, start, cap)
    if limit >= cap:
        assert (best, capped) == (cap, True)
    else:
        assert not capped and best <= limit and limit - best <= max(1, best // 16)
    assert len(tried) == len(set(tried)) and max(tried) <= cap


def test_largest_batch_is_none_when_the_first_batch_does_not_fit(gpu_check):
    assert gpu_check.largest_batch(lambda b: False, 256, 4096) == (None, False)


def test_top_ops_reads_the_names_of_a_profiler_table(gpu_check):
    import torch
    from torch.profiler import profile

    x = torch.ones(8, 8)
    with profile() as prof:
        torch.mm(x, x).relu()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    names = gpu_check.top_ops(table)
    assert "aten::mm" in names and "aten::relu" in names
    assert all(name and "  " not in name for name in names)


def test_help_prints_the_usage():
    proc = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True,
                          env={**os.environ}, timeout=30)  # fmt: skip
    assert proc.returncode == 0 and "--dry-run" in proc.stdout and "OUTDIR" in proc.stdout
