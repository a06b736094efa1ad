"""The command-line flags that mirror config keys, declared once (a leaf, like ``config``).

Each :class:`Flag` ties a config key to its command, flag, help text and API keyword. The CLI
builds its Typer options from this table (:func:`seqflow.cli._app.option`), the API turns its
keywords into config overrides with :func:`config_flags`, and ``tests/test_options.py`` checks
the table against :class:`~seqflow.config.Config`, the API signatures and the commands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DATA, CONDITIONS, LIBRARY = "Data", "Conditions", "Library mode"
"""The ``--help`` panels of the flags outside the main one."""


@dataclass(frozen=True)
class Flag:
    """One flag that sets one config key.

    Attributes:
        key: the dotted config key, e.g. ``train.steps``.
        command: the command that takes it: ``fit`` or ``sample``.
        help: the ``--help`` text.
        flag: the Typer declaration; default ``--`` + the key's last part, dashed
            (``data.max_length`` -> ``--max-length``).
        keyword: the API keyword (and CLI parameter); default the flag's name, underscored.
        panel: the ``--help`` panel, or None for the main one.
        metavar, min: passed on to Typer.
    """

    key: str
    command: str
    help: str
    flag: str = ""
    keyword: str = ""
    panel: str | None = None
    metavar: str | None = None
    min: int | None = None

    def __post_init__(self) -> None:
        if not self.flag:
            object.__setattr__(self, "flag", "--" + self.key.rpartition(".")[2].replace("_", "-"))
        if not self.keyword:
            name = self.flag.split("/")[0].removeprefix("--")
            object.__setattr__(self, "keyword", name.replace("-", "_"))


FLAGS = {
    f.key: f
    for f in (
        Flag("train.steps", "fit", "Training steps (train.steps)."),
        Flag("train.time_budget", "fit", "Train for at most this wall time, e.g. 90s, 20m, 4h "
             "or 1h30m: the first steps are timed and train.steps set to fit, validations and "
             "checkpoints included; --resume continues to the steps chosen "
             "(train.time_budget). Not with --steps.", metavar="DURATION"),
        Flag("train.batch_size", "fit", "Minibatch size (train.batch_size)."),
        Flag("train.device", "fit", "auto, cpu or cuda (train.device)."),
        Flag("train.seed", "fit", "Random seed (train.seed)."),
        Flag("train.compile", "fit", "torch.compile the training step (train.compile): faster "
             "steps on a GPU after a minute of compiling; needs a C++ compiler on a CPU.",
             flag="--compile/--no-compile"),
        Flag("data.seq_col", "fit", "CSV/TSV column with sequences \\[default: sequence or seq].",
             panel=DATA),
        Flag("data.label_col", "fit", "CSV/TSV column of class labels; sample with --label.",
             panel=CONDITIONS),
        Flag("data.value_col", "fit", "CSV/TSV column of a number per sequence (e.g. activity); "
             "sample with --value.", panel=CONDITIONS),
        Flag("data.signal_col", "fit", "CSV/TSV column of per-position numbers (one per letter, "
             "separated by spaces, commas or ;); sample with --signal.", panel=CONDITIONS),
        Flag("data.signal_file", "fit", ".npy/.npz (N, L[, C]) or text file of signal rows, "
             "matched to the records by order; sample with --signal.", panel=CONDITIONS),
        Flag("data.split_col", "fit", "CSV/TSV column train/valid/test; test rows are left out.",
             panel=DATA),
        Flag("mode", "fit", "sequence (default: a model of single sequences) or library: whole "
             "libraries (--set-col, or a folder / comma list of one FASTA per library) as point "
             "clouds, Wasserstein flow matching; sample with --libraries.", panel=LIBRARY),
        Flag("data.set_col", "fit", "CSV/TSV column naming each record's library (library "
             "mode).", panel=LIBRARY),
        Flag("data.valid_frac", "fit", "Share held out for validation when there is no "
             "--split-col \\[default: 0.05].", panel=DATA),
        Flag("data.alphabet", "fit", "dna, rna, protein, auto (detected and reported), or the "
             "letters themselves, e.g. ACGTN.", panel=DATA),
        Flag("data.format", "fit", "auto (from the suffix, else the content), fasta, fastq, csv "
             "or tsv.", keyword="fmt", panel=DATA),
        Flag("data.on_invalid", "fit", "Letters outside the alphabet (e.g. N): error (default; "
             "names the record and position), skip the record, or replace with a random "
             "letter.", panel=DATA),
        Flag("data.max_length", "fit", "Longest sequence to model \\[default: the longest in the "
             "data]. Unequal lengths are modelled with an end category.", panel=DATA),
        Flag("data.crop", "fit", "Cut sequences longer than --max-length instead of stopping "
             "with an error.", flag="--crop/--no-crop", panel=DATA),
        Flag("data.cache", "fit", "Keep DATA tokenised on disk; later runs memory-map it instead "
             "of reading it again (flat memory for large files). auto: files of 64 MiB or more, "
             "in .seqflow-cache/ beside DATA; on: any size, same place; off: never; DIR: any "
             "size, in DIR. A changed file or reading option rebuilds the cache (data.cache) "
             "\\[default: auto].", panel=DATA, metavar="auto|on|off|DIR"),
        Flag("data.num_workers", "fit", "CPU threads preparing minibatches (rows, prior samples, "
             "coupling) ahead of the training step; 0 builds each one on the training thread "
             "(data.num_workers) \\[default: 1 on CUDA, 0 on CPU].", panel=DATA, metavar="N",
             min=0),
        Flag("sample.guidance", "sample", "Classifier-free guidance weight: 1 = conditional, "
             "0 = unconditional, >1 = stronger.", panel=CONDITIONS),
        Flag("sample.steps", "sample", "Integration steps \\[default: from run]."),
        Flag("sample.solver", "sample", "euler, midpoint, rk4 or dopri5 \\[default: from run]."),
        Flag("sample.decode", "sample", "argmax (most likely letter) or sample (draw from the "
             "final probabilities)."),
        Flag("sample.batch_size", "sample", "Sequences per batch."),
    )
}  # fmt: skip
"""Every flag that mirrors a config key, by key; within a command, keywords are unique."""


THREADS = Flag(
    "threads", "fit, sample, evaluate, oracle fit", "CPU threads torch computes with "
    "(intra- and inter-op); on a shared machine give each job its share, e.g. --threads 1 "
    "\\[default: torch's choice, one per core]. Batch workers (data.num_workers) use one "
    "thread each.", metavar="N", min=1,
)  # fmt: skip
"""``--threads``: a setting of the process, not of the run, so not a config key (nor in
:data:`FLAGS`); the commands that compute declare it with ``cli._app.option(THREADS)``."""


def command_flags(command: str) -> list[Flag]:
    """The flags of ``command``, in table order."""
    return [f for f in FLAGS.values() if f.command == command]


def config_flags(command: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{config key: value}`` of the flags of ``command`` that were given (not None).

    Args:
        values: keyword -> value, e.g. the API function's ``locals()``; must hold every
            keyword of the command's flags.
    """
    return {
        f.key: values[f.keyword] for f in command_flags(command) if values[f.keyword] is not None
    }


def flag_keywords(command: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{keyword: value}`` of every flag of ``command``: the CLI hands these to the API."""
    return {f.keyword: values[f.keyword] for f in command_flags(command)}
