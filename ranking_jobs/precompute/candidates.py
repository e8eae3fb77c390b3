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


def popularity(item_stats: pd.DataFrame) -> pd.Series:
    """Recent engagement, intent-weighted: the popularity baseline and candidate order."""
    return (
        item_stats["clicks_7d"]
        + 2.0 * (item_stats["likes_7d"] + item_stats["saves_7d"])
        + 3.0 * item_stats["bag_adds_7d"]
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
) -> pd.DataFrame:
    """Up to ``per_user`` candidates per user from two quota'd sources.

    ``items``: item_id, category, seller_id, is_available and 7-day counts.
    ``affinity``: user_id, category, category_affinity.
    ``excluded``: user_id, item_id pairs never to recommend (e.g. already bought).
    Own listings and unavailable items never appear. Returns user_id, item_id,
    the item's attributes (category, brand, size, style where given) and source.
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

    cands = pd.concat(
        [_clean(by_cat, excluded).groupby("user_id").head(cat_quota), _clean(glob, excluded)],
        ignore_index=True,
    )
    cands = cands.drop_duplicates(["user_id", "item_id"], keep="first")
    cands = cands.groupby("user_id", sort=False).head(per_user)
    attrs = [d for d in AFFINITY_DIMENSIONS if d in cands.columns]
    return cands[["user_id", "item_id", *attrs, "source"]].reset_index(drop=True)


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
