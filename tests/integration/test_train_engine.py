"""``RANKING_TRAIN_ENGINE=spark``: the model is boosted by XGBoost's Spark estimator on
the session's executors, with the same early stopping, and comes back as an ordinary
booster the rest of the night uses unchanged."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ranking_jobs import model
from ranking_jobs.evaluation.metrics import ndcg_at_k
from ranking_jobs.settings import Settings
from tests.unit.test_training_evaluation import _frame

SETTINGS = Settings(num_boost_round=60, early_stopping_rounds=10, train_engine="spark")


def test_the_spark_engine_learns_the_signal_and_stops_early(spark, caplog):
    train, valid = _frame(1, 60, "train"), _frame(2, 30, "valid")
    with caplog.at_level(logging.INFO, logger="ranking_jobs.model_spark"):
        booster, history = model.fit(SETTINGS, train, valid)
    assert "training on Spark: 2 XGBoost workers" in caplog.text
    rounds = booster.num_boosted_rounds()
    watched = history["valid"]["ndcg"]
    assert len(watched) > rounds  # it went on past the best round, then was cut there
    assert rounds == int(np.argmax(watched)) + 1
    test = model.sort_by_query(_frame(3, 40, "test"))
    qid, label = test["user_id"].to_numpy(), test["label"].to_numpy()
    assert ndcg_at_k(qid, label, model.predict(booster, test), 10).mean() > 0.9
    gains = booster.get_score(importance_type="gain")
    assert max(gains, key=gains.get) == "ctr_7d"
    assert booster.feature_names == list(model.MODEL_FEATURES)


def test_a_debiased_fit_stays_single_node(spark, caplog):
    """Unbiased LambdaMART reads positions from the row order the estimator re-sorts."""
    debiased = SETTINGS.replace(position_debias=True, num_boost_round=5)
    with caplog.at_level(logging.INFO, logger="ranking_jobs.model_spark"):
        booster, _ = model.fit(debiased, _frame(1, 30, "train"), _frame(2, 10, "valid"))
    assert "training on Spark" not in caplog.text and booster.num_boosted_rounds() <= 5


def test_the_spark_engine_refuses_categorical_features():
    with pytest.raises(ValueError, match="train_engine=spark does not take categorical"):
        Settings(train_engine="spark", categorical_features=True)
