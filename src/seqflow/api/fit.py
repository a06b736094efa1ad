"""``fit``: train a Fisher-Flow model on a data file and keep it in a run folder.

The run folder's files, checkpoints, resume policy, signals and clean-up are
:mod:`seqflow.run`'s; this module settles the configuration, reads the data once, builds the
model and trainer and trains them through :func:`~seqflow.run.train_in_folder`.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from seqflow.api._config import apply_overrides, build_config, default_preset, resolve_device
from seqflow.api._dataset import Dataset, load_dataset
from seqflow.api._memory import check_library_memory, check_memory
from seqflow.api.library import LibraryData, read_library_data
from seqflow.checkpoint import ModelMeta
from seqflow.config import Config, load_preset
from seqflow.data import Alphabet, SequenceTable
from seqflow.errors import ConfigError, InvalidInputError
from seqflow.flow import FlowMatching, LibraryCoupling, make_coupling
from seqflow.io_utils import remove_stale_temps
from seqflow.models import (
    SetVelocityField,
    VelocityField,
    build_set_velocity_field,
    build_velocity_field,
    count_parameters,
    resolve_arch,
)
from seqflow.options import config_flags
from seqflow.run import (
    LIBRARIES_FILE,
    MODEL_FILE,
    TRAIN_FILE,
    check_data_unchanged,
    check_free,
    check_resumable,
    check_same_data,
    data_source,
    intact_checkpoint,
    recorded_data,
    train_in_folder,
    write_training_set,
)
from seqflow.run.budget import check_budget, choose_steps, recorded_budget
from seqflow.training import LibraryTask, Progress, SequenceTask, Task, Trainer
from seqflow.training.distributed import Shard, process_group

log = logging.getLogger(__name__)


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
    budget: str | None = None


@dataclass(frozen=True)
class FitResult:
    """Outcome of ``fit``: where the run lives and how it ended.

    ``steps`` is the run's step count at the end, ``start_step`` the step this call started
    from (0, or the checkpoint's step with ``resume``), ``seconds`` this call's time.
    """

    run_dir: Path
    checkpoint: Path
    steps: int
    loss: float | None
    valid_loss: float | None
    seconds: float
    start_step: int = 0


def fit(
    data: str | Path | None = None,
    *,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    steps: int | None = None,
    time_budget: str | None = None,
    batch_size: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    compile: bool | None = None,
    resume: bool | str | Path = False,
    allow_changed_data: bool = False,
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
    strict: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    handle_signals: bool = True,
) -> FitResult:
    """Train a Fisher-Flow model on the sequences in ``data`` and checkpoint it.

    The run folder (``out``, default ``runs/<data name>``) receives ``model.safetensors``,
    ``state.safetensors``, ``config.yaml``, ``metrics.jsonl``, ``train.fasta.gz`` (the
    training split) and ``checkpoints/`` (the last ``train.keep_checkpoints``). The keywords
    that mirror config keys (``steps`` is ``train.steps``, ``value_col`` is ``data.value_col``,
    ...) override the preset when not None; ``time_budget`` (not with ``steps``) sets
    ``train.steps`` to fit that wall time, counted from this call (:mod:`seqflow.run.budget`).
    A run without validation sequences is a warning.

    Args:
        resume: True for the run in ``out``, or the run folder itself: continue from its saved
            state (only ``train.*`` and ``sample.*`` may change, from the resumed step on).
            ``data`` may then be left out: the run remembers its file, and refuses it when it
            changed since, unless ``allow_changed_data``.
        strict: a named ``preset`` made for another alphabet than the data's (``dna`` on
            protein) is a :class:`ConfigError` instead of a warning naming the right one.
        on_progress: receives a :class:`~seqflow.training.Progress` every
            ``train.log_every`` steps (default: logged at INFO on the ``seqflow`` logger);
            ``on_step`` the step number after every step; ``on_start`` the :class:`FitPlan`.
        handle_signals: on the main thread, SIGTERM, SIGINT, SIGHUP and SIGUSR1 stop training
            after the current step with a checkpoint and raise
            :class:`~seqflow.training.TrainingStopped` (``exit_code`` 128 + signal number).
    """
    begun = time.perf_counter()
    flags = config_flags("fit", locals())
    run_dir, resume = _run_folder(data, out, resume)
    check_free(run_dir)
    preset_name = "resumed" if resume else preset or str(config_file or "")
    saved_state: dict[str, Any] | None = None
    saved_meta: ModelMeta | None = None
    changed: dict[str, Any] = {}
    cfg: Config | None
    if resume:
        if preset or config_file:
            raise ConfigError(
                "--resume takes the configuration from the run; drop --preset/--config"
            )
        remove_stale_temps(run_dir)
        saved_state, saved_meta = intact_checkpoint(run_dir)
        cfg = apply_overrides(saved_meta.config, overrides, flags)
        changed = check_resumable(saved_meta.config, cfg)
        data = data if data is not None else recorded_data(saved_state, run_dir)
        if not allow_changed_data:
            check_data_unchanged(saved_state.get("data_stamps"), data_source(data), run_dir)
    else:
        if (run_dir / MODEL_FILE).exists():
            raise InvalidInputError(
                f"{run_dir}: already holds a trained run; continue it with "
                f"seqflow fit --resume {run_dir}, or choose another --out"
            )
        cfg = build_config(preset=preset, config_file=config_file, overrides=overrides, flags=flags)
    assert data is not None
    # Without a preset the data are read with the command line's settings, then the preset
    # follows their alphabet: the default presets set no data.*, library.*, mode or seed keys.
    reading = cfg if cfg is not None else apply_overrides(Config(), overrides, flags, chosen=())

    def settled(alphabet: Alphabet) -> Config:
        """``cfg``, or (none named) the default preset of ``alphabet`` with the command line's."""
        if cfg is not None:
            return cfg
        return apply_overrides(load_preset(default_preset(alphabet)), overrides, flags, chosen=())

    check_budget(reading, flags, overrides, saved=saved_meta.config if saved_meta else None)
    if reading.mode == "library":
        libs = read_library_data(data, reading)
        data_alphabet = libs.source.table.alphabet
    else:
        ds = load_dataset(
            data, reading.data, seed=reading.train.seed,
            value=saved_meta.value if saved_meta else None,
            signal=saved_meta.signal if saved_meta else None,
            check=lambda table: check_memory(settled(table.alphabet), table),
        )  # fmt: skip
        if saved_meta is not None:
            check_same_data(saved_meta, ds.table, data)
        data_alphabet = ds.table.alphabet
        if not len(ds.valid) and (reading.data.valid_frac > 0 or reading.data.split_col):
            warnings.warn(
                f"no validation sequences ({len(ds.train):,} train): no valid loss is reported; "
                "raise --valid-frac or mark valid rows in --split-col", stacklevel=2,
            )  # fmt: skip
    check_preset_family(preset, data_alphabet, strict)
    if cfg is None:
        preset_name = default_preset(data_alphabet)
        cfg = settled(data_alphabet)
    setup = _library_mode(cfg, libs) if reading.mode == "library" else _sequence_mode(cfg, ds)
    return _train(
        cfg, setup, run_dir, data_source(data), saved_state, preset_name,
        on_start=on_start, on_progress=on_progress or _log_progress, on_step=on_step,
        handle_signals=handle_signals, begun=begun, changed=changed,
    )  # fmt: skip


