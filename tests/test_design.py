"""Designing candidates: templates clamped during integration, synthesis rules enforced by
rejection with a reported acceptance rate, novelty against the recorded training set, oracle
ranking and order sheets; impossible requests end with one line and exit code 2."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fields import integrate
from seqflow import api
from seqflow.design import (
    Rules,
    Tally,
    Template,
    annotate,
    draw_designs,
    gc_fraction,
    longest_run,
    reverse_complement,
    round_seed,
)
from seqflow.errors import InvalidInputError
from seqflow.geometry import PositiveSphere
from seqflow.metrics import kmer_js
from seqflow.sampling import generate

LENGTH = 24


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_fasta, tiny_fit_kwargs) -> Path:
    out = tmp_path_factory.mktemp("design") / "run"
    return api.fit(tiny_fasta, out=out, **tiny_fit_kwargs).run_dir


def train_seqs(run: Path) -> list[str]:
    with gzip.open(run / "train.fasta.gz", "rt") as handle:
        return [line.strip() for line in handle if not line.startswith(">")]


def hamming_min(seq: str, refs: list[str]) -> int:
    return min(sum(a != b for a, b in zip(seq, r, strict=True)) for r in refs)


# --- rules and templates, closed form --------------------------------------------------------


def test_template_parse_flanks_and_errors():
    t = Template.parse("acgtNN?.ACGT", "ACGT")
    assert t.fixed[:4] == ("A", "C", "G", "T") and t.fixed[4:8] == (None,) * 4
    assert t.length == 12
    assert t.matches("ACGTAAAAACGT") and not t.matches("ACGAAAAAACGT")
    assert not t.matches("ACGTAAAAACGTA")
    f = Template.flanks("AC", "GT", 6, "ACGT")
    assert f.fixed == ("A", "C", None, None, "G", "T")
    with pytest.raises(InvalidInputError, match="position 3 'Z'"):
        Template.parse("ACZ", "ACGT")
    with pytest.raises(InvalidInputError, match="do not fit"):
        Template.flanks("ACGT", "ACGT", 6, "ACGT")
    # a protein alphabet holds N: there it is a letter, and ? or . mark free positions
    p = Template.parse("MN?", "ACDEFGHIKLMNPQRSTVWY")
    assert p.fixed == ("M", "N", None)


def test_rules_add_reverse_complements_for_dna_only():
    dna = Rules.build("ACGT", forbid=["ggtctc"])
    assert dna.forbid == ("GGTCTC", "GAGACC")
    assert Rules.build("ACGT", forbid=["ACGT"]).forbid == ("ACGT",)  # its own complement
    assert reverse_complement("GGAU") == "AUCC"
    protein = Rules.build("ACDEFGHIKLMNPQRSTVWY", forbid=["KR"])
    assert protein.forbid == ("KR",)
    with pytest.raises(InvalidInputError, match="GC content needs a DNA/RNA"):
        Rules.build("ACDEFGHIKLMNPQRSTVWY", gc_min=0.2)
    with pytest.raises(InvalidInputError, match="'Z', not a letter"):
        Rules.build("ACGT", forbid=["GZ"])
    with pytest.raises(InvalidInputError, match="above --gc-max"):
        Rules.build("ACGT", gc_min=0.6, gc_max=0.4)
    with pytest.raises(InvalidInputError, match=">= 1"):
        Rules.build("ACGT", max_homopolymer=0)


def test_rule_checks_in_closed_form():
    assert longest_run("") == 0 and longest_run("AACCCGT") == 3 and longest_run("A") == 1
    assert gc_fraction("GGCA") == 0.75
    rules = Rules.build("ACGT", forbid=["GGTCTC"], max_homopolymer=3, gc_min=0.25, gc_max=0.75)
    assert rules.failures("ACGTACGT") == []
    assert rules.failures("AGAGACCA") == ["forbid GAGACC"]  # the reverse strand
    assert rules.failures("AAAATGCA") == ["homopolymer > 3"]
    assert rules.failures("GGCCGGCA") == ["GC window 0.25-0.75"]


def test_infeasible_is_decided_by_the_fixed_letters():
    rules = Rules.build("ACGT", forbid=["GGTCTC"], max_homopolymer=3, gc_min=0.5)
    assert rules.infeasible(Template.parse("ACGTNNNN", "ACGT"), 8) is None
    assert "run of 4" in str(rules.infeasible(Template.parse("AAAANNNN", "ACGT"), 8))
    assert "contain GAGACC" in str(rules.infeasible(Template.parse("GAGACCNN", "ACGT"), 8))
    # 2 fixed A/T + at most 2 free G/C of 8 -> GC at most 0.25 < 0.5
    low = Rules.build("ACGT", gc_min=0.5).infeasible(Template.parse("AATTAANN", "ACGT"), 8)
    assert low is not None and "0.000-0.250" in low
    # a motif split by a free position is not decided in advance
    assert rules.infeasible(Template.parse("GGTNTC", "ACGT"), 6) is None


# --- clamping during integration -------------------------------------------------------------


def test_clamp_keeps_fixed_positions_on_their_geodesic():
    g = torch.Generator().manual_seed(0)
    x_0 = PositiveSphere.sample_prior([5, 6, 4], g, dtype=torch.float64)
    fixed = torch.tensor([2, -1, -1, 0, -1, 3])
    seen = []

    def field(x, t):  # the state each step starts from: clamped at the previous step's end
        seen.append((float(t[0]), x.clone()))
        return torch.zeros_like(x)  # free positions stay at x_0

    x_1 = integrate(field, x_0, geometry=PositiveSphere(), steps=4, solver="euler", fixed=fixed)
    onehot = torch.nn.functional.one_hot(fixed.clamp_min(0), 4).double()
    for t, x in seen:  # on the geodesic x_0 -> e_a at the step's start time
        expect = PositiveSphere.interpolate(
            x_0[:, [0, 3, 5]], onehot[[0, 3, 5]].expand(5, 3, 4), torch.full((5,), t).double()
        ).x_t
        torch.testing.assert_close(x[:, [0, 3, 5]], expect)
    torch.testing.assert_close(x_1[:, [0, 3, 5]], onehot[[0, 3, 5]].expand(5, 3, 4))
    torch.testing.assert_close(x_1[:, [1, 2, 4]], x_0[:, [1, 2, 4]])  # free positions untouched
    assert [t for t, _ in seen] == [0.0, 0.25, 0.5, 0.75]


def test_dopri5_refuses_fixed_positions():
    x_0 = PositiveSphere.sample_prior([2, 3, 4])
    with pytest.raises(Exception, match="dopri5 cannot hold positions fixed"):
        integrate(lambda x, t: x, x_0, geometry=PositiveSphere(), steps=2, solver="dopri5",
                  fixed=torch.tensor([0, -1, -1]))  # fmt: skip


def test_generate_with_fixed_positions_keeps_every_fixed_letter(run):
    from seqflow.checkpoint import load_model

    model, _ = load_model(run)
    fixed = torch.full((LENGTH,), -1)
    fixed[:4] = torch.tensor([0, 1, 2, 3])
    fixed[-2:] = torch.tensor([3, 3])
    tokens = torch.cat(list(generate(model, geometry=PositiveSphere(),
                                     n=50, length=LENGTH, vocab=4, steps=8, fixed=fixed,
                                     decoder="sample", seed=3)))  # fmt: skip
    assert (tokens[:, :4] == torch.tensor([0, 1, 2, 3])).all()
    assert (tokens[:, -2:] == 3).all()
    free = tokens[:, 4:-2]
    assert len({tuple(r) for r in free.tolist()}) == 50  # the free part is still generated


def test_inpainted_free_part_keeps_the_models_kmer_statistics(run):
    """Clamped flanks change the free part's 3-mer spectrum little: its JS distance to the
    unconstrained model's middle is compared with two unconstrained draws (seed noise)."""
    flank = "ACGTAC"
    template = flank + "N" * (LENGTH - 2 * len(flank)) + flank
    n = 300
    free = slice(len(flank), LENGTH - len(flank))
    plain_a = api.sample(run, n=n, seed=1, output=None, device="cpu", fmt="jsonl")
    plain_b = api.sample(run, n=n, seed=2, output=None, device="cpu", fmt="jsonl")
    clamped = api.sample(run, n=n, seed=3, output=None, device="cpu", template=template)
    assert all(s.startswith(flank) and s.endswith(flank) for s in clamped.sequences)
    mid = [[s[free] for s in r.sequences] for r in (plain_a, plain_b, clamped)]
    noise = kmer_js(mid[0], mid[1], k=3)
    shift = kmer_js(mid[2], mid[0], k=3)
    print(f"3-mer JS of the free part: clamped vs plain {shift:.4f}, plain vs plain {noise:.4f}")
    assert shift < 2.0 * noise + 0.02


