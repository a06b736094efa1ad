"""What a new user trips over (issue 19): threads, honest progress, gzip and stdout
conventions, help that reads right, quiet/verbose, defaults that follow the geometry, warnings
for a preset of the wrong alphabet and an empty validation split, and the ``[dev]`` extra.

The command line runs as users run it, ``python -m seqflow`` in real subprocesses, started
together by one module fixture (imports cost ~3 s each; the cases overlap): a tiny fit and
its resume, samples and evaluations of it, and the warning and error cases beside them.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import logging
import random
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomllib
from rich.progress import Progress
from typer.testing import CliRunner

from seqflow import api
from seqflow.api._config import build_config
from seqflow.cli import app
from seqflow.cli.fit import _EtaColumn
from seqflow.errors import ConfigError
from seqflow.io_utils import open_output

ROOT = Path(__file__).parents[1]
TINY = ("--set", "model.hidden=16", "--set", "model.depth=2", "--set", "model.kernel_size=3",
        "--set", "model.time_dim=16", "--device", "cpu", "--batch-size", "16")  # fmt: skip


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: bytes
    stderr: str


def run_all(cases: dict[str, tuple[str, ...]], cwd: Path, env: dict[str, str]) -> dict[str, Ran]:
    """Run ``python -m seqflow ARGS`` for every case at once, in ``cwd``."""

    def one(args: tuple[str, ...]) -> Ran:
        proc = subprocess.run(
            [sys.executable, "-m", "seqflow", *args], cwd=cwd, env=env, capture_output=True,
            timeout=300, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return Ran(proc.returncode, proc.stdout, proc.stderr.decode())

    with ThreadPoolExecutor(4) as pool:
        futures = {name: pool.submit(one, args) for name, args in cases.items()}
        return {name: f.result() for name, f in futures.items()}


def protein_fasta(path: Path) -> Path:
    rng = random.Random(0)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    records = [f">p{i}\n{''.join(rng.choice(letters) for _ in range(12))}\n" for i in range(40)]
    path.write_text("".join(records))
    return path


@pytest.fixture(scope="module")
def ran(tmp_path_factory, tiny_fasta, cli_env) -> tuple[Path, dict[str, Ran]]:
    """The subprocesses of this module (a fit, its resume, a sample, an evaluation), and the
    folder they ran in; torch's thread count is left to ``--threads``."""
    cwd = tmp_path_factory.mktemp("newcomer")
    env = {k: v for k, v in cli_env.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    tiny = str(tiny_fasta)
    first = {
        "fit": ("--verbose", "fit", tiny, "--out", "run", "--steps", "4", "--threads", "1",
                "--set", "train.log_every=2", *TINY),
        "evaluate json stdout": ("--verbose", "evaluate", tiny, "-r", tiny, "--json", "-",
                                 "--threads", "3"),
    }  # fmt: skip
    results = run_all(first, cwd, env)
    assert results["fit"].returncode == 0, results["fit"].stderr
    second = {
        "resume": ("fit", "--resume", "run", "--steps", "6", "--threads", "1"),
        "sample gz": ("sample", "run", "-n", "5", "-o", "s.fasta.gz", "--threads", "1"),
    }
    results.update(run_all(second, cwd, env))
    return cwd, results


def invoke(cwd: Path, *args: str) -> Any:
    """``seqflow ARGS`` in process (CliRunner), in ``cwd``."""
    with contextlib.chdir(cwd):
        return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def words(text: str) -> str:
    """Help text without its wrapping and box lines."""
    return " ".join(text.replace("│", " ").split())


# --- 1. threads ---------------------------------------------------------------------------------
def test_threads_sets_torchs_thread_count(ran):
    _, results = ran
    assert "torch threads: 1 intra-op, 1 inter-op" in results["fit"].stderr
    assert "torch threads: 3 intra-op, 3 inter-op" in results["evaluate json stdout"].stderr


def test_threads_is_offered_by_every_computing_command():
    runner = CliRunner()
    for command in (["fit"], ["sample"], ["evaluate"], ["oracle", "fit"]):
        text = words(runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"}).output)
        assert "--threads N" in text and "one per core" in text, command


# --- 2. progress --------------------------------------------------------------------------------
def test_batch_log_lines_carry_the_eta(ran):
    _, results = ran
    lines = [ln for ln in results["fit"].stderr.splitlines() if ln.startswith("step ")]
    assert lines[0].startswith("step 2/4 ") and re.search(r"ETA \d+:\d\d:\d\d$", lines[0])


def test_resume_counts_the_steps_it_ran_and_continues_elapsed(ran):
    cwd, results = ran
    assert results["resume"].returncode == 0, results["resume"].stderr
    assert "done: 2 steps (6 in all)" in results["resume"].stderr
    assert "done: 4 steps in" in results["fit"].stderr
    records = [json.loads(ln) for ln in (cwd / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    elapsed = [r["elapsed"] for r in records]
    assert elapsed == sorted(elapsed) and elapsed[2] > elapsed[1] > 0


def test_eta_column_shows_from_the_first_step():
    now = [0.0]
    bar = Progress(_EtaColumn(), get_time=lambda: now[0], auto_refresh=False)
    task = bar.add_task("fit", total=40, completed=26, first=26)  # resumed at step 26
    assert str(_EtaColumn().render(bar.tasks[0])) == "ETA -:--:--"
    now[0] = 4.0
    bar.update(task, completed=28)  # 2 steps in 4 s, 12 to go: 24 s
    assert str(_EtaColumn().render(bar.tasks[0])) == "ETA 0:00:24"


def test_api_reports_every_step_and_logs_progress(tiny_csv, tmp_path, caplog, tiny_fit_kwargs):
    steps: list[int] = []
    kwargs = {**tiny_fit_kwargs, "steps": 4}
    with caplog.at_level(logging.INFO, logger="seqflow"):
        result = api.fit(tiny_csv, out=tmp_path / "run", label_col="cell_type",
                         on_step=steps.append, **kwargs)  # fmt: skip
    assert steps == [1, 2, 3, 4]  # log_every is 10: the reports alone would say nothing
    logged = [r.getMessage() for r in caplog.records if r.name == "seqflow.api.fit"]
    assert logged and logged[-1].startswith("step 4/4 loss ")
    assert (result.start_step, result.steps) == (0, 4)
    # ids carry the label, so sets sampled per label merge without clashes
    label = "K562"
    sampled = api.sample(result.run_dir, n=2, label=label, output=tmp_path / "k.fasta", seed=5)
    assert sampled.ids == ("sample_K562_1", "sample_K562_2") and sampled.seed == 5
    # the dna preset guides labelled sampling (sample.guidance 1.5), and the header says so
    assert ">sample_K562_1 label=K562 guidance=1.5 seed=5\n" in (tmp_path / "k.fasta").read_text()


# --- 3. conventions -----------------------------------------------------------------------------
def gunzip(path: Path) -> str:
    """``gzip -d -c``: the file is gzip, as the suffix says."""
    return subprocess.run(["gzip", "-d", "-c", str(path)], capture_output=True, check=True,
                          text=True).stdout  # fmt: skip


def test_gz_outputs_are_gzip(ran, tiny_fasta):
    cwd, _ = ran
    fasta = gunzip(cwd / "s.fasta.gz")
    assert fasta.count(">") == 5 and ">sample_1 seed=0\n" in fasta
    sheet = invoke(cwd, "sample", "run", "-n", "3", "-o", "s.csv.gz", "--id-prefix", "k562",
                   "--seed", "7")  # fmt: skip
    assert sheet.exit_code == 0, sheet.output
    assert "seed 7" in sheet.stderr
    rows = gunzip(cwd / "s.csv.gz").splitlines()
    assert rows[0].startswith("id,sequence") and rows[1].startswith("k562_1,")
    evaluated = invoke(cwd, "evaluate", str(tiny_fasta), "-r", str(tiny_fasta), "--json",
                       "e.json.gz")  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(gunzip(cwd / "e.json.gz"))["overall"]["n_gen"] == 64


def test_open_output_gzip_is_reproducible_and_atomic(tmp_path):
    for name in ("a.txt.gz", "b.txt.gz"):
        with open_output(tmp_path / name) as handle:
            handle.write("ACGT\n")
    assert (tmp_path / "a.txt.gz").read_bytes() == (tmp_path / "b.txt.gz").read_bytes()
    assert gzip.decompress((tmp_path / "a.txt.gz").read_bytes()) == b"ACGT\n"
    with pytest.raises(RuntimeError), open_output(tmp_path / "c.txt.gz") as handle:
        handle.write("half")
        raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt.gz", "b.txt.gz"]


def test_dash_is_stdout_for_json_and_output(ran):
    cwd, results = ran
    evaluated = results["evaluate json stdout"]
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["overall"]["n_ref"] == 64
    assert "1-mer JS distance" in evaluated.stderr  # the table moved aside for the JSON
    assert not (cwd / "-").exists()
    assert invoke(cwd, "sample", "run", "-n", "2", "-o", "-").stdout.count(">sample_") == 2


def test_evaluate_tsv_is_for_cut(tmp_path, tiny_fasta):
    result = invoke(tmp_path, "evaluate", str(tiny_fasta), "-r", str(tiny_fasta), "--format",
                    "tsv")  # fmt: skip
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert rows[0] == ["metric", "all"] and ["sequences (generated / real)", "64 / 64"] in rows
    assert all(len(row) == 2 for row in rows)
    wrong = invoke(tmp_path, "evaluate", str(tiny_fasta), "-r", str(tiny_fasta), "--format", "csv")
    assert (
        wrong.exit_code == 2 and wrong.stderr == "error: --format csv: choose table, tsv or json\n"
    )


def test_seed_is_printed_and_a_fresh_set_is_documented(ran):
    _, results = ran
    assert "seed 0 (the same seed gives the same sequences" in results["sample gz"].stderr
    help_text = words(CliRunner().invoke(app, ["sample", "--help"], env={"COLUMNS": "200"}).output)
    assert "--seed $RANDOM" in help_text and "--id-prefix PREFIX" in help_text


# --- 5. help, quiet, verbose --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "argument"),
    [("sample", "CHECKPOINT"), ("evaluate", "GENERATED"), ("fit", "[DATA]")],
)
def test_help_types_and_usage_read_in_words(command, argument):
    text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "100"}).output
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage.rstrip().endswith(f"[OPTIONS] {argument}")
    assert "<str>" not in text and "<int>" not in text and "<bool>" not in text
    assert re.search(r"--seed\s+INTEGER", text) and "TEXT" in text


def test_help_prints_extras_and_keeps_example_layout():
    runner = CliRunner()
    evaluate = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "100"}).output
    assert "pip install 'seqflow[plots]'" in evaluate
    fit = runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "80"}).output.splitlines()
    first = next(i for i, line in enumerate(fit) if "seqflow fit peptides.csv" in line)
    indent = len(fit[first]) - len(fit[first].lstrip())
    follow = fit[first + 1]
    assert follow.strip() == "--preset protein" and len(follow) - len(follow.lstrip()) > indent


