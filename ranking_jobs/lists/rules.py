"""Business rules from scored candidates to final lists (pure pandas and numpy)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ranking_jobs.settings import Settings


def _runs(*keys: np.ndarray) -> np.ndarray:
    """Each row's position within its run of equal ``keys`` (rows sorted by them)."""
    n = len(keys[0])
    new = np.ones(n, dtype=bool)
    for key in keys:
        new[1:] &= key[1:] == key[:-1]
    new[1:] = ~new[1:]
    starts = np.flatnonzero(new)
    return np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))


def _rank_order(user: np.ndarray, score: np.ndarray, item: np.ndarray) -> np.ndarray:
    """Row order by user, best score first, ties by item id.

    One int64 key per row (the user's rank, then the float32 score's bits flipped so
    that integer order is descending score order) sorts in one pass, where pandas' and
    numpy's three-key sorts were slow (docs/decisions.md). Lists store float32 scores, so
    they are also ordered by them. Rows tied on (user, score) are then put in item
    order; NaN scores go last.
    """
    users = pd.factorize(user, sort=True)[0].astype(np.int64)
    score = np.asarray(score, dtype=np.float32) + np.float32(0.0)  # -0.0 ties 0.0
    bits = score.view(np.uint32).astype(np.int64)
    ascending = np.where(bits >= 1 << 31, bits ^ 0xFFFFFFFF, bits | 1 << 31)
    key = users << 32 | np.where(np.isnan(score), 0xFFFFFFFF, 0xFFFFFFFF - ascending)
    order = np.argsort(key, kind="stable")
    ranked = key[order]
    tied = np.flatnonzero(ranked[1:] == ranked[:-1])
    if len(tied):
        at = np.union1d(tied, tied + 1)  # every row of a tied run, runs kept in place
        order[at] = order[at][np.lexsort((item[order[at]], ranked[at]))]
    return order


def _by_rank(scored: pd.DataFrame) -> pd.DataFrame:
    order = _rank_order(
        scored["user_id"].to_numpy(), scored["score"].to_numpy(), scored["item_id"].to_numpy()
    )
    return scored.take(order).reset_index(drop=True)


def top_n(scored: pd.DataFrame, n: int) -> pd.DataFrame:
    """Best ``n`` distinct items per user by score (ties by item id)."""
    ranked = _by_rank(scored)
    user, item = ranked["user_id"].to_numpy(), ranked["item_id"].to_numpy()
    ranked = ranked[~pd.MultiIndex.from_arrays([user, item]).duplicated()]  # keeps the best
    return ranked[_runs(ranked["user_id"].to_numpy()) < n].reset_index(drop=True)


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
    ranked = _by_rank(ranked)
    user, seller = ranked["user_id"].to_numpy(), ranked["seller_id"].to_numpy()
    by_seller = np.lexsort((seller, user))  # stable: rank order within a seller
    over = np.empty(len(ranked), dtype=np.int8)
    over[by_seller] = _runs(user[by_seller], seller[by_seller]) >= cap
    allowed_first = np.lexsort((over, user))
    rest = np.empty(len(ranked), dtype=np.int8)
    rest[allowed_first] = _runs(user[allowed_first]) >= head
    ranked = ranked.take(np.lexsort((rest, user))).reset_index(drop=True)
    ranked["score"] = ranked.groupby("user_id", sort=False)["score"].cummin()
    return ranked


def to_lists(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per user: item_ids and scores in ``ranked``'s order (grouped by user)."""
    if not ranked["user_id"].is_monotonic_increasing:
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


def final_lists(
    scored: pd.DataFrame,
    items: pd.DataFrame,
    popular: pd.DataFrame,
    excluded: pd.DataFrame,
    settings: Settings,
) -> pd.DataFrame:
    """Scored (user_id, item_id, score) rows to the lists a surface receives: the best
    ``top_n``, padded from ``popular``, at most ``seller_cap`` items of a seller near the
    top. The champion's lists and every baseline's go through this one path, so they
    are judged on what a user would actually be shown."""
    scored = scored[["user_id", "item_id", "score"]].merge(
        items[["item_id", "seller_id"]], on="item_id", how="left"
    )
    ranked = pad_from_popular(
        top_n(scored, settings.lists.top_n), popular, excluded, settings.lists.top_n
    )
    ranked = cap_sellers(ranked, settings.lists.seller_cap, settings.lists.surface_size)
    return to_lists(ranked)