# --- rejection ------------------------------------------------------------------------------


def rule_failures(rules: Rules):
    return lambda seqs: [rules.failures(s) for s in seqs]


def test_draw_designs_counts_and_keeps_order():
    calls = []

    def draw(count, seed):
        calls.append((count, seed))
        rng = np.random.default_rng(seed)
        return ["".join(rng.choice(list("AC"), 6)) for _ in range(count)]

    rules = Rules.build("ACGT", max_homopolymer=2)
    kept, tally = draw_designs(draw, 10, rule_failures(rules), max_candidates=10_000, seed=7)
    assert len(kept) == 10 and all(rules.failures(s) == [] for _, s in kept)
    numbers = [i for i, _ in kept]
    assert numbers == sorted(numbers) and len(set(numbers)) == 10
    assert calls[0] == (10, 7)  # round 0: n candidates with the user's seed
    assert tally.candidates == sum(c for c, _ in calls)
    assert tally.passed + tally.rejected["homopolymer > 2"] == tally.candidates
    assert round_seed(7, 0) == 7 and round_seed(7, 1) != round_seed(8, 1)


def test_draw_designs_gives_up_at_the_budget_naming_the_rule():
    def draw(count, seed):
        return ["GGGGCC"] * count

    with pytest.raises(InvalidInputError) as info:
        draw_designs(draw, 5, rule_failures(Rules.build("ACGT", gc_max=0.5)), max_candidates=40,
                     seed=0)  # fmt: skip
    msg = str(info.value)
    assert "0 of 5 sequences passed in 40 candidates" in msg
    assert "GC window 0-0.5 x40" in msg and "\n" not in msg
    assert Tally().acceptance == 1.0


