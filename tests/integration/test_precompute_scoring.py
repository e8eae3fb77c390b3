"""Scoring in Spark gives exactly the scores the evaluation's ``predict`` gives."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import xgboost as xgb

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.precompute.scoring import score_in_spark
from ranking_jobs.training.model import predict

DAY = dt.date(2026, 1, 31)


def _booster(rng: np.random.Generator) -> xgb.Booster:
    x = rng.normal(size=(600, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 2] > 0).astype(int) + (x[:, 1] > 1)
    data = xgb.DMatrix(x, label=y, feature_names=["f_a", "f_b", "f_c"])
    data.set_group([60] * 10)
    return xgb.train({"objective": "rank:ndcg", "max_depth": 4}, data, num_boost_round=20)


def candidate_rows(rng: np.random.Generator, users: int, per_user: int = 100) -> pd.DataFrame:
    """Candidates with the booster's features in another order, missing values in one
    and a column the booster does not use."""
    n = users * per_user
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(users), per_user),
            "item_id": np.tile(np.arange(1_000, 1_000 + per_user), users),
            "f_c": rng.normal(size=n).astype(np.float32),
            "f_a": rng.normal(size=n).astype(np.float32),
            "f_b": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)).astype(np.float32),
            "extra": "ignored",
        }
    )


def test_spark_scores_every_row_once_exactly_as_predict(spark, settings) -> None:
    rng = np.random.default_rng(3)
    booster = _booster(rng)
    rows = candidate_rows(rng, users=50)
    n = len(rows)
    uri = lake.write_partition(settings, C.CANDIDATES, DAY, pa.Table.from_pandas(rows))

    scored = score_in_spark(settings, booster, uri).to_pandas()

    assert len(scored) == n
    assert not scored.duplicated(["user_id", "item_id"]).any()
    got = rows.merge(scored, on=["user_id", "item_id"], validate="one_to_one")
    expected = predict(booster, got)  # by the booster's feature names, NaN as missing
    np.testing.assert_array_equal(got["score"].to_numpy(np.float32), expected)
    assert got["score"].std() > 0  # the model really discriminates
