"""Lake reads that training and precompute share: the item table, affinities, purchases,
past interactions, and the candidates built from them."""

from __future__ import annotations

import datetime as dt
import logging
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.candidates import (
    CandidateInputs,
    covisitation_reach,
    generate_candidates,
)
from ranking_jobs.collaborative import Collaborative
from ranking_jobs.columns import AFFINITY_DIMENSIONS, EVENT_COUNTS
from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

PURCHASE_LOOKBACK_DAYS = 365


RECENT_DAYS = 7  # engagement window whose items seed co-visitation (source and baseline)
USER_BATCH = 50_000  # users per candidate batch: bounds the sources' cross joins


class Candidates(NamedTuple):
    """Candidates of a snapshot and the inputs they were drawn from (padding and the
    pair features reuse them)."""

    frame: pd.DataFrame
    inputs: CandidateInputs

    @property
    def items(self) -> pd.DataFrame:
        return self.inputs.items

    @property
    def excluded(self) -> pd.DataFrame:
        return self.inputs.excluded


def with_pair_features(rows: pd.DataFrame, cands: Candidates) -> pd.DataFrame:
    """``rows`` (user_id, item_id, ...) plus ``PAIR_FLOATS``: the features that come from
    the candidates' own inputs rather than from Feast. Training and precompute both
    call it, so the ranker sees the same values in both."""
    src = cands.inputs
    if src.recent is None or src.covisitation is None:
        rows = rows.assign(covis_score=np.float32(0.0))
    else:
        reach = covisitation_reach(src.recent, src.covisitation)
        merged = rows[["user_id", "item_id"]].merge(reach, on=["user_id", "item_id"], how="left")
        rows = rows.assign(covis_score=merged["covis"].fillna(0.0).to_numpy(np.float32))
    if src.collaborative is None:
        return rows.assign(knn_score=np.float32(0.0), als_score=np.float32(np.nan))
    pairs = src.collaborative.pair_scores(rows["user_id"].to_numpy(), rows["item_id"].to_numpy())
    return rows.assign(**pairs)


def candidates_at(settings: Settings, users: np.ndarray, snapshot: dt.date) -> Candidates:
    """``generate_candidates`` for ``users`` from snapshot ``snapshot``, as training and
    precompute both need it (``candidate_inputs`` then ``candidates_for``)."""
    return candidates_for(settings, candidate_inputs(settings, snapshot), users)


def candidate_inputs(settings: Settings, snapshot: dt.date) -> CandidateInputs:
    """What the sources draw from at snapshot ``snapshot``: the ``excluded_pairs`` left
    out; where nothing the user engaged with is excluded, their past items offered as a
    source of their own."""
    items = item_table(settings, snapshot)
    engaged = interactions_until(settings, snapshot)
    excluded = excluded_pairs(settings, snapshot, engaged)
    history = (
        None if settings.lists.exclude_purchased or settings.lists.exclude_engaged else engaged
    )
    dims = (
        ("category", "brand", "size") if settings.candidates.size_first else ("category", "brand")
    )
    return CandidateInputs(
        items=items,
        affinity={d: affinity_table(settings, snapshot, d) for d in dims},
        excluded=excluded,
        recent=interactions_until(settings, snapshot, RECENT_DAYS),
        covisitation=covisitation_table(settings, snapshot),
        history=history,
        collaborative=Collaborative(
            engaged, items.loc[items["is_available"] == 1, "item_id"], settings.generator.seed
        ),
    )


def candidates_for(settings: Settings, source: CandidateInputs, users: np.ndarray) -> Candidates:
    """Candidates of ``users`` from ``source``, in batches of ``USER_BATCH`` users so that
    memory does not grow with the population."""
    users = np.asarray(users, dtype=np.int64)
    with timed(log, f"candidates of {len(users):,} users") as t:
        parts = [
            generate_candidates(
                users[i : i + USER_BATCH],
                source,
                settings.candidates.per_user,
                settings.candidates.quotas,
            )
            for i in range(0, max(len(users), 1), USER_BATCH)
        ]
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        t["count"] = len(frame)
    return Candidates(frame, source)


def item_table(settings: Settings, snapshot: dt.date) -> pd.DataFrame:
    """Listings of the snapshot with their popularity counts, age and availability."""
    raw = lake.read_partition(
        settings, C.RAW_ITEMS, snapshot, ["item_id", "seller_id", *AFFINITY_DIMENSIONS]
    ).to_pandas()
    counts = [f"{e}_{w}d" for w in (1, 7) for e in EVENT_COUNTS]
    stats = lake.read_partition(
        settings, C.FEATURES_ITEM, snapshot, ["item_id", "is_available", "age_days", *counts]
    ).to_pandas()
    return raw.merge(stats, on="item_id", how="inner")


def affinity_table(settings: Settings, snapshot: dt.date, dim: str = "category") -> pd.DataFrame:
    return lake.read_partition(
        settings,
        C.FEATURES_USER_AFFINITY[dim],
        snapshot,
        ["user_id", dim, f"{dim}_affinity"],
    ).to_pandas()


def _lookback_days(
    settings: Settings, last_day: dt.date, days: int = PURCHASE_LOOKBACK_DAYS
) -> list[dt.date]:
    """Written raw/events days of the ``days``-day window ending with ``last_day``."""
    present = set(lake.list_partitions(settings, C.RAW_EVENTS))
    return [d for d in lake.day_range(last_day, days) if d in present]


def active_users(settings: Settings, day: dt.date) -> np.ndarray:
    """Users with any event in the ``active_days`` ending with ``day``, sorted: the
    users who get a personal list."""
    days = _lookback_days(settings, day, settings.lists.active_days)
    ids = [
        pc.unique(lake.read_partition(settings, C.RAW_EVENTS, d, ["user_id"])["user_id"])
        for d in days
    ]
    if not ids:
        return np.array([], dtype=np.int64)
    return np.unique(np.concatenate([a.to_numpy() for a in ids]).astype(np.int64))


def excluded_pairs(settings: Settings, snapshot: dt.date, engaged: pd.DataFrame) -> pd.DataFrame:
    """(user_id, item_id) no list may offer at ``snapshot``: every item the user engaged
    with (``engaged``, from ``interactions_until``) under ``exclude_engaged``, else what
    they bought under ``exclude_purchased``, else none."""
    if settings.lists.exclude_engaged:
        return engaged[["user_id", "item_id"]]
    if settings.lists.exclude_purchased:
        return purchases_until(settings, snapshot)
    return pd.DataFrame({"user_id": [], "item_id": []}, dtype="int64")


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
