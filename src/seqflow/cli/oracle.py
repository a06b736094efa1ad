"""``seqflow oracle fit``."""

from __future__ import annotations

from typing import Annotated

import typer

from seqflow import api
from seqflow.cli._app import _in, _user_errors, app, err, option, use_threads
from seqflow.cli._help import Typer
from seqflow.options import THREADS

oracle_app = Typer(
    help="Oracles for evaluate: train a built-in CNN classifier or regressor.",
    no_args_is_help=True,
)
app.add_typer(oracle_app, name="oracle")
_OPTIONS = {
    "kind": _in(None, "auto (numbers -> regressor, else classifier), classifier or regressor."),
    "split_col": _in(None, "Split column: the oracle trains on train (and valid) rows only, so "
                     "test rows stay unseen."),
}  # fmt: skip


@oracle_app.command("fit")
@_user_errors
def oracle_fit(
    data: Annotated[str, typer.Argument(help="Labelled sequences: CSV/TSV (any reader format).")],
    target: Annotated[str, typer.Option(help="Column to predict: classes or numbers.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Oracle file to write (.safetensors).")],
    kind: Annotated[str, _OPTIONS["kind"]] = "auto",
    split_col: Annotated[str | None, _OPTIONS["split_col"]] = None,
    steps: Annotated[int, typer.Option(help="Training steps.")] = 1500,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    alphabet: Annotated[str, typer.Option(help="dna, rna, protein, auto or letters.")] = "auto",
    threads: Annotated[int | None, option(THREADS)] = None,
) -> None:
    """Train a CNN oracle on DATA and report its held-out accuracy or R^2.

    Example: seqflow oracle fit dhs.tsv --target cell_type --split-col split -o celltype.safetensors
    """
    use_threads(threads)
    report = api.fit_oracle(
        data, target=target, out=out, kind=kind, split_col=split_col, steps=steps, seed=seed,
        alphabet=alphabet,
    )  # fmt: skip
    metric = "accuracy" if report.kind == "classifier" else "R^2"
    err.print(
        f"[green]wrote[/] {out}: {report.kind} of {target!r}, held-out {metric} "
        f"{report.metric:.3f} on {report.n_valid} sequences ({report.n_train} trained, "
        f"{report.seconds:.0f}s)", soft_wrap=True,
    )  # fmt: skip
