"""``evaluate`` and ``oracle fit``: metrics per condition, planted copies, a TorchScript oracle
round trip against the in-process module, and bad input through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from seqflow import api
from seqflow.cli import app
from seqflow.errors import InvalidInputError
from seqflow.metrics import frechet_distance, kmer_js, oracle_report

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")
LETTERS = "ACGT"
LENGTH = 30


def random_dna(n: int, seed: int, motif: str | None = None) -> list[str]:
    rng = np.random.default_rng(seed)
    seqs = ["".join(rng.choice(list(LETTERS), LENGTH)) for _ in range(n)]
    if motif:
        seqs = [s[:10] + motif + s[10 + len(motif) :] for s in seqs]
    return seqs


def write_fasta(path: Path, seqs: list[str], labels: list[str] | None = None) -> Path:
    lines = []
    for i, s in enumerate(seqs):
        tag = f" label={labels[i]}" if labels else ""
        lines.append(f">g{i}{tag}\n{s}\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """Real CSV with two classes (class b has a motif), train FASTA, and generated FASTA."""
    root = tmp_path_factory.mktemp("eval")
    a, b = random_dna(60, 1), random_dna(60, 2, motif="GATAAG")
    real = root / "real.csv"
    real.write_text("sequence,cls\n" + "".join(f"{s},a\n" for s in a) +
                    "".join(f"{s},b\n" for s in b))  # fmt: skip
    train = write_fasta(root / "train.fa", random_dna(80, 3))
    gen_seqs = random_dna(40, 4) + random_dna(40, 5, motif="GATAAG")
    gen = write_fasta(root / "gen.fa", gen_seqs, ["a"] * 40 + ["b"] * 40)
    return {"root": root, "real": real, "train": train, "gen": gen, "a": a, "b": b,
            "gen_seqs": gen_seqs}  # fmt: skip


def test_per_condition_metrics_match_direct_computation(sets, tmp_path):
    out = tmp_path / "report.json"
    result = api.evaluate(sets["gen"], reference=sets["real"], label_col="cls", train=sets["train"],
                          json_out=out)  # fmt: skip
    assert set(result.by_label) == {"a", "b"}
    gen_b = sets["gen_seqs"][40:]
    assert result.by_label["b"].kmer_js[6] == pytest.approx(kmer_js(gen_b, sets["b"], 6))
    assert result.overall.novelty.exact_copies == 0
    saved = json.loads(out.read_text())
    assert saved["by_label"]["b"]["kmer_js"]["6"] == pytest.approx(result.by_label["b"].kmer_js[6])


def test_copies_of_training_data_are_flagged(sets, tmp_path):
    train = [line for line in sets["train"].read_text().splitlines() if not line.startswith(">")]
    copies = write_fasta(tmp_path / "copies.fa", train[:50])
    result = api.evaluate(copies, reference=sets["real"], train=sets["train"])
    assert result.overall.novelty.exact_copies == 50
    assert result.overall.memorisation.fraction_closer == 1.0


class TinyOracle(torch.nn.Module):
    """A fixed random CNN with 3 outputs, taking one-hot (batch, length, 4)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(4, 8, 5, padding=2)
        self.head = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x.transpose(1, 2))).mean(dim=2)
        return self.head(h)


def one_hot(seqs: list[str]) -> torch.Tensor:
    idx = torch.tensor([[LETTERS.index(c) for c in s] for s in seqs])
    return torch.nn.functional.one_hot(idx, 4).float()


