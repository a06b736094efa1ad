"""``seqflow evaluate``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from seqflow import api
from seqflow.api.evaluate import SetScores
from seqflow.cli._app import _in, _user_errors, app, err, option, use_threads
from seqflow.errors import InvalidInputError
from seqflow.options import LIBRARY, THREADS

REAL, ORACLE = "Real data", "Oracle"


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _columns(result: api.EvaluateResult) -> list[tuple[str, Any, Any, str | None]]:
    """(header, report, oracle report, label) per column: the model's "all" and labels, each
    followed by the Markov baseline's when there is one."""
    sets = [("", SetScores(result.overall, result.by_label, result.oracle))]
    if result.markov is not None:
        sets.append((f"markov{result.markov.order} ", result.markov.scores))
    heads: list[tuple[str, str | None]] = [("all", None), *[(c, c) for c in result.by_label]]
    return [
        (prefix + head, s.overall if label is None else s.by_label.get(label), s.oracle, label)
        for head, label in heads
        for prefix, s in sets
    ]


def _oracle_value(o: Any, label: str | None, total: str, per_label: str) -> Any:
    if o is None:
        return None
    return getattr(o, total) if label is None else getattr(o, per_label).get(label)


def _table(result: api.EvaluateResult) -> Table:
    columns = _columns(result)
    reports = [r for _, r, _, _ in columns]
    table = Table("metric", *[h for h, *_ in columns],
                  title=f"{result.generated} vs {result.reference}")  # fmt: skip

    def row(get: Any) -> list[Any]:
        return [get(r) if r is not None else None for r in reports]

    rows: list[tuple[str, list[Any]]] = [
        ("sequences (generated / real)", row(lambda r: f"{r.n_gen} / {r.n_ref}")),
    ]
    ks = sorted({k for r in reports if r is not None for k in r.kmer_js})
    rows += [(f"{k}-mer JS distance", row(lambda r, k=k: r.kmer_js.get(k))) for k in ks]
    for name, attr in (
        ("GC content W1", "gc_distance"),
        ("per-position divergence", "position_divergence"),
        ("length W1", "length_distance"),
        ("diversity (generated)", "diversity_gen"),
        ("diversity (real)", "diversity_ref"),
        ("uniqueness (generated)", "uniqueness_gen"),
    ):
        values = row(lambda r, attr=attr: getattr(r, attr))
        if any(v is not None for v in values):
            rows.append((name, values))
    for name, part, attr in (
        ("exact copies of train", "novelty", "exact_copies"),
        ("median NN distance to train", "novelty", "median_nn"),
        ("share closer to train than real 5%", "memorisation", "fraction_closer"),
        ("discriminator k-mer AUROC (0.5 = real)", "discriminator", "kmer_auroc"),
        ("discriminator CNN AUROC (0.5 = real)", "discriminator", "cnn_auroc"),
    ):
        if getattr(result.overall, part) is not None:
            rows.append((name, row(lambda r, p=part, a=attr: getattr(getattr(r, p), a, None))))
    o = result.oracle
    if o is not None:
        oracle_rows = [("oracle Frechet distance", "frechet", "frechet_by_label")]
        if o.accuracy_by_label:
            oracle_rows.append(("oracle conditional accuracy", "accuracy", "accuracy_by_label"))
        for name, total, per_label in oracle_rows:
            rows.append((name, [_oracle_value(oc, label, total, per_label)
                                for _, _, oc, label in columns]))  # fmt: skip
        for name, attr in (("oracle MSE (paired)", "mse_paired"),
                           ("oracle MSE to requested value", "mse_value")):  # fmt: skip
            if getattr(o, attr) is not None:
                rows.append((name, [getattr(oc, attr) if oc is not None and label is None
                                    else None for _, _, oc, label in columns]))  # fmt: skip
    for name, values in rows:
        table.add_row(name, *[_fmt(v) for v in values])
    return table


