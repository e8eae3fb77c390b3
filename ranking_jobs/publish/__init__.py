"""Publish stage: the night's lists into the Feast online store.

A marker file records which logical day is live. A backfill of an older day
writes its partitions but does not touch the online store, so fresher lists
that are already live are never replaced by older ones.

Rows go to the online store stamped with the publish time, not the day's
as-of time: Feast's Redis store skips a write whose timestamp is not newer
than the stored one, so a rerun of the same day must carry a newer stamp to
really replace its lists. The as-of time stays in ``generated_at``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)


def live_marker_path(settings: Settings) -> Path:
    return settings.feast_dir / "live.json"


def live_marker(settings: Settings) -> dict[str, Any] | None:
    path = live_marker_path(settings)
    return json.loads(path.read_text()) if path.exists() else None


def _write_marker(settings: Settings, marker: dict[str, Any]) -> None:
    path = live_marker_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(marker, indent=2, sort_keys=True))
    os.replace(tmp, path)


def publish_lists(ctx: RunContext) -> dict[str, Any]:
    from ranking_jobs.feast_store import feature_store

    settings = ctx.settings
    live = live_marker(settings)
    if live is not None and live["ds"] > ctx.ds_str:
        log.warning("lists of %s are live; backfill of %s is not published", live["ds"], ctx.ds_str)
        return {
            "published": False,
            "reason": f"fresher lists of {live['ds']} are live",
            "live": live,
        }

    lists = lake.read_partition(settings, C.RECOMMENDATIONS, ctx.ds).to_pandas()
    popular = lake.read_partition(settings, C.POPULAR, ctx.ds).to_pandas()
    stamp = pd.Timestamp(dt.datetime.now(dt.UTC))
    lists["event_timestamp"] = stamp
    popular["event_timestamp"] = stamp
    store = feature_store(settings)
    with timed(log, "published lists", "lists") as t:
        store.write_to_online_store("user_recommendations", lists)
        store.write_to_online_store("popular_items", popular)
        t["count"] = len(lists)
    marker = {
        "ds": ctx.ds_str,
        "run_id": ctx.run_id,
        "model_version": str(lists["model_version"].iloc[0]) if len(lists) else "",
        "users": len(lists),
        "published_at": stamp.isoformat(),
    }
    _write_marker(settings, marker)
    return {
        "published": True,
        **marker,
        "lists_per_second": round(len(lists) / t["seconds"]) if t["seconds"] else None,
    }
