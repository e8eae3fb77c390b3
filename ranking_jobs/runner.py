"""Running one stage: the night's settings, lineage recording, timing and its summary.

The CLI, the Airflow tasks, the benches and the tests all run a stage through here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ranking_jobs.stages import STAGES

log = logging.getLogger(__name__)


class SparkJobError(RuntimeError):
    """A Spark job of a stage failed; the JVM's error, as text."""


def run_stage(name: str, ctx: Any, end_spark: bool = False) -> dict[str, Any]:
    """Run one stage for a RunContext and log how long it took.

    ``end_spark``: end the JVM the stage started once it is done (one that was running
    before it, a caller's session, is left alone). A process that runs several stages
    (``ranking-jobs night``, ``airflow dags test``) otherwise keeps the driver's heap
    (4.7 GiB at ``medium``) through the pandas stages after the features.
    """
    if end_spark:
        from ranking_jobs.spark import release_spark, spark_running

        started_here = not spark_running()
        try:
            return run_stage(name, ctx)
        except Exception as error:
            if started_here and type(error).__module__.split(".")[0] in ("py4j", "pyspark"):
                # Its message is read from the JVM, which is about to end: keep it as text.
                raise SparkJobError(f"{name}: {type(error).__name__}: {error}") from None
            raise
        finally:
            if started_here:
                release_spark()
    from ranking_jobs import lake, profile, summaries  # not at import: the CLI starts light

    stage = STAGES[name]
    if name != profile.STAGE:
        ctx = profile.with_profile(ctx)
    log.info("stage %s for %s (run %s) starting", name, ctx.ds_str, ctx.run_id)
    started = time.perf_counter()
    with lake.recording() as access:
        result = dict(stage.load()(ctx))
    seconds = time.perf_counter() - started
    undeclared = stage.undeclared(access.touched, access.wrote)
    if undeclared:  # the declaration (the README's table, the DAG's assets) is stale
        log.warning("stage %s did what it does not declare: %s", name, ", ".join(undeclared))
    lineage = {"touched": sorted(access.touched), "undeclared": undeclared}
    summary = {**result, "seconds": round(seconds, 2), "lineage": lineage}
    summary_path = summaries.write_summary(ctx, name, summary)
    log.info("stage %s done in %.1fs (summary %s)", name, seconds, summary_path)
    return result