def _show(table: Table, report: dict[str, Any], fmt: str, json_out: str | None) -> None:
    """Print the report on stdout as ``fmt`` (on stderr when ``--json -`` holds stdout)."""
    if fmt == "json":
        text = json.dumps(report, indent=1, allow_nan=True)
    elif fmt == "tsv":
        columns = [[str(c.header), *map(str, c.cells)] for c in table.columns]
        text = "\n".join("\t".join(row) for row in zip(*columns, strict=True))
    else:
        text = ""
    if json_out == "-":
        err.print(table if fmt == "table" else text, soft_wrap=True, markup=False)
    elif fmt == "table":
        Console().print(table)
    else:
        typer.echo(text)


_OPTIONS = {
    "reference": _in(REAL, "Real sequences to compare with (any format).", "--reference", "-r"),
    "train": _in(REAL, "Training sequences: novelty and memorisation."),
    "label_col": _in(REAL, "Label column of the real CSV/TSV: per-condition metrics against the "
                     "generated headers' label=."),
    "split_col": _in(REAL, "Split column of the real CSV/TSV."),
    "reference_split": _in(REAL, "Use only this split (train/valid/test) as the reference."),
    "train_split": _in(REAL, "Use only this split of --train."),
    "alphabet": _in(None, "dna, rna, protein, auto or letters."),
    "oracle": _in(ORACLE, "Built-in oracle (.safetensors from `seqflow oracle fit`) or a "
                  "TorchScript file (runs code from the file: trusted files only)."),
    "oracle_length": _in(ORACLE, "TorchScript: input length (shorter sequences are padded)."),
    "oracle_layout": _in(ORACLE, "TorchScript: one-hot layout NLC (batch, length, 4) or NCL."),
    "oracle_pad_value": _in(ORACLE, "TorchScript: value of padded positions (Sei: 0.25)."),
    "oracle_columns": _in(ORACLE, "TorchScript: output columns to use, e.g. 0,5,7."),
    "oracle_names": _in(ORACLE, "TorchScript: file with one name per output column."),
    "oracle_select": _in(ORACLE, "TorchScript: use (and average) the columns whose name contains "
                         "this, e.g. H3K4me3."),
    "json_out": _in(None, "Write the full report as JSON here (.gz: gzip; -: stdout, the table "
                    "then goes to stderr).", "--json"),
    "fmt": _in(None, "How the report prints on stdout: table, tsv (metric and one column per set, "
               "for cut/awk) or json.", "--format"),
    "plots": _in(None, "Folder for PNG plots (k-mer scatter, GC, lengths, oracle scores, one panel "
                 "per label; a logo for aligned sets); needs matplotlib: pip install "
                 "'seqflow\\[plots]'."),
    "seed": _in(None, "Seed of the subsamples, discriminators and Markov baseline."),
    "discriminator": _in(None, "Classifier two-sample test: cross-validated AUROC of a k-mer "
                         "logistic regression and of a small CNN told to separate generated from "
                         "real (0.5 = indistinguishable); about 15 CPU-seconds per 1,000 sequences "
                         "of 200 bp.", "--discriminator"),
    "markov": _in(None, "Baseline: fit an order-K Markov chain per label (--label-col) on --train, "
                  "sample as many sequences per label as generated, and report its metrics beside "
                  "the model's (columns markovK).", metavar="K", show_default=False),
    "set_col": _in(LIBRARY, "Compare libraries, not sequences: the CSV/TSV column naming each "
                   "record's library (FASTA: library=NAME in the headers, as sample --libraries "
                   "writes; or folders of one FASTA per library). Reports 1-NNA (0.5 = "
                   "indistinguishable) under OT and Chamfer set distances and within-library "
                   "diversity."),
}  # fmt: skip
"""The options of ``evaluate``, by parameter name."""


