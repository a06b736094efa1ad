"""Messages (issue 18, point 6): long lists are cut, letters errors name the CLI flags, usage
errors and symbolic link loops are one line each, with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from seqflow.cli import app
from seqflow.data import read_sequences
from seqflow.errors import InvalidInputError, listed
from seqflow.sampling import label_index


def seqflow(*args: str, env: dict[str, str], cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqflow", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)  # fmt: skip


def test_a_long_list_is_cut_to_its_first_items_and_a_count():
    labels = [f"cell_type_{i}" for i in range(10_000)]
    with pytest.raises(ValueError) as info:
        label_index(labels, "NOPE")
    message = str(info.value)
    assert len(message) < 250 and message.endswith(", ... (9992 more)")
    assert "cell_type_7," in message and "cell_type_8," not in message
    assert listed(["a", "b"]) == "a, b" and listed("x" * 50 for _ in range(1)) == "x" * 39 + "…"


def test_invalid_letter_errors_name_the_cli_flags(tmp_path, cli_env):
    data = tmp_path / "n.fasta"
    data.write_text(">a\nACGTN\n>b\nACGTA\n")
    with pytest.raises(InvalidInputError) as info:
        read_sequences(data)
    assert "--alphabet ACGTN" in str(info.value) and "--on-invalid skip or replace" in str(
        info.value
    )
    done = seqflow("fit", str(data), "--out", str(tmp_path / "run"), env=cli_env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--alphabet ACGTN" in done.stderr and "--on-invalid" in done.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [(["sample", "run", "--bogus"], "No such option: --bogus"),
     (["sample"], "Missing argument"),
     (["fit", "x.fa", "--steps", "many"], "--steps"),
     (["bogus"], "No such command")],
)  # fmt: skip
def test_usage_errors_are_one_line_with_exit_code_2(args, says, cli_env):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr
    assert result.stderr.startswith("error: ") and "╭" not in result.stderr


def test_a_usage_error_in_a_subprocess_is_one_line(cli_env):
    done = seqflow("sample", "run", "-n", "x", env=cli_env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "'-n'" in done.stderr, done.stderr


def test_a_symbolic_link_loop_is_named_as_one(tmp_path, cli_env):
    (tmp_path / "a.fa").symlink_to(tmp_path / "b.fa")
    (tmp_path / "b.fa").symlink_to(tmp_path / "a.fa")
    (tmp_path / "gone.fa").symlink_to(tmp_path / "nowhere.fa")
    for name, says in (("a.fa", "symbolic link loop (ELOOP)"), ("gone.fa", "broken symbolic link")):
        done = seqflow("fit", name, "--out", "run", env=cli_env, cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1
        assert says in done.stderr and "no such file" not in done.stderr, done.stderr
    done = seqflow("sample", "a.fa", env=cli_env, cwd=tmp_path)
    assert done.returncode == 2 and "symbolic link loop" in done.stderr
