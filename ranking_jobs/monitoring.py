"""Each night watched against the nights before it, before anything is published.

The stage scores a seeded sample of the night's active users' candidates exactly as
the precompute does (the same candidate and feature code, the champion's booster)
and keeps it in the lake (``monitoring_sample/dt=``). Against the samples of the
``monitor_reference_nights`` before it, it measures the population stability index
(PSI) of every model feature and of the scores, on bins fixed by the reference's
deciles; with them the null share of each feature, the label rate of the training
set, the hold-out NDCG of the model and of the best baseline, list coverage, the
age of every feature view, of the live lists and of the champion. One record per
night goes to ``monitoring/dt=`` (the report's trends read it) and to a Prometheus
textfile. A PSI at or above ``monitor_psi_fail`` stops the night before publish,
naming the feature: the last good lists stay live. One at or above
``monitor_psi_warn`` alerts and lets the night go on.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

PSI_BINS = 10
SCORE = "score"
ONE_DAY = "_1d"  # suffix of the features that count one day of events
NULL_CHANGE = 0.1  # a null share that moves this much counts as a move, whatever the mean
_EPS = 1e-4  # share given to an empty bin, so a bin seen on one side only stays finite


class MonitoringError(RuntimeError):
    """The night's data moved too far from the nights before it to publish."""


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bins are the reference's quantiles (ties merged, so a count that is mostly 0
    gets fewer bins), plus one for nulls; an empty bin counts as a share of
    ``_EPS``. 0 means the same distribution; 0.1 is usually read as a small shift,
    0.25 as a large one.
    """
    reference = np.asarray(reference, np.float64)
    current = np.asarray(current, np.float64)
    edges = bin_edges(reference[~np.isnan(reference)], bins)

    def shares(values: np.ndarray) -> np.ndarray:
        nulls = np.isnan(values)
        at = np.searchsorted(edges, values[~nulls], side="right")
        counts = np.append(np.bincount(at, minlength=len(edges) + 1), nulls.sum())
        return np.maximum(counts / max(len(values), 1), _EPS)

    p, q = shares(reference), shares(current)
    return float(np.sum((q - p) * np.log(q / p)))


def bin_edges(seen: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Edges at the reference's quantiles, each moved down halfway to the next smaller
    value the reference holds. A feature with few distinct values (a category's
    conversion rate: one value per category) would otherwise have its edges on those
    very values, and tonight's slightly different rates would flip whole categories
    from one bin to the next: a large PSI from no real change.

    A value that fills several deciles (the 0 of a count most users never reach) is a
    bin of its own, closed by one more edge halfway to the next larger value: the
    values above it would otherwise share its bin, and a count going from 1% to 10%
    non-zero would not move the PSI at all."""
    if not len(seen):
        return np.empty(0)
    raw = np.quantile(seen, np.linspace(0, 1, bins + 1)[1:-1])
    quantiles, repeats = np.unique(raw, return_counts=True)
    values = np.unique(seen)
    below = values[np.maximum(np.searchsorted(values, quantiles) - 1, 0)]
    edges = np.where(below < quantiles, (below + quantiles) / 2, quantiles)
    masses = quantiles[repeats > 1]
    after = np.searchsorted(values, masses, side="right")
    closed = after < len(values)
    upper = (masses[closed] + values[after[closed]]) / 2
    return np.unique(np.concatenate([edges, upper]))


def night_sample(ctx: RunContext) -> pd.DataFrame:
    """Model features (and the champion's score, with its version) of a seeded sample
    of the night's active users' candidates, as the precompute sees them."""
    from ranking_jobs import registry
    from ranking_jobs.candidates import inputs
    from ranking_jobs.families import MODEL_FEATURES
    from ranking_jobs.lists import candidate_features
    from ranking_jobs.model import predict

    settings = ctx.settings
    rng = np.random.default_rng(settings.generator.seed)
    users = inputs.active_users(settings, ctx.ds)
    users = np.sort(rng.choice(users, min(len(users), settings.monitoring.sample_users), False))
    if len(users) == 0:
        return pd.DataFrame({"model_version": pd.Series([], dtype=str)})
    with timed(log, f"monitoring sample of {len(users):,} users") as t:
        source = inputs.candidate_inputs(settings, ctx.ds)
        feats = candidate_features(settings, source, users, pd.Timestamp(ctx.end))
        columns = [c for c in MODEL_FEATURES if c in feats.columns]
        sample = feats[columns].astype(np.float32)
        champion = registry.champion(settings)
        if champion is not None:
            booster = registry.load_booster(settings, champion)
            sample[SCORE] = predict(booster, feats).astype(np.float32)
        sample["model_version"] = champion.label if champion is not None else ""
        if len(sample) > settings.monitoring.sample_rows:
            sample = sample.sample(
                settings.monitoring.sample_rows, random_state=settings.generator.seed
            )
        t["count"] = len(sample)
    return sample.reset_index(drop=True)


