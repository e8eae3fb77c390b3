"""XGBoost LambdaMART on query groups: pure functions from frames to a booster."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ranking_jobs.features.columns import MODEL_FEATURES
from ranking_jobs.settings import Settings

if TYPE_CHECKING:
    from mlflow.models import ModelSignature

# TreeSHAP costs about (trees x leaves x depth) per row: a bounded sample keeps it cheap.
SHAP_ROWS = 20_000


def xgb_params(settings: Settings) -> dict[str, Any]:
    return {
        "objective": "rank:ndcg",
        "eval_metric": [f"ndcg@{settings.eval_k}"],
        "tree_method": "hist",
        "max_depth": settings.max_depth,
        "eta": settings.learning_rate,
        "lambdarank_pair_method": "topk",
        "lambdarank_num_pair_per_sample": 8,
        "lambdarank_unbiased": settings.position_debias,
        "min_child_weight": settings.min_child_weight,
        "subsample": 1.0,
        "seed": settings.seed,
        "nthread": settings.nthread,
    }


def sort_by_query(df: pd.DataFrame) -> pd.DataFrame:
    """XGBoost wants each query's rows contiguous and queries in id order.

    Within a query, rows follow the logged display order (never-shown candidates
    last): unbiased LambdaMART reads a row's position from its place in the group.
    """
    keys = ["as_of", "user_id", "item_id"]
    if "shown_position" in df:
        keys.insert(2, "shown_position")
    return df.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)


def feature_matrix(df: pd.DataFrame, features: Sequence[str] = MODEL_FEATURES) -> np.ndarray:
    """Fortran-order float32 matrix of ``features`` (no column_stack copy chain)."""
    out = np.empty((len(df), len(features)), dtype=np.float32, order="F")
    for j, col in enumerate(features):
        out[:, j] = df[col].to_numpy(dtype=np.float32, na_value=np.nan)
    return out


def feature_dmatrix(df: pd.DataFrame) -> xgb.DMatrix:
    """The model features of ``df`` with their names, NaN as missing, no labels."""
    return xgb.DMatrix(feature_matrix(df), feature_names=list(MODEL_FEATURES), missing=np.nan)


def ranking_dmatrix(df: pd.DataFrame) -> xgb.DMatrix:
    df = sort_by_query(df)
    groups = df.groupby(["as_of", "user_id"], sort=False).size().to_numpy()
    dmatrix = feature_dmatrix(df)
    dmatrix.set_info(label=df["label"].to_numpy(), group=groups)
    return dmatrix


def fit(
    settings: Settings,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    overrides: dict[str, Any] | None = None,
) -> tuple[xgb.Booster, dict[str, dict[str, list[float]]]]:
    """Train with early stopping on the later day; return the booster cut at its best round.

    ``overrides`` replace entries of :func:`xgb_params` (a search's best trial).
    """
    return fit_dmatrices(settings, ranking_dmatrix(train), ranking_dmatrix(valid), overrides)


def fit_dmatrices(
    settings: Settings,
    dtrain: xgb.DMatrix,
    dvalid: xgb.DMatrix,
    overrides: dict[str, Any] | None = None,
) -> tuple[xgb.Booster, dict[str, dict[str, list[float]]]]:
    history: dict[str, dict[str, list[float]]] = {}
    booster = xgb.train(
        {**xgb_params(settings), **(overrides or {})},
        dtrain,
        num_boost_round=settings.num_boost_round,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=settings.early_stopping_rounds,
        evals_result=history,
        verbose_eval=False,
    )
    best = booster.best_iteration
    return booster[: best + 1], history


def predict(booster: xgb.Booster, df: pd.DataFrame) -> np.ndarray:
    """Scores from the features the booster was trained on, by name: a champion trained
    before a feature was added keeps scoring correctly."""
    features = booster.feature_names or MODEL_FEATURES
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise KeyError(f"the model needs features the rows lack: {missing}")
    return booster.inplace_predict(feature_matrix(df, features), validate_features=False)


def signature(booster: xgb.Booster, df: pd.DataFrame, rows: int = 100) -> ModelSignature:
    """Feature names and dtypes as the model consumes them, recorded with the MLflow model
    so that a caller can check its input against the schema the model was trained on."""
    from mlflow.models import infer_signature

    head = df.head(rows)
    inputs = pd.DataFrame(feature_matrix(head), columns=list(MODEL_FEATURES))
    return infer_signature(inputs, predict(booster, head))


def sample_rows(df: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``df``, the same ones for the same seed."""
    return df if len(df) <= rows else df.sample(n=rows, random_state=seed)


def contributions(booster: xgb.Booster, df: pd.DataFrame) -> np.ndarray:
    """XGBoost's exact TreeSHAP values: one column per model feature, then the bias;
    a row sums to its raw margin."""
    return booster.predict(feature_dmatrix(df), pred_contribs=True)


def shap_importance(
    booster: xgb.Booster, df: pd.DataFrame, *, rows: int = SHAP_ROWS, seed: int = 0
) -> dict[str, float]:
    """Mean |SHAP| per model feature on a seeded sample of ``df``: how much each feature
    moves the scores, where gain only says how much its splits improved training."""
    mean_abs = np.abs(contributions(booster, sample_rows(df, rows, seed))[:, :-1]).mean(axis=0)
    return {name: float(v) for name, v in zip(MODEL_FEATURES, mean_abs, strict=True)}


def booster_fingerprint(booster: xgb.Booster) -> str:
    """Hash of the model file's bytes (XGBoost's UBJSON format)."""
    return hashlib.sha256(bytes(booster.save_raw("ubj"))).hexdigest()[:16]


def params_fingerprint(params: dict[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def fingerprint(df: pd.DataFrame) -> str:
    """Content hash of a training frame: same data, same fingerprint."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]
