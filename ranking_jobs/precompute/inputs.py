"""Lake reads that training and precompute share: the item table, affinities, purchases."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.features.columns import AFFINITY_DIMENSIONS
from ranking_jobs.settings import Settings

PURCHASE_LOOKBACK_DAYS = 365


def item_table(settings: Settings, snapshot: dt.date) -> pd.DataFrame:
    """Listings of the snapshot with their popularity counts and availability."""
    raw = lake.read_partition(
        settings, C.RAW_ITEMS, snapshot, ["item_id", "seller_id", *AFFINITY_DIMENSIONS]
    ).to_pandas()
    stats = lake.read_partition(
        settings,
        C.FEATURES_ITEM,
        snapshot,
        [
            "item_id",
            "is_available",
            "impressions_7d",
            "clicks_7d",
            "likes_7d",
            "saves_7d",
            "bag_adds_7d",
            "purchases_7d",
        ],
    ).to_pandas()
    return raw.merge(stats, on="item_id", how="inner")


def affinity_table(settings: Settings, snapshot: dt.date) -> pd.DataFrame:
    return lake.read_partition(
        settings,
        C.FEATURES_USER_AFFINITY["category"],
        snapshot,
        ["user_id", "category", "category_affinity"],
    ).to_pandas()


def purchases_until(settings: Settings, last_day: dt.date) -> pd.DataFrame:
    """(user_id, item_id) of every purchase up to the end of ``last_day``."""
    days = lake.day_range(last_day, PURCHASE_LOOKBACK_DAYS)
    present = set(lake.list_partitions(settings, C.RAW_EVENTS))
    days = [d for d in days if d in present]
    if not days:
        return pd.DataFrame({"user_id": [], "item_id": []}, dtype="int64")
    events = lake.read_days(settings, C.RAW_EVENTS, days, ["user_id", "item_id", "event_type"])
    bought = events.filter(pc.equal(events["event_type"], "purchase"))
    return bought.select(["user_id", "item_id"]).to_pandas().drop_duplicates()


def recent_interactions(settings: Settings, last_day: dt.date, days: int) -> pd.DataFrame:
    """(user_id, item_id, ts) of every engagement (not bare impressions) in the
    ``days`` days ending with ``last_day``."""
    present = set(lake.list_partitions(settings, C.RAW_EVENTS))
    wanted = [d for d in lake.day_range(last_day, days) if d in present]
    if not wanted:
        return pd.DataFrame({"user_id": [], "item_id": [], "ts": []})
    events = lake.read_days(
        settings, C.RAW_EVENTS, wanted, ["user_id", "item_id", "event_type", "ts"]
    )
    engaged = events.filter(pc.not_equal(events["event_type"], "impression"))
    return engaged.select(["user_id", "item_id", "ts"]).to_pandas()


def covisitation_table(settings: Settings, snapshot: dt.date) -> pd.DataFrame:
    """Co-visitation neighbours of the snapshot, one row per (item, neighbour)."""
    table = lake.read_partition(
        settings,
        C.FEATURES_COVISITATION,
        snapshot,
        ["item_id", "neighbour_ids", "neighbour_scores"],
    ).to_pandas()
    pairs = table.explode(["neighbour_ids", "neighbour_scores"]).dropna()
    return pd.DataFrame(
        {
            "item_id": pairs["item_id"].to_numpy(dtype="int64"),
            "neighbour_id": pairs["neighbour_ids"].to_numpy(dtype="int64"),
            "score": pairs["neighbour_scores"].to_numpy(dtype="float64"),
        }
    )
