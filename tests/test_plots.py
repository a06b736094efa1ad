"""Plots people look at (issue 19): the loss curve of ``seqflow plot`` against the records of
``metrics.jsonl``, the k-mer scatter's floor, r and JS, one panel per label, the logo only
for aligned sets, and the optional scalar logs of ``fit --log`` read back."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seqflow import api
from seqflow.cli import app
from seqflow.errors import InvalidInputError
from seqflow.metrics import kmer_js
from seqflow.metrics.logo import small_sample_correction

runner = CliRunner()
LETTERS = "ACGT"


@pytest.fixture
def plt(monkeypatch):
    """pyplot on Agg; figures are kept open (``close`` is a no-op) so the tests can read them."""
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.close("all")
    monkeypatch.setattr(plt, "close", lambda fig=None: None)
    yield plt
    monkeypatch.undo()
    plt.close("all")


def figure_of(plt, name: str):
    """The open figure that was saved as ``name`` (the last one with that file name)."""
    figures = [plt.figure(n) for n in plt.get_fignums()]
    return [f for f in figures if getattr(f, "_saved_as", None) == name][-1]


@pytest.fixture
def saved(plt, monkeypatch):
    """Tag each saved figure with its file name (``savefig`` writes to a temp path)."""
    from matplotlib.figure import Figure

    original = Figure.savefig

    def savefig(self, path, **kwargs):
        original(self, path, **kwargs)
        self._saved_as = Path(path).name.removeprefix(".").split(".png")[0] + ".png"

    monkeypatch.setattr(Figure, "savefig", savefig)
    return lambda name: figure_of(plt, name)


def random_set(n: int, length: int, seed: int, motif: str | None = None) -> list[str]:
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list(LETTERS), length)) for _ in range(n)]
    return [s[:5] + motif + s[5 + len(motif) :] for s in seqs] if motif else seqs


# --- the loss curve -------------------------------------------------------------------------


def write_metrics(run: Path, records: list[dict]) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def record(step: int, loss: float, valid: float | None = None) -> dict:
    out = {"step": step, "loss": loss, "lr": 1e-3, "steps_per_second": 5.0, "elapsed": step}
    return out | ({"valid_loss": valid} if valid is not None else {})


def test_loss_curve_lines_are_the_records(saved, tmp_path):
    records = [record(10, 2.0), record(20, 1.5, 1.6), record(30, 1.2), record(40, 1.0, 1.1)]
    run = write_metrics(tmp_path / "run", records)
    path = api.plot_run(run)
    assert path == run / "loss.png" and path.read_bytes()[:4] == b"\x89PNG"
    ax = saved("loss.png").axes[0]
    train, valid = ax.get_lines()
    assert list(train.get_xdata()) == [10, 20, 30, 40]
    assert list(train.get_ydata()) == [2.0, 1.5, 1.2, 1.0]
    assert list(valid.get_xdata()) == [20, 40] and list(valid.get_ydata()) == [1.6, 1.1]
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"
    assert ax.get_yscale() == "linear"  # 2.0 / 1.0 is within a decade
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "training loss", "validation loss"
    ]  # fmt: skip


def test_loss_curve_is_log_scaled_over_a_decade_and_marks_resumes(saved, tmp_path):
    records = [record(10, 5.0), record(20, 2.0), record(30, 1.0),
               record(20, 1.9), record(30, 0.9), record(40, 0.3, 0.4)]  # fmt: skip
    run = write_metrics(tmp_path / "run", records)
    out = api.plot_run(run, output=tmp_path / "curve.png")
    assert out == tmp_path / "curve.png" and out.exists() and not (run / "loss.png").exists()
    ax = saved("curve.png").axes[0]
    assert ax.get_yscale() == "log"
    lines = ax.get_lines()
    training = [ln for ln in lines if ln.get_color() == "C0"]
    assert [list(ln.get_xdata()) for ln in training] == [[10, 20, 30], [20, 30, 40]]
    assert np.concatenate([ln.get_ydata() for ln in training]).tolist() == [
        5.0, 2.0, 1.0, 1.9, 0.9, 0.3
    ]  # fmt: skip
    resumed = [ln for ln in lines if ln.get_label() == "resumed"]
    assert len(resumed) == 1 and list(resumed[0].get_xdata()) == [20, 20]


def test_plot_command_and_its_errors(plt, tmp_path):
    run = write_metrics(tmp_path / "run", [record(10, 1.0), record(20, 0.8, 0.9)])
    result = runner.invoke(app, ["plot", str(run), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and (tmp_path / "x.png").exists()
    missing = runner.invoke(app, ["plot", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "metrics.jsonl: no such metrics file" in missing.output
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 1}\nnot json\n')
    bad = runner.invoke(app, ["plot", str(run)])
    assert bad.exit_code == 2 and "metrics.jsonl:2: not a metrics record" in bad.output
    assert not (run / "loss.png").exists()


def test_help_of_plot_and_fit_log():
    plot = runner.invoke(app, ["plot", "--help"], env={"COLUMNS": "100"}).output
    usage = next(line for line in plot.splitlines() if "Usage:" in line)
    assert usage.rstrip().endswith("[OPTIONS] RUN") and '"seqflow[plots]"' in plot
    fit = " ".join(runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "--log tensorboard|csv" in fit and "pip install 'seqflow[tensorboard]'" in fit


def test_plot_without_matplotlib_is_one_line(tmp_path, monkeypatch):
    import sys

    run = write_metrics(tmp_path / "run", [record(10, 1.0)])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(InvalidInputError, match=r"seqflow\[plots\]"):
        api.plot_run(run)


def test_loss_curve_of_a_real_run(saved, tmp_path, tiny_fasta, tiny_fit_kwargs):
    run = tmp_path / "run"
    api.fit(tiny_fasta, out=run, **tiny_fit_kwargs)
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    api.plot_run(run)
    train, valid = saved("loss.png").axes[0].get_lines()[:2]
    assert list(train.get_ydata()) == [r["loss"] for r in records]
    assert list(valid.get_ydata()) == [r["valid_loss"] for r in records if "valid_loss" in r]


# --- evaluate plots -------------------------------------------------------------------------


def test_kmer_scatter_floor_r_and_js(plt, tmp_path):
    from seqflow.api import _plots

    gen, ref = random_set(20, 8, 1), random_set(30, 8, 2)
    fa, fb, floor_a, floor_b = _plots.kmer_frequencies(gen, ref, 6, LETTERS)
    assert floor_a == 0.5 / (20 * 3) and floor_b == 0.5 / (30 * 3)  # 3 6-mers per 8-mer
    assert fa.min() == floor_a and fb.min() == floor_b  # absent k-mers sit at the floor
    assert np.isclose(fa[fa > floor_a].sum(), 1.0) and np.isclose(fb[fb > floor_b].sum(), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _plots.write_plots(tmp_path, gen, ref, LETTERS)
    ax = plt.figure(plt.get_fignums()[0]).axes[0]
    r = np.corrcoef(np.log10(fa), np.log10(fb))[0, 1]
    assert ax.get_title() == f"r = {r:.3f} (log freq), JS = {kmer_js(gen, ref, 6, LETTERS):.3f}"
    assert ax.get_xlabel() == f"real 6-mer frequency\n(absent: 0.5/N = {floor_b:.2g})"
    assert ax.get_ylabel() == f"generated 6-mer frequency\n(absent: 0.5/N = {floor_a:.2g})"
    assert ax.get_xscale() == ax.get_yscale() == "log"
    points = ax.get_lines()[0]
    assert min(points.get_xdata()) == floor_b and min(points.get_ydata()) == floor_a


def test_evaluate_draws_one_panel_per_label(saved, tmp_path):
    a, b = random_set(50, 20, 1), random_set(50, 20, 2, motif="GATAAG")
    c = random_set(50, 20, 3, motif="TTTTTT")
    real = tmp_path / "real.csv"
    rows = [f"{s},{x}\n" for x, group in (("a", a), ("b", b), ("c", c)) for s in group]
    real.write_text("sequence,cls\n" + "".join(rows))
    gen_seqs = random_set(30, 20, 4) + random_set(30, 20, 5, motif="GATAAG")
    gen_seqs += random_set(20, 20, 6, motif="TTTTTT")
    labels = ["a"] * 30 + ["b"] * 30 + ["c"] * 20
    gen = tmp_path / "gen.fa"
    gen.write_text(
        "".join(
            f">g{i} label={x}\n{s}\n" for i, (s, x) in enumerate(zip(gen_seqs, labels, strict=True))
        )
    )
    result = api.evaluate(gen, reference=real, label_col="cls", plots=tmp_path / "plots")
    assert sorted(Path(p).name for p in result.plots) == [
        "gc_content.png",
        "kmer_scatter.png",
        "logo.png",
    ]
    scatter = saved("kmer_scatter.png")
    assert len(scatter.axes) == 3
    titles = [ax.get_title() for ax in scatter.axes]
    assert titles[0].startswith("a (30 generated, 50 real)\nr = ")
    assert titles[2].startswith("c (20 generated, 50 real)\nr = ")
    js_c = kmer_js(gen_seqs[60:], c, 6, LETTERS)
    assert titles[2].endswith(f"JS = {js_c:.3f}")
    gc = saved("gc_content.png")
    assert [ax.get_title() for ax in gc.axes] == [
        "a (30 generated, 50 real)", "b (30 generated, 50 real)", "c (20 generated, 50 real)"
    ]  # fmt: skip
    assert all(ax.get_xlabel() == "GC content" for ax in gc.axes)


def test_unlabelled_sets_get_one_panel(saved, tmp_path):
    from seqflow.api import _plots

    gen, ref = random_set(30, 20, 1, "GATAAG"), random_set(40, 20, 2, "GATAAG")
    _plots.write_plots(tmp_path, gen, ref, LETTERS, labels=(["x"] * 30, None))
    assert len(saved("kmer_scatter.png").axes) == 1
    assert saved("gc_content.png").axes[0].get_title() == ""


def test_logo_only_above_the_small_sample_correction(plt, tmp_path):
    from seqflow.api import _plots

    gen, ref = random_set(40, 30, 1), random_set(60, 30, 2)
    with pytest.warns(UserWarning, match=r"no logo.png: the real set is not aligned on a motif"):
        written = _plots.write_plots(tmp_path / "random", gen, ref, LETTERS)
    assert "logo.png" not in {p.name for p in written}
    assert not (tmp_path / "random" / "logo.png").exists()
    gen, ref = random_set(40, 30, 1, "GATAAG"), random_set(60, 30, 2, "GATAAG")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = _plots.write_plots(tmp_path / "motif", gen, ref, LETTERS)
    assert tmp_path / "motif" / "logo.png" in written
    with pytest.warns(UserWarning, match="differ in length"):
        _plots.write_plots(tmp_path / "ragged", gen, [*ref[:-1], ref[-1][:-1]], LETTERS)


def test_logo_threshold_is_twice_the_correction():
    from seqflow.api import _logo_plot

    ref = ["AC", "CA"] * 50  # each column uniform over 2 of 4 letters: 1 bit
    chance = small_sample_correction(100, 4)
    assert _logo_plot.no_logo_reason(ref, ref, LETTERS) is None and 2 * chance < 1.0
    few = ["AC", "CA", "GT", "TG"]  # uniform over 4: 0 bits, never above the margin
    assert "not aligned on a motif" in _logo_plot.no_logo_reason(few, few, LETTERS)
    assert "one-letter" in _logo_plot.no_logo_reason(["A"], ["A"], "A")
    rng = np.random.default_rng(0)  # real but faint: p(G) = 0.28 holds 0.003 bits a column
    faint = [
        "".join(rng.choice(list(LETTERS), 20, p=[0.24, 0.24, 0.28, 0.24])) for _ in range(4000)
    ]
    reason = _logo_plot.no_logo_reason(faint, faint, LETTERS)
    assert "below 5% of the 2-bit scale: the logo would be blank" in reason


def test_evaluate_cli_prints_why_there_is_no_logo(plt, tmp_path):
    gen, ref = tmp_path / "gen.fa", tmp_path / "ref.fa"
    gen.write_text("".join(f">g{i}\n{s}\n" for i, s in enumerate(random_set(30, 20, 1))))
    ref.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(random_set(30, 20, 2))))
    result = runner.invoke(app, ["evaluate", str(gen), "--reference", str(ref),
                                 "--plots", str(tmp_path / "p")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: no logo.png: the real set is not aligned on a motif" in " ".join(
        result.output.split()
    )
    assert not (tmp_path / "p" / "logo.png").exists()


# --- fit --log ------------------------------------------------------------------------------


def test_fit_log_tensorboard_writes_the_metrics_scalars(tmp_path, tiny_fasta, tiny_cli_args):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    result = runner.invoke(app, ["fit", str(tiny_fasta), "--out", str(run), *tiny_cli_args,
                                 "--log", "tensorboard"])  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"loss", "valid_loss", "lr", "steps_per_second"}
    for name in ("loss", "valid_loss", "lr", "steps_per_second"):
        logged = [(e.step, e.value) for e in events.Scalars(name)]
        expected = [(r["step"], r[name]) for r in records if name in r]
        assert [s for s, _ in logged] == [s for s, _ in expected]
        assert np.allclose([v for _, v in logged], [v for _, v in expected], rtol=1e-6)


def test_fit_log_csv_and_bad_log(tmp_path, tiny_fasta, tiny_cli_args, monkeypatch):
    import sys

    run = tmp_path / "run"
    result = runner.invoke(app, ["fit", str(tiny_fasta), "--out", str(run), *tiny_cli_args,
                                 "--log", "csv"])  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [r["step"] for r in records]
    assert [float(r["loss"]) for r in rows] == [r["loss"] for r in records]
    assert [r["valid_loss"] for r in rows] == [str(r.get("valid_loss", "")) for r in records]
    resumed = runner.invoke(app, ["fit", "--resume", str(run), "--steps", "40", "--log", "csv"])
    assert resumed.exit_code == 0, resumed.output
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))  # one header: the resumed session appends rows
    assert [int(r["step"]) for r in rows] == [r["step"] for r in records] and len(rows) == 4
    bad = runner.invoke(
        app, ["fit", str(tiny_fasta), "--out", str(tmp_path / "b"), "--log", "wandb"]
    )
    assert bad.exit_code == 2 and "--log: 'wandb' is not one of tensorboard, csv" in bad.output
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    missing = runner.invoke(app, ["fit", str(tiny_fasta), "--out", str(tmp_path / "m"),
                                  "--log", "tensorboard"])  # fmt: skip
    assert missing.exit_code == 2
    assert "pip install 'seqflow[tensorboard]'" in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists() and not (tmp_path / "b").exists()
