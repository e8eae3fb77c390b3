"""Business rules from scored candidates to final lists (pure pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def top_n(scored: pd.DataFrame, n: int) -> pd.DataFrame:
    """Best ``n`` distinct items per user by score (ties by item id)."""
    ranked = scored.sort_values(
        ["user_id", "score", "item_id"], ascending=[True, False, True], kind="stable"
    )
    ranked = ranked.drop_duplicates(["user_id", "item_id"], keep="first")
    return ranked.groupby("user_id", sort=False).head(n)


def pad_from_popular(
    lists: pd.DataFrame, popular: pd.DataFrame, excluded: pd.DataFrame, n: int
) -> pd.DataFrame:
    """Fill lists shorter than ``n`` with popular items the user may see, scored below
    the user's last item so the list stays sorted and personal items stay first."""
    counts = lists.groupby("user_id").size()
    short = counts[counts < n]
    if short.empty:
        return lists
    fill = pd.DataFrame({"user_id": short.index.to_numpy()}).merge(
        popular[["item_id", "seller_id"]].head(n * 2), how="cross"
    )
    fill = fill[fill["seller_id"] != fill["user_id"]]
    taken = pd.concat([lists[["user_id", "item_id"]], excluded[["user_id", "item_id"]]])
    fill = fill.merge(
        taken.drop_duplicates(), on=["user_id", "item_id"], how="left", indicator=True
    )
    fill = fill[fill["_merge"] == "left_only"].drop(columns=["_merge", "seller_id"])
    floor = lists.groupby("user_id")["score"].min().rename("floor")
    fill = fill.merge(floor, on="user_id", how="left")
    fill["floor"] = fill["floor"].fillna(0.0)
    step = fill.groupby("user_id").cumcount().to_numpy() + 1
    fill["score"] = fill["floor"].to_numpy() - 1e-3 * step
    fill = fill.drop(columns="floor")
    return top_n(pd.concat([lists, fill], ignore_index=True), n)


def to_lists(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per user: item_ids and scores in rank order."""
    ranked = ranked.sort_values(
        ["user_id", "score", "item_id"], ascending=[True, False, True], kind="stable"
    )
    users, starts = np.unique(ranked["user_id"].to_numpy(np.int64), return_index=True)
    cuts = starts[1:]
    return pd.DataFrame(
        {
            "user_id": users,
            "item_ids": np.split(ranked["item_id"].to_numpy(np.int64), cuts),
            "scores": np.split(ranked["score"].to_numpy(np.float32), cuts),
        }
    )
