"""Scoring the night's candidates in Spark.

The assembled candidate rows are a lake partition (``candidates/dt=ds``), so the
same code runs in local mode and on a cluster (``RANKING_SPARK_MASTER``): each
executor reads its share of the partition's row groups, loads the broadcast booster
once per Python worker, and scores each row group with ``predict``, the function the
evaluation scores with.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ranking_jobs import lake
from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

KEYS = ["user_id", "item_id"]
# Rows per row group of the candidates partition, i.e. per scoring task: pyarrow's
# default (1Mi) cut small's 1.4M rows into two unequal tasks on two cores.
TASK_ROWS = 250_000

_BOOSTERS: dict[str, Any] = {}  # token of a scoring job -> its booster, per Python worker


def _booster(token: str, broadcast: Any) -> Any:
    """The broadcast booster, deserialised once per Python worker, scoring on one thread
    (Spark runs one task per core)."""
    import xgboost as xgb

    cached = _BOOSTERS.get(token)
    if cached is None:
        cached = xgb.Booster(model_file=bytearray(broadcast.value))
        cached.set_param({"nthread": 1})
        _BOOSTERS.clear()
        _BOOSTERS[token] = cached
    return cached


def score_in_spark(settings: Settings, booster: Any, uri: str) -> pa.Table:
    """user_id, item_id and score of every row of the Parquet partition at ``uri``.

    Spark distributes the partition's row groups (file and index, from the footers)
    one per task, and each task reads its own straight from the lake with pyarrow:
    nothing is shuffled, and the features never pass through Spark's rows. Why: on the
    1.4M rows of ``small`` a ``spark.read.parquet`` + ``mapInPandas`` pass that scored
    nothing already took 10 s warm, and the partition's two row groups made two
    unequal tasks (scoring 30 s where ``predict`` on two threads takes 16 s).
    """
    from ranking_jobs.spark import get_spark
    from ranking_jobs.training.model import predict

    spark = get_spark(settings, "precompute")
    columns = [*KEYS, *booster.feature_names]
    fs, path = lake.filesystem(uri, settings.s3_endpoint_url)
    groups = [
        (file, group)
        for file in lake.partition_files(fs, path)
        for group in range(pq.ParquetFile(file, filesystem=fs).num_row_groups)
    ]
    model = spark.sparkContext.broadcast(bytes(booster.save_raw("ubj")))
    token = uuid.uuid4().hex

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scorer = _booster(token, model)
        for batch in batches:
            for file, group in zip(*batch.to_pydict().values(), strict=True):
                rows = pq.ParquetFile(file, filesystem=fs).read_row_group(group, columns=columns)
                scores = pa.array(predict(scorer, rows.to_pandas()))
                yield from rows.select(KEYS).append_column("score", scores).to_batches()

    tasks = spark.sparkContext.parallelize(groups, max(len(groups), 1))
    frame = spark.createDataFrame(tasks, "file string, row_group int")
    with timed(log, "scored candidates in Spark") as t:
        scored = frame.mapInArrow(score, "user_id long, item_id long, score float").toArrow()
        t["count"] = scored.num_rows
    model.unpersist()
    return scored