def test_quiet_prints_errors_only(ran):
    cwd, _ = ran
    quiet = invoke(cwd, "--quiet", "sample", "run", "-n", "2", "-o", "q.fasta")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert (cwd / "q.fasta").read_text().count(">") == 2
    error = invoke(cwd, "--quiet", "sample", "no/such/run", "-n", "2")
    assert error.exit_code == 2 and error.stderr.startswith("error:")
    assert len(error.stderr.strip().splitlines()) == 1
    loud = invoke(cwd, "sample", "run", "-n", "2", "-o", "q.fasta")
    assert "seed 0" in loud.stderr  # the console speaks again after a quiet command


# --- 6. defaults and warnings -------------------------------------------------------------------
def test_preset_coupling_follows_the_geometry(tmp_path, tiny_fasta):
    fitted = invoke(tmp_path, "fit", str(tiny_fasta), "--out", "dir", "--preset", "dna",
                    "--steps", "1", "--set", "flow.geometry=dirichlet", *TINY)  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    assert "coupling: independent" in (tmp_path / "dir" / "config.yaml").read_text()
    cfg = build_config(preset="dna", config_file=None, overrides=["flow.geometry=dirichlet"])
    assert cfg is not None and cfg.flow.coupling == "independent"
    with pytest.raises(ConfigError, match=r"flow\.coupling"):  # chosen on the command line
        build_config(preset="dna", config_file=None,
                     overrides=["flow.geometry=dirichlet", "flow.coupling=exact"])  # fmt: skip
    chosen = tmp_path / "chosen.yaml"
    chosen.write_text("flow:\n  coupling: exact\n")
    with pytest.raises(ConfigError, match=r"flow\.coupling"):  # chosen in the user's file
        build_config(preset=None, config_file=chosen, overrides=["flow.geometry=dirichlet"])
    unset = tmp_path / "unset.yaml"
    unset.write_text("flow:\n  geometry: dirichlet\n")
    cfg = build_config(preset=None, config_file=unset)
    assert cfg is not None and cfg.flow.coupling == "independent"


