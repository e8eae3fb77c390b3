"""The train_model stage against a real MLflow SQLite store: what a run records is read
back from the store, not from the stage's own summary."""

from __future__ import annotations

import datetime as dt
import importlib.metadata

import pandas as pd
import pyarrow as pa
import pytest
import xgboost

import ranking_jobs
from ranking_jobs import contracts as C
from ranking_jobs import lake, model
from ranking_jobs.columns import CATEGORICAL_FEATURES
from ranking_jobs.context import RunContext
from ranking_jobs.families import MODEL_FEATURES
from ranking_jobs.settings import Settings
from ranking_jobs.training import train_model
from tests.conftest import make_settings
from tests.unit.test_training_evaluation import _frame

DS = dt.date(2026, 1, 31)


def _write_training_set(settings: Settings) -> list[pd.DataFrame]:
    """40 training, 20 validation and 20 hold-out queries, one query of each fitting
    split without engagement (training leaves it out)."""
    frames = [_frame(1, 40, "train"), _frame(2, 20, "valid"), _frame(3, 20, "test")]
    for frame in frames[:2]:
        frame.loc[frame["user_id"] == 0, "label"] = 0
    lake.write_partition(settings, C.TRAINING, DS, pa.Table.from_pandas(pd.concat(frames)))
    return frames


@pytest.fixture
def trained(tmp_path) -> tuple[Settings, dict, pd.DataFrame]:
    settings = make_settings(
        tmp_path,
        num_boost_round=20,
        early_stopping_rounds=5,
        nthread=1,
        categorical_features=True,  # their vocabulary travels in the run's artifacts
    )
    _write_training_set(settings)
    summary = train_model(RunContext.create(DS, settings))
    return settings, summary, lake.read_partition(settings, C.TRAINING, DS).to_pandas()


def test_run_records_params_metrics_schema_fingerprint_and_versions(trained) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.types import DataType

    settings, summary, table = trained
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(summary["mlflow_run_id"])

    params = run.data.params
    assert params["objective"] == "rank:ndcg"
    assert params["num_boost_round"] == "20" and params["early_stopping_rounds"] == "5"
    metrics = run.data.metrics
    assert metrics["valid_ndcg_at_10"] == pytest.approx(summary["valid_ndcg@10"])
    assert metrics["best_iteration"] == summary["rounds"]
    # the model learns from the queries with an engaged item (12 rows each)
    engaged = table[table["label"] >= C.LABEL_GRADES["click"]]
    queries = engaged.groupby("split")["user_id"].nunique()
    assert 0 < queries["train"] < 40 and 0 < queries["valid"] < 20
    assert metrics["train_rows"] == queries["train"] * 12
    assert metrics["valid_rows"] == queries["valid"] * 12

    tags = run.data.tags
    # the rows the model was fitted on: the hold-out is not read by training
    fitted = table[table["split"].isin(["train", "valid"])]
    assert tags["training_fingerprint"] == model.fingerprint(fitted)
    assert tags["training_fingerprint"] != model.fingerprint(table)
    assert tags["ds"] == DS.isoformat() and tags["pipeline_run_id"] == f"manual__{DS}"
    assert tags["xgboost_version"] == xgboost.__version__
    assert tags["ranking_jobs_version"] == ranking_jobs.__version__
    assert tags["ranking_jobs_version"] == importlib.metadata.version("ranking-jobs")

    artifacts = run.info.artifact_uri
    features = mlflow.artifacts.load_dict(f"{artifacts}/features.json")
    names = [*MODEL_FEATURES, *CATEGORICAL_FEATURES]
    assert features["features"] == names
    assert features["categories"]["category"] == ["bags", "coats", "dresses"]
    shap = mlflow.artifacts.load_dict(f"{artifacts}/importance_shap.json")
    assert set(shap) == set(names) and shap == pytest.approx(summary["importance_shap"])

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    info = mlflow.models.get_model_info(f"models:/{settings.mlflow.registered_model}/1")
    schema = info.signature.inputs
    assert schema.input_names() == names
    assert set(schema.input_types()) == {DataType.float}  # float32, as the model reads
    assert info.flavors["xgboost"]["model_format"] == "ubj"


def test_search_runs_its_trials_logs_them_and_trains_with_the_best(tmp_path) -> None:
    from mlflow import MlflowClient

    settings = make_settings(
        tmp_path, num_boost_round=15, early_stopping_rounds=5, nthread=1, search_trials=4
    )
    frames = _write_training_set(settings)
    summary = train_model(RunContext.create(DS, settings))
    trials = summary["search"]["trials"]
    assert len(trials) == 4
    best = max(trials, key=lambda t: t["value"])
    assert summary["search"]["best"] == best["params"]
    # the trained model is the best trial's: same parameters, same validation NDCG
    assert summary["valid_ndcg@10"] == pytest.approx(best["value"])
    client = MlflowClient(settings.tracking_uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.params["max_depth"] == str(best["params"]["max_depth"])
    series = client.get_metric_history(run.info.run_id, "search_valid_ndcg_at_10")
    assert [m.value for m in sorted(series, key=lambda m: m.step)] == pytest.approx(
        [t["value"] for t in trials]
    )
    # seeded: a second search over the same data proposes the same trials
    from ranking_jobs.training.search import search

    _, again = search(settings, frames[0], frames[1])
    assert [t["params"] for t in again] == [t["params"] for t in trials]
