"""The sections of ``benchmarks/gpu_check.sh`` (issue 20): one Python process per section, each
writing ``OUT/sections/NAME.json``, then ``merge`` writes ``OUT/gpu_check.json``.

Sections (each reuses the issue-7 benchmarks' own functions):

- ``step``: the time of one training step (``Trainer.train_step``, the preset's exact OT
  coupling) and of the bare network step (``step_overhead.bare_step``) for ``dna-large`` at
  L=200 and L=1,024 and ``protein-large`` at L=200, in fp32 and bf16 (the trainer's autocast),
  eager and ``torch.compile``; the step-overhead ratio full / bare (issue 7: goal <= 1.15) and
  the bf16 and compile speed-ups. Measurements run most useful first (eager, then compiled
  bf16, then compiled fp32) and stop at the section's deadline: what is left is null.
- ``sampling``: ``sample_overhead.measure`` at 25 and 100 Euler steps: sequences per second
  and the sampling-overhead ratio ``sample / (NFE x bare forward)`` (goal <= 1.10).
- ``memory``: peak memory of training steps at L=1,024 with the preset's batch, and the
  largest batch that fits (doubling, then bisection, out-of-memory caught). On a CPU nothing
  runs out of memory: the peak is the process's maximum RSS (``kind`` says which) and the
  search stops at a small cap.
- ``profile``: ``step_overhead.profile`` of 20 training steps, the top 15 ops (CUDA kernels
  on a GPU) in ``profile_top15.txt``.
- ``merge``: every section's figures, the pytest junit summary, the section statuses the
  shell recorded, the device, torch and CUDA versions, date and command, in one JSON whose
  keys are always all present (null where a section failed or was skipped).

``--dry-run`` runs the same code on a CPU with tiny networks, short sequences and few steps,
and ``torch.compile`` with the ``eager`` backend (Dynamo tracing without Inductor's C++
build, which alone would take minutes on a small CPU).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import platform
import resource
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from seqflow.config import Config, load_preset

try:
    from benchmarks import _perf, sample_overhead, step_overhead
except ImportError:  # run as a script: benchmarks/ is on sys.path
    import _perf  # type: ignore[no-redef]
    import sample_overhead  # type: ignore[no-redef]
    import step_overhead  # type: ignore[no-redef]

SECTIONS = ("pytest", "step", "sampling", "memory", "profile")
STEP_CASES = (("dna-large", 200), ("dna-large", 1024), ("protein-large", 200))
ARMS = ("fp32_eager", "bf16_eager", "bf16_compile", "fp32_compile")  # in the order they run
SAMPLE_STEPS = (25, 100)
PROFILE_STEPS = 20
PROFILE_ROWS = 15
PROFILE_FILE = "profile_top15.txt"

TINY_MODEL = {"hidden": 16, "depth": 2, "time_dim": 16, "dilations": (1, 2), "heads": 2}
"""``--dry-run``: the presets' architecture (CNN, transformer) at toy width and depth."""
TINY_LENGTH = {200: 24, 1024: 48}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big the measurements are (the real run's, or the dry run's)."""

    batch: int  # 0: the preset's
    rounds: int
    block: int
    warmup: int
    sample_n: int
    sample_rounds: int
    bare_block: int
    memory_start: int  # 0: the preset's batch
    memory_cap: int
    memory_steps: int
    profile_steps: int
    compile_backend: str

    @classmethod
    def for_run(cls, dry: bool) -> Sizes:
        if dry:
            return cls(batch=8, rounds=2, block=1, warmup=1, sample_n=8, sample_rounds=1,
                       bare_block=2, memory_start=8, memory_cap=32, memory_steps=1,
                       profile_steps=PROFILE_STEPS, compile_backend="eager")  # fmt: skip
        return cls(batch=0, rounds=5, block=2, warmup=2, sample_n=256, sample_rounds=3,
                   bare_block=10, memory_start=0, memory_cap=1 << 16, memory_steps=1,
                   profile_steps=PROFILE_STEPS, compile_backend="inductor")  # fmt: skip


def preset(name: str, dry: bool) -> Config:
    """The preset, with a toy network in a dry run."""
    cfg = load_preset(name)
    if dry:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **TINY_MODEL))
    return cfg


def length_of(length: int, dry: bool) -> int:
    return TINY_LENGTH.get(length, length) if dry else length


def device_of(dry: bool) -> torch.device:
    return torch.device("cpu") if dry else _perf.resolve_device("auto")


class Deadline:
    """Seconds left before a section must stop starting new measurements."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() >= self.end


