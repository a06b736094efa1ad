"""``seqflow sample``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from seqflow import api
from seqflow.cli._app import _in, _user_errors, app, err, option, use_threads
from seqflow.options import CONDITIONS, LIBRARY, THREADS, flag_keywords

OUTPUT, DESIGN = "Output", "Design constraints"


_OPTIONS = {
    "n": _in(None, "Number of sequences \\[default: 100, or one per --signal row].", "-n",
             "--num", show_default=False),
    "label": _in(CONDITIONS, "Class label to condition on (a value of the training --label-col)."),
    "value": _in(CONDITIONS, "Value to condition on, on the scale of the training --value-col."),
    "signal": _in(CONDITIONS, ".npy/.npz/text file of signal rows; one sequence per row."),
    "seed": _in(None, "Random seed, recorded in the headers (seed=): the same seed gives the same "
                "sequences; another value (e.g. --seed $RANDOM) gives a fresh set."),
    "output": _in(OUTPUT, "File to write (.fasta, .csv, .tsv or .jsonl; + .gz for gzip); default "
                  "or - is stdout.", "--output", "-o"),
    "id_prefix": _in(OUTPUT, "Ids are PREFIX_1, PREFIX_2, ... \\[default: sample, or sample_LABEL "
                     "with --label].", metavar="PREFIX"),
    "fmt": _in(OUTPUT, "fasta, csv, tsv or jsonl \\[default: from the -o suffix, else fasta]. "
               "Tables add length, GC, longest run, a column per rule checked, novelty, score.",
               "--format", show_default=False),
    "template": _in(DESIGN, "Fixed letters and free positions (N, ? or .), e.g. ACGTNNNNNNACGT; "
                    "fixed letters are clamped during integration, so the free part fits its "
                    "context."),
    "prefix": _in(DESIGN, "Fixed 5' flank (start)."),
    "suffix": _in(DESIGN, "Fixed 3' flank (end)."),
    "forbid": _in(DESIGN, "Motif that must not occur (repeatable; DNA/RNA: both strands), e.g. "
                  "--forbid GGTCTC for BsaI.", metavar="MOTIF"),
    "max_homopolymer": _in(DESIGN, "Longest run of one letter allowed."),
    "gc_min": _in(DESIGN, "Lowest GC fraction, e.g. 0.4."),
    "gc_max": _in(DESIGN, "Highest GC fraction, e.g. 0.6."),
    "min_novelty": _in(DESIGN, "Keep sequences at least this many mismatches (edit distance for "
                       "varying lengths) from every training sequence."),
    "train": _in(DESIGN, "Training sequences for --min-novelty and the novelty column "
                 "\\[default: the run's train.fasta.gz]."),
    "max_candidates": _in(DESIGN, "Give up after this many candidates \\[default: 10 x -n, at "
                          "least 1000]."),
    "oracle": _in(OUTPUT, "Oracle to score with (.safetensors from `seqflow oracle fit`, or "
                  "TorchScript)."),
    "score": _in(OUTPUT, "Oracle output used as the score \\[default: its only one, or --label]."),
    "top": _in(OUTPUT, "Write the K best-scoring of the -n sequences, best first (needs "
               "--oracle)."),
    "device": _in(None, "auto, cpu or cuda."),
    "libraries": _in(LIBRARY, "Library-mode runs: number of libraries to generate (each a set of "
                     "--size sequences sampled together).", show_default=False),
    "size": _in(LIBRARY, "Sequences per generated library \\[default: the training set size].",
                show_default=False),
    "out_dir": _in(LIBRARY, "Write one FASTA per library into this folder (instead of one file "
                   "with library= in each header, or a library column in CSV/TSV/JSONL)."),
}  # fmt: skip
"""The options of ``sample`` that set no config key, by parameter name (the others:
:data:`seqflow.options.FLAGS`)."""


@app.command()
@_user_errors
def sample(
    checkpoint: Annotated[str, typer.Argument(help="Run folder or model .safetensors file.")],
    n: Annotated[int | None, _OPTIONS["n"]] = None,
    label: Annotated[str | None, _OPTIONS["label"]] = None,
    value: Annotated[float | None, _OPTIONS["value"]] = None,
    signal: Annotated[str | None, _OPTIONS["signal"]] = None,
    guidance: Annotated[float | None, option("sample.guidance")] = None,
    steps: Annotated[int | None, option("sample.steps")] = None,
    solver: Annotated[str | None, option("sample.solver")] = None,
    decode: Annotated[str | None, option("sample.decode")] = None,
    seed: Annotated[int, _OPTIONS["seed"]] = 0,
    output: Annotated[str | None, _OPTIONS["output"]] = None,
    id_prefix: Annotated[str | None, _OPTIONS["id_prefix"]] = None,
    fmt: Annotated[str | None, _OPTIONS["fmt"]] = None,
    template: Annotated[str | None, _OPTIONS["template"]] = None,
    prefix: Annotated[str | None, _OPTIONS["prefix"]] = None,
    suffix: Annotated[str | None, _OPTIONS["suffix"]] = None,
    forbid: Annotated[list[str] | None, _OPTIONS["forbid"]] = None,
    max_homopolymer: Annotated[int | None, _OPTIONS["max_homopolymer"]] = None,
    gc_min: Annotated[float | None, _OPTIONS["gc_min"]] = None,
    gc_max: Annotated[float | None, _OPTIONS["gc_max"]] = None,
    min_novelty: Annotated[int | None, _OPTIONS["min_novelty"]] = None,
    train: Annotated[str | None, _OPTIONS["train"]] = None,
    max_candidates: Annotated[int | None, _OPTIONS["max_candidates"]] = None,
    oracle: Annotated[str | None, _OPTIONS["oracle"]] = None,
    score: Annotated[str | None, _OPTIONS["score"]] = None,
    top: Annotated[int | None, _OPTIONS["top"]] = None,
    batch_size: Annotated[int | None, option("sample.batch_size")] = None,
    device: Annotated[str, _OPTIONS["device"]] = "auto",
    threads: Annotated[int | None, option(THREADS)] = None,
    libraries: Annotated[int | None, _OPTIONS["libraries"]] = None,
    size: Annotated[int | None, _OPTIONS["size"]] = None,
    out_dir: Annotated[str | None, _OPTIONS["out_dir"]] = None,
) -> None:
    """Generate sequences from a trained run: FASTA, or an order sheet (CSV/TSV/JSONL).

    Headers carry the conditions (label=, value=, signal=FILE:ROW). Rules (--forbid,
    --max-homopolymer, --gc-*, --min-novelty) reject candidates and draw more until -n pass;
    the acceptance rate is reported, and a request that cannot be met ends with exit code 2
    naming the rules that failed.

    Examples:

      seqflow sample runs/dhs -n 1000 -o designs.fasta

      seqflow sample runs/dhs_by_cell --label K562 --guidance 2 -n 500 \\
          > k562.fasta

      seqflow sample runs/dhs --prefix ACTGGCCG --suffix CGGTCAGT \\
          --forbid GGTCTC --max-homopolymer 5 --gc-min 0.35 --gc-max 0.65 \\
          --min-novelty 20 -o order.csv

      seqflow sample runs/lib --libraries 20 --size 64 --label K562 \\
          --out-dir libs/
    """
    given = locals()
    use_threads(threads)
    if libraries is not None or size is not None or out_dir is not None:
        lib = api.sample_libraries(
            checkpoint, libraries=libraries or 1, size=size, label=label,
            guidance=guidance if guidance is not None else 1.0, steps=steps, seed=seed,
            output=output, out_dir=out_dir, device=device,
        )  # fmt: skip
        total = sum(len(v) for v in lib.libraries.values())
        if lib.outputs != ("-",):
            err.print(
                f"[green]wrote[/] {len(lib.libraries)} libraries ({total} sequences) to "
                f"{lib.outputs[0] if len(lib.outputs) == 1 else str(out_dir)}",
                soft_wrap=True,
            )
        return
    to_file = output not in (None, "-")
    columns = TextColumn("[bold]sample"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    with Progress(*columns, console=err, disable=not (to_file and err.is_terminal)) as bar:
        task = bar.add_task("sample", total=n)  # the total is set on progress
        result = api.sample(
            checkpoint, n=n, label=label, value=value, signal=signal, seed=seed, output=output,
            device=device, id_prefix=id_prefix, **flag_keywords("sample", given),
            template=template, prefix=prefix, suffix=suffix, forbid=forbid or (),
            max_homopolymer=max_homopolymer, gc_min=gc_min, gc_max=gc_max,
            min_novelty=min_novelty, train=train, max_candidates=max_candidates,
            oracle=oracle, score=score, top=top, fmt=fmt,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    if result.candidates > len(result.sequences):
        why = ", ".join(
            f"{k} x{v}" for k, v in sorted(result.rejected.items(), key=lambda kv: -kv[1])
        )
        err.print(
            f"kept {len(result.sequences)} of {result.candidates} candidates; "
            f"{result.passed} passed every rule ({100 * result.acceptance:.1f}%)"
            + (f"; rejected by {why}" if why else ""), soft_wrap=True, markup=False,
        )  # fmt: skip
    err.print(
        f"seed {result.seed} (the same seed gives the same sequences; another --seed, a fresh "
        "set)", soft_wrap=True, markup=False,
    )  # fmt: skip
    if to_file:
        err.print(
            f"[green]wrote[/] {len(result.sequences)} sequences to {result.output} "
            f"in {result.seconds:.1f}s",
            soft_wrap=True,
        )