def _log_progress(p: Progress) -> None:
    """Log a progress report at INFO (``fit`` without an ``on_progress`` callback)."""
    loss = f"{p.loss:.4g}" if p.loss is not None else "-"
    valid = f" valid {p.valid_loss:.4g}" if p.valid_loss is not None else ""
    eta = f" ETA {p.eta:.0f}s" if p.eta is not None else ""
    log.info("step %d/%d loss %s%s %.1f steps/s%s", p.step, p.total, loss, valid,
             p.steps_per_second, eta)  # fmt: skip


def _run_folder(
    data: str | Path | None, out: str | Path | None, resume: bool | str | Path
) -> tuple[Path, bool]:
    """The run folder and whether the run continues (``resume`` may name the folder)."""
    if not isinstance(resume, bool):
        if out is not None and Path(out) != Path(resume):
            raise ConfigError(f"--resume {resume} and --out {out} name different run folders")
        out, resume = resume, True
    if data is None and not resume:
        raise InvalidInputError("fit needs a data file (or --resume RUN_DIR to continue a run)")
    if out is not None:
        return Path(out), resume
    if data is not None:
        return Path("runs") / _stem(data), resume
    raise ConfigError("--resume needs the run folder: seqflow fit --resume RUN_DIR")


def check_preset_family(named: str | None, alphabet: Alphabet, strict: bool) -> None:
    """A ``named`` preset (``--preset``) of the other alphabet family is a warning naming the
    default preset of ``alphabet``, or with ``strict`` a :class:`ConfigError`."""
    right, family = default_preset(alphabet), (named or "").partition("-")[0]
    if family in ("dna", "protein") and family != right:
        message = (
            f"--preset {named} is made for {'protein' if right == 'dna' else 'DNA/RNA'}, but "
            f"the data have {alphabet.size} letters ({alphabet.describe()}); use --preset "
            f"{right}" + ("" if strict else ", or --strict to stop on this")
        )
        if strict:
            raise ConfigError(message)
        warnings.warn(message, stacklevel=3)