def test_order_sheet_columns_recompute_each_rule():
    rows = [{"id": "a", "sequence": "ACGGGGTA"}, {"id": "b", "sequence": "ATATATAT"}]
    rules = Rules.build("ACGT", forbid=["GGTA"], max_homopolymer=3, gc_min=0.3)
    annotate(rows, letters="ACGT", rules=rules, template=Template.parse("ACNNNNNN", "ACGT"),
             label="K562", guidance=2.0, novelty=([0, 4], "hamming"), min_novelty=1)  # fmt: skip
    assert rows[0] == {
        "id": "a", "sequence": "ACGGGGTA", "label": "K562", "guidance": 2.0, "length": 8,
        "gc": 0.625, "max_run": 4, "template_ok": True, "forbid_ok": False,
        "homopolymer_ok": False, "gc_ok": True, "novelty": 0, "novelty_metric": "hamming",
        "novelty_ok": False,
    }  # fmt: skip
    assert (rows[1]["gc"], rows[1]["template_ok"], rows[1]["forbid_ok"]) == (0.0, False, True)
    assert (rows[1]["gc_ok"], rows[1]["novelty_ok"]) == (False, True)
    protein = [{"sequence": "MKV"}]
    annotate(protein, letters="ACDEFGHIKLMNPQRSTVWY", rules=Rules.build("ACDEFGHIKLMNPQRSTVWY"))
    assert protein == [{"sequence": "MKV", "length": 3, "max_run": 1}]  # no GC for proteins


