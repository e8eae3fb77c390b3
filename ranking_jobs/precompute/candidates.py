"""Candidate generation: pure pandas functions shared by training and precompute.

Training builds its rows from the very candidates precompute would have
produced at the same as-of time, so the model learns to rank what it will be
asked to rank.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ranking_jobs.features.columns import AFFINITY_DIMENSIONS

TOP_CATEGORIES = 3
CATEGORY_SHARE = 0.6  # quota of the list from the user's favourite categories
PAST_ITEMS_SHARE = 0.3  # quota of the list from the user's own past items, when offered


def popularity(item_stats: pd.DataFrame) -> pd.Series:
    """Recent engagement, intent-weighted: the popularity baseline and candidate order.

    Purchases count too: a purchase-only log (a shop's sales) has no other signal,
    and a one-of-a-kind item that sold is unavailable anyway.
    """
    return (
        item_stats["clicks_7d"]
        + 2.0 * (item_stats["likes_7d"] + item_stats["saves_7d"])
        + 3.0 * item_stats["bag_adds_7d"]
        + 4.0 * item_stats["purchases_7d"]
        + 1e-3 * item_stats["impressions_7d"]
    ).astype("float64")


def rank_available(items: pd.DataFrame) -> pd.DataFrame:
    """Available items ordered by popularity (ties by item id, for determinism)."""
    keep = ["item_id", "seller_id", *[d for d in AFFINITY_DIMENSIONS if d in items.columns]]
    avail = items.loc[items["is_available"] == 1, keep].copy()
    avail["popularity"] = popularity(items.loc[avail.index])
    return avail.sort_values(["popularity", "item_id"], ascending=[False, True], kind="stable")


def generate_candidates(
    users: np.ndarray,
    items: pd.DataFrame,
    affinity: pd.DataFrame,
    excluded: pd.DataFrame,
    per_user: int,
    *,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Up to ``per_user`` candidates per user from quota'd sources, in this order:
    ``past_items`` (only when ``history`` is given), ``category_popular``, ``global_popular``.

    ``items``: item_id, category, seller_id, is_available and 7-day counts.
    ``affinity``: user_id, category, category_affinity.
    ``excluded``: user_id, item_id pairs never to recommend (e.g. already bought).
    ``history``: user_id, item_id, n (interactions) and last_ts; the user's past items,
    most frequent then most recent first, take up to ``PAST_ITEMS_SHARE`` of the list.
    Pass it only for repurchase domains: with bought items excluded it has no place.
    Own listings and unavailable items never appear. Returns user_id, item_id,
    the item's attributes (category, brand, size, style where given) and source
    (the first source that offered the item).
    """
    ranked = rank_available(items)
    users_df = pd.DataFrame({"user_id": np.asarray(users, dtype=np.int64)})
    cat_quota = int(per_user * CATEGORY_SHARE)
    # Over-fetch so exclusions and duplicates can be dropped without running short.
    slack = per_user * 2

    fav = (
        affinity.merge(users_df, on="user_id")
        .sort_values(["user_id", "category_affinity", "category"], ascending=[True, False, True])
        .groupby("user_id", sort=False)
        .head(TOP_CATEGORIES)
    )
    per_cat = ranked.groupby("category", sort=False).head(slack)
    by_cat = fav[["user_id", "category"]].merge(per_cat, on="category")
    by_cat["source"] = "category_popular"
    by_cat = by_cat.sort_values(
        ["user_id", "popularity", "item_id"], ascending=[True, False, True], kind="stable"
    )

    top = ranked.head(slack + per_user)
    glob = users_df.merge(top, how="cross")
    glob["source"] = "global_popular"

    sources = [_clean(by_cat, excluded).groupby("user_id").head(cat_quota), _clean(glob, excluded)]
    if history is not None:
        sources.insert(0, _past_items(history, ranked, users_df, excluded, per_user))
    cands = pd.concat(sources, ignore_index=True)
    cands = cands.drop_duplicates(["user_id", "item_id"], keep="first")
    cands = cands.groupby("user_id", sort=False).head(per_user)
    attrs = [d for d in AFFINITY_DIMENSIONS if d in cands.columns]
    return cands[["user_id", "item_id", *attrs, "source"]].reset_index(drop=True)


def _past_items(
    history: pd.DataFrame,
    ranked: pd.DataFrame,
    users_df: pd.DataFrame,
    excluded: pd.DataFrame,
    per_user: int,
) -> pd.DataFrame:
    """The user's available past items, most frequent, then most recent, first; quota'd."""
    past = history[["user_id", "item_id", "n", "last_ts"]].merge(users_df, on="user_id")
    past = past.merge(ranked, on="item_id")
    past["source"] = "past_items"
    past = past.sort_values(
        ["user_id", "n", "last_ts", "item_id"],
        ascending=[True, False, False, True],
        kind="stable",
    )
    return _clean(past, excluded).groupby("user_id").head(int(per_user * PAST_ITEMS_SHARE))


def _clean(cands: pd.DataFrame, excluded: pd.DataFrame) -> pd.DataFrame:
    cands = cands[cands["seller_id"] != cands["user_id"]]
    if len(excluded):
        marked = cands.merge(
            excluded[["user_id", "item_id"]].drop_duplicates(),
            on=["user_id", "item_id"],
            how="left",
            indicator=True,
        )
        cands = marked[marked["_merge"] == "left_only"].drop(columns="_merge")
    return cands
