"""Resuming a run: the newest intact checkpoint, the data file it recorded, and what a resumed
run may change."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from seqflow.checkpoint import MODEL_FILE, STATE_FILE, ModelMeta, load_state, read_meta
from seqflow.config import Config
from seqflow.data import SequenceTable
from seqflow.errors import CheckpointError, ConfigError, InvalidInputError
from seqflow.run.checkpoints import step_folders

READING_KEYS = ("cache", "num_workers")
"""``data.*`` keys a resumed run may change: they change how the data are read, not what."""


def intact_checkpoint(run_dir: Path) -> tuple[dict[str, Any], ModelMeta]:
    """The trainer state and model metadata of the newest checkpoint of ``run_dir`` whose two
    files read back with valid checksums: the run folder's own, else (with a warning) the kept
    ``checkpoints/step-*`` folders, newest first."""
    candidates = [run_dir, *step_folders(run_dir)]
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


def data_source(data: str | Path) -> str:
    """The data file as a checkpoint records it: an absolute path, or ``-`` (standard input)."""
    return "-" if str(data) == "-" else str(Path(data).resolve())


def recorded_data(state: dict[str, Any], run_dir: Path) -> str:
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


def check_resumable(saved: Config, new: Config) -> dict[str, list[Any]]:
    """Refuse a change a resumed run cannot take: only ``train.*`` (but ``train.seed``, which
    drew the validation split), ``sample.*``, ``description`` and the ``data.*`` reading keys
    (:data:`READING_KEYS`) may differ from the saved configuration.

    Returns:
        the ``train.*`` settings that change, ``{key: [saved, new]}``.
    """
    old, now = _leaves(saved.to_dict()), _leaves(new.to_dict())
    changed = [key for key in old if old[key] != now[key]]
    fixed = [key for key in changed if not _may_change(key)]
    if fixed:
        more = f" (and {len(fixed) - 1} more)" if len(fixed) > 1 else ""
        raise ConfigError(
            f"--resume: cannot change '{fixed[0]}'{more} of an existing run (only train.* "
            "settings other than train.seed, and sample.* settings, may change)"
        )
    return {key: [old[key], now[key]] for key in changed if key.startswith("train.")}


def _may_change(key: str) -> bool:
    section, _, name = key.partition(".")
    if section == "train":
        return name != "seed"
    return section in ("sample", "description") or (section == "data" and name in READING_KEYS)


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{dotted key: value}`` of a nested config dict."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def check_same_data(meta: ModelMeta, table: SequenceTable, data: str | Path) -> None:
    """Refuse data whose alphabet, length or labels differ from the run being resumed."""
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
