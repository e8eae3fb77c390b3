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
    the user's last item so the list stays sorted and personal items stay first.
    ``lists`` and ``popular`` carry seller_id."""
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
    fill = fill[fill["_merge"] == "left_only"].drop(columns="_merge")
    floor = lists.groupby("user_id")["score"].min().rename("floor")
    fill = fill.merge(floor, on="user_id", how="left")
    fill["floor"] = fill["floor"].fillna(0.0)
    step = fill.groupby("user_id").cumcount().to_numpy() + 1
    fill["score"] = fill["floor"].to_numpy() - 1e-3 * step
    fill = fill.drop(columns="floor")
    return top_n(pd.concat([lists, fill], ignore_index=True), n)


def cap_sellers(ranked: pd.DataFrame, cap: int, head: int) -> pd.DataFrame:
    """At most ``cap`` items of one seller among each list's first ``head``.

    The head is filled in rank order from items that are within their seller's first
    ``cap``; everything else follows in its original order, so nothing is dropped.
    Scores are lowered to the running minimum, so each list stays sorted by what it
    shows. ``ranked``: user_id, item_id, seller_id, score.
    """
    ranked = ranked.sort_values(
        ["user_id", "score", "item_id"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)
    pos = ranked.groupby("user_id", sort=False).cumcount().to_numpy()
    nth = ranked.groupby(["user_id", "seller_id"], sort=False).cumcount().to_numpy()
    ranked = ranked.assign(_pos=pos, _over=(nth >= cap).astype(np.int8))
    ranked = ranked.sort_values(["user_id", "_over", "_pos"], kind="stable")
    ranked["_rest"] = (ranked.groupby("user_id", sort=False).cumcount() >= head).astype(np.int8)
    ranked = ranked.sort_values(["user_id", "_rest", "_pos"], kind="stable")
    ranked["score"] = ranked.groupby("user_id", sort=False)["score"].cummin()
    return ranked.drop(columns=["_pos", "_over", "_rest"]).reset_index(drop=True)


def to_lists(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per user: item_ids and scores in ``ranked``'s order (grouped by user)."""
    ranked = ranked.sort_values("user_id", kind="stable")
    users, starts = np.unique(ranked["user_id"].to_numpy(np.int64), return_index=True)
    cuts = starts[1:]
    return pd.DataFrame(
        {
            "user_id": users,
            "item_ids": np.split(ranked["item_id"].to_numpy(np.int64), cuts),
            "scores": np.split(ranked["score"].to_numpy(np.float32), cuts),
        }
    )
