"""``fit``: train a Fisher-Flow model on a data file and keep it in a run folder."""

from __future__ import annotations

import gzip
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from seqflow.api._config import apply_overrides, build_config, default_preset, resolve_device
from seqflow.api._dataset import Dataset, load_dataset
from seqflow.api._sets import decode_tokens
from seqflow.checkpoint import (
    MODEL_FILE,
    STATE_FILE,
    ModelMeta,
    load_model,
    load_state,
    save_model,
    save_state,
)
from seqflow.config import Config, load_preset
from seqflow.errors import CheckpointError, ConfigError, InvalidInputError
from seqflow.flow import FisherFlow, make_coupling
from seqflow.io_utils import atomic_path, atomic_write
from seqflow.models import count_parameters, resolve_arch
from seqflow.training import Progress, Trainer

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
TRAIN_FILE = "train.fasta.gz"
"""The training split as gzipped FASTA (original ids): the reference of ``sample
--min-novelty`` and ``evaluate --train``, kept with the run so the novelty check needs
nothing else."""


@dataclass(frozen=True)
class FitPlan:
    """What ``fit`` is about to do, reported once before training starts."""

    run_dir: Path
    preset: str
    n_train: int
    n_valid: int
    n_test: int
    length: int
    variable_length: bool
    alphabet: str
    alphabet_detected: bool
    labels: tuple[str, ...]
    value: str | None
    signal_channels: int
    read_summary: str
    arch: str
    parameters: int
    device: str
    start_step: int
    steps: int


@dataclass(frozen=True)
class FitResult:
    """Outcome of ``fit``: where the run lives and how it ended."""

    run_dir: Path
    checkpoint: Path
    steps: int
    loss: float | None
    valid_loss: float | None
    seconds: float


