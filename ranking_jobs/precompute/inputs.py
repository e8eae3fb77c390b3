"""Lake reads that training and precompute share: the item table, affinities, purchases,
past interactions, and the candidates built from them."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.features.columns import AFFINITY_DIMENSIONS
from ranking_jobs.precompute.candidates import generate_candidates
from ranking_jobs.settings import Settings

PURCHASE_LOOKBACK_DAYS = 365


class Candidates(NamedTuple):
    """Candidates of a snapshot and the inputs they were drawn from (padding reuses them)."""

    frame: pd.DataFrame
    items: pd.DataFrame
    excluded: pd.DataFrame


def candidates_at(settings: Settings, users: np.ndarray, snapshot: dt.date) -> Candidates:
    """``generate_candidates`` for ``users`` from snapshot ``snapshot``, as training and
    precompute both need it: bought items excluded when ``exclude_purchased``, else the
    user's past items offered as a source of their own."""
    items = item_table(settings, snapshot)
    if settings.exclude_purchased:
        excluded, history = purchases_until(settings, snapshot), None
    else:
        excluded = pd.DataFrame({"user_id": [], "item_id": []}, dtype="int64")
        history = interactions_until(settings, snapshot)
    frame = generate_candidates(
        users,
        items,
        affinity_table(settings, snapshot),
        excluded,
        settings.candidates_per_user,
        history=history,
    )
    return Candidates(frame, items, excluded)


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


def _lookback_days(
    settings: Settings, last_day: dt.date, days: int = PURCHASE_LOOKBACK_DAYS
) -> list[dt.date]:
    """Written raw/events days of the ``days``-day window ending with ``last_day``."""
    present = set(lake.list_partitions(settings, C.RAW_EVENTS))
    return [d for d in lake.day_range(last_day, days) if d in present]


def purchases_until(settings: Settings, last_day: dt.date) -> pd.DataFrame:
    """(user_id, item_id) of every purchase up to the end of ``last_day``."""
    days = _lookback_days(settings, last_day)
    if not days:
        return pd.DataFrame({"user_id": [], "item_id": []}, dtype="int64")
    events = lake.read_days(settings, C.RAW_EVENTS, days, ["user_id", "item_id", "event_type"])
    bought = events.filter(pc.equal(events["event_type"], "purchase"))
    return bought.select(["user_id", "item_id"]).to_pandas().drop_duplicates()


def interactions_until(
    settings: Settings, last_day: dt.date, days: int = PURCHASE_LOOKBACK_DAYS
) -> pd.DataFrame:
    """Per (user_id, item_id) engaged with (anything but an impression) in the ``days``
    days ending with ``last_day``: how often (``n``) and when last (``last_ts``)."""
    wanted = _lookback_days(settings, last_day, days)
    if not wanted:
        return pd.DataFrame(
            {"user_id": [], "item_id": [], "n": [], "last_ts": pd.to_datetime([], utc=True)}
        ).astype({"user_id": "int64", "item_id": "int64", "n": "int64"})
    events = lake.read_days(
        settings, C.RAW_EVENTS, wanted, ["user_id", "item_id", "ts", "event_type"]
    )
    acted = events.filter(pc.not_equal(events["event_type"], "impression")).to_pandas()
    return acted.groupby(["user_id", "item_id"], as_index=False).agg(
        n=("ts", "size"), last_ts=("ts", "max")
    )


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
