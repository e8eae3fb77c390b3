"""Non-model baselines that make final lists, for the evaluation gate and for nights
without a champion.

Each baseline scores (user, item) pairs from what is known at the snapshot, and its
lists go through ``rules.final_lists`` like the champion's, so the gate compares what
a surface would receive. A baseline proposes only available items, never the user's
own listings nor excluded pairs: the model's candidates obey the same rules. The
user's past engagements are not excluded (the model may rank them too); ``repeats``
only decides whether ``buy_again``, the baseline made of them, applies, as it decides
whether the candidates' ``past_items`` source does.

Every user's scores depend on the inputs and the seed only, never on the other users
asked for, so precompute may ask shard by shard; the fitted models (item
neighbours, ALS) are kept on the inputs for the next shard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ranking_jobs.calendar import as_of_after
from ranking_jobs.candidates import (
    TOP_VALUES,
    covisitation_reach,
    favourite_values,
    inputs,
    pair_index,
    rank_available,
    without_blocked,
)
from ranking_jobs.collaborative import Collaborative
from ranking_jobs.lists import rules
from ranking_jobs.settings import Settings

SLACK = 20  # extra items a top-n takes before own listings and exclusions are dropped


@dataclass(frozen=True, eq=False)
class BaselineInputs:
    """What the baselines draw from, all known at ``as_of`` (see ``load_inputs``).

    ``items``: the item table (item_id, seller_id, is_available, attributes, 1- and
    7-day counts). ``interactions``: user_id, item_id, n, last_ts (UTC) of every
    engagement but impressions up to ``as_of``. ``excluded``: (user_id, item_id) pairs
    never to recommend. ``covisitation``: item_id, neighbour_id, score.
    ``affinity``: user_id, category, category_affinity. ``repeats``: items can be
    bought again. The frames may be empty (a new lake), never missing columns.
    """

    items: pd.DataFrame
    interactions: pd.DataFrame
    excluded: pd.DataFrame
    covisitation: pd.DataFrame
    affinity: pd.DataFrame
    as_of: pd.Timestamp
    repeats: bool
    # fitted models by seed, kept so that the next shard of users does not refit
    _fitted: dict[int, Collaborative] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def ranked(self) -> pd.DataFrame:
        """Available items by recent popularity: the padding and several baselines."""
        return rank_available(self.items)

    @cached_property
    def blocked(self) -> pd.MultiIndex:
        """Excluded (user, item) pairs, unique, for ``candidates.without_blocked``."""
        return pair_index(self.excluded).unique()

    def collaborative(self, seed: int) -> Collaborative:
        """item-kNN and ALS over the history, fitted once per seed for these inputs."""
        if seed not in self._fitted:
            self._fitted[seed] = Collaborative(self.interactions, self.ranked["item_id"], seed)
        return self._fitted[seed]


def load_inputs(settings: Settings, snapshot: dt.date) -> BaselineInputs:
    """The baselines' inputs at the end of ``snapshot``, read as the candidates' are."""
    engaged = inputs.interactions_until(settings, snapshot)
    return BaselineInputs(
        items=inputs.item_table(settings, snapshot),
        interactions=engaged,
        excluded=inputs.excluded_pairs(settings, snapshot, engaged),
        covisitation=inputs.covisitation_table(settings, snapshot),
        affinity=inputs.affinity_table(settings, snapshot, "category"),
        as_of=as_of_after(snapshot),
        repeats=not (settings.lists.exclude_purchased or settings.lists.exclude_engaged),
    )


def names(src: BaselineInputs) -> list[str]:
    """The baselines that apply: buying again only where items can be bought again."""
    return [name for name in BASELINES if name != "buy_again" or src.repeats]


def scores(name: str, users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """user_id, item_id, score: at most ``n`` rows per user of ``users``, best first,
    only available items that are not the user's own listing nor excluded."""
    users = np.unique(np.asarray(users, dtype=np.int64))
    if len(users) == 0 or src.ranked.empty:
        return _empty()
    return BASELINES[name](users, src, n, seed)


