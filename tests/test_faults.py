"""Faults of the operating system, as users meet them: a read-only or full disk, a closed or
full standard output, a reader that leaves the pipe, a file where a folder must go, SIGTERM,
SIGHUP and ``kill -9`` while writing, and two runs in one folder; then the user mistakes and
altered files of issue 18 (seeds out of range, a model too big for memory, a resume that cannot
apply or whose data changed, a prefix longer than the model, edited checkpoint metadata, invalid
letters, a symlink loop, a usage error, a symlink inside a run folder).

Every case runs ``python -m seqflow`` in a real subprocess and checks one line on stderr, the
exit code, and that nothing is left behind (no ``*.tmp``, no ``config.yaml``, no half-made run
folder). The plain cases run concurrently in one module fixture (the imports are the cost);
read-only and full disks are tmpfs mounts, made only when the tests run as root (skipped
otherwise), and ``/dev/full``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from safetensors import SafetensorError

from seqflow import api
from seqflow.cli._errors import BROKEN_PIPE_EXIT
from seqflow.errors import InvalidInputError, OutputError
from seqflow.io_utils import (
    CHECKSUM_KEY,
    atomic_write,
    os_cause,
    remove_stale_temps,
    reporting_writes,
)
from seqflow.run import CONFIG_FILE, LOCK_FILE, METRICS_FILE, MODEL_FILE
from seqflow.run.lock import run_lock

TIMEOUT = 120
WORKERS = 4


def seqflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "seqflow", *args]


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def leftovers(folder: Path) -> list[Path]:
    """Temporary files and configurations that a failed command must not leave."""
    return [*folder.rglob("*.tmp"), *folder.rglob(CONFIG_FILE)]


def mount_tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("tmpfs mounts need root")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def unmount(where: Path) -> None:
    subprocess.run(["umount", str(where)], capture_output=True)


@dataclass(frozen=True)
class Case:
    """One command; ``stdout`` is ``pipe``, ``full`` (/dev/full), ``closed`` (``>&-``) or
    ``broken`` (a pipe whose reader already left); ``stop``: the signal sent as soon as a
    temporary file appears in ``cwd`` (the command is writing)."""

    args: tuple[str, ...]
    cwd: Path
    stdout: str = "pipe"
    stop: str | None = None


@dataclass(frozen=True)
class Ran:
    returncode: int
    stderr: str
    before: frozenset[str]
    after: frozenset[str]
    pid: int
    cwd: Path

    @property
    def lines(self) -> list[str]:
        return self.stderr.strip().splitlines()


def run_case(c: Case, env: dict[str, str]) -> Ran:
    before = frozenset(listing(c.cwd))
    cmd, stdout, close = seqflow(*c.args), subprocess.PIPE, []
    if c.stdout == "full":
        stdout = os.open("/dev/full", os.O_WRONLY)
        close.append(stdout)
    elif c.stdout == "closed":
        cmd = ["sh", "-c", 'exec "$0" "$@" >&-', *cmd]
    elif c.stdout == "broken":
        reader, stdout = os.pipe()
        os.close(reader)
        close.append(stdout)
    proc = subprocess.Popen(
        cmd, cwd=c.cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if c.stop is not None:
            wait_for_temp(c.cwd, proc)
            proc.send_signal(getattr(signal, c.stop))
        _, stderr = proc.communicate(timeout=TIMEOUT)  # reaped: its PID is free
    finally:
        proc.kill()
        for fd in close:
            os.close(fd)
    after = frozenset(listing(c.cwd))
    return Ran(proc.returncode, stderr.decode(), before, after, proc.pid, c.cwd)


def wait_for_temp(folder: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not list(folder.glob(".*.tmp")):
        assert proc.poll() is None, "the command ended before it wrote"
        assert time.monotonic() < deadline, "the command never started writing"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_fasta, tiny_fit_kwargs) -> Path:
    """One tiny trained run, shared by every case that needs a checkpoint."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    api.fit(tiny_fasta, out=run_dir, **tiny_fit_kwargs)
    return run_dir


