"""Training stage: the point-in-time training set and the LambdaMART model."""

from __future__ import annotations

import logging
from typing import Any

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.families import MODEL_FEATURES
from ranking_jobs.model import training_rows
from ranking_jobs.summaries import PROFILE as PROFILE_STAGE
from ranking_jobs.summaries import read_summary
from ranking_jobs.training.dataset import build_training_set

log = logging.getLogger(__name__)

__all__ = ["build_training_set", "train_model"]


def train_model(ctx: RunContext) -> dict[str, Any]:
    from ranking_jobs import model, registry

    settings = ctx.settings
    table = lake.read_partition(
        settings, C.TRAINING, ctx.ds, where=model.of_splits("train", "valid")
    ).to_pandas()
    train, valid = (training_rows(settings, table, split) for split in ("train", "valid"))
    metric = f"ndcg@{settings.evaluation.k}"
    overrides: dict[str, Any] = {}
    trials: list[dict[str, Any]] = []
    if settings.training.search_trials:
        from ranking_jobs.training.search import search

        overrides, trials = search(settings, train, valid)
    booster, history = model.fit(settings, train, valid, overrides)
    best_valid = float(history["valid"][metric][booster.num_boosted_rounds() - 1])
    importance = booster.get_score(importance_type="gain")
    # On the validation day: rows the trees were not grown on.
    shap = model.shap_importance(booster, valid, seed=settings.generator.seed)
    profiled = read_summary(ctx, PROFILE_STAGE) or {}
    params = {
        **{k: str(v) for k, v in {**model.xgb_params(settings), **overrides}.items()},
        "num_boost_round": settings.training.num_boost_round,
        "early_stopping_rounds": settings.training.early_stopping_rounds,
        # the settings the night took from the data profile, and those set explicitly
        **{f"night.{k}": v["value"] for k, v in profiled.get("settings", {}).items()},
    }
    # Same day, same data, same parameters: the rerun reuses the registered
    # version instead of registering a duplicate.
    identity = {
        "ds": ctx.ds_str,
        "training_fingerprint": model.fingerprint(table),
        "model_fingerprint": model.booster_fingerprint(booster),
        "params_fingerprint": model.params_fingerprint(params),
    }
    ref = registry.find_version(settings, identity)
    reused = ref is not None
    if ref is None:
        ref = registry.log_and_register(
            settings,
            booster,
            params=params,
            metrics={
                f"valid_{metric.replace('@', '_at_')}": best_valid,
                "best_iteration": booster.num_boosted_rounds(),
                "train_rows": len(train),
                "valid_rows": len(valid),
            },
            tags={
                **identity,
                "pipeline_run_id": ctx.run_id,
                **{
                    f"night.{k}.source": v["source"]
                    for k, v in profiled.get("settings", {}).items()
                },
            },
            signature=model.signature(booster, train),
            metric_steps={
                f"search_valid_{metric.replace('@', '_at_')}": [
                    t["value"] for t in trials if t["value"] is not None
                ]
            }
            if trials
            else None,
            artifacts={
                "features.json": {
                    "features": list(booster.feature_names or MODEL_FEATURES),
                    "categories": model.booster_vocabulary(booster),
                    "dtype": "float32",
                    "missing": "NaN",
                },
                "learning_curves.json": history,
                **({"data_profile.json": profiled} if profiled else {}),
                "importance_gain.json": importance,
                "importance_shap.json": shap,
                **({"search_trials.json": trials} if trials else {}),
            },
        )
    log.info(
        "trained %s%s: %d rounds, valid %s %.4f",
        ref.label,
        " (identical to the registered version, reused)" if reused else "",
        booster.num_boosted_rounds(),
        metric,
        best_valid,
    )
    return {
        "model_version": ref.version,
        "model": ref.label,
        "mlflow_run_id": ref.run_id,
        "reused_registered_version": reused,
        "rounds": booster.num_boosted_rounds(),
        f"valid_{metric}": best_valid,
        "learning_curves": history,
        "importance_gain": importance,
        "importance_shap": shap,
        "search": {"trials": trials, "best": overrides} if trials else None,
    }