def lists(name: str, users: np.ndarray, src: BaselineInputs, settings: Settings) -> pd.DataFrame:
    """The final lists (user_id, item_ids, scores) of baseline ``name`` for ``users``.

    Users the baseline has nothing for get recent popularity's rows: the padding of
    ``final_lists`` pads only lists that have a first item.
    """
    users = np.unique(np.asarray(users, dtype=np.int64))
    scored = scores(name, users, src, settings.lists.top_n, settings.generator.seed)
    bare = users[~np.isin(users, scored["user_id"].to_numpy())]
    if len(bare) and name != "recent_popularity":
        popular = scores(
            "recent_popularity", bare, src, settings.lists.top_n, settings.generator.seed
        )
        scored = pd.concat([scored, popular], ignore_index=True)
    if scored.empty:  # nothing available: rules.to_lists needs a row
        return pd.DataFrame({"user_id": np.empty(0, np.int64), "item_ids": [], "scores": []})
    excluded = src.excluded[src.excluded["user_id"].isin(users)]
    return rules.final_lists(scored, src.items, src.ranked, excluded, settings)


NON_PERSONAL = ("popularity", "recent_popularity")  # the same list for every user
ANYONE = -1  # the user of a non-personal list: sells nothing, has bought nothing


def fallback(name: str, src: BaselineInputs, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """item_ids and scores of the non-personal list ``name`` (``NON_PERSONAL``) of
    ``fallback_size`` items: what users without a personal list receive."""
    if name not in NON_PERSONAL:
        raise ValueError(f"{name} is a personal baseline; a fallback is one of {NON_PERSONAL}")
    sized = settings.replace(top_n=settings.lists.fallback_size)
    made = lists(name, np.array([ANYONE]), src, sized)
    if made.empty:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    return made["item_ids"].iloc[0], made["scores"].iloc[0]


# --- the baselines --------------------------------------------------------------


def _random(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """Random available items: the floor every ranking must clear. Drawn from a hash
    of (seed, user, slot), so a user's draw does not depend on who else is asked."""
    catalogue = np.sort(src.ranked["item_id"].to_numpy(np.int64))
    slots = np.arange(n + SLACK, dtype=np.uint64)
    key = _mix(np.uint64(seed) ^ _mix(users.astype(np.uint64)))
    draws = _mix(key[:, None] + (slots[None, :] + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15))
    rows = pd.DataFrame(
        {
            "user_id": np.repeat(users, len(slots)),
            "item_id": catalogue[(draws % np.uint64(len(catalogue))).astype(np.int64).ravel()],
            "score": np.tile(len(slots) - slots.astype(np.float64), len(users)),
        }
    )
    return _finish(rows, src, n)


def _popularity(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """Most users who ever engaged: the all-time best-sellers list."""
    engaged = src.interactions["item_id"].value_counts()
    ranked = src.ranked[["item_id"]].assign(
        engaged=engaged.reindex(src.ranked["item_id"]).to_numpy()
    )
    ranked = ranked[ranked["engaged"] > 0].sort_values(
        ["engaged", "item_id"], ascending=[False, True], kind="stable"
    )
    return _everyone(users, ranked["item_id"].to_numpy(), src, n)


def _recent_popularity(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """Intent-weighted engagement of the last 7 days: what the padding shows anyway,
    so a model must beat its own fallback."""
    return _everyone(users, src.ranked["item_id"].to_numpy(), src, n)


def _category_popular(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """Recently popular items of the user's ``TOP_VALUES`` favourite categories (as the
    candidates' taste source picks them); ``final_lists``' padding adds the rest by
    recent popularity."""
    if src.affinity.empty:
        return _empty()
    favourite = favourite_values(
        src.affinity, pd.DataFrame({"user_id": users}), "category", TOP_VALUES
    )
    # users with the same favourites share a list: rank each distinct set once
    code, values = pd.factorize(favourite["category"])
    user, at = np.unique(favourite["user_id"].to_numpy(np.int64), return_inverse=True)
    slots = np.full((len(user), TOP_VALUES), -1, dtype=np.int64)
    slots[at, favourite.groupby("user_id", sort=False).cumcount().to_numpy()] = code
    sets, taste = np.unique(np.sort(slots, axis=1), axis=0, return_inverse=True)
    member = sets.ravel() >= 0
    best = src.ranked.groupby("category", sort=False).head(n + SLACK)
    per_set = pd.DataFrame(
        {
            "taste": np.repeat(np.arange(len(sets)), TOP_VALUES)[member],
            "category": values[sets.ravel()[member]],
        }
    ).merge(best[["item_id", "category", "popularity"]], on="category")
    per_set = per_set.sort_values(
        ["taste", "popularity", "item_id"], ascending=[True, False, True], kind="stable"
    )
    per_set = per_set.groupby("taste", sort=False).head(n + SLACK)
    per_set = per_set.assign(
        score=_by_position(per_set.groupby("taste", sort=False).cumcount().to_numpy())
    )
    rows = pd.DataFrame({"user_id": user, "taste": taste.ravel()}).merge(per_set, on="taste")
    return _finish(rows, src, n)


def _covisitation(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """Items viewed together with what the user engaged with in the last week: the
    session-continuation list."""
    if src.covisitation.empty:
        return _empty()
    since = src.as_of - pd.Timedelta(days=inputs.RECENT_DAYS)
    recent = src.interactions[
        (src.interactions["last_ts"] >= since) & src.interactions["user_id"].isin(users)
    ]
    reach = covisitation_reach(recent, src.covisitation)
    return _finish(reach.rename(columns={"covis": "score"}), src, n)


def _buy_again(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """The user's past items, most often first, then most recent: the repurchase list
    that is hard to beat where items are bought again."""
    past = src.interactions[src.interactions["user_id"].isin(users)]
    age_days = (src.as_of - past["last_ts"]).dt.total_seconds().to_numpy() / 86_400.0
    # n orders; the recency term stays in (0, 0.5], so it only breaks ties of n
    score = past["n"].to_numpy(np.float64) + 1.0 / (2.0 + np.maximum(age_days, 0.0))
    return _finish(past[["user_id", "item_id"]].assign(score=score), src, n)


def _item_knn(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """Items engaged with by the same users as the user's history items (cosine over
    who engaged, top neighbours per item): classic collaborative filtering."""
    return _finish(src.collaborative(seed).top("item_knn", users, n + SLACK), src, n)


def _als(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """implicit's ALS on BM25-weighted engagement counts: the standard latent-factor
    collaborative filter."""
    return _finish(src.collaborative(seed).top("als", users, n + SLACK), src, n)


BASELINES: dict[str, Callable[[np.ndarray, BaselineInputs, int, int], pd.DataFrame]] = {
    "random": _random,
    "popularity": _popularity,
    "recent_popularity": _recent_popularity,
    "category_popular": _category_popular,
    "covisitation": _covisitation,
    "buy_again": _buy_again,
    "item_knn": _item_knn,
    "als": _als,
}


# --- helpers --------------------------------------------------------------------


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.empty(0, np.int64),
            "item_id": np.empty(0, np.int64),
            "score": np.empty(0, np.float64),
        }
    )


def _finish(rows: pd.DataFrame, src: BaselineInputs, n: int) -> pd.DataFrame:
    """``rows`` (user_id, item_id, score) cut to available items that are not the
    user's own nor excluded, then the best ``n`` per user."""
    seller = src.ranked.set_index("item_id")["seller_id"]
    found = seller.reindex(rows["item_id"].to_numpy())
    rows = rows[["user_id", "item_id", "score"]].assign(seller_id=found.to_numpy())
    rows = without_blocked(rows[found.notna().to_numpy()], src.blocked)
    ranked = rules.top_n(rows[["user_id", "item_id", "score"]], n)
    return ranked.astype({"user_id": np.int64, "item_id": np.int64, "score": np.float64})


def _everyone(users: np.ndarray, ordered: np.ndarray, src: BaselineInputs, n: int) -> pd.DataFrame:
    """The same items, best first, for every user."""
    head = ordered[: n + SLACK]
    rows = pd.DataFrame(
        {
            "user_id": np.repeat(users, len(head)),
            "item_id": np.tile(head.astype(np.int64), len(users)),
            "score": np.tile(_by_position(np.arange(len(head))), len(users)),
        }
    )
    return _finish(rows, src, n)


def _by_position(position: np.ndarray) -> np.ndarray:
    """Reciprocal ranks of items already in order (ties broken by item id): distinct
    scores, so the rules need not sort the ties of a shared list again, their slow path."""
    return 1.0 / (1.0 + position.astype(np.float64))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: well-spread 64-bit hashes of counters."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