@dataclass(frozen=True)
class _Mode:
    """What a training mode (sequences, or whole libraries) gives the one training path.

    Attributes:
        meta: the checkpoint metadata at step 0.
        model: builds the velocity field from ``meta``.
        task: the trainer's task, from the flow, this process's shard and its device.
        data_file: the run folder's copy of the training set; ``table`` and ``groups`` are the
            records and ``(rows, tags)`` pairs :func:`~seqflow.run.write_training_set` writes.
        plan: the :class:`FitPlan` fields that depend on the mode.
    """

    meta: ModelMeta
    model: Callable[[ModelMeta], VelocityField | SetVelocityField]
    task: Callable[[FlowMatching, Shard, torch.device], Task]
    data_file: str
    table: SequenceTable
    groups: list[tuple[Tensor, dict[str, object]]]
    plan: dict[str, Any]


def _sequence_mode(cfg: Config, ds: Dataset) -> _Mode:
    """Sequence mode: one sequence per training item (:class:`SequenceTask`)."""
    table = ds.table
    m = cfg.model
    if resolve_arch(m, ds.vocab) == "transformer" and m.hidden % m.heads:
        raise ConfigError(
            f"model.heads: {m.heads} must divide model.hidden ({m.hidden}); arch auto picks "
            f"the transformer for this {ds.vocab}-category alphabet"
        )
    check_memory(cfg, table, signal_channels=ds.signal.channels if ds.signal else 0)
    return _Mode(
        meta=ModelMeta(
            config=cfg, alphabet=table.alphabet.to_dict(), labels=table.label_names,
            length=table.length, step=0, variable_length=table.variable, value=ds.value,
            signal=ds.signal,
        ),
        model=build_velocity_field,
        task=lambda flow, shard, dev: SequenceTask(
            flow, cfg.train, ds.train, ds.valid, device=dev, shard=shard,
            workers=cfg.data.num_workers,
        ),
        data_file=TRAIN_FILE, table=table, groups=[(ds.train_rows, {})],
        plan=dict(
            n_train=len(ds.train), n_valid=len(ds.valid), n_test=ds.n_test,
            labels=table.label_names, value=ds.value.name if ds.value else None,
            signal_channels=ds.signal.channels if ds.signal else 0,
            read_summary=table.report.summary(), arch=resolve_arch(cfg.model, ds.vocab),
        ),
    )  # fmt: skip