def test_torchscript_oracle_round_trip_through_the_cli(sets, tmp_path):
    module = TinyOracle().eval()
    path = tmp_path / "oracle.pt"
    torch.jit.script(module).save(str(path))
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["evaluate", str(sets["gen"]), "-r", str(sets["real"]),
                                 "--label-col", "cls", "--oracle", str(path), "--oracle-length",
                                 str(LENGTH), "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())["oracle"]
    with torch.no_grad():
        gen = module(one_hot(sets["gen_seqs"])).double().numpy()
        real = module(one_hot(sets["a"] + sets["b"])).double().numpy()
    assert report["frechet"] == pytest.approx(frechet_distance(gen, real), rel=1e-4, abs=1e-8)
    assert report["mse_paired"] is None  # 80 generated vs 120 real: no pairing


def test_builtin_oracle_fit_and_evaluate(sets, tmp_path):
    out = tmp_path / "cls.safetensors"
    fit = runner.invoke(app, ["oracle", "fit", str(sets["real"]), "--target", "cls", "-o",
                              str(out), "--steps", "150"])  # fmt: skip
    assert fit.exit_code == 0, fit.output
    assert "classifier of 'cls'" in fit.stderr and out.is_file()
    result = api.evaluate(sets["gen"], reference=sets["real"], label_col="cls",
                          oracle=api.load_oracle(out))  # fmt: skip
    acc = result.oracle.accuracy_by_label
    assert set(acc) == {"a", "b"} and all(0.0 <= v <= 1.0 for v in acc.values())


def test_paired_mse_when_counts_match(sets, tmp_path):
    module = TinyOracle().eval()
    path = tmp_path / "o.pt"
    torch.jit.script(module).save(str(path))
    real = sets["a"] + sets["b"]
    gen = write_fasta(tmp_path / "paired.fa", random_dna(120, 9))
    oracle = api.load_oracle(path, input_length=LENGTH, columns=[0])
    result = api.evaluate(gen, reference=sets["real"], oracle=oracle)
    with torch.no_grad():
        g = module(one_hot(random_dna(120, 9)))[:, 0].double().numpy()
        r = module(one_hot(real))[:, 0].double().numpy()
    assert result.oracle.mse_paired == pytest.approx(float(np.mean((g - r) ** 2)), rel=1e-4)


def test_oracle_report_from_outputs_matches_direct_formulas():
    rng = np.random.default_rng(0)
    gen_emb, ref_emb = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    gen_out = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 2.0], [1.0, 0.0], [0.0, 5.0]])
    ref_out = gen_out[::-1] + 0.5
    gen_labels, ref_labels = ["a", "a", "a", "b", "b", None], ["a", "a", "a", "b", "b", "b"]
    report = oracle_report(
        "o", (gen_emb, ref_emb), (gen_out, ref_out), (gen_labels, ref_labels),
        classes=["a", "b"],
    )  # fmt: skip
    assert report.frechet == frechet_distance(gen_emb, ref_emb)
    assert report.frechet_by_label["a"] == frechet_distance(gen_emb[:3], ref_emb[:3])
    assert report.accuracy_by_label == {"a": 2 / 3, "b": 1 / 2}  # rows 1 and 4 are misread
    assert report.accuracy == pytest.approx(7 / 12)
    assert report.mse_paired is None  # b: 2 generated vs 3 real, no pairs
    one = oracle_report("o", (gen_emb, ref_emb), (gen_out[:, :1], ref_out[:, :1]), (None, None),
                        values=[1.0, np.nan, 3.0, 0.0, 1.0, 0.0])  # fmt: skip
    assert one.mse_paired == pytest.approx(float(np.mean((gen_out[:, 0] - ref_out[:, 0]) ** 2)))
    assert one.mse_value == pytest.approx((1 + 0 + 0 + 0 + 0) / 5)
    assert one.accuracy_by_label == {} and one.frechet_by_label == {}


# --- bad input: one line, exit code 2, no report written ---------------------------------------


def bad(args: list[str], tmp_path: Path) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "r.json").exists()
    return result.stderr


def test_bad_oracle_and_inputs(sets, tmp_path):
    path = tmp_path / "o.pt"
    torch.jit.script(TinyOracle().eval()).save(str(path))
    names = tmp_path / "names.txt"
    names.write_text("x\ny\nz\nw\n")
    base = [
        "evaluate",
        str(sets["gen"]),
        "-r",
        str(sets["real"]),
        "--json",
        str(tmp_path / "r.json"),
    ]
    msg = bad([*base, "--oracle", str(path), "--oracle-length", str(LENGTH), "--oracle-names",
               str(names), "--oracle-select", "x"], tmp_path)  # fmt: skip
    assert "names.txt" in msg and "3" in msg and "4" in msg
    msg = bad([*base, "--oracle", str(path), "--oracle-length", "20"], tmp_path)
    assert "20" in msg
    msg = bad([*base, "--oracle", str(path)], tmp_path)
    assert "--oracle-length" in msg
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    msg = bad(["evaluate", str(empty), "-r", str(sets["real"]), "--json",
               str(tmp_path / "r.json")], tmp_path)  # fmt: skip
    assert "empty.fa" in msg and "empty" in msg