def test_preset_for_another_alphabet_warns_or_stops_with_strict(tmp_path):
    protein = str(protein_fasta(tmp_path / "protein.fasta"))
    warned = invoke(tmp_path, "fit", protein, "--out", "prot", "--preset", "dna", "--steps", "1",
                    *TINY)  # fmt: skip
    assert warned.exit_code == 0, warned.output
    expected = (
        r"warning: --preset dna is made for DNA/RNA, but .* 20 letters .*use --preset protein"
    )
    assert re.search(expected, warned.stderr)
    strict = invoke(tmp_path, "fit", protein, "--out", "prot2", "--preset", "dna", "--strict")
    assert strict.exit_code == 2 and strict.stderr.startswith("error: --preset dna")
    assert len(strict.stderr.strip().splitlines()) == 1 and not (tmp_path / "prot2").exists()


def test_empty_validation_split_warns(tmp_path, tiny_csv):
    train_only = tmp_path / "train_only.csv"  # a split column without valid rows
    lines = tiny_csv.read_text().splitlines()
    train_only.write_text("\n".join([lines[0] + ",split"] + [ln + ",train" for ln in lines[1:]]))
    fitted = invoke(tmp_path, "fit", str(train_only), "--out", "run", "--split-col", "split",
                    "--steps", "1", *TINY)  # fmt: skip
    assert fitted.exit_code == 0, fitted.output
    assert "warning: no validation sequences" in fitted.stderr


# --- 7. packaging -------------------------------------------------------------------------------
def test_dev_extra_installs_what_the_suite_imports():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(extras["plots"]) | set(extras["logo"]) <= set(extras["dev"])
