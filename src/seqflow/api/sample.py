"""``sample``: generate sequences from a run, optionally for a label, a value or signal rows,
with fixed positions, synthesis rules, a novelty floor and oracle ranking (see ``_design``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from torch import Tensor

from seqflow.api._conditions import condition, label_index, standardised_value
from seqflow.api._config import apply_overrides, resolve_device
from seqflow.api._design import build_design
from seqflow.api._sets import decode_tokens, write_rows
from seqflow.api.oracle import load_oracle
from seqflow.checkpoint import ModelMeta, load_model
from seqflow.config import check_seed
from seqflow.data import TABLE_FORMATS, Alphabet, format_header, write_fasta
from seqflow.data.signals import read_signal
from seqflow.design import COLUMNS, annotate, draw_designs
from seqflow.errors import InvalidInputError, listed
from seqflow.options import config_flags
from seqflow.sampling import generate

DEFAULT_N = 100


@dataclass(frozen=True)
class SampleResult:
    """Outcome of ``sample``: the sequences (in order) and where they were written.

    Attributes:
        sequences: the generated sequences, without any end/pad letter.
        ids: their FASTA ids; headers also carry the conditions (``label=``, ``value=``,
            ``signal=FILE:ROW``).
        output: the file written, or ``-`` for standard output.
        label, value: the conditions asked for (None when not given).
        signal: the signal file whose rows were used, or None.
        format: ``fasta``, ``csv``, ``tsv`` or ``jsonl``.
        candidates: sequences generated to get these (more than ``n`` when rules rejected
            some, or with ``top``).
        passed: candidates that passed every rule.
        rejected: rule name -> candidates it rejected.
        scores: oracle score of each sequence (with an oracle), in output order.
        novelty: distance of each sequence to its nearest training sequence, when computed.
        seed: the random seed the sequences were drawn with.
    """

    sequences: tuple[str, ...]
    ids: tuple[str, ...]
    output: str
    label: str | None
    seconds: float
    value: float | None = None
    signal: str | None = None
    format: str = "fasta"
    candidates: int = 0
    passed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    scores: tuple[float, ...] | None = None
    novelty: tuple[int, ...] | None = None
    seed: int = 0

    @property
    def acceptance(self) -> float:
        """Share of candidates that passed every rule."""
        return self.passed / self.candidates if self.candidates else 1.0


def sample(
    checkpoint: str | Path,
    *,
    n: int | None = None,
    label: str | None = None,
    value: float | None = None,
    signal: str | Path | None = None,
    guidance: float | None = None,
    steps: int | None = None,
    solver: str | None = None,
    decode: str | None = None,
    seed: int = 0,
    output: str | Path | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    id_prefix: str | None = None,
    template: str | None = None,
    prefix: str | None = None,
    suffix: str | None = None,
    forbid: Sequence[str] = (),
    max_homopolymer: int | None = None,
    gc_min: float | None = None,
    gc_max: float | None = None,
    min_novelty: int | None = None,
    train: str | Path | None = None,
    max_candidates: int | None = None,
    oracle: str | Path | None = None,
    score: str | None = None,
    top: int | None = None,
    fmt: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SampleResult:
    """Generate sequences from a run folder or checkpoint and write them out.

    Args:
        n: how many; default 100, or one per row of ``signal``. With ``top``, the candidates
            scored, of which the best ``top`` are written.
        label: a class the model was trained with (its ``label_col``).
        value: a value on the scale of the training ``value_col`` (the model's standardisation
            is applied here).
        signal: a ``.npy``/``.npz``/text file of signal rows; one sequence per row.
        guidance: classifier-free guidance weight (1: conditional, 0: unconditional).
        output: a file path (written atomically) or ``None``/``"-"`` for standard output.
        template: fixed letters and free positions (``N``, ``?`` or ``.``), e.g.
            ``ACGTNNNNNNACGT``; fixed positions are clamped during integration.
        prefix, suffix: fixed flanks (the middle is free); a shorthand for ``template``.
        forbid: motifs that must not occur (DNA/RNA: on either strand).
        max_homopolymer: longest run of one letter allowed.
        gc_min, gc_max: GC-fraction window.
        min_novelty: keep only sequences at least this far (mismatches; edit distance for
            varying lengths) from every training sequence.
        train: the novelty reference (default: the run's recorded ``train.fasta.gz``).
        max_candidates: stop drawing candidates after this many (default 10 n, at least 1000)
            and fail naming the rules that rejected them.
        oracle: an oracle file (``seqflow oracle fit`` output, or TorchScript) to score with.
        score: the oracle output used as the score (default: the only one, or ``label``).
        top: write the ``top`` best-scoring of the ``n`` sequences, best first.
        fmt: ``fasta``, ``csv``, ``tsv`` or ``jsonl`` (default: from the output's suffix).
        id_prefix: ids are ``<id_prefix>_1``, ``<id_prefix>_2``, ...; default ``sample``, or
            ``sample_<label>`` with a label, so sets sampled per label can be merged.
        seed: the same seed gives the same sequences; FASTA headers record it (``seed=``).
        on_progress: called with (sequences done, n) after each batch.
    """
    check_seed(seed)
    fmt = _format(fmt, output)
    if id_prefix is None:
        id_prefix = "sample" if label is None else "sample_" + "_".join(str(label).split())
    dev = resolve_device(device)
    model, meta = load_model(checkpoint, device=dev)
    index = label_index(meta, label)
    cond_value = standardised_value(meta, value)
    cond_signal = None
    if signal is not None:
        if meta.signal is None:
            raise InvalidInputError(f"--signal {signal}: this model was trained without a signal")
        raw = read_signal(signal, length=meta.length, channels=meta.signal.channels)
        cond_signal = meta.signal.apply(raw)  # standardised, (rows, length, channels)
        rows = int(cond_signal.shape[0])
        if n is not None and n != rows:
            raise InvalidInputError(
                f"-n {n}: {signal} has {rows} signal rows and one sequence is made per row; "
                "drop -n or give a file with that many rows"
            )
        n = rows
    n = DEFAULT_N if n is None else n
    if n < 1:
        raise InvalidInputError(f"-n {n}: the number of sequences must be >= 1")
    if top is not None and not 1 <= top <= n:
        raise InvalidInputError(f"--top {top}: must lie between 1 and -n {n}")
    if top is not None and oracle is None:
        raise InvalidInputError("--top: ranking needs an --oracle to score with")
    s = apply_overrides(meta.config, (), config_flags("sample", locals())).sample
    design = build_design(
        meta, checkpoint, n=n, template=template, prefix=prefix, suffix=suffix, forbid=forbid,
        max_homopolymer=max_homopolymer, gc_min=gc_min, gc_max=gc_max, min_novelty=min_novelty,
        train=train, max_candidates=max_candidates, novelty_column=fmt != "fasta",
    )  # fmt: skip
    if cond_signal is not None and design.rejects:
        raise InvalidInputError(
            "--signal: each signal row makes one sequence, so rows cannot be redrawn; drop "
            "--forbid/--max-homopolymer/--gc-min/--gc-max/--min-novelty"
        )
    scorer = _scorer(oracle, score, label, meta) if oracle is not None else None
    cond = condition(index, cond_value, cond_signal)
    alphabet = Alphabet.from_dict(meta.alphabet)
    started = time.perf_counter()

    def chunks(count: int, seed_: int) -> Iterator[Tensor]:
        return generate(
            model, n=count, length=meta.length, vocab=meta.vocab, cond=cond,
            guidance=s.guidance, steps=s.steps, solver=s.solver, decoder=s.decode,
            pad=meta.pad, fixed=design.fixed, min_length=design.min_length,
            geometry=meta.geometry, target=meta.config.flow.target,
            batch_size=s.batch_size, seed=seed_, device=dev,
        )  # fmt: skip

    guided = cond is not None and not cond.empty and s.guidance != 1.0
    tags = {
        "label": label, "value": value, "guidance": s.guidance if guided else None, "seed": seed
    }  # fmt: skip

    def header(row: dict[str, Any]) -> str:
        """The FASTA header of an output row: its id, conditions, signal row and score."""
        row_signal = f"{Path(str(signal)).name}:{row['candidate']}" if signal is not None else None
        score = float(row["score"]) if "score" in row else None
        return format_header(str(row["id"]), {**tags, "signal": row_signal, "score": score})

    target = None if output is None or str(output) == "-" else Path(output)
    result = partial(
        SampleResult, output=str(target or "-"), label=label, value=value, format=fmt, seed=seed,
        signal=str(signal) if signal is not None else None,
    )  # fmt: skip

    if fmt == "fasta" and not design.rejects and scorer is None:
        sequences: list[str] = []
        ids: list[str] = []

        def records() -> Iterable[tuple[str, str]]:
            for tokens in chunks(n, seed):
                for seq in decode_tokens(alphabet, tokens, meta.pad):
                    ids.append(f"{id_prefix}_{len(ids) + 1}")
                    sequences.append(seq)
                    yield header({"id": ids[-1], "candidate": len(ids)}), seq
                if on_progress is not None:
                    on_progress(len(sequences), n)

        write_fasta(records(), target)
        return result(
            sequences=tuple(sequences), ids=tuple(ids), seconds=time.perf_counter() - started,
            candidates=n, passed=n,
        )  # fmt: skip

    def draw(count: int, seed_: int) -> list[str]:
        out: list[str] = []
        for tokens in chunks(count, seed_):
            out += decode_tokens(alphabet, tokens, meta.pad)
        return out

    kept, tally = draw_designs(
        draw, n, design.failures, max_candidates=design.max_candidates, seed=seed
    )
    if on_progress is not None:
        on_progress(n, n)
    rows_: list[dict[str, Any]] = [
        {"id": f"{id_prefix}_{i + 1}", "sequence": seq, "candidate": number}
        for i, (number, seq) in enumerate(kept)
    ]
    annotate(
        rows_, letters=alphabet.letters, rules=design.rules, template=design.template,
        label=label, value=value, guidance=s.guidance if guided else None,
        novelty=design.novelty([str(r["sequence"]) for r in rows_]),
        min_novelty=design.min_novelty,
    )  # fmt: skip
    if scorer is not None:
        for row, y in zip(rows_, scorer([r["sequence"] for r in rows_]), strict=True):
            row["score"] = y
        if top is not None:
            rows_ = sorted(rows_, key=lambda r: -float(r["score"]))[:top]
    write_rows(rows_, target, fmt, header=header, columns=COLUMNS)
    return result(
        sequences=tuple(str(r["sequence"]) for r in rows_),
        ids=tuple(str(r["id"]) for r in rows_), seconds=time.perf_counter() - started,
        candidates=tally.candidates, passed=tally.passed, rejected=dict(tally.rejected),
        scores=tuple(float(r["score"]) for r in rows_) if scorer is not None else None,
        novelty=tuple(int(r["novelty"]) for r in rows_) if "novelty" in rows_[0] else None,
    )  # fmt: skip


_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def _format(fmt: str | None, output: str | Path | None) -> str:
    if fmt is None:
        name = str(output or "").lower().removesuffix(".gz")
        return next((f for suf, f in _SUFFIXES.items() if name.endswith(suf)), "fasta")
    fmt = fmt.lower()
    if fmt not in ("fasta", *TABLE_FORMATS):
        raise InvalidInputError(f"--format {fmt}: choose fasta, {', '.join(TABLE_FORMATS)}")
    return fmt


def _scorer(
    path: str | Path, score: str | None, label: str | None, meta: ModelMeta
) -> Callable[[list[str]], list[float]]:
    """A function scoring sequences with one output column of the oracle at ``path``."""
    model = load_oracle(path, input_length=meta.length)
    names = list(model.output_names)
    if score is not None:
        if score not in names:
            raise InvalidInputError(f"--score {score}: the oracle's outputs are {listed(names)}")
        column = names.index(score)
    elif len(names) == 1:
        column = 0
    elif label is not None and label in names:
        column = names.index(label)
    else:
        raise InvalidInputError(
            f"--oracle {path}: it has {len(names)} outputs ({', '.join(names[:8])}); choose "
            "one with --score"
        )

    def scorer(seqs: list[str]) -> list[float]:
        return [float(y) for y in model.predict(seqs)[:, column]]

    return scorer
