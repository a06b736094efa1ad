"""One writer per run folder: an advisory ``fcntl.flock`` on ``.lock`` in the folder.

The kernel releases the lock when its holder exits, however it ends (``kill -9`` included), so
a lock is never stale. The holder writes its PID into the file for the refusal message and
removes the file when it lets go (a process that locked a removed file tries again on the new
one). Where ``fcntl`` is missing (Windows) runs are not locked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqflow.errors import InvalidInputError
from seqflow.io_utils import reporting_writes
from seqflow.training.distributed import shard_from_env

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
"""The lock file of a run folder, holding the PID of the process that trains in it."""


def check_free(run_dir: Path) -> None:
    """Refuse, before any work is done, a run folder that is a file or that another process
    holds (:func:`run_lock` takes the lock later). Under ``torchrun`` only rank 0 checks."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InvalidInputError(f"{run_dir}: is a file, not a run folder; choose another --out")
    if shard_from_env().main and (run_dir / LOCK_FILE).is_file():
        with run_lock(run_dir):
            pass


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the lock of ``run_dir`` (an existing folder) while the block runs; raise
    :class:`InvalidInputError` naming the PID of another live process that holds it."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    path = run_dir / LOCK_FILE
    fd = _locked(path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        if _same_file(path, fd):
            path.unlink(missing_ok=True)
        os.close(fd)


def _locked(path: Path) -> int:
    """A descriptor of ``path`` holding its exclusive lock."""
    while True:
        with reporting_writes(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise InvalidInputError(
                f"{path.parent}: in use by another seqflow run (PID {holder}, lock file "
                f"{path}); wait for it to end or choose another --out"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(path, fd):
            return fd
        os.close(fd)  # its holder removed the file as it let go: lock the new one


def _holder(fd: int) -> str:
    """The PID the holder wrote (it writes it just after locking: wait a moment for it)."""
    for _ in range(50):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.01)
    return "unknown"


def _same_file(path: Path, fd: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False
