"""``fit``: train a Fisher-Flow model on a data file and keep it in a run folder."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from seqflow.api._config import apply_overrides, build_config, default_preset, resolve_device
from seqflow.api._dataset import Dataset, load_dataset
from seqflow.api._sets import decode_tokens
from seqflow.api.library import library_meta, resolve_library_config, train_libraries
from seqflow.checkpoint import (
    MODEL_FILE,
    STATE_FILE,
    ModelMeta,
    load_state,
    read_meta,
    save_model,
    save_state,
)
from seqflow.config import Config, load_preset
from seqflow.errors import CheckpointError, ConfigError, InvalidInputError
from seqflow.flow import FlowMatching, make_coupling
from seqflow.io_utils import atomic_path, atomic_write, remove_stale_temps
from seqflow.models import count_parameters, resolve_arch
from seqflow.options import config_flags
from seqflow.training import Progress, SequenceTask, Trainer, TrainingStopped
from seqflow.training.distributed import Shard, barrier, process_group, shard_from_env

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"
"""Folder of the last ``train.keep_checkpoints`` checkpoints, one ``step-NNNNNNNN`` folder each
(``model.safetensors`` + ``state.safetensors``); the run folder's own two files are hard links
to (or copies of) the newest."""
READING_KEYS = ("cache", "num_workers")
"""``data.*`` keys a resumed run may change: they change how the data are read, not what."""
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1")
"""Signals that stop training cleanly with a final checkpoint (SIGUSR1: SLURM's
``--signal=USR1@<seconds>`` warning before the time limit)."""
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
    data: str | Path | None = None,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    compile: bool | None = None,
    resume: bool | str | Path = False,
    mode: str | None = None,
    set_col: str | None = None,
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
    cache: str | None = None,
    num_workers: int | None = None,
    on_start: Callable[[FitPlan], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    handle_signals: bool = True,
) -> FitResult:
    """Train a Fisher-Flow model on the sequences in ``data`` and checkpoint it.

    The run folder (``out``, default ``runs/<data name>``) receives ``model.safetensors``,
    ``state.safetensors``, ``config.yaml``, ``metrics.jsonl``, ``train.fasta.gz`` (the
    training split) and ``checkpoints/`` (the last ``train.keep_checkpoints`` checkpoints).
    With ``resume`` (True for the run in ``out``, or the run folder itself) the run continues
    from its saved state (only ``train.*`` and ``sample.*`` settings may change); ``data`` may
    then be left out: the run remembers its data file. The keyword arguments that mirror
    config keys (``steps`` is ``train.steps``, ``value_col`` is ``data.value_col``, ...)
    override the preset when not None.

    With ``handle_signals`` (and on the main thread), SIGTERM, SIGINT, SIGHUP and SIGUSR1
    stop training after the current step with a checkpoint and raise
    :class:`~seqflow.training.TrainingStopped` (its ``exit_code`` is 128 + the signal number).
    """
    flags = config_flags("fit", locals())
    if not isinstance(resume, bool):
        if out is not None and Path(out) != Path(resume):
            raise ConfigError(f"--resume {resume} and --out {out} name different run folders")
        out, resume = resume, True
    if data is None and not resume:
        raise InvalidInputError("fit needs a data file (or --resume RUN_DIR to continue a run)")
    if out is not None:
        run_dir = Path(out)
    elif data is not None:
        run_dir = Path("runs") / _stem(data)
    else:
        raise ConfigError("--resume needs the run folder: seqflow fit --resume RUN_DIR")
    saved_state: dict[str, Any] | None = None
    cfg: Config | None
    if resume:
        remove_stale_temps(run_dir)
        saved_state, saved_meta = _intact_checkpoint(run_dir)
        cfg, preset_name = _resume_config(saved_meta, overrides, flags, preset, config_file)
        if data is None:
            data = _recorded_data(saved_state, run_dir)
    else:
        if (run_dir / MODEL_FILE).exists():
            raise InvalidInputError(
                f"{run_dir}: already holds a trained run; continue it with "
                f"seqflow fit --resume {run_dir}, or choose another --out"
            )
        assert data is not None
        explicit = build_config(
            preset=preset, config_file=config_file, overrides=overrides, flags=flags
        )
        cfg = explicit
        preset_name, saved_meta = preset or str(config_file or ""), None

    base = cfg if cfg is not None else apply_overrides(Config(), (), flags)
    if base.mode == "library":
        return _fit_libraries(
            data, cfg, base, run_dir, overrides=overrides, flags=flags, preset_name=preset_name,
            saved_state=saved_state, on_start=on_start, on_progress=on_progress,
            handle_signals=handle_signals,
        )  # fmt: skip
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

    with process_group(resolve_device(cfg.train.device)) as (shard, dev):
        return _train(
            cfg, ds, data, run_dir, dev, shard, saved_state, preset_name,
            on_start=on_start, on_progress=on_progress, handle_signals=handle_signals,
        )  # fmt: skip


def _train(
    cfg: Config,
    ds: Dataset,
    data: str | Path,
    run_dir: Path,
    dev: torch.device,
    shard: Shard,
    saved_state: dict[str, Any] | None,
    preset_name: str,
    *,
    on_start: Callable[[FitPlan], None] | None,
    on_progress: Callable[[Progress], None] | None,
    handle_signals: bool,
) -> FitResult:
    """Build the model and trainer and run it; only rank 0 writes files and reports."""
    table = ds.table
    m = cfg.model
    if resolve_arch(m, ds.vocab) == "transformer" and m.hidden % m.heads:
        raise ConfigError(
            f"model.heads: {m.heads} must divide model.hidden ({m.hidden}); arch auto picks "
            f"the transformer for this {ds.vocab}-category alphabet"
        )
    torch.manual_seed(cfg.train.seed)
    meta0 = _meta(cfg, ds, step=0)
    model = meta0.build()
    flow = FlowMatching(
        make_coupling(cfg.flow.coupling, sinkhorn_reg=cfg.flow.sinkhorn_reg),
        ds.vocab,
        geometry=meta0.geometry,
        sigma=cfg.flow.sigma,
    )
    task = SequenceTask(flow, cfg.train, ds.train, ds.valid, device=dev, shard=shard,
                        workers=cfg.data.num_workers)  # fmt: skip
    trainer = Trainer(model, task, cfg.train, cond_dropout=cfg.flow.cond_dropout, device=dev,
                      shard=shard)  # fmt: skip
    if saved_state is not None:
        trainer.load_state_dict(saved_state)

    created = _first_missing(run_dir) if shard.main else None
    if shard.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_dir / CONFIG_FILE) as handle:
            yaml.safe_dump(cfg.to_dict(), handle, sort_keys=False)
        write_training_set(ds, run_dir / TRAIN_FILE)

    source = "-" if str(data) == "-" else str(Path(data).resolve())

    def checkpoint(tr: Trainer) -> None:
        state = {**tr.state_dict(), "data_source": source}
        write_checkpoint(
            run_dir, tr.model.state_dict(), tr.ema.state_dict(), state,
            _meta(cfg, ds, step=tr.step), keep=cfg.train.keep_checkpoints,
        )  # fmt: skip

    progress = _metrics_logger(run_dir / METRICS_FILE, on_progress)

    if on_start is not None and shard.main:
        on_start(FitPlan(
            run_dir=run_dir, preset=preset_name, n_train=len(ds.train), n_valid=len(ds.valid),
            n_test=ds.n_test, length=table.length, variable_length=table.variable,
            alphabet=table.alphabet.describe(), alphabet_detected=table.report.alphabet_detected,
            labels=table.label_names, value=ds.value.name if ds.value else None,
            signal_channels=ds.signal.channels if ds.signal else 0,
            read_summary=table.report.summary(), arch=resolve_arch(cfg.model, ds.vocab),
            parameters=count_parameters(model),
            device=f"{dev} x {shard.world} processes" if shard.distributed else str(dev),
            start_step=trainer.step, steps=cfg.train.steps,
        ))  # fmt: skip
    started = time.perf_counter()
    with _failure_handling(run_dir, created):
        try:
            with _stop_on_signals(trainer, enabled=handle_signals):
                last = trainer.run(
                    on_progress=progress if shard.main else None,
                    on_checkpoint=checkpoint if shard.main else None,
                )
            barrier(shard)  # rank 0's last checkpoint is written before anyone returns
        except KeyboardInterrupt:
            if trainer.step > 0 and shard.main:
                checkpoint(trainer)
            raise
    return FitResult(
        run_dir=run_dir, checkpoint=run_dir / MODEL_FILE, steps=trainer.step, loss=last.loss,
        valid_loss=last.valid_loss, seconds=time.perf_counter() - started,
    )  # fmt: skip


def _metrics_logger(
    path: Path, on_progress: Callable[[Progress], None] | None
) -> Callable[[Progress], None]:
    """A progress callback that appends each report to ``metrics.jsonl``, then passes it on."""

    def progress(p: Progress) -> None:
        record: dict[str, Any] = {
            "step": p.step, "loss": p.loss, "lr": p.lr,
            "steps_per_second": p.steps_per_second, "elapsed": p.elapsed,
        }  # fmt: skip
        if p.valid_loss is not None:
            record["valid_loss"] = p.valid_loss
        if p.skipped:
            record["skipped"] = p.skipped
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if on_progress is not None:
            on_progress(p)

    return progress


@contextmanager
def _failure_handling(run_dir: Path, created: Path | None) -> Iterator[None]:
    """A stop request becomes a message saying how to resume; any other failure before the
    first checkpoint removes the folders this run created (nothing half-made is left)."""
    try:
        yield
    except TrainingStopped as stop:
        raise TrainingStopped(
            f"{stop}; checkpoint saved in {run_dir}; continue with: "
            f"seqflow fit --resume {run_dir}",
            step=stop.step, reason=stop.reason, exit_code=stop.exit_code,
        ) from None  # fmt: skip
    except BaseException:
        if created is not None and not (run_dir / MODEL_FILE).exists():
            shutil.rmtree(created, ignore_errors=True)
        raise


TRAIN_CHUNK_ROWS = 65_536
"""Rows decoded at a time by :func:`write_training_set` (bounded memory on 10M-row data)."""


def _fit_libraries(
    data: str | Path,
    cfg: Config | None,
    base: Config,
    run_dir: Path,
    *,
    overrides: Sequence[str],
    flags: dict[str, Any],
    preset_name: str,
    saved_state: dict[str, Any] | None,
    on_start: Callable[[FitPlan], None] | None,
    on_progress: Callable[[Progress], None] | None,
    handle_signals: bool,
) -> FitResult:
    """``fit`` in library mode (``mode: library``): see :mod:`seqflow.api.library`."""
    cfg, libs, chosen = resolve_library_config(data, cfg, overrides, flags, base)
    preset_name = chosen or preset_name
    table = libs.source.table
    sizes = [len(lib) for lib in libs.train.libraries]
    meta0 = library_meta(cfg, libs, step=0)
    shard, dev = shard_from_env(), resolve_device(cfg.train.device)
    created = _first_missing(run_dir) if shard.main else None
    progress = _metrics_logger(run_dir / METRICS_FILE, on_progress)

    if on_start is not None and shard.main:
        on_start(FitPlan(
            run_dir=run_dir, preset=preset_name, n_train=sum(sizes), n_valid=0, n_test=0,
            length=table.length, variable_length=table.variable,
            alphabet=table.alphabet.describe(), alphabet_detected=table.report.alphabet_detected,
            labels=libs.train.label_names, value=None, signal_channels=0,
            read_summary=f"{len(sizes)} libraries of {min(sizes)}-{max(sizes)} sequences "
            f"(library mode, {cfg.library.size} per training cloud)"
            + (f"; {table.report.summary()}" if table.report.summary() else ""),
            arch=f"set transformer over a {resolve_arch(cfg.model, meta0.vocab)} decoder",
            parameters=count_parameters(meta0.build_library()),
            device=f"{dev} x {shard.world} processes" if shard.distributed else str(dev),
            start_step=int(saved_state["step"]) if saved_state else 0, steps=cfg.train.steps,
        ))  # fmt: skip
    source = "-" if str(data) == "-" else str(Path(data).resolve())
    started = time.perf_counter()
    with _failure_handling(run_dir, created):
        trainer, last = train_libraries(
            cfg, libs, run_dir, saved_state=saved_state, source=source,
            write_checkpoint=write_checkpoint, on_progress=progress,
            stop_on_signals=_stop_on_signals, handle_signals=handle_signals,
        )  # fmt: skip
    return FitResult(
        run_dir=run_dir, checkpoint=run_dir / MODEL_FILE, steps=trainer.step, loss=last.loss,
        valid_loss=None, seconds=time.perf_counter() - started,
    )  # fmt: skip


def write_training_set(ds: Dataset, path: Path) -> None:
    """Write the training split of ``ds`` as gzipped FASTA, atomically, a chunk of rows at a
    time (empty name and mtime 0 in the gzip header: the same data gives the same bytes)."""
    table = ds.table
    rows = ds.train_rows if ds.train_rows is not None else torch.arange(len(ds.train))
    with (
        atomic_path(path) as temp,
        open(temp, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as handle,
    ):
        for start in range(0, len(rows), TRAIN_CHUNK_ROWS):
            part = rows[start : start + TRAIN_CHUNK_ROWS]
            seqs = decode_tokens(table.alphabet, table.tokens[part].long(), table.pad_token)
            text = "".join(
                f">{table.ids[i]}\n{seq}\n" for i, seq in zip(part.tolist(), seqs, strict=True)
            )
            handle.write(text.encode())


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
    meta: ModelMeta,
    overrides: Sequence[str],
    flags: dict[str, Any],
    preset: str | None,
    config_file: str | Path | None,
) -> tuple[Config, str]:
    if preset or config_file:
        raise ConfigError("--resume takes the configuration from the run; drop --preset/--config")
    cfg = apply_overrides(meta.config, overrides, flags)
    saved, new = meta.config.to_dict(), cfg.to_dict()
    for how in READING_KEYS:  # how the file is read, not what it holds
        saved.get("data", {}).pop(how, None)
        new.get("data", {}).pop(how, None)
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
    return cfg, "resumed"


def _step_folders(run_dir: Path) -> list[Path]:
    """The kept checkpoint folders of a run, newest first."""
    folder = run_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-")]
    return sorted(found, key=lambda p: p.name, reverse=True)


def _intact_checkpoint(run_dir: Path) -> tuple[dict[str, Any], ModelMeta]:
    """The newest checkpoint of ``run_dir`` whose two files read back with valid checksums.

    The run folder's own files come first; when they are damaged (a disk error, an altered
    file) the kept ``checkpoints/step-*`` folders are tried, newest first, with a warning.
    """
    candidates = [run_dir, *_step_folders(run_dir)]
    if not any((c / STATE_FILE).is_file() for c in candidates):
        raise CheckpointError(f"{run_dir}: nothing to resume (needs {MODEL_FILE} and {STATE_FILE})")
    first_error: CheckpointError | None = None
    for folder in candidates:
        if not (folder / STATE_FILE).is_file() or not (folder / MODEL_FILE).is_file():
            continue
        try:
            meta = read_meta(folder)
            state = load_state(folder / STATE_FILE)
        except CheckpointError as err:
            first_error = first_error or err
            continue
        if first_error is not None:
            warnings.warn(
                f"{first_error}; resuming from the older checkpoint in {folder} "
                f"(step {state['step']})",
                stacklevel=3,
            )
        return state, meta
    assert first_error is not None
    raise CheckpointError(f"{first_error}; no intact older checkpoint in {run_dir}")


def _recorded_data(state: dict[str, Any], run_dir: Path) -> str:
    """The data file a run was trained on, as its checkpoint recorded it."""
    source = state.get("data_source")
    if not isinstance(source, str):
        raise InvalidInputError(
            f"{run_dir}: the checkpoint does not record its data file; give it: "
            f"seqflow fit DATA --resume {run_dir}"
        )
    if source == "-":
        raise InvalidInputError(
            f"{run_dir}: was trained on standard input; give the data again: "
            f"seqflow fit - --resume {run_dir}"
        )
    if not Path(source).is_file():
        raise InvalidInputError(
            f"{run_dir}: its data file {source} is gone; give its new place: "
            f"seqflow fit DATA --resume {run_dir}"
        )
    return source


def write_checkpoint(
    run_dir: Path,
    model_state: dict[str, Any],
    ema_state: dict[str, Any],
    state: dict[str, Any],
    meta: ModelMeta,
    *,
    keep: int,
) -> None:
    """Write one checkpoint: ``checkpoints/step-N/`` first, then publish it as the run's own
    ``state.safetensors`` and ``model.safetensors``, then drop all but the ``keep`` newest
    step folders.

    Every file appears atomically, so a kill at any moment leaves the previous checkpoint
    readable: the state is published before the model, and ``--resume`` reads the state (which
    holds the weights too).
    """
    folder = run_dir / CHECKPOINTS_DIR / f"step-{meta.step:08d}"
    save_state(folder / STATE_FILE, state)
    save_model(folder / MODEL_FILE, model_state, ema_state, meta)
    for name in (STATE_FILE, MODEL_FILE):
        _publish(folder / name, run_dir / name)
    for old in _step_folders(run_dir)[keep:]:
        shutil.rmtree(old, ignore_errors=True)


def _publish(source: Path, target: Path) -> None:
    """Make ``target`` a hard link to ``source`` (a copy where links are not possible),
    replacing it atomically."""
    with atomic_path(target) as temp:
        temp.unlink()
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)


@contextmanager
def _stop_on_signals(trainer: Trainer, *, enabled: bool) -> Iterator[None]:
    """While training, turn the stop signals into a clean stop after the current step.

    A second signal of the same kind while stopping falls back to the default action (a second
    Ctrl-C interrupts at once). Signal handlers can only be set on the main thread; elsewhere
    (or with ``enabled`` False) nothing changes.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    previous = {n: signal.getsignal(n) for n in numbers}

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signum, previous[signum])
        trainer.request_stop(signal.Signals(signum).name, 128 + signum)

    try:
        for n in numbers:
            signal.signal(n, handler)
        yield
    finally:
        for n, old in previous.items():
            signal.signal(n, old)


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
