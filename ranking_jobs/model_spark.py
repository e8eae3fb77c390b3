"""Training on the Spark cluster: XGBoost's Spark estimator, one XGBoost worker per
executor slot, each boosting on its share of the queries (``RANKING_TRAIN_ENGINE=spark``).

The rows reach Spark from the stage's frame, so the driver still holds them once; what
is spread is the boosting. Early stopping watches the same validation split and metric
as single-node training, and the result is an ordinary booster cut at its best round.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ranking_jobs.families import MODEL_FEATURES
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

# Spark's estimator sets these itself (threads per task) or under its own names.
_MANAGED = ("nthread", "seed", "objective", "eval_metric", "eta")


def spark_frame(train: pd.DataFrame, valid: pd.DataFrame) -> pd.DataFrame:
    """The features, graded label, query id and split flag of both splits.

    Query ids are a hash order of (as_of, user), not split order: the estimator
    range-partitions by query id, and XGBoost's Spark data path fails on a partition
    holding training rows but no validation rows (xgboost 3.2)."""
    from ranking_jobs.model import sort_by_query

    both = pd.concat(
        [sort_by_query(train).assign(is_valid=False), sort_by_query(valid).assign(is_valid=True)],
        ignore_index=True,
    )
    key = pd.util.hash_pandas_object(both[["as_of", "user_id"]], index=False)
    return pd.DataFrame(
        {
            **{c: both[c].to_numpy(np.float32, na_value=np.nan) for c in MODEL_FEATURES},
            "label": both["label"].to_numpy(np.float32),
            "qid": key.rank(method="dense").to_numpy(np.int64),
            "is_valid": both["is_valid"].to_numpy(),
        }
    )


def fit_on_spark(
    settings: Settings,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    params: dict[str, Any],
) -> tuple[xgb.Booster, dict[str, dict[str, list[float]]]]:
    """``params``: XGBoost's, as single-node training uses them."""
    from xgboost.spark import SparkXGBRanker

    from ranking_jobs.spark import get_spark

    spark = get_spark(settings, "train_model")
    # one Arrow batch per partition: a batch of only training rows hits the same failure
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "0")
    workers = spark.sparkContext.defaultParallelism
    rest = {k: v for k, v in params.items() if k not in _MANAGED}
    ranker = SparkXGBRanker(
        features_col=list(MODEL_FEATURES),
        label_col="label",
        qid_col="qid",
        validation_indicator_col="is_valid",
        num_workers=workers,
        force_repartition=True,
        missing=np.nan,
        objective=params["objective"],
        eval_metric=params["eval_metric"],
        learning_rate=params["eta"],
        random_state=params["seed"],
        n_estimators=settings.training.num_boost_round,
        early_stopping_rounds=settings.training.early_stopping_rounds,
        **rest,
    )
    log.info("training on Spark: %d XGBoost workers, %d + %d rows", workers, len(train), len(valid))
    fitted = ranker.fit(spark.createDataFrame(spark_frame(train, valid)))
    booster = fitted.get_booster()
    summary = fitted.training_summary
    history = {
        "train": summary.train_objective_history,
        "valid": summary.validation_objective_history,
    }
    best = booster.best_iteration
    booster = booster[: best + 1]
    booster.feature_names = list(MODEL_FEATURES)
    booster.feature_types = ["q"] * len(MODEL_FEATURES)
    return booster, history