def write(out: Path, name: str, payload: dict[str, Any]) -> None:
    """Write a section's figures (again after each measurement: a killed section keeps them)."""
    folder = out / "sections"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{name}.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(folder / f"{name}.json")


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- step time ----------------------------------------------------------------------------------
def step_arm(
    cfg: Config, length: int, arm: str, sizes: Sizes, device: torch.device
) -> dict[str, float]:
    """Median full and bare step time of one precision and mode, and their ratio."""
    precision, mode = arm.split("_")
    batch = sizes.batch or cfg.train.batch_size
    model = _perf.build(cfg, length, device)
    trainer = _perf.make_trainer(model, cfg, coupling=cfg.flow.coupling, batch=batch,
                                 length=length, device=device, precision=precision)  # fmt: skip
    try:
        if mode == "compile":
            torch._dynamo.reset()  # each arm compiles afresh, far from the recompile limit
            model.compile(backend=sizes.compile_backend)
        bare, _ = step_overhead.bare_step(trainer, model, None)
        arms = {"bare": bare, "full": trainer.train_step}
        blocks = _perf.interleaved(arms, rounds=sizes.rounds, block=sizes.block,
                                   warmup=sizes.warmup, device=device)  # fmt: skip
    finally:
        trainer.task.close()
    full_s, bare_s = _perf.median(blocks.wall["full"]), _perf.median(blocks.wall["bare"])
    return {"step_s": full_s, "bare_step_s": bare_s, "overhead": full_s / bare_s,
            "overhead_paired": _perf.paired(blocks.wall["full"], blocks.wall["bare"])}  # fmt: skip


def speedups(arms: dict[str, dict[str, float] | None]) -> dict[str, float | None]:
    """bf16 over fp32 (eager) and compile over eager (bf16): time ratios, > 1 is faster."""

    def ratio(slow: str, fast: str) -> float | None:
        a, b = arms.get(slow), arms.get(fast)
        return a["step_s"] / b["step_s"] if a and b else None

    return {"bf16_speedup": ratio("fp32_eager", "bf16_eager"),
            "compile_speedup": ratio("bf16_eager", "bf16_compile"),
            "compile_speedup_fp32": ratio("fp32_eager", "fp32_compile")}  # fmt: skip


def case_key(name: str, length: int) -> str:
    return f"{name}_L{length}"


def empty_step() -> dict[str, Any]:
    return {
        case_key(name, length): {
            "preset": name, "length": None, "batch": None, "vocab": _perf.VOCAB,
            **dict.fromkeys(ARMS), **speedups({}),
        }
        for name, length in STEP_CASES
    }  # fmt: skip


def section_step(out: Path, dry: bool, budget: float) -> None:
    sizes, device, deadline = Sizes.for_run(dry), device_of(dry), Deadline(budget)
    result = empty_step()
    for arm in ARMS:  # every case's arm before the next, most useful first
        for name, length in STEP_CASES:
            if deadline.passed():
                break
            cfg, n = preset(name, dry), length_of(length, dry)
            row = result[case_key(name, length)]
            row.update(length=n, batch=sizes.batch or cfg.train.batch_size)
            try:
                row[arm] = step_arm(cfg, n, arm, sizes, device)
            except Exception as e:  # one arm failing leaves the others
                row[arm] = None
                row.setdefault("errors", {})[arm] = f"{type(e).__name__}: {e}"[:500]
                print(f"step {name} L={n} {arm}: {e!r}", file=sys.stderr)
            row.update(speedups({a: row[a] for a in ARMS}))
            release(device)
            write(out, "step", result)
            print(f"step {name} L={n} {arm}: {row[arm]}", flush=True)
    write(out, "step", result)
    if any(r.get("errors") for r in result.values()):
        sys.exit(1)


# --- sampling -----------------------------------------------------------------------------------
SAMPLE_PRESET, SAMPLE_LENGTH = "dna-large", 200


def section_sampling(out: Path, dry: bool, budget: float) -> None:
    sizes, device, deadline = Sizes.for_run(dry), device_of(dry), Deadline(budget)
    length = length_of(SAMPLE_LENGTH, dry)
    result: dict[str, Any] = {"preset": SAMPLE_PRESET, "length": length, "n": sizes.sample_n,
                              "solver": None, "precision": "fp32",
                              **{f"steps_{s}": None for s in SAMPLE_STEPS},
                              "overhead": None}  # fmt: skip
    for steps in SAMPLE_STEPS:
        if deadline.passed():
            break
        args = argparse.Namespace(
            preset=SAMPLE_PRESET, steps=steps, geometry="fisher", seed=0, n=sizes.sample_n,
            compile=False, precision="fp32", rounds=sizes.sample_rounds,
            bare_block=sizes.bare_block, device=device.type,
        )  # fmt: skip
        row = sample_overhead.measure(length, args, preset(SAMPLE_PRESET, dry))
        wall = row["wall"]
        result["solver"] = row["solver"]
        result[f"steps_{steps}"] = {
            "seq_per_s": sizes.sample_n / wall["sample_s"], "sample_s": wall["sample_s"],
            "nfe": row["nfe"], "bare_forward_s": wall["bare_forward_s"],
            "overhead": wall["ratio"], "overhead_parts": wall["ratio_parts"],
        }  # fmt: skip
        release(device)
        write(out, "sampling", result)
    if result["steps_100"]:
        result["overhead"] = result["steps_100"]["overhead"]
    write(out, "sampling", result)