def fit(
    data: str | Path,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    resume: bool = False,
    seq_col: str | None = None,
    label_col: str | None = None,
    value_col: str | None = None,
    signal_col: str | None = None,
    signal_file: str | None = None,
    split_col: str | None = None,
    valid_frac: float | None = None,
    alphabet: str | None = None,
    fmt: str | None = None,
    on_invalid: str | None = None,
    max_length: int | None = None,
    crop: bool | None = None,
    on_start: Callable[[FitPlan], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> FitResult:
    """Train a Fisher-Flow model on the sequences in ``data`` and checkpoint it.

    The run folder (``out``, default ``runs/<data name>``) receives ``model.safetensors``,
    ``state.safetensors``, ``config.yaml``, ``metrics.jsonl`` and ``train.fasta.gz`` (the
    training split). With ``resume`` the run
    continues from its saved state (only ``train.*`` and ``sample.*`` settings may change).
    The keyword arguments that mirror config keys (``steps`` is ``train.steps``, ``value_col``
    is ``data.value_col``, ...) override the preset when not None.
    """
    flags = {
        "train.steps": steps, "train.batch_size": batch_size, "train.device": device,
        "train.seed": seed, "data.seq_col": seq_col, "data.label_col": label_col,
        "data.value_col": value_col, "data.signal_col": signal_col,
        "data.signal_file": signal_file, "data.split_col": split_col,
        "data.valid_frac": valid_frac, "data.alphabet": alphabet, "data.format": fmt,
        "data.on_invalid": on_invalid, "data.max_length": max_length, "data.crop": crop,
    }  # fmt: skip
    run_dir = Path(out) if out is not None else Path("runs") / _stem(data)
    saved_state: dict[str, Any] | None = None
    cfg: Config | None
    if resume:
        cfg, preset_name, saved_meta = _resume_config(
            run_dir, overrides, flags, preset, config_file
        )
    else:
        if (run_dir / MODEL_FILE).exists():
            raise InvalidInputError(
                f"{run_dir}: already holds a trained run; pass --resume to continue it "
                "or choose another --out"
            )
        explicit = build_config(
            preset=preset, config_file=config_file, overrides=overrides, flags=flags
        )
        cfg = explicit
        preset_name, saved_meta = preset or str(config_file or ""), None

    base = cfg if cfg is not None else apply_overrides(Config(), (), flags)
    seed_now = base.train.seed
    ds = load_dataset(
        data, base.data, seed=seed_now,
        value=saved_meta.value if saved_meta else None,
        signal=saved_meta.signal if saved_meta else None,
    )  # fmt: skip
    table = ds.table
    if cfg is None:
        preset_name = default_preset(table.alphabet)
        cfg = apply_overrides(load_preset(preset_name), overrides, flags)
        if cfg.data != base.data or cfg.train.seed != seed_now:  # the preset reads differently
            ds = load_dataset(data, cfg.data, seed=cfg.train.seed)
            table = ds.table
    if saved_meta is not None:
        _check_same_data(saved_meta, ds, data)
        saved_state = load_state(run_dir / STATE_FILE)

    dev = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    meta0 = _meta(cfg, ds, step=0)
    model = meta0.build()
    flow = FisherFlow(
        make_coupling(cfg.flow.coupling, sinkhorn_reg=cfg.flow.sinkhorn_reg),
        ds.vocab,
        geometry=meta0.geometry,
        sigma=cfg.flow.sigma,
    )
    trainer = Trainer(
        model, flow, cfg.train, train=ds.train, valid=ds.valid,
        cond_dropout=cfg.flow.cond_dropout, device=dev,
    )  # fmt: skip
    if saved_state is not None:
        trainer.load_state_dict(saved_state)

    created = _first_missing(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / CONFIG_FILE) as handle:
        yaml.safe_dump(cfg.to_dict(), handle, sort_keys=False)
    write_training_set(ds, run_dir / TRAIN_FILE)

    def checkpoint(tr: Trainer) -> None:
        meta = _meta(cfg, ds, step=tr.step)
        save_model(run_dir / MODEL_FILE, tr.model.state_dict(), tr.ema.state_dict(), meta)
        save_state(run_dir / STATE_FILE, tr.state_dict())

    metrics_path = run_dir / METRICS_FILE

    def progress(p: Progress) -> None:
        with metrics_path.open("a", encoding="utf-8") as handle:
            record = {
                "step": p.step,
                "loss": p.loss,
                "lr": p.lr,
                "steps_per_second": p.steps_per_second,
                "elapsed": p.elapsed,
            }
            if p.valid_loss is not None:
                record["valid_loss"] = p.valid_loss
            handle.write(json.dumps(record) + "\n")
        if on_progress is not None:
            on_progress(p)

    if on_start is not None:
        on_start(FitPlan(
            run_dir=run_dir, preset=preset_name, n_train=len(ds.train), n_valid=len(ds.valid),
            n_test=ds.n_test, length=table.length, variable_length=table.variable,
            alphabet=table.alphabet.describe(), alphabet_detected=table.report.alphabet_detected,
            labels=table.label_names, value=ds.value.name if ds.value else None,
            signal_channels=ds.signal.channels if ds.signal else 0,
            read_summary=table.report.summary(), arch=resolve_arch(cfg.model, ds.vocab),
            parameters=count_parameters(model), device=str(dev), start_step=trainer.step,
            steps=cfg.train.steps,
        ))  # fmt: skip
    started = time.perf_counter()
    try:
        last = trainer.run(on_progress=progress, on_checkpoint=checkpoint)
    except KeyboardInterrupt:
        if trainer.step > 0:
            checkpoint(trainer)
        raise
    except BaseException:
        if created is not None and not (run_dir / MODEL_FILE).exists():
            shutil.rmtree(created, ignore_errors=True)
        raise
    return FitResult(
        run_dir=run_dir, checkpoint=run_dir / MODEL_FILE, steps=trainer.step, loss=last.loss,
        valid_loss=last.valid_loss, seconds=time.perf_counter() - started,
    )  # fmt: skip


def write_training_set(ds: Dataset, path: Path) -> None:
    """Write the training split of ``ds`` as gzipped FASTA, atomically (mtime 0: the same data
    gives the same bytes)."""
    table = ds.table
    rows = ds.train_rows if ds.train_rows is not None else torch.arange(len(ds.train))
    seqs = decode_tokens(table.alphabet, table.tokens[rows].long(), table.pad_token)
    with (
        atomic_path(path) as temp,
        open(temp, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as handle,
    ):
        for i, seq in zip(rows.tolist(), seqs, strict=True):
            handle.write(f">{table.ids[i]}\n{seq}\n".encode())


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what a failure must remove)."""
    top = None
    while not path.exists():
        top, path = path, path.parent
    return top


def _stem(data: str | Path) -> str:
    name = Path(str(data)).name
    for suffix in (".gz", ".fasta", ".fa", ".fna", ".fas", ".csv", ".tsv", ".txt"):
        name = name.removesuffix(suffix)
    return name if name not in ("", "-") else "stdin"


def _resume_config(
    run_dir: Path,
    overrides: Sequence[str],
    flags: dict[str, Any],
    preset: str | None,
    config_file: str | Path | None,
) -> tuple[Config, str, ModelMeta]:
    if preset or config_file:
        raise ConfigError("--resume takes the configuration from the run; drop --preset/--config")
    if not (run_dir / MODEL_FILE).is_file() or not (run_dir / STATE_FILE).is_file():
        raise CheckpointError(f"{run_dir}: nothing to resume (needs {MODEL_FILE} and {STATE_FILE})")
    _, meta = load_model(run_dir)
    cfg = apply_overrides(meta.config, overrides, flags)
    saved, new = meta.config.to_dict(), cfg.to_dict()
    for section in saved:
        if section in ("train", "sample", "description") or saved[section] == new[section]:
            continue
        key = section
        if isinstance(saved[section], dict):
            key += "." + next(k for k in saved[section] if saved[section][k] != new[section][k])
        raise ConfigError(
            f"--resume: cannot change '{key}' of an existing run "
            "(only train.* and sample.* settings may change)"
        )
    return cfg, "resumed", meta


def _meta(cfg: Config, ds: Dataset, *, step: int) -> ModelMeta:
    table = ds.table
    return ModelMeta(
        config=cfg, alphabet=table.alphabet.to_dict(), labels=table.label_names,
        length=table.length, step=step, variable_length=table.variable, value=ds.value,
        signal=ds.signal,
    )  # fmt: skip


def _check_same_data(meta: ModelMeta, ds: Dataset, data: str | Path) -> None:
    table = ds.table
    if (
        meta.alphabet["letters"] != table.alphabet.letters
        or meta.length != table.length
        or meta.variable_length != table.variable
    ):
        raise InvalidInputError(
            f"{data}: does not match the run being resumed (alphabet "
            f"{table.alphabet.letters}, length {table.length} vs "
            f"{meta.alphabet['letters']}, {meta.length})"
        )
    if tuple(meta.labels) != table.label_names:
        raise InvalidInputError(f"{data}: labels differ from the run being resumed")
