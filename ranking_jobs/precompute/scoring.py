"""The night's lists, made in Spark one shard of users per task.

Each task runs ``lists.user_lists`` for its shard: candidates, Feast features, scores
and business rules, where the data is. The driver sends only user ids and receives
only finished lists, so neither the candidates nor their features ever pass through
one process (docs/decisions.md has what the driver held when it assembled them),
and both the pandas steps and XGBoost use every executor core. The same code runs in
local mode and on a cluster (``RANKING_SPARK_MASTER``); there, executors read the lake
and the Feast registry from the paths in the settings they are sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

LISTS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("item_ids", pa.list_(pa.int64())),
        ("scores", pa.list_(pa.float32())),
        ("candidates", pa.int32()),
    ]
)
_SPARK_SCHEMA = "user_id long, item_ids array<long>, scores array<float>, candidates int"

# Per Python worker: the key of a night's lists -> what its tasks share ("inputs", the
# night's list inputs; "booster"). A worker that runs the warm-up and several shards
# loads each once.
_WORKER: dict[str, dict[str, Any]] = {}


def _worker_cache(key: str, settings: Settings, snapshot: dt.date) -> dict[str, Any]:
    from ranking_jobs.lists import list_inputs

    cache = _WORKER.get(key)
    if cache is None:
        _WORKER.clear()  # a previous night's inputs
        cache = _WORKER[key] = {"inputs": list_inputs(settings, snapshot, None)}
    return cache


class ListWorkers:
    """Starts Spark, then has each executor slot's Python worker import the scoring code
    and load the night's list inputs (``list_inputs``), in the background: time that
    would otherwise open the lists job (docs/decisions.md), spent while the driver
    loads the champion and resolves the feature views. ``lists_in_spark`` given these
    workers waits for them; Spark reuses the Python workers across jobs, so its tasks
    find the inputs loaded (a worker that was not warmed loads them itself).

    Used as a context manager: leaving it on an error cancels a warm-up still running.
    """

    def __init__(self, settings: Settings, snapshot: dt.date) -> None:
        from ranking_jobs.spark import start_spark

        self.key = uuid.uuid4().hex
        self._cancelled = threading.Event()
        self._context: Any = None  # the SparkContext, once the warm-up has it
        self._ready = start_spark(
            settings, "precompute", then=partial(self._warm, settings, snapshot)
        )

    def _warm(self, settings: Settings, snapshot: dt.date, spark: Any) -> None:
        key, sc = self.key, spark.sparkContext

        def load(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for _ in batches:
                pass
            _worker_cache(key, settings, snapshot)
            yield pa.record_batch({"loaded": pa.array([True])})

        self._context = sc
        if self._cancelled.is_set():
            return
        sc.setJobGroup(key, "precompute: list inputs into the Python workers", True)
        slots = sc.defaultParallelism
        with timed(log, f"list inputs loaded by {slots} Python workers"):
            spark.range(0, slots, 1, slots).mapInArrow(load, "loaded boolean").collect()

    def wait(self) -> str:
        """The key the workers keep the night's inputs under, once they are loaded (the
        warm-up's error, if it failed)."""
        self._ready.result()
        return self.key

    def __enter__(self) -> ListWorkers:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None and not self._ready.done():
            self._cancelled.set()
            if self._context is not None:
                self._context.cancelJobGroup(self.key)


def shards(users: np.ndarray, shard_users: int, slots: int) -> list[np.ndarray]:
    """``users`` cut into shards of at most ``shard_users``, their number a multiple of
    ``slots`` (the cores running them) so that the last wave keeps every core busy."""
    if len(users) == 0:
        return []
    count = math.ceil(len(users) / shard_users)
    count = min(math.ceil(count / slots) * slots, len(users))
    return [s for s in np.array_split(users, count) if len(s)]


def in_one_process(settings: Settings, users: np.ndarray) -> bool:
    """Whether the night's lists are made here instead of in Spark: in local mode, when
    every user fits one shard. Starting Spark and loading the inputs into its Python
    workers then costs more than the one shard's scoring."""
    return settings.spark.master.startswith("local") and (
        len(users) <= settings.lists.precompute_shard_users
    )


def lists_in_process(
    settings: Settings, booster: Any, users: np.ndarray, snapshot: dt.date, as_of: pd.Timestamp
) -> pa.Table:
    """``LISTS_SCHEMA`` rows of ``user_lists`` for ``users`` as one shard, in this
    process: the function a Spark task runs on its shard."""
    from ranking_jobs.lists import list_inputs, user_lists

    with timed(log, f"lists of {len(users):,} users (one shard, no Spark), scored") as t:
        source = list_inputs(settings, snapshot, None)
        lists = user_lists(settings, booster, source, np.asarray(users, np.int64), as_of)
        t["count"] = int(lists["candidates"].sum())
    return pa.Table.from_pandas(lists, schema=LISTS_SCHEMA, preserve_index=False)


def lists_in_spark(
    settings: Settings,
    booster: Any,
    users: np.ndarray,
    snapshot: dt.date,
    as_of: pd.Timestamp,
    workers: ListWorkers | None = None,
) -> pa.Table:
    """``LISTS_SCHEMA`` rows, one per user of ``users`` that got a list, from
    ``user_lists`` run on shards of ``precompute_shard_users`` users (on ``workers``
    warmed for ``snapshot``, when given)."""
    from ranking_jobs.feast_store import snapshot_views
    from ranking_jobs.lists import user_lists
    from ranking_jobs.spark import get_spark, task_progress

    views = snapshot_views(settings)  # resolved once, here: workers never import Feast
    key = workers.wait() if workers is not None else uuid.uuid4().hex
    spark = get_spark(settings, "precompute")
    parts = shards(
        np.asarray(users, np.int64),
        settings.lists.precompute_shard_users,
        spark.sparkContext.defaultParallelism,
    )
    model = spark.sparkContext.broadcast(bytes(booster.save_raw("ubj")))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import xgboost as xgb

        cache = _worker_cache(key, settings, snapshot)
        if "booster" not in cache:
            cache["booster"] = xgb.Booster(model_file=bytearray(model.value))
            cache["booster"].set_param({"nthread": 1})  # Spark runs one task per core
        scorer, source = cache["booster"], cache["inputs"]._replace(views=views)
        for batch in batches:
            for shard in batch.column("user_ids").to_numpy(zero_copy_only=False):
                lists = user_lists(settings, scorer, source, np.asarray(shard, np.int64), as_of)
                table = pa.Table.from_pandas(lists, schema=LISTS_SCHEMA, preserve_index=False)
                yield from table.to_batches()

    tasks = spark.sparkContext.parallelize(
        [(i, part.tolist()) for i, part in enumerate(parts)], max(len(parts), 1)
    )
    frame = spark.createDataFrame(tasks, "shard int, user_ids array<long>")
    with (
        timed(log, f"lists of {len(users):,} users ({len(parts)} shards), scored") as t,
        task_progress(spark, "user shards"),
    ):
        got = frame.mapInArrow(run, _SPARK_SCHEMA).toArrow()
        t["count"] = pc.sum(got["candidates"]).as_py() or 0
    model.unpersist()
    return got.cast(LISTS_SCHEMA)