def _reference(settings: Settings, ds: dt.date) -> tuple[pd.DataFrame, list[dt.date]]:
    """The samples of the ``monitor_reference_nights`` days before ``ds`` that have one."""
    earliest = ds - dt.timedelta(days=settings.monitoring.reference_nights)
    days = [d for d in lake.list_partitions(settings, C.MONITORING_SAMPLE) if earliest <= d < ds]
    if not days:
        return pd.DataFrame(), []
    frames = [lake.read_partition(settings, C.MONITORING_SAMPLE, d).to_pandas() for d in days]
    return pd.concat(frames, ignore_index=True), days


def drift(sample: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Per column the two share: ``psi``, ``shift`` (how far the mean moved, in the
    reference's standard deviations) and ``null_change`` (tonight's null share minus
    the reference's). The score is compared only with reference rows that the same
    model scored: a new champion's scores are not a drift."""
    pairs = {
        c: (reference[c], sample[c])
        for c in sample.columns
        if c not in ("model_version", SCORE) and c in reference.columns
    }
    if SCORE in sample.columns and SCORE in reference.columns:
        same = reference[reference["model_version"] == sample["model_version"].iloc[0]]
        if len(same):
            pairs[SCORE] = (same[SCORE], sample[SCORE])
    rows = []
    for name, (ref, cur) in pairs.items():
        ref, cur = ref.to_numpy(np.float64), cur.to_numpy(np.float64)
        spread = np.nanstd(ref) if np.isfinite(ref).any() else 0.0
        moved = abs(np.nanmean(cur) - np.nanmean(ref)) if np.isfinite(cur).any() else 0.0
        moved = 0.0 if not np.isfinite(moved) else moved
        rows.append(
            {
                "name": name,
                "psi": psi(ref, cur),
                "shift": moved / spread if spread > 0 else (np.inf if moved > 0 else 0.0),
                "null_change": float(np.isnan(cur).mean() - np.isnan(ref).mean()),
            }
        )
    return pd.DataFrame(rows, columns=["name", "psi", "shift", "null_change"])


def judge(found: pd.DataFrame, settings: Settings) -> pd.Series:
    """``ok``, ``warn`` or ``fail`` per row of ``drift``: its PSI against the thresholds,
    counted only where the mean moved by ``monitor_min_shift`` standard deviations or
    the null share by ``NULL_CHANGE``. PSI alone flags a feature with few distinct
    values (a category's conversion rate) whenever two categories swap order, which
    a small marketplace does from one night to the next. A count over one day
    (``*_1d``) follows that day's traffic, bursts and holidays included: it warns at
    most, and never stops a night."""
    moved = (found["shift"] >= settings.monitoring.min_shift) | (
        found["null_change"].abs() >= NULL_CHANGE
    )
    names = found["name"] if "name" in found.columns else found.index.to_series(index=found.index)
    stops = ~names.astype(str).str.endswith(ONE_DAY)
    return pd.Series(
        np.select(
            [moved & stops & (found["psi"] >= settings.monitoring.psi_fail),
             moved & (found["psi"] >= settings.monitoring.psi_warn)],
            ["fail", "warn"],
            "ok",
        ),
        index=found.index,
    )  # fmt: skip


def _ages(ctx: RunContext) -> dict[str, float]:
    """Days between the night and the newest feature snapshot of each view, the live
    lists (before tonight's publish) and the day the champion was trained for."""
    from ranking_jobs import online, registry
    from ranking_jobs.families import FEATURE_COLUMNS

    ages: dict[str, float] = {}
    for table in FEATURE_COLUMNS:
        days = [d for d in lake.list_partitions(ctx.settings, table) if d <= ctx.ds]
        ages[f"feature_view:{table.split('/')[-1]}"] = (ctx.ds - max(days)).days if days else np.nan
    live = online.live_marker(ctx.settings)
    ages["live_lists"] = (ctx.ds - dt.date.fromisoformat(live["ds"])).days if live else np.nan
    champion = registry.champion(ctx.settings)
    trained = registry.trained_for(ctx.settings, champion) if champion is not None else None
    ages["champion"] = (ctx.ds - dt.date.fromisoformat(trained)).days if trained else np.nan
    return ages


def _night_figures(ctx: RunContext) -> dict[str, float]:
    """Label rate, hold-out NDCG@10 and list coverage from the night's stage summaries."""
    from ranking_jobs.summaries import read_summary

    out: dict[str, float] = {}
    training = read_summary(ctx, "build_training_set") or {}
    if training.get("rows"):
        out["label_rate"] = (
            sum((training.get("positives_by_split") or {}).values()) / training["rows"]
        )
    evaluation = read_summary(ctx, "evaluate_model") or {}
    metrics = evaluation.get("metrics") or {}
    for name, method in (("model", "model"), ("best_baseline", evaluation.get("best_baseline"))):
        value = (metrics.get(method) or {}).get("ndcg@10")
        if value is not None:
            out[f"holdout_ndcg@10:{name}"] = float(value)
    lists = read_summary(ctx, "precompute_lists") or {}
    if lists.get("active_users"):
        out["list_coverage"] = lists["users"] / lists["active_users"]
    return out


def record_frame(ctx: RunContext, rows: list[tuple[str, str, float, str]]) -> pa.Table:
    frame = pd.DataFrame(rows, columns=["metric", "name", "value", "status"])
    return pa.Table.from_pandas(frame.assign(ds=ctx.ds_str), preserve_index=False)


def monitor_night(ctx: RunContext) -> dict[str, Any]:
    """The stage entry point (DAG and CLI)."""
    from ranking_jobs.alerts import Alert, send

    settings = ctx.settings
    sample = night_sample(ctx)
    lake.write_partition(
        settings, C.MONITORING_SAMPLE, ctx.ds, pa.Table.from_pandas(sample, preserve_index=False)
    )
    reference, days = _reference(settings, ctx.ds)
    found = drift(sample, reference)
    found = found.assign(status=judge(found, settings)).sort_values("psi", ascending=False)
    nulls = sample.drop(columns=["model_version"]).isna().mean().to_dict()

    rows = [("psi", r.name, r.psi, r.status) for r in found.itertuples(index=False)]
    rows += [("shift", r.name, r.shift, r.status) for r in found.itertuples(index=False)]
    rows += [("null_share", name, float(v), "ok") for name, v in nulls.items() if name != SCORE]
    rows += [("night", name, float(v), "ok") for name, v in _night_figures(ctx).items()]
    rows += [("age_days", name, float(v), "ok") for name, v in _ages(ctx).items()]
    lake.write_partition(settings, C.MONITORING, ctx.ds, record_frame(ctx, rows))
    textfile = write_textfile(settings, ctx, rows)

    def named(status: str) -> list[str]:
        hit = found[found["status"].isin(["fail"] if status == "fail" else ["fail", "warn"])]
        return [
            f"{r.name} (PSI {r.psi:.2f}, mean moved {r.shift:.1f} sd)" for r in hit.itertuples()
        ]

    failing, warning = named("fail"), named("warn")
    against = f"against the {len(days)} night(s) {days[0]}..{days[-1]}" if days else ""
    summary = {
        "reference_nights": [d.isoformat() for d in days],
        "sample_rows": len(sample),
        "psi_max": float(found["psi"].max()) if len(found) else None,
        "psi_top": {r.name: round(r.psi, 4) for r in found.head(10).itertuples()},
        "drifted": warning,
        "status": "fail" if failing else "warn" if warning else "ok",
        "textfile": str(textfile),
    }
    if failing:
        raise MonitoringError(
            f"{ctx.ds_str}: {', '.join(failing)} {against}, at or above "
            f"RANKING_MONITOR_PSI_FAIL={settings.monitoring.psi_fail}: the night stops before "
            "publish and the last good lists stay live"
        )
    if warning:
        text = f"drift {against}: {', '.join(warning[:5])}"
        send(settings, Alert("drift_warning", "ranking_nightly", "monitor_night", ctx.ds_str,
                             ctx.run_id, text))  # fmt: skip
    if not days:
        log.info("monitoring: no earlier night's sample yet, nothing to compare with")
    return summary


def write_textfile(
    settings: Settings, ctx: RunContext, rows: list[tuple[str, str, float, str]]
) -> Path:
    """The night's record as a Prometheus textfile (node_exporter's textfile collector
    reads it), replaced whole."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    for metric, name, value, _ in rows:
        if metric not in gauges:
            gauges[metric] = Gauge(
                f"ranking_monitor_{metric}", f"Nightly monitoring: {metric}", ["name"],
                registry=registry,
            )  # fmt: skip
        gauges[metric].labels(name=name).set(value)
    night = Gauge("ranking_monitor_day_timestamp_seconds", "Day of the monitored night",
                  registry=registry)  # fmt: skip
    night.set(dt.datetime.combine(ctx.ds, dt.time(), dt.UTC).timestamp())
    path = settings.paths.state_dir / "monitoring" / "ranking_monitoring.prom"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path
