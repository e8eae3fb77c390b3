"""The nightly stages, in order, as lazy references.

This module imports nothing heavy so that the Airflow DAG file can read it at
parse time; each stage's module is imported only when the stage runs.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    name: str
    target: str  # "module:function", the function takes a RunContext
    doc: str

    def load(self) -> Callable[..., Mapping[str, Any]]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


NIGHTLY: tuple[Stage, ...] = (
    Stage(
        "validate_raw",
        "ranking_jobs.validation:validate_raw",
        "Great Expectations suites on the day's raw events, items and users.",
    ),
    Stage(
        "profile_data",
        "ranking_jobs.profile:profile_data",
        "Profile of the lake's data (volumes, repeats, impressions, sellers); the settings "
        "it implies for the night.",
    ),
    Stage(
        "build_features",
        "ranking_jobs.features:build_features",
        "Spark feature extraction for the snapshot date; registers views in Feast.",
    ),
    Stage(
        "build_training_set",
        "ranking_jobs.training:build_training_set",
        "Candidates + impressions, graded labels, features joined point-in-time by Feast.",
    ),
    Stage(
        "validate_training_set",
        "ranking_jobs.validation:validate_training_set",
        "Suite on the training set (labels, groups, feature coverage).",
    ),
    Stage(
        "train_model",
        "ranking_jobs.training:train_model",
        "XGBoost rank:ndcg with early stopping on a later day; logged to MLflow.",
    ),
    Stage(
        "evaluate_model",
        "ranking_jobs.evaluation:evaluate_model",
        "Hold-out NDCG against baselines; the gate that moves the champion alias.",
    ),
    Stage(
        "precompute_lists",
        "ranking_jobs.precompute:precompute_lists",
        "Top-N per active user with the champion, after business rules.",
    ),
    Stage(
        "validate_lists",
        "ranking_jobs.validation:validate_lists",
        "Suite on the final lists before anything is published.",
    ),
    Stage(
        "monitor_night",
        "ranking_jobs.monitoring:monitor_night",
        "Drift (PSI) of every model feature and the scores against the nights before, "
        "freshness and quality figures; a large drift stops the night before publish.",
    ),
    Stage(
        "publish_lists",
        "ranking_jobs.publish:publish_lists",
        "Lists into the Feast online store (user_recommendations).",
    ),
    Stage(
        "write_report",
        "ranking_jobs.report:write_report",
        "One HTML report with the night's metrics and plots.",
    ),
)

# Not nightly: the hourly ``ranking_availability`` DAG runs it between nights.
AVAILABILITY = Stage(
    "refresh_availability",
    "ranking_jobs.availability:refresh_availability",
    "Items sold since the live lists were made, into the online store (sold_items).",
)

STAGES: dict[str, Stage] = {s.name: s for s in (*NIGHTLY, AVAILABILITY)}


def run_stage(name: str, ctx: Any) -> dict[str, Any]:
    """Run one stage for a RunContext and log how long it took."""
    from ranking_jobs import profile

    stage = STAGES[name]
    if name != profile.STAGE:
        ctx = profile.with_profile(ctx)
    log.info("stage %s for %s (run %s) starting", name, ctx.ds_str, ctx.run_id)
    started = time.perf_counter()
    result = dict(stage.load()(ctx))
    seconds = time.perf_counter() - started
    summary_path = write_summary(ctx, name, {**result, "seconds": round(seconds, 2)})
    log.info("stage %s done in %.1fs (summary %s)", name, seconds, summary_path)
    return result


def summary_dir(ctx: Any) -> Path:
    return Path(ctx.settings.reports_dir) / ctx.ds_str


def write_summary(ctx: Any, name: str, result: Mapping[str, Any]) -> Path:
    """Each stage's result as JSON beside the night's report (written whole, then renamed)."""
    path = summary_dir(ctx) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def read_summary(ctx: Any, name: str) -> dict[str, Any] | None:
    path = summary_dir(ctx) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
