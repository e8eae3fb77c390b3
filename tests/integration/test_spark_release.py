"""A stage run with ``end_spark`` leaves no JVM of its own behind, and the next Spark stage
in the same process starts a working one (``ranking-jobs night`` and ``airflow dags test``
run every stage in one process); a session the caller already had is left alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import os
    from pyspark import SparkContext
    from ranking_jobs.settings import Settings
    from ranking_jobs.runner import run_stage
    from ranking_jobs.spark import get_spark, release_spark, spark_running

    settings = Settings(spark_shuffle_partitions=2)
    assert not spark_running()
    first = get_spark(settings, "release-test")
    assert first.range(10).count() == 10
    jvm = SparkContext._gateway.proc
    release_spark()
    jvm.wait(timeout=30)  # raises if the JVM outlived its release
    print("first jvm exit", jvm.returncode)
    release_spark()  # nothing left to release: a no-op
    second = get_spark(settings, "release-test")
    assert SparkContext._gateway.proc.pid != jvm.pid
    print("second session sums", second.range(100).groupBy().sum("id").first()[0])
    # a stage run with end_spark while a session was running leaves it running (here the
    # stage fails at once, on a missing lake: the release runs in its `finally`)
    try:
        run_stage("validate_raw", None, end_spark=True)
    except AttributeError:
        pass  # no context to run in: the stage fails before any work
    else:
        raise SystemExit("the stage without a context ran")
    assert spark_running()
    print("kept session sums", second.range(10).groupBy().sum("id").first()[0])

    # a stage failing inside the JVM it started: its error is still readable as text
    # after the release (a pyspark error reads its message from the JVM)
    import dataclasses
    import datetime as dt
    from ranking_jobs import profile, stages
    from ranking_jobs.context import RunContext
    from ranking_jobs.runner import SparkJobError

    def failing(ctx):
        get_spark(settings, "failing").range(3).select("no_such_column").collect()

    release_spark()
    stage = stages.STAGES[profile.STAGE]  # the one stage run without a profile
    stages.STAGES[profile.STAGE] = dataclasses.replace(stage, target="__main__:failing")
    try:
        run_stage(profile.STAGE, RunContext.create(dt.date(2026, 1, 31), settings), end_spark=True)
    except SparkJobError as error:
        print("failed stage says", str(error).splitlines()[0])
    assert not spark_running()
    """
)


def test_release_ends_the_jvm_and_a_new_session_starts(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "first jvm exit" in done.stdout
    assert "second session sums 4950" in done.stdout
    assert "kept session sums 45" in done.stdout
    said = done.stdout.split("failed stage says ")[1]
    assert said.startswith("profile_data: AnalysisException") and "no_such_column" in said