@pytest.fixture(scope="module")
def disks(tmp_path_factory, trained):
    """A read-only tmpfs holding a copy of the trained run and an empty folder ``x``, and a
    full one (100 kB); None where tmpfs cannot be mounted."""
    base = tmp_path_factory.mktemp("disks")
    ro, full = base / "ro", base / "full"
    try:
        mount_tmpfs(ro, "1m")
    except pytest.skip.Exception as skipped:
        yield None, str(skipped)
        return
    mount_tmpfs(full, "100k")
    shutil.copytree(trained, ro / "run")
    (ro / "x").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
    yield (ro, full), ""
    unmount(ro)
    unmount(full)


CASES = {
    "sample -o /dev/full": ("sample {run} -n 50 -o /dev/full", "pipe"),
    "sample > /dev/full": ("sample {run} -n 50", "full"),
    "sample >&-": ("sample {run} -n 50", "closed"),
    "sample | (reader gone)": ("sample {run} -n 50", "broken"),
    "fit --out EXISTING_FILE": ("fit {data} --out afile --steps 5", "pipe"),
}
STOPPED = ("SIGTERM", "SIGHUP", "SIGKILL")
HUP_IGNORED = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
"""A test run under ``nohup`` passes its ignored SIGHUP on to every command it starts, which
then rightly keeps ignoring it (``test_an_ignored_signal_stays_ignored``)."""
"""Signals sent to ``sample -n 1000000 -o out.fasta`` while it writes."""
DISK_CASES = {
    "read-only fit --out": "fit {data} --out {ro}/new {tiny}",
    "read-only fit --resume": "fit --resume {ro}/run --steps 40",
    "read-only sample -o": "sample {ro}/run -n 5 -o {ro}/x/s.fasta",
    "read-only evaluate --json": "evaluate {data} -r {data} --json {ro}/x/e.json",
    "read-only export -o": "export {ro}/run -f safetensors -o {ro}/x/m.st",
    "read-only oracle fit": "oracle fit {csv} --target cell_type --steps 3 -o {ro}/x/o.st",
    "full disk fit": "fit {data} --out {full}/run {tiny}",
}
MESSAGES = {
    "sample -o /dev/full": "error: cannot write /dev/full: no space left on device",
    "sample > /dev/full": "error: cannot write standard output: no space left on device",
    "sample >&-": "error: cannot write standard output: closed",
    "fit --out EXISTING_FILE": "error: afile: is a file, not a run folder; choose another --out",
    "read-only fit --out": "error: cannot create {ro}/new: read-only file system",
    "read-only fit --resume": "error: cannot write {ro}/run/.lock: read-only file system",
    "read-only sample -o": "error: cannot write {ro}/x/s.fasta: read-only file system",
    "read-only evaluate --json": "error: cannot write {ro}/x/e.json: read-only file system",
    "read-only export -o": "error: cannot write {ro}/x/m.st: read-only file system",
    "read-only oracle fit": "error: cannot write {ro}/x/o.st: read-only file system",
    "full disk fit": "error: cannot write {full}/run/checkpoints/step-00000030/",
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory, trained, disks, tiny_fasta, tiny_csv, tiny_cli_args, cli_env):
    """Every case but the concurrent runs, each in its own folder, four at a time."""
    base = tmp_path_factory.mktemp("faults")
    fields = {
        "run": str(trained), "data": str(tiny_fasta), "csv": str(tiny_csv),
        "tiny": " ".join(tiny_cli_args),
    }  # fmt: skip
    cases = {name: (args, stdout) for name, (args, stdout) in CASES.items()}
    mounts, _ = disks
    if mounts is not None:
        fields.update(ro=str(mounts[0]), full=str(mounts[1]))
        cases.update({name: (args, "pipe") for name, args in DISK_CASES.items()})
    built = {}
    for i, (name, (args, stdout)) in enumerate(cases.items()):
        cwd = base / f"case{i}"
        cwd.mkdir()
        (cwd / "afile").write_text("not a folder\n")
        built[name] = Case(tuple(args.format(**fields).split()), cwd, stdout)
    for sig in STOPPED:
        if sig == "SIGHUP" and HUP_IGNORED:
            continue
        cwd = base / sig
        cwd.mkdir()
        args = ("sample", str(trained), "-n", "1000000", "-o", "out.fasta")
        built[sig] = Case(args, cwd, stop=sig)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {name: pool.submit(run_case, c, cli_env) for name, c in built.items()}
        results = {name: f.result() for name, f in futures.items()}
    return results, fields