def _library_mode(cfg: Config, libs: LibraryData) -> _Mode:
    """Library mode (``mode: library``): a whole library per training item, a set velocity
    field and :class:`LibraryTask` (see :mod:`seqflow.api.library`)."""
    table = libs.source.table
    sizes = [len(lib) for lib in libs.train.libraries]
    meta = ModelMeta(
        config=cfg, alphabet=table.alphabet.to_dict(), labels=libs.train.label_names,
        length=table.length, step=0, variable_length=table.variable,
    )  # fmt: skip
    check_library_memory(meta)
    summary = table.report.summary()
    return _Mode(
        meta=meta,
        model=build_set_velocity_field,
        task=lambda flow, shard, dev: LibraryTask(
            LibraryCoupling(flow, cfg.library.outer), cfg.train, libs.train,
            size=cfg.library.size, shard=shard,
        ),
        data_file=LIBRARIES_FILE, table=table,
        groups=[(torch.as_tensor(rows, dtype=torch.long), {"library": name})
                for name, rows in libs.source.libraries.items()],
        plan=dict(
            n_train=sum(sizes), n_valid=0, n_test=0, labels=libs.train.label_names,
            value=None, signal_channels=0,
            read_summary=f"{len(sizes)} libraries of {min(sizes)}-{max(sizes)} sequences "
            f"(library mode, {cfg.library.size} per training cloud)"
            + (f"; {summary}" if summary else ""),
            arch=f"set transformer over a {resolve_arch(cfg.model, meta.vocab)} decoder",
        ),
    )  # fmt: skip


def _train(
    cfg: Config,
    mode: _Mode,
    run_dir: Path,
    source: str,
    saved_state: dict[str, Any] | None,
    preset_name: str,
    *,
    on_start: Callable[[FitPlan], None] | None,
    on_progress: Callable[[Progress], None] | None,
    on_step: Callable[[int], None] | None,
    handle_signals: bool,
    begun: float,
    changed: dict[str, Any],
) -> FitResult:
    """Build the model, flow and trainer of ``mode`` and train them in ``run_dir``
    (:func:`~seqflow.run.train_in_folder`); under ``torchrun`` every rank trains its share and
    only rank 0 writes files and reports."""
    meta0, table = mode.meta, mode.table
    with process_group(resolve_device(cfg.train.device)) as (shard, dev):
        torch.manual_seed(cfg.train.seed)
        model = mode.model(meta0)
        flow = FlowMatching(
            make_coupling(cfg.flow.coupling, sinkhorn_reg=cfg.flow.sinkhorn_reg), meta0.vocab,
            geometry=meta0.geometry, sigma=cfg.flow.sigma, target=cfg.flow.target,
            t_early=cfg.flow.t_early,
        )  # fmt: skip
        trainer = Trainer(model, mode.task(flow, shard, dev), cfg.train,
                          cond_dropout=cfg.flow.cond_dropout, device=dev, shard=shard)  # fmt: skip
        budget = recorded_budget(cfg.train) if saved_state is not None else None
        if saved_state is not None:
            trainer.load_state_dict(saved_state)
        elif cfg.train.time_budget is not None:
            budget = choose_steps(trainer, meta0, started=begun, shard=shard).describe()
            cfg = replace(cfg, train=trainer.cfg)
            meta0 = replace(meta0, config=cfg)
        if on_start is not None and shard.main:
            on_start(FitPlan(
                run_dir=run_dir, preset=preset_name, length=table.length,
                variable_length=table.variable, alphabet=table.alphabet.describe(),
                alphabet_detected=table.report.alphabet_detected,
                parameters=count_parameters(model),
                device=f"{dev} x {shard.world} processes" if shard.distributed else str(dev),
                start_step=trainer.step, steps=cfg.train.steps, **mode.plan,
                budget=budget,
            ))  # fmt: skip
        started, start_step = time.perf_counter(), trainer.step
        last = train_in_folder(
            run_dir, trainer, meta0,
            write_data=lambda folder: write_training_set(
                folder / mode.data_file, table, mode.groups
            ),
            source=source, shard=shard, on_progress=on_progress, on_step=on_step,
            handle_signals=handle_signals, changed=changed,
        )  # fmt: skip
    return FitResult(
        run_dir=run_dir, checkpoint=run_dir / MODEL_FILE, steps=trainer.step, loss=last.loss,
        valid_loss=last.valid_loss, seconds=time.perf_counter() - started, start_step=start_step,
    )  # fmt: skip


def _stem(data: str | Path) -> str:
    name = Path(str(data)).name
    for suffix in (".gz", ".fasta", ".fa", ".fna", ".fas", ".csv", ".tsv", ".txt"):
        name = name.removesuffix(suffix)
    return name if name not in ("", "-") else "stdin"
