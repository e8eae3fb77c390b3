"""Report stage: one self-contained HTML page per night, from the stages' summaries."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pandas as pd
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.report.html import ReportData, render_report
from ranking_jobs.settings import Settings
from ranking_jobs.stages import NIGHTLY
from ranking_jobs.summaries import PROFILE as PROFILE_STAGE
from ranking_jobs.summaries import read_summary, summary_dir

log = logging.getLogger(__name__)


def monitoring_history(settings: Settings, ds: dt.date, nights: int = 30) -> pd.DataFrame:
    """The monitoring records (``monitor_night``) of the ``nights`` days ending with ``ds``."""
    earliest = ds - dt.timedelta(days=nights - 1)
    days = [d for d in lake.list_partitions(settings, C.MONITORING) if earliest <= d <= ds]
    if not days:
        return pd.DataFrame(columns=["metric", "name", "value", "status", "ds"])
    return lake.read_days(settings, C.MONITORING, days).to_pandas()


def metric_history(ctx: RunContext, metric: str) -> list[dict[str, Any]]:
    """The model's and the best baseline's hold-out metric and the gate's verdict on every
    night up to this one: one summary file per day, so a rerun replaces its point."""
    history = []
    for path in sorted(ctx.settings.paths.reports_dir.glob("*/evaluate_model.json")):
        ds = path.parent.name
        if ds > ctx.ds_str:
            continue
        data = json.loads(path.read_text())
        metrics = data.get("metrics") or {}
        values = {
            "model": metrics.get("model", {}).get(metric),
            "best baseline": metrics.get(data.get("best_baseline"), {}).get(metric),
        }
        history.append(
            {
                "ds": ds,
                "metrics": {k: v for k, v in values.items() if v is not None},
                "promoted": data.get("promoted"),
            }
        )
    return history


def write_report(ctx: RunContext) -> dict[str, Any]:
    settings = ctx.settings
    evaluation = read_summary(ctx, "evaluate_model") or {}
    trained = read_summary(ctx, "train_model") or {}
    training = read_summary(ctx, "build_training_set") or {}
    precomputed = read_summary(ctx, "precompute_lists") or {}
    published = read_summary(ctx, "publish_lists") or {}
    metric = f"ndcg@{settings.evaluation.k}"

    scores = None
    if lake.has_partition(settings, C.RECOMMENDATIONS, ctx.ds):
        lists = lake.read_partition(settings, C.RECOMMENDATIONS, ctx.ds, ["scores"])
        scores = pc.list_flatten(lists["scores"]).to_numpy(zero_copy_only=False)

    metrics = evaluation.get("metrics")
    ndcg_by_k = (
        {
            m: {k: v[f"ndcg@{k}"] for k in (5, 10, 20) if f"ndcg@{k}" in v}
            for m, v in metrics.items()
        }
        if metrics
        else None
    )
    list_stats = (
        {
            **precomputed.get("list_length", {}),
            "users with a list": precomputed.get("users"),
            "active users": precomputed.get("active_users"),
            "lists made by": precomputed.get("model_version"),
            "hold-out users with a personal list": (
                f"{evaluation['users_with_personal_list']:,} of {evaluation['users']:,}"
                if evaluation.get("users")
                else None
            ),
            "distinct items": precomputed.get("distinct_items"),
            "available catalogue": precomputed.get("catalogue_available"),
            "published": published.get("published"),
        }
        if precomputed
        else None
    )
    profiled = read_summary(ctx, PROFILE_STAGE) or {}
    warnings = [
        w for stage in NIGHTLY for w in (read_summary(ctx, stage.name) or {}).get("warnings", [])
    ]
    data = ReportData(
        title=f"Nightly ranking report {ctx.ds_str}",
        ds=ctx.ds_str,
        run_id=ctx.run_id,
        model_version=precomputed.get("model_version") or trained.get("model"),
        promoted=evaluation.get("promoted"),
        gate_reasons=evaluation.get("reasons", []),
        profile={
            **profiled.get("profile", {}),
            **{f"used: {k}": v for k, v in (training.get("calendar") or {}).items()},
        },
        chosen_settings=profiled.get("settings"),
        warnings=warnings,
        metrics=metrics,
        metrics_rows=evaluation.get("metrics_rows"),
        metrics_shown_only=evaluation.get("metrics_shown_only"),
        gains=evaluation.get("gain_vs"),
        ndcg_by_k=ndcg_by_k,
        segments=evaluation.get("segments"),
        segment_metric=metric,
        candidate_recall=evaluation.get("candidate_recall"),
        learning_curves=trained.get("learning_curves"),
        learning_curve_metric=metric,
        feature_importance=trained.get("importance_gain"),
        shap_importance=trained.get("importance_shap"),
        score_distribution=scores,
        list_stats=list_stats,
        metric_history=metric_history(ctx, metric),
        monitoring=monitoring_history(settings, ctx.ds).to_dict("records"),
        monitoring_thresholds={
            "warn": settings.monitoring.psi_warn,
            "fail": settings.monitoring.psi_fail,
        },
    )
    path = render_report(data, summary_dir(ctx) / "report.html")
    log.info("report written to %s", path)
    return {"report": str(path)}
