"""XGBoost LambdaMART on query groups: pure functions from frames to a booster."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ranking_jobs import contracts as C
from ranking_jobs.columns import CATEGORICAL_FEATURES
from ranking_jobs.families import MODEL_FEATURES
from ranking_jobs.settings import Settings

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    from mlflow.models import ModelSignature

# TreeSHAP costs about (trees x leaves x depth) per row: a bounded sample keeps it cheap.
SHAP_ROWS = 20_000
SHOWN_ONLY = "shown"  # the source of a training row that only an impression put there


def xgb_params(settings: Settings) -> dict[str, Any]:
    return {
        "objective": "rank:ndcg",
        # early stopping watches the last: NDCG over the whole list, which moves with the
        # rank of every engaged item and so is steadier on few queries than NDCG@k
        "eval_metric": [f"ndcg@{settings.evaluation.k}", "ndcg"],
        "tree_method": "hist",
        "max_depth": settings.training.max_depth,
        "eta": settings.training.learning_rate,
        "lambdarank_pair_method": "topk",
        "lambdarank_num_pair_per_sample": 8,
        "lambdarank_unbiased": settings.training.position_debias,
        "min_child_weight": settings.training.min_child_weight,
        "subsample": 1.0,
        "colsample_bytree": settings.training.colsample_bytree,
        "seed": settings.generator.seed,
        "nthread": settings.training.nthread,
    }


def sort_by_query(df: pd.DataFrame, by_position: bool = False) -> pd.DataFrame:
    """XGBoost wants each query's rows contiguous and queries in id order.

    Within a query, rows follow the logged display order (never-shown candidates
    last) when ``by_position``: unbiased LambdaMART reads a row's position from its
    place in the group. Otherwise their order is a hash of the item, unrelated to the
    label: XGBoost's ranking metrics keep the given order among tied scores, and with
    shown items first they credited the logging policy for a young model's ties, so
    early stopping on a log with impressions kept a one-round model.
    """
    if by_position and "shown_position" in df:
        keys = ["as_of", "user_id", "shown_position", "item_id"]
        return df.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)
    mixed = (df["item_id"].to_numpy(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)
    order = df.assign(_mixed=mixed).sort_values(["as_of", "user_id", "_mixed", "item_id"])
    return df.loc[order.index].reset_index(drop=True)


Vocabulary = dict[str, list[str]]
VOCABULARY_ATTR = "categories"  # booster attribute: the category values behind the codes


def vocabulary(settings: Settings, df: pd.DataFrame) -> Vocabulary:
    """Per categorical feature, its sorted values in ``df`` (the training rows); a value
    seen only later scores as missing. Empty when categorical features are off."""
    if not settings.training.categorical_features:
        return {}
    return {c: sorted(df[c].dropna().astype(str).unique()) for c in CATEGORICAL_FEATURES}


def feature_matrix(
    df: pd.DataFrame, features: Sequence[str] = MODEL_FEATURES, vocab: Vocabulary | None = None
) -> np.ndarray:
    """Fortran-order float32 matrix of ``features`` (no column_stack copy chain); a
    categorical feature becomes its code in ``vocab`` (unknown values: NaN)."""
    vocab = vocab or {}
    out = np.empty((len(df), len(features)), dtype=np.float32, order="F")
    for j, col in enumerate(features):
        if col in vocab:
            codes = pd.Categorical(df[col].astype("string"), categories=vocab[col]).codes
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = df[col].to_numpy(dtype=np.float32, na_value=np.nan)
    return out


def feature_dmatrix(df: pd.DataFrame, vocab: Vocabulary | None = None) -> xgb.DMatrix:
    """The model features of ``df`` (plus ``vocab``'s as native categories) with their
    names, NaN as missing, no labels."""
    vocab = vocab or {}
    names = [*MODEL_FEATURES, *vocab]
    return xgb.DMatrix(
        feature_matrix(df, names, vocab),
        feature_names=names,
        feature_types=["q"] * len(MODEL_FEATURES) + ["c"] * len(vocab),
        enable_categorical=bool(vocab),
        missing=np.nan,
    )


def ranking_dmatrix(
    df: pd.DataFrame, vocab: Vocabulary | None = None, by_position: bool = False
) -> xgb.DMatrix:
    df = sort_by_query(df, by_position)
    groups = df.groupby(["as_of", "user_id"], sort=False).size().to_numpy()
    dmatrix = feature_dmatrix(df, vocab)
    dmatrix.set_info(label=df["label"].to_numpy(), group=groups)
    return dmatrix


def booster_vocabulary(booster: xgb.Booster) -> Vocabulary:
    return json.loads(booster.attr(VOCABULARY_ATTR) or "{}")


def fit(
    settings: Settings,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    overrides: dict[str, Any] | None = None,
) -> tuple[xgb.Booster, dict[str, dict[str, list[float]]]]:
    """Train with early stopping on the later day; return the booster cut at its best round.

    ``overrides`` replace entries of :func:`xgb_params` (a search's best trial). The
    categorical features' vocabulary travels inside the model file.
    """
    vocab = vocabulary(settings, train)
    if settings.training.engine == "spark" and not settings.training.position_debias:
        # Unbiased LambdaMART reads positions from the row order, which the Spark
        # estimator re-sorts: a debiased fit (the ablation's too) stays single-node.
        from ranking_jobs.model_spark import fit_on_spark

        params = {**xgb_params(settings), **(overrides or {})}
        booster, history = fit_on_spark(settings, train, valid, params)
        booster.set_attr(**{VOCABULARY_ATTR: json.dumps(vocab)})
        return booster, history
    dtrain = ranking_dmatrix(train, vocab, settings.training.position_debias)
    dvalid = ranking_dmatrix(valid, vocab)
    booster, history = fit_dmatrices(settings, dtrain, dvalid, overrides)
    booster.set_attr(**{VOCABULARY_ATTR: json.dumps(vocab)})
    return booster, history


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
        num_boost_round=settings.training.num_boost_round,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=settings.training.early_stopping_rounds,
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
    matrix = feature_matrix(df, features, booster_vocabulary(booster))
    return booster.inplace_predict(matrix, validate_features=False)


def signature(booster: xgb.Booster, df: pd.DataFrame, rows: int = 100) -> ModelSignature:
    """Feature names and dtypes as the model consumes them, recorded with the MLflow model
    so that a caller can check its input against the schema the model was trained on."""
    from mlflow.models import infer_signature

    head = df.head(rows)
    names = list(booster.feature_names or MODEL_FEATURES)
    inputs = pd.DataFrame(feature_matrix(head, names, booster_vocabulary(booster)), columns=names)
    return infer_signature(inputs, predict(booster, head))


def sample_rows(df: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of ``df``, the same ones for the same seed."""
    return df if len(df) <= rows else df.sample(n=rows, random_state=seed)


def contributions(booster: xgb.Booster, df: pd.DataFrame) -> np.ndarray:
    """XGBoost's exact TreeSHAP values: one column per model feature, then the bias;
    a row sums to its raw margin."""
    return booster.predict(feature_dmatrix(df, booster_vocabulary(booster)), pred_contribs=True)


def shap_importance(
    booster: xgb.Booster, df: pd.DataFrame, *, rows: int = SHAP_ROWS, seed: int = 0
) -> dict[str, float]:
    """Mean |SHAP| per model feature on a seeded sample of ``df``: how much each feature
    moves the scores, where gain only says how much its splits improved training."""
    mean_abs = np.abs(contributions(booster, sample_rows(df, rows, seed))[:, :-1]).mean(axis=0)
    names = booster.feature_names or MODEL_FEATURES
    return {name: float(v) for name, v in zip(names, mean_abs, strict=True)}


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


def of_splits(*splits: str) -> pads.Expression:
    """The training set's rows of ``splits``, as a read filter: the stage that fits never
    holds the hold-out, and the one that scores the hold-out holds nothing else (at
    ``medium`` the hold-out is two thirds of the table)."""
    import pyarrow.dataset as pads

    return pads.field("split").isin(list(splits))


def training_rows(settings: Settings, table: pd.DataFrame, split: str) -> pd.DataFrame:
    """The rows a model learns from, labelled by engagement: the queries with an
    engaged item, every candidate of them or only the items that were shown.

    Graded by engagement, a bare impression counts as little as an unshown candidate:
    trained with impressions above unshown items, the model learned what the logging
    policy shows, and its final lists lost to the category-popular and ALS baselines.
    Queries without engagement carry no ranking signal and are left out. Logs without
    impressions (a shop's sales) need "candidates".
    """
    rows = table[table["split"] == split]
    if settings.training.rows == "shown":
        rows = rows[rows["shown_position"].notna()]
    rows = rows.assign(label=C.engagement_grade(rows["label"].to_numpy()))
    engaged = rows.groupby(["as_of", "user_id"], sort=False)["label"].transform("max") > 0
    return rows[engaged.to_numpy()]
