"""Scoring the night's candidates in Spark.

The assembled candidate rows are a lake partition (``candidates/dt=ds``), so the
same code runs in local mode and on a cluster (``RANKING_SPARK_MASTER``): each
executor reads its share of the partition, loads the broadcast booster once per
Python worker, and scores Arrow batches with ``predict``, the function the
evaluation scores with.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa

from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

KEYS = ["user_id", "item_id"]

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

    Spark splits the partition's row groups into tasks; nothing is shuffled.
    """
    from ranking_jobs.spark import get_spark
    from ranking_jobs.training.model import predict

    spark = get_spark(settings, "precompute")
    names = list(booster.feature_names)
    model = spark.sparkContext.broadcast(bytes(booster.save_raw("ubj")))
    token = uuid.uuid4().hex

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        scorer = _booster(token, model)
        for batch in batches:
            keys = batch[KEYS].reset_index(drop=True)
            yield keys.assign(score=predict(scorer, batch))

    frame = spark.read.parquet(uri).select(*KEYS, *names)
    with timed(log, "scored candidates in Spark") as t:
        scored = frame.mapInPandas(score, "user_id long, item_id long, score float").toArrow()
        t["count"] = scored.num_rows
    model.unpersist()
    return scored
