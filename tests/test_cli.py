"""The command line, run as users run it: ``python -m seqflow`` in a real subprocess.

Starting ``python -m seqflow`` costs ~3 s of imports, so the subprocesses are few and run
concurrently: one module-scoped fixture fits one tiny run while the error cases and the help
commands run beside it, then samples from that run. Each case runs in its own folder, so "no
output file and no run folder left behind" is checked as "the folder is unchanged". A few
cheap in-process checks use ``typer.testing.CliRunner``.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from Bio import SeqIO
from rich.console import Console
from typer.testing import CliRunner

from seqflow import api
from seqflow._version import __version__
from seqflow.cli import app
from seqflow.cli import sample as sample_cli

WORKERS = 4  # concurrent subprocesses (the imports are the cost; two cores overlap them)
TIMEOUT = 120


@dataclass(frozen=True)
class Case:
    """One ``seqflow`` invocation and what its folder held before it ran."""

    args: tuple[str, ...]
    cwd: Path
    before: frozenset[str]


@dataclass(frozen=True)
class Ran:
    case: Case
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def after(self) -> frozenset[str]:
        return listing(self.case.cwd)


def listing(folder: Path) -> frozenset[str]:
    return frozenset(str(p.relative_to(folder)) for p in folder.rglob("*"))


def case(cwd: Path, *args: str, files: dict[str, str] | None = None) -> Case:
    cwd.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (cwd / name).write_text(text)
    return Case(tuple(args), cwd, listing(cwd))


def command(c: Case) -> list[str]:
    """``python -m seqflow ARGS``; ``--version`` goes through the installed console script."""
    script = shutil.which("seqflow")
    if c.args == ("--version",) and script is not None:
        return [script, *c.args]
    return [sys.executable, "-m", "seqflow", *c.args]


def run_all(cases: dict[str, Case], env: dict[str, str]) -> dict[str, Ran]:
    def one(c: Case) -> Ran:
        proc = subprocess.run(
            command(c), cwd=c.cwd, env=env, capture_output=True, timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        return Ran(c, proc.returncode, proc.stdout, proc.stderr.decode())

    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {name: pool.submit(one, c) for name, c in cases.items()}
        return {name: f.result() for name, f in futures.items()}


# (name, args, files in the case folder): every one is a user mistake -> exit 2, one line
FIT_ERRORS = {
    "missing data file": (("fit", "missing.fasta"), {}),
    "empty data file": (("fit", "empty.fasta"), {"empty.fasta": ""}),
    "bad letters": (("fit", "bad.fasta"), {"bad.fasta": ">a\nACGTX\n>b\nACGTA\n"}),
    "unknown preset": (("fit", "{tiny}", "--preset", "dnaa"), {}),
    "unknown --set key": (("fit", "{tiny}", "--set", "train.lrr=0.1"), {}),
    "bad checkpoint path": (("sample", "no/such/run", "-o", "out.fasta"), {}),
    "non-checkpoint file": (
        ("sample", "notes.safetensors", "-o", "out.fasta"),
        {"notes.safetensors": "these are notes, not weights\n"},
    ),
}
EXPECTED_IN_MESSAGE = {
    "missing data file": "missing.fasta",
    "empty data file": "empty.fasta",
    "bad letters": "X",
    "unknown preset": "dna-large",
    "unknown --set key": "train.lr",
    "bad checkpoint path": "no/such/run",
    "non-checkpoint file": "notes.safetensors",
    "-n 0": "-n 0",
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory, tiny_fasta, tiny_cli_args, cli_env) -> dict[str, Ran]:
    """Run every subprocess of this module: fit + errors + help, then samples from the fit."""
    base = tmp_path_factory.mktemp("cli")
    fit_dir = base / "fit"
    first = {"fit": case(fit_dir, "fit", str(tiny_fasta), *tiny_cli_args)}
    for i, (name, (args, files)) in enumerate(FIT_ERRORS.items()):
        args = tuple(a.format(tiny=tiny_fasta) for a in args)
        first[name] = case(base / f"error{i}", *args, files=files)
    first["version"] = case(base / "info", "--version")
    # the fit goes first so that it finishes early; the rest fill the other workers
    results = run_all(first, cli_env)
    fit = results["fit"]
    assert fit.returncode == 0, fit.stderr
    run = "runs/tiny"  # the default run folder, runs/<data name>
    second = {
        "sample file": case(fit_dir, "sample", run, "-n", "100", "--seed", "3", "-o", "s3.fasta"),
        "sample stdout": case(fit_dir, "sample", run, "-n", "100", "--seed", "3"),
        "sample stdout seed 4": case(fit_dir, "sample", run, "-n", "100", "--seed", "4"),
        "-n 0": case(base / "zero", "sample", str(fit_dir / run), "-n", "0", "-o", "z.fasta"),
    }
    results.update(run_all(second, cli_env))
    return results


def parse_fasta(data: bytes) -> list:
    return list(SeqIO.parse(io.StringIO(data.decode()), "fasta"))


def assert_dna_samples(records: list, n: int = 100) -> None:
    assert len(records) == n
    assert all(len(r.seq) == 24 for r in records)
    assert set("".join(str(r.seq) for r in records)) <= set("ACGT")


# --- fit and sample ---------------------------------------------------------------------------


def test_fit_writes_the_default_run_folder(cli):
    fit = cli["fit"]
    run = fit.case.cwd / "runs" / "tiny"
    assert {p.name for p in run.iterdir()} == {
        "model.safetensors", "state.safetensors", "checkpoints", "config.yaml", "metrics.jsonl",
        "train.fasta.gz",
    }  # fmt: skip
    assert fit.stdout == b""  # stdout stays free for sequences
    assert "Traceback" not in fit.stderr
    assert "done" in fit.stderr
    assert "30 steps" in fit.stderr
    assert "preset dna" in fit.stderr


def test_sample_to_file(cli):
    ran = cli["sample file"]
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == b""
    assert "wrote 100 sequences" in ran.stderr
    records = list(SeqIO.parse(ran.case.cwd / "s3.fasta", "fasta"))
    assert_dna_samples(records)
    assert [r.id for r in records] == [f"sample_{i}" for i in range(1, 101)]


def test_sample_to_stdout(cli):
    ran = cli["sample stdout"]
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    assert_dna_samples(parse_fasta(ran.stdout))


def test_same_seed_gives_identical_bytes(cli):
    to_file = (cli["sample file"].case.cwd / "s3.fasta").read_bytes()
    assert cli["sample stdout"].stdout == to_file


def test_different_seed_gives_different_sequences(cli):
    a, b = cli["sample stdout"].stdout, cli["sample stdout seed 4"].stdout
    assert_dna_samples(parse_fasta(b))
    assert a != b
    assert [str(r.seq) for r in parse_fasta(a)] != [str(r.seq) for r in parse_fasta(b)]


def test_sample_to_a_file_moves_a_bar_on_a_terminal_only(cli, tmp_path, monkeypatch):
    """``sample -o FILE`` draws a progress bar that reaches n/n on a terminal, none elsewhere;
    the closing line comes either way."""
    run = cli["fit"].case.cwd / "runs" / "tiny"
    shown = {}
    for terminal in (True, False):
        buffer = io.StringIO()
        console = Console(file=buffer, force_terminal=terminal, color_system=None, width=120)
        monkeypatch.setattr(sample_cli, "err", console)
        out = tmp_path / f"{terminal}.fasta"
        result = CliRunner().invoke(app, ["sample", str(run), "-n", "7", "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert_dna_samples(list(SeqIO.parse(out, "fasta")), n=7)
        shown[terminal] = buffer.getvalue()
    assert "7/7" in shown[True] and "wrote 7 sequences" in shown[True]
    assert "7/7" not in shown[False] and "wrote 7 sequences" in shown[False]


# --- user errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*FIT_ERRORS, "-n 0"])
def test_user_error_is_one_line_and_exit_2(cli, name):
    ran = cli[name]
    assert ran.returncode == 2, ran.stderr
    assert "Traceback" not in ran.stderr
    lines = ran.stderr.splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("error: ")
    assert EXPECTED_IN_MESSAGE[name] in lines[0]
    assert ran.stdout == b""
    assert ran.after == ran.case.before  # no output file, no run folder


# --- help and info ----------------------------------------------------------------------------

runner = CliRunner()


def test_version(cli):
    ran = cli["version"]
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.decode().strip() == f"seqflow {__version__}"
    assert CliRunner().invoke(app, ["--version"]).stdout.strip() == f"seqflow {__version__}"


def test_help():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("fit", "sample", "presets"):
        assert command in result.stdout


def test_no_arguments_shows_help():
    result = runner.invoke(app, [])
    assert "fit" in result.output and "sample" in result.output


def test_fit_help_mentions_cpu_and_gpu_presets():
    result = runner.invoke(app, ["fit", "--help"], terminal_width=100)
    assert result.exit_code == 0
    text = " ".join(result.stdout.replace("│", " ").split())  # undo wrapping and box lines
    assert "CPU" in text and "GPU" in text
    for name in ("dna", "protein", "dna-large", "protein-large"):
        assert f"{name} (" in text
    assert "--resume" in text
    assert "benchmarks/quality_budget.py chose" in text  # the dna preset's defaults (issue 17)


def test_presets_lists_presets():
    result = runner.invoke(app, ["presets"], terminal_width=200)
    assert result.exit_code == 0
    rows = {line.split("│")[1].strip() for line in result.stdout.splitlines() if "│" in line}
    assert {"dna", "dna-large", "protein", "protein-large"} <= rows
    assert "GPU" in result.stdout and "CPU" in result.stdout


# --- in process (CliRunner) -------------------------------------------------------------------


def test_cli_runner_bad_set_value_is_one_line(tiny_fasta, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["fit", str(tiny_fasta), "--set", "train.steps=many"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "train.steps" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_runner_interrupted_fit_exits_130(tiny_fasta, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "fit", interrupted)
    result = runner.invoke(app, ["fit", str(tiny_fasta), "--out", str(tmp_path / "run")])
    assert result.exit_code == 130
    assert "--resume" in result.stderr


def test_cli_runner_bug_keeps_its_traceback(tiny_fasta, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(api, "sample", broken)
    result = runner.invoke(app, ["sample", "run", "-n", "3"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


# --- bad input through the command line: exit 2, one line, nothing written --------------------

BAD_INPUTS = {
    "empty.fasta": ("", [], "empty"),
    "binary.fasta": (b"\x00\x01\x02ACGT", [], "binary"),
    "headers.fasta": (">a\n>b\n", [], "empty sequence"),
    "cols.csv": ("id,sequence\nr1,ACGT\n", ["--label-col", "cell"], "'cell'"),
    "value.csv": ("sequence,act\nACGT,1.5\nACGA,high\n", ["--value-col", "act"], "high"),
    "signal.csv": ("sequence,track\nACGT,1 2 3 4\nACGA,1 2 3\n", ["--signal-col", "track"],
                   "3 values"),
    "mixed.fasta": (">d1\nACGTACGTACGTAC\n>d2\nACGTTGCAACGTAA\n>d3\nGGCCTTAAGGCCTA\n"
                    ">p1\nMKWLLQERPSDEFH\n", [], "mixed alphabets"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_cli_bad_input_is_one_line_exit_2_and_nothing_written(name, tmp_path, monkeypatch):
    content, options, expected = BAD_INPUTS[name]
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["fit", str(path), "--out", "run", *options])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and name in result.stderr
    assert expected in result.stderr, result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_duplicate_ids_warn_in_one_line(tmp_path, monkeypatch, tiny_cli_args):
    path = tmp_path / "dup.fasta"
    path.write_text("".join(f">same\n{'ACGT' * 6}\n>r{i}\n{'TGCA' * 6}\n" for i in range(10)))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["fit", str(path), "--out", "run", *tiny_cli_args,
                                 "--set", "train.steps=2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "duplicate" in lines[0] and "dup.fasta" in lines[0]


def test_help_keeps_bracketed_defaults_and_condition_options():
    sample_help = runner.invoke(app, ["sample", "--help"], env={"COLUMNS": "200"}).stdout
    assert "[default: 100, or one per --signal row]" in sample_help
    assert "--value" in sample_help and "--signal" in sample_help
    fit_help = runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "200"}).stdout
    for option in ("--value-col", "--signal-col", "--signal-file", "--split-col", "--on-invalid",
                   "--max-length", "--crop", "[default: the longest in the data]"):  # fmt: skip
        assert option in fit_help, option
