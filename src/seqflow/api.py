"""The Python API behind the CLI: ``fit`` and ``sample``.

Each function takes keyword-only typed arguments and returns a frozen result dataclass, so one
signature serves the command line and notebooks. Progress leaves through callbacks; nothing
here prints.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from seqflow.checkpoint import (
    MODEL_FILE,
    STATE_FILE,
    ModelMeta,
    load_model,
    load_state,
    save_model,
    save_state,
)
from seqflow.config import Config, load_preset, load_yaml, parse_override
from seqflow.data import Alphabet, SequenceTable, read_sequences, write_fasta
from seqflow.errors import CheckpointError, ConfigError, InvalidInputError
from seqflow.flow import FisherFlow, make_coupling
from seqflow.io_utils import atomic_write
from seqflow.models import build_model, count_parameters, resolve_arch
from seqflow.sampling import generate
from seqflow.training import Progress, Trainer, TrainingSet

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class FitPlan:
    """What ``fit`` is about to do, reported once before training starts."""

    run_dir: Path
    preset: str
    n_train: int
    n_valid: int
    length: int
    alphabet: str
    labels: tuple[str, ...]
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


@dataclass(frozen=True)
class SampleResult:
    """Outcome of ``sample``: the sequences (in order) and where they were written."""

    sequences: tuple[str, ...]
    ids: tuple[str, ...]
    output: str
    label: str | None
    seconds: float


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("--device cuda: no CUDA device is available (use cpu or auto)")
    if name not in ("cpu", "cuda"):
        raise InvalidInputError(f"--device {name!r}: choose auto, cpu or cuda")
    return torch.device(name)


def build_config(
    *,
    preset: str | None,
    config_file: str | Path | None,
    overrides: Sequence[str] = (),
    flags: dict[str, Any] | None = None,
) -> Config | None:
    """Preset or YAML file, then explicit flags, then ``--set`` overrides (last wins).

    Returns None when neither a preset nor a file is given (the preset is then chosen from
    the data's alphabet by :func:`fit`).
    """
    if preset and config_file:
        raise ConfigError("give either --preset or --config, not both")
    if config_file:
        base: Config | None = Config.from_dict(
            load_yaml(Path(config_file)), source=str(config_file)
        )
    elif preset:
        base = load_preset(preset)
    else:
        return None
    assert base is not None
    return _apply(base, overrides, flags)


def _apply(cfg: Config, overrides: Sequence[str], flags: dict[str, Any] | None) -> Config:
    if flags:
        cfg = cfg.with_overrides(
            {k: v for k, v in flags.items() if v is not None}, source="command line"
        )
    pairs = dict(parse_override(item) for item in overrides)
    return cfg.with_overrides(pairs) if pairs else cfg


def _default_preset(alphabet: Alphabet) -> str:
    return "protein" if alphabet.size > 8 else "dna"


def _split(n: int, valid_frac: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 101))
    n_valid = round(n * valid_frac) if n >= 20 else 0
    return perm[n_valid:].sort().values, perm[:n_valid].sort().values


def _subset(table: SequenceTable, idx: torch.Tensor) -> TrainingSet:
    labels = table.labels[idx] if table.labels is not None else None
    return TrainingSet(tokens=table.tokens[idx], labels=labels)


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
    alphabet: str | None = None,
    on_start: Callable[[FitPlan], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> FitResult:
    """Train a Fisher-Flow model on the sequences in ``data`` and checkpoint it.

    The run folder (``out``, default ``runs/<data name>``) receives ``model.safetensors``,
    ``state.safetensors``, ``config.yaml`` and ``metrics.jsonl``. With ``resume`` the run
    continues from its saved state (only ``train.*`` and ``sample.*`` settings may change).
    """
    flags = {
        "train.steps": steps, "train.batch_size": batch_size, "train.device": device,
        "train.seed": seed, "data.seq_col": seq_col, "data.label_col": label_col,
        "data.alphabet": alphabet,
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

    data_cfg = cfg.data if cfg is not None else _apply(Config(), (), flags).data
    table = read_sequences(
        data, alphabet=data_cfg.alphabet, seq_col=data_cfg.seq_col, label_col=data_cfg.label_col
    )
    if cfg is None:
        preset_name = _default_preset(table.alphabet)
        cfg = _apply(load_preset(preset_name), overrides, flags)
    if saved_meta is not None:
        _check_same_data(saved_meta, table, data)
        saved_state = load_state(run_dir / STATE_FILE)

    dev = resolve_device(cfg.train.device)
    train_idx, valid_idx = _split(len(table), cfg.data.valid_frac, cfg.train.seed)
    torch.manual_seed(cfg.train.seed)
    model = build_model(
        cfg.model, vocab=table.alphabet.size, length=table.length,
        num_labels=len(table.label_names),
    )  # fmt: skip
    flow = FisherFlow(
        make_coupling(cfg.flow.coupling, sinkhorn_reg=cfg.flow.sinkhorn_reg), table.alphabet.size
    )
    trainer = Trainer(
        model, flow, cfg.train,
        train=_subset(table, train_idx), valid=_subset(table, valid_idx),
        label_dropout=cfg.flow.label_dropout, device=dev,
    )  # fmt: skip
    if saved_state is not None:
        trainer.load_state_dict(saved_state)

    created = _first_missing(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / CONFIG_FILE) as handle:
        yaml.safe_dump(cfg.to_dict(), handle, sort_keys=False)

    def checkpoint(tr: Trainer) -> None:
        meta = ModelMeta(
            config=cfg, alphabet=table.alphabet.to_dict(), labels=table.label_names,
            length=table.length, step=tr.step,
        )  # fmt: skip
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
            run_dir=run_dir, preset=preset_name, n_train=len(train_idx), n_valid=len(valid_idx),
            length=table.length, alphabet=table.alphabet.describe(), labels=table.label_names,
            arch=resolve_arch(cfg.model, table.alphabet.size), parameters=count_parameters(model),
            device=str(dev), start_step=trainer.step, steps=cfg.train.steps,
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
    cfg = _apply(meta.config, overrides, flags)
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


def _check_same_data(meta: ModelMeta, table: SequenceTable, data: str | Path) -> None:
    if meta.alphabet["letters"] != table.alphabet.letters or meta.length != table.length:
        raise InvalidInputError(
            f"{data}: does not match the run being resumed (alphabet "
            f"{table.alphabet.letters}, length {table.length} vs "
            f"{meta.alphabet['letters']}, {meta.length})"
        )
    if tuple(meta.labels) != table.label_names:
        raise InvalidInputError(f"{data}: labels differ from the run being resumed")


def sample(
    checkpoint: str | Path,
    *,
    n: int,
    label: str | None = None,
    guidance: float | None = None,
    steps: int | None = None,
    solver: str | None = None,
    decode: str | None = None,
    seed: int = 0,
    output: str | Path | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    id_prefix: str = "sample",
    on_progress: Callable[[int, int], None] | None = None,
) -> SampleResult:
    """Generate ``n`` sequences from a run folder or checkpoint and write them as FASTA.

    Args:
        output: a file path (written atomically) or ``None``/``"-"`` for standard output.
        on_progress: called with (sequences done, n) after each batch.
    """
    if n < 1:
        raise InvalidInputError(f"-n {n}: the number of sequences must be >= 1")
    dev = resolve_device(device)
    model, meta = load_model(checkpoint, device=dev)
    chosen = {"sample.steps": steps, "sample.solver": solver, "sample.guidance": guidance,
              "sample.decode": decode, "sample.batch_size": batch_size}  # fmt: skip
    s = meta.config.with_overrides(
        {k: v for k, v in chosen.items() if v is not None}, source="command line"
    ).sample
    label_index = _label_index(meta, label)
    alphabet = Alphabet.from_dict(meta.alphabet)
    started = time.perf_counter()
    chunks = generate(
        model, n=n, length=meta.length, vocab=meta.vocab, label=label_index,
        guidance=s.guidance, steps=s.steps, solver=s.solver, decoder=s.decode,
        batch_size=s.batch_size, seed=seed, device=dev,
    )  # fmt: skip
    suffix = f" label={label}" if label is not None else ""
    sequences: list[str] = []
    ids: list[str] = []

    def records() -> Iterable[tuple[str, str]]:
        for tokens in chunks:
            for seq in alphabet.decode_batch(tokens.numpy()):
                ids.append(f"{id_prefix}_{len(ids) + 1}")
                sequences.append(seq)
                yield ids[-1] + suffix, seq
            if on_progress is not None:
                on_progress(len(sequences), n)

    target = None if output is None or str(output) == "-" else Path(output)
    write_fasta(records(), target)
    return SampleResult(
        sequences=tuple(sequences), ids=tuple(ids), output=str(target or "-"), label=label,
        seconds=time.perf_counter() - started,
    )  # fmt: skip


def _label_index(meta: ModelMeta, label: str | None) -> int | None:
    if label is None:
        return None
    if not meta.labels:
        raise InvalidInputError(f"--label {label}: this model was trained without labels")
    if label not in meta.labels:
        raise InvalidInputError(
            f"--label {label}: unknown label; the model knows {', '.join(meta.labels)}"
        )
    return meta.labels.index(label)