@pytest.mark.parametrize("name", [*MESSAGES])
def test_an_os_failure_is_one_line_exit_2_and_leaves_nothing(ran, disks, name):
    results, fields = ran
    if name in DISK_CASES and disks[0] is None:
        pytest.skip(disks[1])
    result = results[name]
    assert result.returncode == 2, result.stderr
    # one line; fit's plan and progress lines on stderr may come before it
    assert [line for line in result.lines if line.startswith("error:")] == result.lines[-1:]
    assert len(result.lines) == 1 or name.startswith(("full disk fit", "read-only fit")), (
        result.stderr
    )
    assert result.lines[-1].startswith(MESSAGES[name].format(**fields)), result.stderr
    assert "Traceback" not in result.stderr
    assert result.after == result.before
    if name == "full disk fit":
        assert "no space left on device" in result.lines[-1]
        full = Path(fields["full"])
        assert listing(full) == set()  # the run folder it made is gone: no config.yaml, no .tmp


def test_a_reader_leaving_the_pipe_ends_quietly_with_141(ran):
    result = ran[0]["sample | (reader gone)"]
    assert result.returncode == BROKEN_PIPE_EXIT == 141
    assert result.stderr == ""


# --- signals and kill -9 while sample writes its file -------------------------------------------


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_a_signal_during_sample_removes_its_temporary_file(ran, sig):
    if sig == "SIGHUP" and HUP_IGNORED:
        pytest.skip("SIGHUP is ignored in this test run (nohup), and so in its commands")
    result = ran[0][sig]
    assert result.returncode == 128 + getattr(signal, sig), result.stderr
    assert result.stderr == ""
    assert result.after == result.before == set()


def test_the_next_write_removes_the_temporary_file_of_a_killed_writer(ran):
    result = ran[0]["SIGKILL"]
    assert result.returncode == -signal.SIGKILL
    (stale,) = result.after  # kill -9 leaves the temporary file
    assert stale.startswith(f".out.fasta.{result.pid}-")  # named after its writer's PID
    host = stale.split("-")[1]
    live = f".other.fasta.{os.getpid()}-{host}-0123abcd.tmp"
    (result.cwd / live).write_text("a live writer's file\n")
    with atomic_write(result.cwd / "next.txt") as handle:  # any write into the folder
        handle.write("x\n")
    assert listing(result.cwd) == {"next.txt", live}  # the dead writer's file is gone


def test_a_temporary_file_of_an_older_seqflow_is_removed_on_resume(tmp_path):
    old = tmp_path / "checkpoints" / ".model.safetensors.0a1b2c3d.tmp"
    old.parent.mkdir()
    old.write_text("half a checkpoint")
    assert remove_stale_temps(tmp_path) == [old]


# --- in process: the message of a failed write ---------------------------------------------------


def test_a_failed_write_names_the_file_and_the_cause_and_stays_an_oserror(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(OutputError) as info, atomic_write(target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a full disk's write does
    assert str(info.value) == f"cannot write {target}: no space left on device"
    assert isinstance(info.value, OSError)
    assert listing(tmp_path) == set()


def test_safetensors_errors_give_the_os_cause():
    error = SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)"
    )
    assert os_cause(error) == "no space left on device"


def test_an_error_about_another_file_or_already_reported_passes_through(tmp_path):
    other = OSError(errno.ENOENT, "No such file or directory", str(tmp_path / "input.fa"))
    with pytest.raises(OSError) as info, reporting_writes(tmp_path / "out.txt"):
        raise other
    assert info.value is other
    inner = tmp_path / "README.md"
    with (
        pytest.raises(OutputError, match=f"^cannot write {inner}: read-only file system$"),
        atomic_write(tmp_path / "model.pt"),  # the outer write does not claim the inner's error
        atomic_write(inner),
    ):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))


# --- one run per folder --------------------------------------------------------------------------


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"%d\\n" % os.getpid())
print("locked", flush=True)
sys.stdin.read()
"""


def hold_lock(run_dir: Path) -> subprocess.Popen:
    """Another process holding ``run_dir``'s lock until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir / LOCK_FILE)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
    return proc


