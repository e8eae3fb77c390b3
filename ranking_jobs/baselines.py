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
import scipy.sparse as sp

from ranking_jobs.precompute import inputs, rules
from ranking_jobs.precompute.candidates import (
    TOP_VALUES,
    _clean,
    _favourites,
    _pairs,
    covisitation_reach,
    rank_available,
)
from ranking_jobs.settings import Settings

SLACK = 20  # extra items a top-n takes before own listings and exclusions are dropped
NEIGHBOURS = 100  # item_knn: most similar items kept per item
BATCH_USERS = 2_000  # item_knn and ALS score users in batches: bounds each score block
BATCH_ITEMS = 4_000  # item_knn builds the similarity in blocks of items
# ALS: a modest, fixed configuration (no tuning on the hold-out it is judged on).
ALS_PARAMS = {"factors": 64, "iterations": 15, "regularization": 0.05}
BM25 = {"K1": 100, "B": 0.8}  # implicit's own example weighting of engagement counts


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
    # fitted models by (name, seed), kept so that the next shard of users does not refit
    _fitted: dict[tuple[str, int], object] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def ranked(self) -> pd.DataFrame:
        """Available items by recent popularity: the padding and several baselines."""
        return rank_available(self.items)

    @cached_property
    def blocked(self) -> pd.MultiIndex:
        """Excluded (user, item) pairs, unique, for ``candidates._clean``."""
        return _pairs(self.excluded).unique()

    def fitted(self, name: str, seed: int, fit: Callable[[], object]) -> object:
        """``fit()``'s result, made once per (name, seed) for these inputs."""
        key = (name, seed)
        if key not in self._fitted:
            self._fitted[key] = fit()
        return self._fitted[key]


