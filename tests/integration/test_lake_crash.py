"""A writer killed at random points leaves the partition whole: the old version or the
new one, never none and never a mix (local lake: one atomic exchange of folders)."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
import time
from collections import Counter

import pyarrow as pa
import pytest

from ranking_jobs import lake
from tests.conftest import make_settings

TABLE, DAY, TRIALS = "crash_test", dt.date(2026, 1, 31), 10
ROWS = {0: 80_000, 1: 50_000}  # each version has its own size, so a mix shows

WRITER = """
import datetime as dt, itertools, sys
import pyarrow as pa
from ranking_jobs import lake
from ranking_jobs.settings import Settings
settings = Settings(data_root=sys.argv[1], state_dir=sys.argv[2])
for i in itertools.count(1):
    v, n = i % 2, {0: 80_000, 1: 50_000}[i % 2]
    table = pa.table({"v": pa.array([v] * n, pa.int8()), "x": pa.array(range(n))})
    lake.write_partition(settings, "crash_test", dt.date(2026, 1, 31), table)
    print(i, flush=True)
"""


def _version(v: int) -> pa.Table:
    return pa.table({"v": pa.array([v] * ROWS[v], pa.int8()), "x": pa.array(range(ROWS[v]))})


def test_a_writer_killed_at_random_points_leaves_one_whole_partition(tmp_path):
    settings = make_settings(tmp_path)
    lake.write_partition(settings, TABLE, DAY, _version(0))
    rng = random.Random(11)
    seen: Counter[int] = Counter()
    writes = 0
    for _ in range(TRIALS):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, settings.data_root, str(settings.state_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        proc.stdout.readline()  # one whole write done: the next ones are under way
        time.sleep(rng.uniform(0, 0.15))
        proc.kill()
        out, _ = proc.communicate()
        writes += 1 + len(out.split())
        table = lake.read_partition(settings, TABLE, DAY)  # raises if the partition is gone
        versions = set(table["v"].to_pylist())
        assert len(versions) == 1, f"a mix of versions {versions}"
        (v,) = versions
        assert table.num_rows == ROWS[v] and table["x"].to_pylist() == list(range(ROWS[v]))
        seen[v] += 1
    print(f"{TRIALS} kills after {writes} finished writes: saw version 0 {seen[0]}x, 1 {seen[1]}x")
    assert seen[0] and seen[1], seen  # the kills landed at different points of the loop


def test_replacing_a_partition_renames_nothing(tmp_path, monkeypatch):
    """The swap is one exchange of folders, so there is no instant between two renames
    at which a kill could leave the partition absent: with every rename failing, the
    replacement still lands whole."""
    from pathlib import Path

    settings = make_settings(tmp_path)
    lake.write_partition(settings, TABLE, DAY, _version(0))

    def no_rename(self, target):
        raise AssertionError(f"renamed {self} -> {target}")

    monkeypatch.setattr(Path, "rename", no_rename)
    if not lake._exchange(Path(tmp_path), Path(tmp_path)):
        pytest.skip("this file system has no atomic exchange (renameat2)")
    lake.write_partition(settings, TABLE, DAY, _version(1))
    assert lake.read_partition(settings, TABLE, DAY).num_rows == ROWS[1]
