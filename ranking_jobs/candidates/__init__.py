"""Candidate generation: pure pandas functions shared by training and precompute.

Training builds its rows from the very candidates precompute would have
produced at the same as-of time, so the model learns to rank what it will be
asked to rank.

Each source proposes at most its quota (a share of ``per_user``) of items the
user may see, best first; sources are merged in ``SOURCES`` order, an item
keeps the first source that offered it (``source``) and a bit per source that
offered it at all (``sources``, for per-source recall), and global popularity
fills what the quotas leave.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ranking_jobs.collaborative import METHODS, Collaborative
from ranking_jobs.columns import AFFINITY_DIMENSIONS
from ranking_jobs.settings import CANDIDATE_SOURCES, CandidatesSettings

TOP_VALUES = 3  # favourite categories / brands a user's taste sources draw from
TOP_SIZES = 2  # sizes that count as "the user's size"
NEW_ARRIVAL_DAYS = 3.0

SOURCES = CANDIDATE_SOURCES
SOURCE_BIT = {name: 1 << i for i, name in enumerate(SOURCES)}
_SOURCE_NAMES = np.array(SOURCES, dtype=object)


@dataclass(frozen=True)
class CandidateInputs:
    """What the sources draw from, all known at the as-of time.

    ``items``: item_id, seller_id, is_available, the attributes, 1- and 7-day counts
    and age_days. ``affinity``: per dimension (category, brand, size), user_id, the
    value and ``<dimension>_affinity``. ``excluded``: (user_id, item_id) pairs never to
    recommend. ``recent``: (user_id, item_id) engaged with lately, for co-visitation.
    ``covisitation``: item_id, neighbour_id, score. ``history``: the user's past items
    (user_id, item_id, n, last_ts); given only for repurchase domains. ``collaborative``:
    item-kNN and ALS fitted on the engagement history (sources, and pair features).
    """

    items: pd.DataFrame
    affinity: Mapping[str, pd.DataFrame]
    excluded: pd.DataFrame
    recent: pd.DataFrame | None = None
    covisitation: pd.DataFrame | None = None
    history: pd.DataFrame | None = None
    collaborative: Collaborative | None = None

    def of_users(self, users: np.ndarray) -> CandidateInputs:
        """The same inputs with the per-user tables cut to ``users``: a shard's work
        then grows with the shard, not with the population."""

        def cut(frame: pd.DataFrame | None) -> pd.DataFrame | None:
            return None if frame is None else frame[frame["user_id"].isin(users)]

        return replace(
            self,
            affinity={d: cut(a) for d, a in self.affinity.items()},
            excluded=cut(self.excluded),
            recent=cut(self.recent),
            history=cut(self.history),
        )


def popularity(item_stats: pd.DataFrame, window: str = "7d") -> pd.Series:
    """Recent engagement, intent-weighted: the popularity baseline and candidate order.

    Purchases count too: a purchase-only log (a shop's sales) has no other signal,
    and a one-of-a-kind item that sold is unavailable anyway.
    """
    return (
        item_stats[f"clicks_{window}"]
        + 2.0 * (item_stats[f"likes_{window}"] + item_stats[f"saves_{window}"])
        + 3.0 * item_stats[f"bag_adds_{window}"]
        + 4.0 * item_stats[f"purchases_{window}"]
        + 1e-3 * item_stats[f"impressions_{window}"]
    ).astype("float64")


def rank_available(items: pd.DataFrame) -> pd.DataFrame:
    """Available items ordered by popularity (ties by item id, for determinism)."""
    extra = [c for c in (*AFFINITY_DIMENSIONS, "age_days", "trend") if c in items.columns]
    avail = items.loc[items["is_available"] == 1, ["item_id", "seller_id", *extra]].copy()
    avail["popularity"] = popularity(items.loc[avail.index])
    return avail.sort_values(["popularity", "item_id"], ascending=[False, True], kind="stable")


def trend(items: pd.DataFrame) -> pd.Series:
    """Yesterday's engagement above the item's 7-day daily average: what is rising."""
    return popularity(items, "1d") - popularity(items, "7d") / 7.0


def generate_candidates(
    users: np.ndarray,
    inputs: CandidateInputs,
    per_user: int,
    quotas: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Up to ``per_user`` candidates per user. Returns user_id, item_id, the item's
    attributes, ``source`` (first source, ``SOURCES`` order) and ``sources`` (bitmask
    of every source that offered it). Own listings, unavailable and excluded items
    never appear."""
    items = inputs.items
    if {"clicks_1d", "impressions_1d"} <= set(items.columns):
        items = items.assign(trend=trend(items))
    ranked = rank_available(items)
    users_df = pd.DataFrame({"user_id": np.asarray(users, dtype=np.int64)})
    shares = CandidatesSettings.model_fields["quotas"].default if quotas is None else quotas
    quota = {s: int(per_user * shares.get(s, 0.0)) for s in SOURCES[:-1]}
    quota[SOURCES[-1]] = per_user
    favourites = {
        d: favourite_values(
            inputs.affinity[d], users_df, d, TOP_SIZES if d == "size" else TOP_VALUES
        )
        for d in ("category", "brand", "size")
        if d in inputs.affinity and d in ranked.columns
    }
    proposals: list[pd.DataFrame] = []
    excluded = pair_index(inputs.excluded).unique()

    def offer(name: str, frame: pd.DataFrame | None) -> None:
        if frame is not None and quota[name] > 0:
            frame = without_blocked(frame, excluded).drop_duplicates(["user_id", "item_id"])
            frame = frame.groupby("user_id", sort=False).head(quota[name])
            proposals.append(frame[["user_id", "item_id"]].assign(bit=SOURCE_BIT[name]))

    if inputs.history is not None:
        offer("past_items", _past_items(inputs.history, ranked, users_df))
    if inputs.collaborative is not None:
        for method in METHODS:
            found = inputs.collaborative.top(method, users_df["user_id"].to_numpy(), quota[method])
            offer(method, found.merge(ranked[["item_id", "seller_id"]], on="item_id"))
    if inputs.recent is not None and inputs.covisitation is not None:
        offer("covisitation", _neighbours(inputs.recent, inputs.covisitation, ranked, users_df))
    sizes = favourites.get("size")
    for dim, name in (("category", "category_popular"), ("brand", "brand_popular")):
        if dim in favourites:
            offer(name, _taste(ranked, favourites[dim], sizes, dim, quota[name]))
    if "age_days" in ranked.columns and "category" in favourites:
        fresh = ranked[ranked["age_days"] <= NEW_ARRIVAL_DAYS].sort_values(
            ["age_days", "popularity", "item_id"], ascending=[True, False, True], kind="stable"
        )
        offer(
            "new_arrivals",
            _taste(fresh, favourites["category"], sizes, "category", quota["new_arrivals"]),
        )
    if "trend" in ranked.columns:
        rising = ranked[ranked["trend"] > 0].sort_values(
            ["trend", "item_id"], ascending=[False, True], kind="stable"
        )
        offer("trending", _everyone(users_df, rising.head(quota["trending"] + 20)))
    offer("global_popular", _everyone(users_df, ranked.head(per_user * 2)))
    return _merge(proposals, ranked, per_user)


def _merge(proposals: list[pd.DataFrame], ranked: pd.DataFrame, per_user: int) -> pd.DataFrame:
    """First-come merge of the sources, per user, keeping who offered what.

    Works on integer pair codes: pandas' drop_duplicates / groupby-sum / join chain on
    (user, item) pairs was a large share of the candidates' time (docs/decisions.md).
    """
    allp = pd.concat(proposals, ignore_index=True)
    user_code, _ = pd.factorize(allp["user_id"].to_numpy(np.int64))
    item_code, distinct_items = pd.factorize(allp["item_id"].to_numpy(np.int64))
    pair, _ = pd.factorize(user_code.astype(np.int64) * len(distinct_items) + item_code)
    # Codes are numbered by first appearance: a row is its pair's first exactly when
    # its code is above every earlier row's.
    first = np.ones(len(pair), dtype=bool)
    first[1:] = pair[1:] > np.maximum.accumulate(pair)[:-1]
    offered_by = np.zeros(len(pair), dtype=np.int64)
    bits = allp["bit"].to_numpy(np.int64)
    np.bitwise_or.at(offered_by, pair, bits)
    rows = np.flatnonzero(first)
    users = user_code[rows]
    rows = rows[pd.Series(users).groupby(users, sort=False).cumcount().to_numpy() < per_user]
    items = allp["item_id"].to_numpy()[rows]
    cands = {"user_id": allp["user_id"].to_numpy()[rows], "item_id": items}
    attrs = [d for d in AFFINITY_DIMENSIONS if d in ranked.columns]
    found = ranked.set_index("item_id")[attrs].reindex(items)
    cands.update({attr: found[attr].to_numpy() for attr in attrs})
    # the first offer's bit names its source: a name per row taken from an array, not a
    # string column made per offer and mapped back to bits
    cands["source"] = _SOURCE_NAMES[np.log2(bits[rows]).astype(np.intp)]
    cands["sources"] = offered_by[pair[rows]]
    return pd.DataFrame(cands)


def _everyone(users_df: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Every user with every item of ``items``, user by user in ``items``' order: a cross
    merge, from arrays and only the columns the sources use (the merge copied every
    item column per user: a fifth of a shard's candidate time)."""
    users = users_df["user_id"].to_numpy()
    return pd.DataFrame(
        {
            "user_id": np.repeat(users, len(items)),
            "item_id": np.tile(items["item_id"].to_numpy(), len(users)),
            "seller_id": np.tile(items["seller_id"].to_numpy(), len(users)),
        }
    )


def favourite_values(
    affinity: pd.DataFrame, users_df: pd.DataFrame, dim: str, top: int
) -> pd.DataFrame:
    """The user's ``top`` values of ``dim`` by affinity (ties by value)."""
    return (
        affinity.merge(users_df, on="user_id")
        .sort_values(["user_id", f"{dim}_affinity", dim], ascending=[True, False, True])
        .groupby("user_id", sort=False)
        .head(top)[["user_id", dim]]
    )


def _taste(
    ordered: pd.DataFrame, favourite: pd.DataFrame, sizes: pd.DataFrame | None, dim: str, n: int
) -> pd.DataFrame:
    """Up to ``n`` items per favourite ``dim`` value of each user, taken in ``ordered``'s
    order, those in one of the user's sizes first."""
    take = n + 10  # slack for the user's own listings and exclusions
    ordered = ordered.assign(_rank=np.arange(len(ordered)))
    anyone = favourite.merge(ordered.groupby(dim, sort=False).head(take), on=dim, sort=False)
    parts = [anyone.assign(_fits=0)]
    if sizes is not None and "size" in ordered.columns:
        per_size = ordered.groupby([dim, "size"], sort=False).head(take)
        fitting = favourite.merge(sizes, on="user_id").merge(per_size, on=[dim, "size"])
        parts.insert(0, fitting.assign(_fits=1))
    offered = pd.concat(parts, ignore_index=True)
    return offered.sort_values(
        ["user_id", "_fits", "_rank"], ascending=[True, False, True], kind="stable"
    )


def covisitation_reach(recent: pd.DataFrame, covisitation: pd.DataFrame) -> pd.DataFrame:
    """user_id, item_id, covis: summed co-visitation scores between each item and the
    user's recent items; the candidate source, the ranker's ``covis_score`` feature
    and the co-visitation baseline all read it."""
    seeds = recent[["user_id", "item_id"]].drop_duplicates()
    return (
        seeds.merge(covisitation, on="item_id")
        .groupby(["user_id", "neighbour_id"], as_index=False)["score"]
        .sum()
        .rename(columns={"neighbour_id": "item_id", "score": "covis"})
    )


def _neighbours(
    recent: pd.DataFrame, covisitation: pd.DataFrame, ranked: pd.DataFrame, users_df: pd.DataFrame
) -> pd.DataFrame:
    """Available co-visitation neighbours of the user's recent items, by summed score;
    the recent items themselves are not offered again by this source."""
    seen = recent[["user_id", "item_id"]].drop_duplicates().merge(users_df, on="user_id")
    scored = covisitation_reach(seen, covisitation)
    scored = scored.merge(seen.assign(_seen=1), on=["user_id", "item_id"], how="left")
    scored = scored[scored["_seen"].isna()].drop(columns="_seen")
    scored = scored.merge(ranked[["item_id", "seller_id"]], on="item_id")
    return scored.sort_values(
        ["user_id", "covis", "item_id"], ascending=[True, False, True], kind="stable"
    )


def _past_items(
    history: pd.DataFrame, ranked: pd.DataFrame, users_df: pd.DataFrame
) -> pd.DataFrame:
    """The user's available past items, most frequent, then most recent, first."""
    past = history[["user_id", "item_id", "n", "last_ts"]].merge(users_df, on="user_id")
    past = past.merge(ranked[["item_id", "seller_id"]], on="item_id")
    return past.sort_values(
        ["user_id", "n", "last_ts", "item_id"],
        ascending=[True, False, False, True],
        kind="stable",
    )


def pair_index(frame: pd.DataFrame) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([frame["user_id"].to_numpy(), frame["item_id"].to_numpy()])


def without_blocked(cands: pd.DataFrame, excluded: pd.MultiIndex) -> pd.DataFrame:
    """``cands`` without the user's own listings and the ``excluded`` (unique) pairs; a
    lookup, not an anti-join merge per source (a third of the candidates' time)."""
    keep = cands["seller_id"].to_numpy() != cands["user_id"].to_numpy()
    if len(excluded):
        keep &= excluded.get_indexer(pair_index(cands)) < 0
    return cands[keep]
