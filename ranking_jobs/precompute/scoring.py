"""The night's lists, made in Spark one shard of users per task.

Each task runs ``lists.user_lists`` for its shard: candidates, Feast features, scores
and business rules, where the data is. The driver sends only user ids and receives
only finished lists, so neither the candidates nor their features ever pass through
one process (at ``medium``, 16M rows and 17.6 GiB when the driver assembled them),
and both the pandas steps and XGBoost use every executor core. The same code runs in
local mode and on a cluster (``RANKING_SPARK_MASTER``); there, executors read the lake
and the Feast registry from the paths in the settings they are sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Iterator
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

# token of a job -> (booster, inputs), per Python worker: a worker that runs several
# shards of one night loads the booster and the night's inputs once.
_WORKER: dict[str, tuple[Any, Any]] = {}


def _worker_state(
    token: str, model: Any, settings: Settings, snapshot: dt.date, views: Any
) -> tuple:
    import xgboost as xgb

    from ranking_jobs.precompute.lists import list_inputs

    state = _WORKER.get(token)
    if state is None:
        _WORKER.clear()  # a previous night's inputs
        booster = xgb.Booster(model_file=bytearray(model.value))
        booster.set_param({"nthread": 1})  # Spark runs one task per core
        state = _WORKER[token] = (booster, list_inputs(settings, snapshot, views))
    return state


def shards(users: np.ndarray, shard_users: int, slots: int) -> list[np.ndarray]:
    """``users`` cut into shards of at most ``shard_users``, their number a multiple of
    ``slots`` (the cores running them) so that the last wave keeps every core busy."""
    if len(users) == 0:
        return []
    count = math.ceil(len(users) / shard_users)
    count = min(math.ceil(count / slots) * slots, len(users))
    return [s for s in np.array_split(users, count) if len(s)]


def lists_in_spark(
    settings: Settings, booster: Any, users: np.ndarray, snapshot: dt.date, as_of: pd.Timestamp
) -> pa.Table:
    """``LISTS_SCHEMA`` rows, one per user of ``users`` that got a list, from
    ``user_lists`` run on shards of ``precompute_shard_users`` users."""
    from ranking_jobs.feast_store import snapshot_views
    from ranking_jobs.precompute.lists import user_lists
    from ranking_jobs.spark import get_spark, task_progress

    views = snapshot_views(settings)  # resolved once, here: workers never import Feast
    spark = get_spark(settings, "precompute")
    parts = shards(
        np.asarray(users, np.int64),
        settings.precompute_shard_users,
        spark.sparkContext.defaultParallelism,
    )
    model = spark.sparkContext.broadcast(bytes(booster.save_raw("ubj")))
    token = uuid.uuid4().hex

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scorer, source = _worker_state(token, model, settings, snapshot, views)
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
