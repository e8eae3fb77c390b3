"""A long Spark action reports its finished tasks while it runs."""

from __future__ import annotations

import logging
import time

import pytest

from ranking_jobs.spark import task_progress


def _slow(x: int) -> int:
    time.sleep(0.5)
    return x


def test_a_long_action_logs_its_finished_tasks(spark, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="ranking_jobs.spark"),
        task_progress(spark, "sleepers", every_s=0.2),
    ):
        assert sorted(spark.sparkContext.parallelize(range(8), 8).map(_slow).collect()) == list(
            range(8)
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "ranking_jobs.spark"]
    assert any(line.startswith("sleepers: ") and " of 8 tasks finished" in line for line in lines)
    finished = [int(line.split()[1]) for line in lines]
    assert finished == sorted(finished)  # counts only grow
    assert len(lines) >= 3