# --- memory -------------------------------------------------------------------------------------
MEMORY_PRESET, MEMORY_LENGTH = "dna-large", 1024


def largest_batch(fits: Callable[[int], bool], start: int, cap: int) -> tuple[int | None, bool]:
    """The largest batch ``b <= cap`` with ``fits(b)``: doubling from ``start``, then bisection
    to within 1/16 of the answer. Returns ``(batch, capped)``; ``batch`` is None when even
    ``start`` does not fit (``fits`` is assumed monotone)."""
    if not fits(start):
        return None, False
    good = start
    while good < cap:
        trial = min(2 * good, cap)
        if not fits(trial):
            bad = trial
            break
        good = trial
    else:
        return good, True
    while bad - good > max(1, good // 16):
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good, False


def peak_after_steps(cfg: Config, length: int, batch: int, steps: int, device: torch.device) -> int:
    """Peak bytes of ``steps`` training steps (independent coupling: the coupling is on the
    host and does not change device memory; exact OT of huge batches would take minutes)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = _perf.build(cfg, length, device)
    trainer = _perf.make_trainer(model, cfg, coupling="independent", batch=batch,
                                 length=length, device=device)  # fmt: skip
    try:
        for _ in range(steps):
            trainer.train_step()
        _perf.sync(device)
    finally:
        trainer.task.close()
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def section_memory(out: Path, dry: bool, budget: float) -> None:
    sizes, device, deadline = Sizes.for_run(dry), device_of(dry), Deadline(budget)
    cfg, length = preset(MEMORY_PRESET, dry), length_of(MEMORY_LENGTH, dry)
    batch = sizes.batch or cfg.train.batch_size
    kind = "cuda_max_memory_allocated" if device.type == "cuda" else "cpu_max_rss"
    result: dict[str, Any] = {"preset": MEMORY_PRESET, "length": length, "kind": kind,
                              "precision": "bf16" if device.type == "cuda" else "fp32",
                              "batch": batch, "peak_bytes": None, "peak_gib": None,
                              "largest_batch": None, "largest_batch_capped": None,
                              "search": []}  # fmt: skip
    peak = peak_after_steps(cfg, length, batch, sizes.memory_steps, device)
    result.update(peak_bytes=peak, peak_gib=peak / 2**30)
    write(out, "memory", result)
    release(device)

    def fits(b: int) -> bool:
        if deadline.passed():
            raise TimeoutError("memory section past its deadline")
        try:
            used = peak_after_steps(cfg, length, b, sizes.memory_steps, device)
            ok = True
        except torch.cuda.OutOfMemoryError:
            used, ok = None, False
        release(device)
        result["search"].append({"batch": b, "fits": ok, "peak_bytes": used})
        write(out, "memory", result)
        return ok

    try:
        best, capped = largest_batch(fits, sizes.memory_start or batch, sizes.memory_cap)
        result.update(largest_batch=best, largest_batch_capped=capped)
    except TimeoutError:
        result["largest_batch_note"] = "search stopped at the section's deadline"
    write(out, "memory", result)


# --- profile ------------------------------------------------------------------------------------
PROFILE_PRESET, PROFILE_LENGTH = "dna-large", 200


def top_ops(table: str) -> list[str]:
    """The op names of a ``key_averages().table`` (its first column)."""
    lines = table.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("---")]
    if len(rules) < 3:
        return []
    width = len(lines[rules[0]].split("  ")[0])
    return [line[:width].strip() for line in lines[rules[1] + 1 : rules[2]] if line.strip()]


def section_profile(out: Path, dry: bool, budget: float) -> None:
    sizes, device = Sizes.for_run(dry), device_of(dry)
    cfg, length = preset(PROFILE_PRESET, dry), length_of(PROFILE_LENGTH, dry)
    batch = sizes.batch or cfg.train.batch_size
    model = _perf.build(cfg, length, device)
    trainer = _perf.make_trainer(model, cfg, coupling=cfg.flow.coupling, batch=batch,
                                 length=length, device=device)  # fmt: skip
    try:
        for _ in range(3):  # warm-up: allocator, cuDNN autotuning, the prefetch thread
            trainer.train_step()
        table = step_overhead.profile(trainer, sizes.profile_steps, rows=PROFILE_ROWS)
    finally:
        trainer.task.close()
    header = (f"torch.profiler: {sizes.profile_steps} training steps of {PROFILE_PRESET} "
              f"(L={length}, batch={batch}, {device}, precision auto), top {PROFILE_ROWS} by "
              f"self {'CUDA' if device.type == 'cuda' else 'CPU'} time\n\n")  # fmt: skip
    (out / PROFILE_FILE).write_text(header + table + "\n")
    write(out, "profile", {"preset": PROFILE_PRESET, "length": length, "batch": batch,
                           "steps": sizes.profile_steps, "file": PROFILE_FILE,
                           "top_ops": top_ops(table)})  # fmt: skip


# --- merge --------------------------------------------------------------------------------------
def pytest_summary(junit: Path) -> dict[str, Any]:
    """Counts from pytest's junit XML (all null when there is none)."""
    keys = ("tests", "passed", "failed", "errors", "skipped")
    if not junit.is_file():
        return {**dict.fromkeys(keys), "junit": None}
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    return {"tests": n["tests"], "passed": passed, "failed": n["failures"],
            "errors": n["errors"], "skipped": n["skipped"], "junit": junit.name}  # fmt: skip


def device_info(dry: bool) -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    cpu = platform.processor() or platform.machine()
    return {
        "type": device_of(dry).type,
        "name": torch.cuda.get_device_name() if cuda and not dry else cpu,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
    }


def empty(name: str, dry: bool) -> dict[str, Any]:
    """A section's keys, all null: what the JSON holds when the section did not finish."""
    sizes = Sizes.for_run(dry)
    if name == "step":
        return empty_step()
    if name == "sampling":
        return {"preset": SAMPLE_PRESET, "length": None, "n": sizes.sample_n, "solver": None,
                "precision": "fp32", **{f"steps_{s}": None for s in SAMPLE_STEPS},
                "overhead": None}  # fmt: skip
    if name == "memory":
        return {"preset": MEMORY_PRESET, "length": None, "kind": None, "precision": None,
                "batch": None, "peak_bytes": None, "peak_gib": None, "largest_batch": None,
                "largest_batch_capped": None, "search": []}  # fmt: skip
    if name == "profile":
        return {
            "preset": PROFILE_PRESET,
            "length": None,
            "batch": None,
            "steps": None,
            "file": None,
            "top_ops": None,
        }
    raise ValueError(name)


def merge(out: Path, dry: bool, command: str, budget: float, wall: float) -> dict[str, Any]:
    """``gpu_check.json`` from the sections' files and ``status.tsv`` (name, status, seconds)."""
    status: dict[str, dict[str, Any]] = {
        s: {"status": "not run", "seconds": None, "log": None} for s in SECTIONS
    }
    status_file = out / "status.tsv"
    if status_file.is_file():
        for line in status_file.read_text().splitlines():
            name, state, seconds = line.split("\t")
            status[name] = {"status": state, "seconds": float(seconds) if seconds else None,
                            "log": f"logs/{name}.log"}  # fmt: skip
    payload: dict[str, Any] = {
        "schema": 1,
        "dry_run": dry,
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_info(dry),
        "budget_s": budget,
        "wall_s": wall,
        "sections": status,
        "failed": [s for s, v in status.items() if v["status"] == "failed"],
        "incomplete": [s for s, v in status.items() if v["status"] not in ("ok", "failed")],
        "pytest": pytest_summary(out / "pytest_gpu.xml"),
    }
    for name in SECTIONS[1:]:
        data = empty(name, dry)
        part = out / "sections" / f"{name}.json"
        if part.is_file():
            data.update(json.loads(part.read_text()))
        payload[name] = data
    (out / "gpu_check.json").write_text(json.dumps(payload, indent=2) + "\n")
    return payload


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("section", choices=[*SECTIONS[1:], "merge"])
    p.add_argument("out", type=Path)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--budget", type=float, default=120.0, help="seconds for this section")
    p.add_argument("--command", default="", help="merge: the command that ran the check")
    p.add_argument("--wall", type=float, default=0.0, help="merge: the check's seconds")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.dry_run:
        torch.set_num_threads(1)
    if args.section == "merge":
        merge(args.out, args.dry_run, args.command, args.budget, args.wall)
        return
    run = {"step": section_step, "sampling": section_sampling, "memory": section_memory,
           "profile": section_profile}[args.section]  # fmt: skip
    run(args.out, args.dry_run, args.budget)


if __name__ == "__main__":
    main()