def test_split_without_split_col_is_refused(sets):
    with pytest.raises(InvalidInputError, match="split-col"):
        api.evaluate(sets["gen"], reference=sets["real"], reference_split="test")


def test_plots_are_png_files(sets, tmp_path):
    pytest.importorskip("matplotlib")
    result = api.evaluate(sets["gen"], reference=sets["real"], plots=tmp_path / "plots")
    names = sorted(Path(p).name for p in result.plots)
    assert names == ["gc_content.png", "kmer_scatter.png", "logo.png"]
    for p in result.plots:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "plots").glob(".*tmp"))


def test_plots_without_matplotlib_is_one_line(sets, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(InvalidInputError, match=r"seqflow\[plots\]"):
        api.evaluate(sets["gen"], reference=sets["real"], plots=tmp_path / "plots")
    assert not (tmp_path / "plots").exists()


# --- classifier two-sample test and Markov baseline (issue 17) ---------------------------------


def test_discriminator_and_markov_in_json_and_table(sets, tmp_path):
    out = tmp_path / "r.json"
    args = ["evaluate", str(sets["gen"]), "-r", str(sets["real"]), "--label-col", "cls",
            "--train", str(sets["train"]), "--discriminator", "--markov", "4",
            "--json", str(out)]  # fmt: skip
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    disc = report["overall"]["discriminator"]
    assert 0.0 <= disc["kmer_auroc"] <= 1.0 and 0.0 <= disc["cnn_auroc"] <= 1.0
    assert disc["n_per_class"] == 80 and disc["kmax"] == 5
    markov = report["markov"]
    assert markov["order"] == 4
    assert markov["overall"]["n_gen"] == 80 and set(markov["by_label"]) == {"a", "b"}
    assert markov["by_label"]["a"]["n_gen"] == 40
    assert 0.0 <= markov["overall"]["discriminator"]["cnn_auroc"] <= 1.0
    for text in ("markov4 all", "markov4 b", "discriminator k-mer AUROC", "discriminator CNN"):
        assert text in result.stdout


def test_markov_is_fitted_per_label_on_train(tmp_path):
    """Label a trains on all-A sequences, b on all-C: each label's baseline copies its own."""
    train = tmp_path / "train.csv"
    train.write_text("sequence,cls\n" + f"{'A' * 30},a\n{'C' * 30},b\n" * 20)
    real = tmp_path / "real.csv"
    real.write_text("sequence,cls\n" + "".join(f"{s},a\n" for s in random_dna(20, 1)) +
                    "".join(f"{s},b\n" for s in random_dna(20, 2)))  # fmt: skip
    gen = write_fasta(tmp_path / "gen.fa", random_dna(30, 3), ["a"] * 10 + ["b"] * 20)
    result = api.evaluate(gen, reference=real, train=train, label_col="cls", markov=2)
    assert result.markov is not None
    by_label = result.markov.scores.by_label
    assert by_label["a"].n_gen == 10 and by_label["b"].n_gen == 20
    assert by_label["a"].uniqueness_gen <= 0.2 and by_label["b"].uniqueness_gen <= 0.1
    assert by_label["a"].gc_distance > 0.4 and by_label["b"].gc_distance > 0.4  # GC 0 / 1
    assert by_label["a"].novelty is not None and by_label["a"].novelty.exact_copies >= 8


def test_bad_markov_and_discriminator_inputs(sets, tmp_path):
    base = ["evaluate", str(sets["gen"]), "-r", str(sets["real"]), "--json",
            str(tmp_path / "r.json")]  # fmt: skip
    msg = bad([*base, "--train", str(sets["train"]), "--markov", "-1"], tmp_path)
    assert "--markov -1" in msg and "0 or more" in msg
    msg = bad([*base, "--markov", "3"], tmp_path)
    assert "--train" in msg
    few = write_fasta(tmp_path / "few.fa", random_dna(5, 9))
    msg = bad(["evaluate", str(few), "-r", str(sets["real"]), "--discriminator", "--json",
               str(tmp_path / "r.json")], tmp_path)  # fmt: skip
    assert "at least 10" in msg