def test_a_held_lock_refuses_and_names_its_holder_then_frees(tmp_path):
    holder = hold_lock(tmp_path)
    try:
        refusal = f"{tmp_path}: in use by another seqflow run \\(PID {holder.pid}, lock file"
        with pytest.raises(InvalidInputError, match=refusal), run_lock(tmp_path):
            pass
    finally:
        holder.communicate("")
    with run_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / LOCK_FILE).exists()  # let go: the file goes with it


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path):
    holder = hold_lock(tmp_path)
    holder.kill()
    holder.communicate()
    assert (tmp_path / LOCK_FILE).read_text() == f"{holder.pid}\n"  # a stale file is left
    with run_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_two_fits_in_one_folder_one_runs_the_other_is_refused(
    tiny_fasta, tiny_cli_args, tmp_path, cli_env
):
    def fit(more: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(
            seqflow("fit", *more), env=cli_env, capture_output=True, text=True, timeout=TIMEOUT
        )

    run_dir = tmp_path / "run"
    args = [str(tiny_fasta), "--out", str(run_dir), *tiny_cli_args, "--steps", "1000000"]
    args += ["--set", "train.checkpoint_every=1000000"]
    first = subprocess.Popen(
        seqflow("fit", *args), env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        lock = run_dir / LOCK_FILE
        deadline = time.monotonic() + TIMEOUT
        while not (lock.is_file() and lock.read_text()):  # training, lock held, PID written
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with ThreadPoolExecutor(2) as pool:  # a second fit, and a resume, while it trains
            second, resumed = pool.map(fit, [args, ["--resume", str(run_dir)]])
        assert first.poll() is None  # the first still trains
        first.send_signal(signal.SIGTERM)  # then stops with a checkpoint
        _, first_err = first.communicate(timeout=TIMEOUT)
    finally:
        first.kill()
    refusal = f"error: {run_dir}: in use by another seqflow run (PID {first.pid}"
    for refused in (second, resumed):
        assert refused.returncode == 2
        assert refused.stderr.startswith(refusal) and len(refused.stderr.splitlines()) == 1
    assert first.returncode == 128 + signal.SIGTERM, first_err
    steps = [json.loads(line)["step"] for line in (run_dir / METRICS_FILE).open()]
    assert steps == sorted(set(steps))  # one run's log, not two interleaved
    assert (run_dir / MODEL_FILE).is_file() and (run_dir / CONFIG_FILE).is_file()
    assert not list(run_dir.rglob("*.tmp")) and not lock.exists()
    api.sample(run_dir, n=2, seed=0)  # the survivor's checkpoint loads


# --- user mistakes and altered files, as issue 18 met them ---------------------------------------


LONG_PREFIX = "A" * 30
"""Six letters more than the tiny model's length, 24."""
REFUSED = {
    "fit --seed -1": (
        "fit {data} --out new --seed -1",
        ["--seed: train.seed: must be in [0, 2^63)"],
    ),
    "sample --seed 1e23": (
        "sample {run} --seed 99999999999999999999999",
        ["--seed 99999999999999999999999: must be in [0, 2^63)"],
    ),
    "fit model.hidden=1000000": (
        "fit {data} --out new --set model.hidden=1000000",
        ["T parameters, length 24", "a training step (~", "use a smaller model.hidden"],
    ),
    "resume --set model.depth=9": (
        "fit --resume run --set model.depth=9",
        ["--resume: cannot change 'model.depth' of an existing run"],
    ),
    "resume on edited data": (
        "fit --resume run --steps 40",
        ["data.fasta: changed since the run recorded it", "--allow-changed-data"],
    ),
    "sample --prefix too long": (
        f"sample {{run}} --prefix {LONG_PREFIX}",
        ["30 fixed letters do not fit the model's length 24"],
    ),
    "alphabet edited to TGCA": ("sample alphabet.safetensors -n 2", ["checksum mismatch"]),
    "checksum removed": ("sample unsummed.safetensors -n 2", ["no checksum (format 3 files"]),
    "invalid letters": (
        "fit bad.fasta --out new {tiny}",
        ["invalid letter 'N'", "--alphabet ACGTN", "--on-invalid skip"],
    ),
    "symlink loop": ("fit loop.fasta --out new {tiny}", ["loop.fasta: a symbolic link loop"]),
    "usage error": ("sample {run} --bogus", ["No such option: --bogus"]),
    "symlinked metrics.jsonl": (
        "fit --resume run --steps 40",
        ["run/metrics.jsonl: is a symbolic link"],
    ),
}


def edit_metadata(path: Path, change) -> None:
    """Apply ``change`` to the metadata of the safetensors file ``path`` in place: the header
    JSON is rewritten and padded with spaces to its old size, the tensors stay where they are."""
    raw = bytearray(path.read_bytes())
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    change(header["__metadata__"])
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= size
    raw[8 : 8 + size] = text.ljust(size)
    path.write_bytes(raw)


def complemented(metadata: dict) -> None:
    """The alphabet's letters replaced by their complements: sampling would complement."""
    metadata["alphabet"] = json.dumps({**json.loads(metadata["alphabet"]), "letters": "TGCA"})


def prepare(name: str, cwd: Path, trained: Path, tiny_fasta: Path, tiny_fit_kwargs) -> None:
    """The files the case ``name`` needs in its folder ``cwd``."""
    if name in ("resume --set model.depth=9", "symlinked metrics.jsonl"):
        shutil.copytree(trained, cwd / "run")
    if name == "symlinked metrics.jsonl":
        (cwd / "run" / METRICS_FILE).rename(cwd / "elsewhere.jsonl")
        (cwd / "run" / METRICS_FILE).symlink_to(cwd / "elsewhere.jsonl")
    elif name == "resume on edited data":
        data = cwd / "data.fasta"
        shutil.copyfile(tiny_fasta, data)
        api.fit(data, out=cwd / "run", **tiny_fit_kwargs)
        lines = data.read_text().splitlines(keepends=True)
        lines[1] = lines[1].translate(str.maketrans("ACGT", "TGCA"))  # same size
        data.write_text("".join(lines))
    elif name == "alphabet edited to TGCA":
        shutil.copyfile(trained / MODEL_FILE, cwd / "alphabet.safetensors")
        edit_metadata(cwd / "alphabet.safetensors", complemented)
    elif name == "checksum removed":
        shutil.copyfile(trained / MODEL_FILE, cwd / "unsummed.safetensors")
        edit_metadata(cwd / "unsummed.safetensors", lambda metadata: metadata.pop(CHECKSUM_KEY))
    elif name == "invalid letters":
        (cwd / "bad.fasta").write_text(
            ">a\nACGTNACGTACGTACGTACGTACGT\n>b\nACGTACGTACGTACGTACGTACGT\n"
        )
    elif name == "symlink loop":
        (cwd / "loop.fasta").symlink_to("loop.fasta")


@pytest.fixture(scope="module")
def refused(tmp_path_factory, trained, tiny_fasta, tiny_fit_kwargs, tiny_cli_args, cli_env):
    """Every case of ``REFUSED``, each in its own folder, four at a time."""
    base = tmp_path_factory.mktemp("refused")
    fields = {"run": str(trained), "data": str(tiny_fasta), "tiny": " ".join(tiny_cli_args)}
    built = {}
    for i, (name, (args, _)) in enumerate(REFUSED.items()):
        cwd = base / f"case{i}"
        cwd.mkdir()
        prepare(name, cwd, trained, tiny_fasta, tiny_fit_kwargs)
        built[name] = Case(tuple(args.format(**fields).split()), cwd)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {name: pool.submit(run_case, c, cli_env) for name, c in built.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", [*REFUSED])
def test_a_mistake_or_an_altered_file_is_one_line_exit_2_and_leaves_nothing(refused, trained, name):
    result = refused[name]
    assert result.returncode == 2, result.stderr
    # one line; a resumed fit's plan line on stderr may come before it
    assert [line for line in result.lines if line.startswith("error:")] == result.lines[-1:]
    assert len(result.lines) == 1 or name == "symlinked metrics.jsonl", result.stderr
    for fragment in REFUSED[name][1]:
        assert fragment in result.lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert result.after == result.before  # no new folder, no .tmp, no lock file
    if name == "symlinked metrics.jsonl":  # the link's target is untouched
        target = (result.cwd / "elsewhere.jsonl").read_bytes()
        assert target == (trained / METRICS_FILE).read_bytes()