def load_inputs(settings: Settings, snapshot: dt.date) -> BaselineInputs:
    """The baselines' inputs at the end of ``snapshot``, read as the candidates' are."""
    if settings.exclude_purchased:
        excluded = inputs.purchases_until(settings, snapshot)
    else:
        excluded = pd.DataFrame({"user_id": [], "item_id": []}, dtype="int64")
    return BaselineInputs(
        items=inputs.item_table(settings, snapshot),
        interactions=inputs.interactions_until(settings, snapshot),
        excluded=excluded,
        covisitation=inputs.covisitation_table(settings, snapshot),
        affinity=inputs.affinity_table(settings, snapshot, "category"),
        as_of=pd.Timestamp(snapshot + dt.timedelta(days=1), tz="UTC"),
        repeats=not settings.exclude_purchased,
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
    scored = scores(name, users, src, settings.top_n, settings.seed)
    bare = users[~np.isin(users, scored["user_id"].to_numpy())]
    if len(bare) and name != "recent_popularity":
        popular = scores("recent_popularity", bare, src, settings.top_n, settings.seed)
        scored = pd.concat([scored, popular], ignore_index=True)
    if scored.empty:  # nothing available: rules.to_lists needs a row
        return pd.DataFrame({"user_id": np.empty(0, np.int64), "item_ids": [], "scores": []})
    excluded = src.excluded[src.excluded["user_id"].isin(users)]
    return rules.final_lists(scored, src.items, src.ranked, excluded, settings)


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
    favourite = _favourites(src.affinity, pd.DataFrame({"user_id": users}), "category", TOP_VALUES)
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
    who engaged, top ``NEIGHBOURS`` per item): classic collaborative filtering."""
    matrix = _engagement(src)
    if matrix is None:
        return _empty()
    neighbours = src.fitted("item_knn", 0, lambda: _neighbours(matrix))
    binary = matrix.binary()

    def best(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        top = _top_per_row((binary[rows] @ neighbours).tocsr(), k).tocoo()
        return top.row, matrix.available[top.col], top.data

    return _by_batches(users, matrix, src, n, best)


def _als(users: np.ndarray, src: BaselineInputs, n: int, seed: int) -> pd.DataFrame:
    """implicit's ALS on BM25-weighted engagement counts: the standard latent-factor
    collaborative filter."""
    from threadpoolctl import threadpool_limits

    matrix = _engagement(src)
    if matrix is None:
        return _empty()
    model = src.fitted("als", seed, lambda: _fit_als(matrix, seed))

    def best(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with threadpool_limits(1, "blas"):
            ids, top = model.recommend(  # type: ignore[attr-defined]
                rows, None, N=k, filter_already_liked_items=False, items=matrix.available
            )
        return np.repeat(np.arange(len(rows)), ids.shape[1]), ids.ravel(), top.ravel()

    return _by_batches(users, matrix, src, n, best)


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
    rows = _clean(rows[found.notna().to_numpy()], src.blocked)
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


@dataclass(frozen=True, eq=False)
class _Engagement:
    """The user x item engagement counts of the whole history, with their ids."""

    counts: sp.csr_matrix  # float32 n per (user, item)
    user_ids: np.ndarray  # sorted; row i is user_ids[i]
    item_ids: np.ndarray  # sorted; column j is item_ids[j]
    available: np.ndarray  # columns of the available items, ascending

    def binary(self) -> sp.csr_matrix:
        """Who engaged with what, once or more alike."""
        out = self.counts.copy()
        out.data[:] = 1.0
        return out


def _engagement(src: BaselineInputs) -> _Engagement | None:
    """None when nobody engaged with anything that is available."""

    def build() -> _Engagement | None:
        inter = src.interactions
        user_ids, u = np.unique(inter["user_id"].to_numpy(np.int64), return_inverse=True)
        item_ids, i = np.unique(inter["item_id"].to_numpy(np.int64), return_inverse=True)
        available = np.flatnonzero(np.isin(item_ids, src.ranked["item_id"].to_numpy()))
        if len(available) == 0:
            return None
        counts = sp.csr_matrix(
            (inter["n"].to_numpy(np.float32), (u, i)), shape=(len(user_ids), len(item_ids))
        )
        counts.sum_duplicates()
        return _Engagement(counts, user_ids, item_ids, available)

    return src.fitted("engagement", 0, build)  # type: ignore[return-value]


def _neighbours(matrix: _Engagement) -> sp.csr_matrix:
    """item x available item cosine similarity over who engaged (binary), the item
    itself left out, top ``NEIGHBOURS`` per item. Sold items keep their row: what
    their buyers also liked is still recommendable."""
    binary = matrix.binary()
    per_item = np.asarray(binary.sum(axis=0)).ravel()
    normed = (binary @ sp.diags(1.0 / np.sqrt(np.maximum(per_item, 1.0)))).astype(np.float32)
    by_item = normed.T.tocsr()
    towards = normed[:, matrix.available].tocsr()
    blocks = []
    for start in range(0, by_item.shape[0], BATCH_ITEMS):
        block = (by_item[start : start + BATCH_ITEMS] @ towards).tocsr()
        row = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
        block.data[matrix.available[block.indices] == row + start] = 0.0  # the item itself
        top = _top_per_row(block, NEIGHBOURS)
        top.eliminate_zeros()
        blocks.append(top)
    return sp.vstack(blocks, format="csr")


def _fit_als(matrix: _Engagement, seed: int) -> object:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import bm25_weight
    from threadpoolctl import threadpool_limits

    # implicit's example weighs the item x user matrix, then fits its transpose
    weighted = bm25_weight(matrix.counts.T, **BM25).T.tocsr().astype(np.float32)
    with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS's would fight
        model = AlternatingLeastSquares(**ALS_PARAMS, random_state=seed)
        model.fit(weighted, show_progress=False)
    return model


def _by_batches(
    users: np.ndarray,
    matrix: _Engagement,
    src: BaselineInputs,
    n: int,
    best: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> pd.DataFrame:
    """The ``n`` best items of the users with a history, ``BATCH_USERS`` at a time.

    ``best(rows, k)``: the ``k`` best available items of the matrix rows ``rows``, as
    (position in ``rows``, item column, score); ``SLACK`` more are asked for than
    kept, for the own listings and exclusions that ``_finish`` drops.
    """
    known = users[np.isin(users, matrix.user_ids)]
    rows = np.searchsorted(matrix.user_ids, known)
    parts = [_empty()]
    for start in range(0, len(rows), BATCH_USERS):
        batch = rows[start : start + BATCH_USERS]
        at, column, score = best(batch, n + SLACK)
        parts.append(
            pd.DataFrame(
                {
                    "user_id": matrix.user_ids[batch[at]],
                    "item_id": matrix.item_ids[column],
                    "score": score.astype(np.float64),
                }
            )
        )
    return _finish(pd.concat(parts, ignore_index=True), src, n)


def _top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The ``k`` largest entries of each row (non-negative; ties in stored order).

    One int64 key per entry (row, then the float32 bits, which order non-negative
    floats, flipped) in a stable sort: rows are already in order, so the sort is
    mostly merging runs, much faster than a two-key lexsort.
    """
    counts = np.diff(matrix.indptr)
    if counts.max(initial=0) <= k:
        return matrix
    row = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), counts)
    bits = matrix.data.astype(np.float32).view(np.uint32).astype(np.int64)
    order = np.argsort(row << 32 | (0xFFFFFFFF - bits), kind="stable")
    rank = np.arange(len(order)) - np.repeat(matrix.indptr[:-1], counts)
    keep = np.sort(order[rank < k])
    return sp.csr_matrix((matrix.data[keep], (row[keep], matrix.indices[keep])), shape=matrix.shape)