@app.command()
@_user_errors
def evaluate(
    generated: Annotated[str, typer.Argument(help="Generated FASTA (e.g. from seqflow sample).")],
    reference: Annotated[str, _OPTIONS["reference"]],
    train: Annotated[str | None, _OPTIONS["train"]] = None,
    label_col: Annotated[str | None, _OPTIONS["label_col"]] = None,
    split_col: Annotated[str | None, _OPTIONS["split_col"]] = None,
    reference_split: Annotated[str | None, _OPTIONS["reference_split"]] = None,
    train_split: Annotated[str | None, _OPTIONS["train_split"]] = None,
    alphabet: Annotated[str, _OPTIONS["alphabet"]] = "auto",
    oracle: Annotated[str | None, _OPTIONS["oracle"]] = None,
    oracle_length: Annotated[int | None, _OPTIONS["oracle_length"]] = None,
    oracle_layout: Annotated[str, _OPTIONS["oracle_layout"]] = "NLC",
    oracle_pad_value: Annotated[float, _OPTIONS["oracle_pad_value"]] = 0.25,
    oracle_columns: Annotated[str | None, _OPTIONS["oracle_columns"]] = None,
    oracle_names: Annotated[str | None, _OPTIONS["oracle_names"]] = None,
    oracle_select: Annotated[str | None, _OPTIONS["oracle_select"]] = None,
    json_out: Annotated[str | None, _OPTIONS["json_out"]] = None,
    fmt: Annotated[str, _OPTIONS["fmt"]] = "table",
    plots: Annotated[str | None, _OPTIONS["plots"]] = None,
    seed: Annotated[int, _OPTIONS["seed"]] = 0,
    discriminator: Annotated[bool, _OPTIONS["discriminator"]] = False,
    markov: Annotated[int | None, _OPTIONS["markov"]] = None,
    threads: Annotated[int | None, option(THREADS)] = None,
    set_col: Annotated[str | None, _OPTIONS["set_col"]] = None,
) -> None:
    """Score generated sequences against real ones (k-mers, GC, diversity, novelty, oracle).

    Oracle-free: k-mer spectra, GC, composition, diversity, novelty, memorisation; with --oracle
    also Frechet distance, conditional accuracy and MSE; with --discriminator a classifier
    two-sample test; with --markov K the same metrics for an order-K Markov chain fitted on
    --train, the baseline to beat.

    Examples:

      seqflow evaluate samples.fa -r real_test.fasta --train train.fasta \\
          --json report.json

      seqflow evaluate k562.fa -r dhs.tsv --label-col cell_type \\
          --split-col split --reference-split test --oracle celltype.safetensors

      seqflow evaluate k562.fa -r test.csv --train train.csv --label-col cell_type \\
          --discriminator --markov 4

      seqflow evaluate samples.fa -r real_test.fasta --format tsv | cut -f1,2
    """
    if fmt not in ("table", "tsv", "json"):
        raise InvalidInputError(f"--format {fmt}: choose table, tsv or json")
    use_threads(threads)
    if set_col is not None:
        report = api.evaluate_library_sets(
            generated, reference, set_col=set_col, seed=seed, json_out=json_out
        )
        table = Table("metric", "value")
        for name, value in report.rows():
            table.add_row(name, _fmt(value))
        _show(table, report.to_dict(), fmt, json_out)
        if json_out and json_out != "-":
            err.print(f"[green]wrote[/] {json_out}", soft_wrap=True)
        return
    loaded = None
    if oracle is not None:
        columns = [int(c) for c in oracle_columns.split(",")] if oracle_columns else None
        loaded = api.load_oracle(
            oracle, input_length=oracle_length, layout=oracle_layout, pad_value=oracle_pad_value,
            columns=columns, names_file=oracle_names, select=oracle_select,
        )  # fmt: skip
    result = api.evaluate(
        generated, reference=reference, train=train, oracle=loaded, oracle_name=oracle or "",
        alphabet=alphabet, label_col=label_col, split_col=split_col,
        reference_split=reference_split, train_split=train_split, json_out=json_out, plots=plots,
        seed=seed, discriminator=discriminator, markov=markov,
    )  # fmt: skip
    _show(_table(result), result.to_dict(), fmt, json_out)
    for path in [json_out, *result.plots]:
        if path and path != "-":
            err.print(f"[green]wrote[/] {path}", soft_wrap=True)