# --- the sample API and CLI ------------------------------------------------------------------


def test_every_output_honours_all_rules(run, tmp_path):
    template = "GATC" + "N" * (LENGTH - 8) + "CTAG"
    out = tmp_path / "order.csv"
    result = api.sample(
        run, n=40, seed=0, output=out, device="cpu", template=template, forbid=["GGT", "AAC"],
        max_homopolymer=3, gc_min=0.3, gc_max=0.7,
    )  # fmt: skip
    assert len(result.sequences) == 40 and result.format == "csv"
    assert result.candidates >= 40 and 0 < result.acceptance <= 1
    assert sum(result.rejected.values()) >= result.candidates - result.passed
    for s in result.sequences:
        assert s[:4] == "GATC" and s[-4:] == "CTAG" and len(s) == LENGTH
        for motif in ("GGT", "ACC", "AAC", "GTT"):  # both strands
            assert motif not in s
        assert longest_run(s) <= 3 and 0.3 <= gc_fraction(s) <= 0.7
    rows = list(csv.DictReader(out.open()))
    assert [r["sequence"] for r in rows] == list(result.sequences)
    assert {r["template_ok"] for r in rows} == {"true"} and {r["gc_ok"] for r in rows} == {"true"}
    assert all(abs(float(r["gc"]) - gc_fraction(r["sequence"])) < 1e-4 for r in rows)
    assert all(int(r["novelty"]) == hamming_min(r["sequence"], train_seqs(run)) for r in rows)


def test_without_rules_the_design_path_matches_plain_sampling(run, tmp_path):
    plain = api.sample(run, n=30, seed=4, output=tmp_path / "a.fa", device="cpu")
    table = api.sample(run, n=30, seed=4, output=tmp_path / "a.jsonl", device="cpu")
    assert plain.sequences == table.sequences
    rows = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == list(plain.ids) and rows[0]["candidate"] == 1


def test_min_novelty_uses_the_recorded_training_set(run, tmp_path):
    refs = train_seqs(run)
    assert len(refs) > 40 and all(len(s) == LENGTH for s in refs)
    result = api.sample(run, n=20, seed=0, output=tmp_path / "n.fa", device="cpu",
                        min_novelty=12)  # fmt: skip
    assert result.novelty is not None
    for s, d in zip(result.sequences, result.novelty, strict=True):
        assert d == hamming_min(s, refs) >= 12
    # an explicit --train reference: a file holding one generated sequence makes it a copy
    ref = tmp_path / "ref.fasta"
    ref.write_text(f">x\n{result.sequences[0]}\n")
    again = api.sample(run, n=20, seed=0, output=tmp_path / "m.fa", device="cpu", train=ref,
                       min_novelty=1)  # fmt: skip
    assert result.sequences[0] not in again.sequences
    assert again.rejected == {"novelty < 1": 1}


def test_oracle_scores_and_top_k(run, tmp_path, tiny_csv):
    oracle = tmp_path / "o.safetensors"
    api.fit_oracle(tiny_csv, target="cell_type", out=oracle, steps=20)
    loaded = api.load_oracle(oracle)
    name = loaded.output_names[0]
    out = tmp_path / "top.tsv"
    result = api.sample(run, n=30, seed=0, output=out, device="cpu", oracle=oracle, score=name,
                        top=5)  # fmt: skip
    assert len(result.sequences) == 5 and result.scores is not None
    assert list(result.scores) == sorted(result.scores, reverse=True)
    all_30 = api.sample(run, n=30, seed=0, output=None, device="cpu", fmt="jsonl")
    column = loaded.output_names.index(name)
    expect = sorted(loaded.predict(list(all_30.sequences))[:, column].tolist(), reverse=True)
    np.testing.assert_allclose(result.scores, expect[:5], rtol=1e-5)
    assert "score" in out.read_text().splitlines()[0].split("\t")
    with pytest.raises(InvalidInputError, match="choose one with --score"):
        api.sample(run, n=3, output=tmp_path / "x.fa", device="cpu", oracle=oracle)
    with pytest.raises(InvalidInputError, match="needs an --oracle"):
        api.sample(run, n=3, output=tmp_path / "x.fa", device="cpu", top=2)
    assert not (tmp_path / "x.fa").exists()


