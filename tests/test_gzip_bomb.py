"""Gzip limits are checked while streaming (issue 18, point 7): a bomb stops after
``STREAM_FLOOR`` bytes, at its running compression ratio, not at the size limit."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import textwrap

import pytest

from seqflow.data import _source as gzip_module
from seqflow.data import read_sequences
from seqflow.errors import InvalidInputError


def bomb(megabytes: int) -> bytes:
    """A FASTA record of ``megabytes`` MiB of one letter, as 1 MiB gzip members (ratio ~1000)."""
    member = gzip.compress(b"A" * (1 << 20), compresslevel=9, mtime=0)
    return gzip.compress(b">bomb\n", mtime=0) + member * megabytes


def test_a_bomb_stops_at_its_running_ratio_long_before_the_size_limit(tmp_path, monkeypatch):
    monkeypatch.delenv(gzip_module.LIMIT_VARIABLE, raising=False)
    path = tmp_path / "bomb.fa.gz"
    path.write_bytes(bomb(48))  # 48 MiB in 50 KB; the size limit would allow 2 GiB
    with pytest.raises(InvalidInputError) as info:
        read_sequences(path)
    message = str(info.value)
    assert message.startswith(f"{path}: gzip data decompresses to more than 128 times its size")
    assert "\n" not in message and gzip_module.LIMIT_VARIABLE in message
    monkeypatch.setenv(gzip_module.LIMIT_VARIABLE, "0")  # the user's word lifts the check
    assert read_sequences(path).length == 48 << 20


_MEASURE = textwrap.dedent("""
    import json, resource, sys, time
    from pathlib import Path

    def peak_mib():
        # Linux carries ru_maxrss over an exec from the forking parent (pytest, hundreds of
        # MB): the process's own high-water mark is VmHWM
        status = Path("/proc/self/status")
        if status.exists():
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM"))
            return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from seqflow.data import read_sequences
    before = peak_mib()
    start = time.perf_counter()
    try:
        read_sequences(sys.argv[1])
        outcome = "read"
    except Exception as err:
        outcome = str(err)
    print(json.dumps({"seconds": time.perf_counter() - start, "outcome": outcome,
                      "import_mib": before, "peak_mib": peak_mib()}))
""")


def measured(path, env) -> dict:
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_a_41_mb_bomb_stops_in_seconds_with_flat_memory(tmp_path, cli_env):
    """The issue's case: 41 MB of gzip decompressing to about 41 GiB took 181 s and 3.5 GB
    before. Measured on 2 busy cores: 0.3 s and 259 MiB peak RSS (227 MiB of it the imports,
    before the clock starts), against 25 to 55 s and 2.9 GiB without the running ratio."""
    path = tmp_path / "bomb.fa.gz"
    path.write_bytes(gzip.compress(b">bomb\n", mtime=0))
    member = gzip.compress(b"A" * (100 << 20), compresslevel=9, mtime=0)
    with path.open("ab") as handle:
        for _ in range((41 << 20) // len(member)):
            handle.write(member)
    env = {k: v for k, v in cli_env.items() if k != gzip_module.LIMIT_VARIABLE}
    result = measured(path, env)
    assert "more than 128 times its size" in result["outcome"], result
    assert result["seconds"] < 10 and result["peak_mib"] < 500, result
    # a very repetitive real file (one 200-letter sequence 170,000 times: ratio ~70) still reads
    rng = random.Random(0)
    seq = "".join(rng.choices("ACGT", k=200))
    plain = tmp_path / "repeats.fa.gz"
    plain.write_bytes(gzip.compress("".join(f">s{i}\n{seq}\n" for i in range(170_000)).encode()))
    assert measured(plain, env)["outcome"] == "read"
