"""One way to get a SparkSession: UTC, loopback, the venv's Python, settings-driven."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from ranking_jobs.binaries import use_java
from ranking_jobs.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
T = TypeVar("T")


def get_spark(settings: Settings, app: str = "ranking_jobs") -> SparkSession:
    """Local mode by default; a cluster when ``RANKING_SPARK_MASTER`` points at one."""
    if settings.spark.master.startswith("local"):
        # Spark otherwise binds to a non-loopback address and its Python workers
        # pick whatever python3 is first on PATH.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    use_java()  # the driver JVM starts from this process's JAVA_HOME
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.appName(app)
        .master(settings.spark.master)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", settings.spark.driver_memory)
        .config("spark.sql.shuffle.partitions", str(settings.spark.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # stage bars flood task logs
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    return spark


def spark_running() -> bool:
    """Whether this process has a Spark JVM."""
    if "pyspark" not in sys.modules:
        return False
    from pyspark import SparkContext

    return SparkContext._gateway is not None


def release_spark() -> None:
    """Stop the session and end its JVM, if this process started one; the next session
    starts a new JVM."""
    if "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext

    context = SparkContext._active_spark_context
    gateway = SparkContext._gateway
    if context is not None:
        context.stop()
    if gateway is not None:
        # The JVM exits when its stdin closes; forgetting the gateway makes the next
        # session launch a new one instead of calling into the ended one.
        gateway.shutdown()
        proc = getattr(gateway, "proc", None)
        if proc is not None:
            proc.stdin.close()
            proc.wait(timeout=60)
        SparkContext._gateway = None
        SparkContext._jvm = None


def start_spark(settings: Settings, app: str, then: Callable[[SparkSession], T]) -> Future[T]:
    """``get_spark`` then ``then(spark)`` in a background thread: the JVM is slow to start
    (docs/decisions.md), time the caller can spend loading what it needs. A later ``get_spark``
    waits for it (the session builder holds a lock) and returns the same session."""

    # Imported in the caller's thread first: MLflow imports pyspark too while the JVM
    # starts, and two threads importing one package at once can deadlock on its module
    # locks (seen once as "_DeadlockError: deadlock detected by _ModuleLock('pyspark.util')").
    import pyspark.sql  # noqa: F401

    def start() -> T:
        return then(get_spark(settings, app))

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-start")
    started = pool.submit(start)
    pool.shutdown(wait=False)
    return started


@contextmanager
def task_progress(spark: SparkSession, what: str, every_s: float = 30.0) -> Iterator[None]:
    """Logs the running stages' finished and total tasks every ``every_s`` seconds: a
    long action otherwise says nothing until it returns (console bars are off)."""
    tracker = spark.sparkContext.statusTracker()
    done = threading.Event()

    def report() -> None:
        while not done.wait(every_s):
            for stage in tracker.getActiveStageIds():
                info = tracker.getStageInfo(stage)
                if info is not None:
                    log.info(
                        "%s: %d of %d tasks finished, %d running",
                        what,
                        info.numCompletedTasks,
                        info.numTasks,
                        info.numActiveTasks,
                    )

    thread = threading.Thread(target=report, name=f"progress {what}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