def test_variable_length_template_and_prefix(tmp_path, tiny_fit_kwargs):
    rng = np.random.default_rng(0)
    data = tmp_path / "ragged.fasta"
    data.write_text("".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), rng.integers(8, 21)))}\n"
                            for i in range(80)))  # fmt: skip
    result = api.fit(data, out=tmp_path / "run", **tiny_fit_kwargs)
    fixed_len = api.sample(result.run_dir, n=30, output=None, fmt="jsonl", device="cpu",
                           template="ACNNNNNNGT")  # fmt: skip
    assert {len(s) for s in fixed_len.sequences} == {10}
    assert all(s.startswith("AC") and s.endswith("GT") for s in fixed_len.sequences)
    prefixed = api.sample(result.run_dir, n=30, output=None, fmt="jsonl", device="cpu",
                          prefix="GGA")  # fmt: skip
    assert all(s.startswith("GGA") for s in prefixed.sequences)
    assert len({len(s) for s in prefixed.sequences}) > 1
    with pytest.raises(InvalidInputError, match="no fixed end"):
        api.sample(result.run_dir, n=3, output=None, device="cpu", suffix="GT")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--template", "AAAAN" + "N" * (LENGTH - 5), "--max-homopolymer", "3"], "run of 4"),
        (["--prefix", "GGTCTC", "--forbid", "GGTCTC"], "contain GGTCTC"),
        (["--template", "GGGGGGGG" + "N" * (LENGTH - 8), "--gc-max", "0.2"], "can only lie in"),
        (["--gc-min", "0.99", "--max-candidates", "150"], "0 of 10 sequences passed in 150"),
        (["--template", "ACGT"], "makes sequences of 24"),
        (["--format", "xlsx"], "--format xlsx"),
        (["--min-novelty", "3", "--train", "missing.fa"], "missing.fa"),
    ],
)
def test_cli_impossible_or_bad_requests_exit_2(run, tmp_path, cli_env, args, message):
    out = tmp_path / "o.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "seqflow", "sample", str(run), "-n", "10", "-o", str(out), *args],
        capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_reports_acceptance(run, tmp_path, cli_env):
    out = tmp_path / "o.fasta"
    proc = subprocess.run(
        [sys.executable, "-m", "seqflow", "sample", str(run), "-n", "10", "-o", str(out),
         "--max-homopolymer", "2", "--forbid", "GGT"],
        capture_output=True, text=True, env=cli_env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "passed every rule" in proc.stderr and "rejected by" in proc.stderr
    assert out.read_text().count(">") == 10


def test_novelty_reference_is_read_only_when_asked(run, tmp_path, monkeypatch):
    import shutil

    from seqflow.api import _design

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "train.fasta.gz").write_bytes(b"not gzip")  # plain sampling must not touch it
    assert len(api.sample(copy, n=5, output=tmp_path / "a.fa", device="cpu").sequences) == 5
    monkeypatch.setattr(_design, "MAX_IMPLICIT_REFERENCE", 10)
    with pytest.warns(UserWarning, match="novelty column left out"):
        result = api.sample(run, n=5, output=tmp_path / "b.csv", device="cpu")
    assert result.novelty is None and "novelty" not in (tmp_path / "b.csv").read_text()
    asked = api.sample(run, n=5, output=tmp_path / "c.csv", device="cpu", min_novelty=0)
    assert asked.novelty is not None  # an explicit request searches the whole set
