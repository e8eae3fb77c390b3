"""Ranking metrics over query groups, vectorised with numpy.

Every per-query metric takes three aligned row arrays -- ``qid`` (query id of the
row: a user, a user-day, a search), ``label`` (graded relevance, non-negative
integers) and ``score`` (the ranker's output) -- in any row order. Rows are
ranked inside each query by score descending; equal scores keep their original
row order (a stable sort), which is exactly how XGBoost's own rank metrics break
ties. Per-query results come back as a float array with one value per query, in
the order of ``np.unique(qid)``, so two rankers scored on the same rows give
arrays that line up query by query (what :func:`bootstrap_diff_ci` needs).

NDCG follows XGBoost 3.2's ``ndcg@k`` metric to the last bit that matters
(``src/metric/rank_metric.cc`` ``NDCGScoreCpu`` and ``NDCGCache::InitOnCPU`` in
``src/common/ranking_utils.cc``):

* gain ``2**rel - 1`` (``ndcg_exp_gain=true``, the default), or ``rel`` when
  ``exp_gain=False``; discount ``1 / log2(rank + 2)`` with 0-based rank;
* DCG over the top ``k`` of the predicted order, IDCG over the top ``k`` of the
  labels sorted descending;
* a query whose IDCG is 0 (no item with a label above 0) scores **1** under
  ``ndcg@k`` and **0** under ``ndcg@k-``: pass ``no_relevant=1.0`` (default) or
  ``0.0``; ``float("nan")`` marks such queries so they can be dropped later.

XGBoost averages the per-query values weighted by query-group weights; without
weights that is the plain mean, which :func:`summarise` reports.

MAP@k follows XGBoost's ``map@k`` too: ``AP@k = sum_{i<=k} P@i * rel_i /
min(R, k)`` with ``R`` the number of relevant items in the whole query, and
no-relevant queries scoring ``no_relevant`` (1 by default, as in XGBoost).
For MAP, recall and MRR "relevant" means ``label > threshold``; with the
marketplace grades of :data:`ranking_jobs.contracts.LABEL_GRADES` ``threshold=0``
counts a bare impression as relevant and ``threshold=1`` starts at a click.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "bootstrap_diff_ci",
    "catalogue_coverage",
    "list_metrics",
    "map_at_k",
    "mrr",
    "ndcg_at_k",
    "novelty",
    "per_query",
    "recall_at_k",
    "summarise",
]

# Largest bootstrap work array (resamples x queries) held in memory at once.
_BOOT_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class _Ranked:
    """Rows sorted by (query, score desc, original row order), with ranks."""

    query_ids: np.ndarray  # unique query ids, sorted; one per query
    codes: np.ndarray  # query index of each sorted row
    rank: np.ndarray  # 0-based position of each sorted row inside its query
    label: np.ndarray  # labels in predicted order
    ideal_label: np.ndarray  # labels in ideal order (sorted descending per query)
    sizes: np.ndarray  # rows per query

    @property
    def n_queries(self) -> int:
        return len(self.query_ids)


def _rank(qid: ArrayLike, label: ArrayLike, score: ArrayLike) -> _Ranked:
    qid = np.asarray(qid)
    label = np.asarray(label)
    score = np.asarray(score, dtype=np.float64)  # float32 -> float64 keeps the order exactly
    if not (qid.ndim == label.ndim == score.ndim == 1):
        raise ValueError("qid, label and score must be 1-D arrays")
    if not (len(qid) == len(label) == len(score)):
        raise ValueError(
            f"qid, label and score differ in length: {len(qid)}, {len(label)}, {len(score)}"
        )
    if len(qid) == 0:
        raise ValueError("no rows to evaluate")
    if np.isnan(score).any():
        raise ValueError(f"score has {int(np.isnan(score).sum())} NaN values")
    if not np.issubdtype(label.dtype, np.number) or label.dtype == np.bool_:
        label = label.astype(np.float64)
    if np.isnan(label.astype(np.float64)).any() or (label < 0).any():
        raise ValueError("labels must be non-negative and not NaN")
    if not np.array_equal(label, np.floor(label)):
        raise ValueError("labels must be integer relevance grades")
    label = label.astype(np.int64)

    query_ids, codes = np.unique(qid, return_inverse=True)
    codes = codes.ravel()
    # np.lexsort is stable: equal (query, score) keys keep their original row order.
    order = np.lexsort((-score, codes))
    ideal = np.lexsort((-label, codes))
    sizes = np.bincount(codes, minlength=len(query_ids))
    starts = np.cumsum(sizes) - sizes
    sorted_codes = codes[order]  # identical to codes[ideal]: both group rows by query
    rank = np.arange(len(order)) - starts[sorted_codes]
    return _Ranked(query_ids, sorted_codes, rank, label[order], label[ideal], sizes)


def _check_k(k: int | None) -> float:
    if k is None:
        return math.inf
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer or None, got {k!r}")
    return int(k)


def _per_query_sum(r: _Ranked, values: np.ndarray) -> np.ndarray:
    return np.bincount(r.codes, weights=values, minlength=r.n_queries)


def _dcg(r: _Ranked, labels: np.ndarray, k: float, exp_gain: bool) -> np.ndarray:
    gain = np.exp2(labels) - 1.0 if exp_gain else labels.astype(np.float64)
    discount = 1.0 / np.log2(r.rank + 2.0)
    return _per_query_sum(r, np.where(r.rank < k, gain * discount, 0.0))


def _ndcg(r: _Ranked, k: int | None, no_relevant: float, exp_gain: bool) -> np.ndarray:
    kk = _check_k(k)
    if exp_gain and r.label.max(initial=0) >= 32:
        raise ValueError("labels must be below 32 with exponential gain (as in XGBoost)")
    dcg = _dcg(r, r.label, kk, exp_gain)
    idcg = _dcg(r, r.ideal_label, kk, exp_gain)
    out = np.full(r.n_queries, float(no_relevant))
    has = idcg > 0
    out[has] = dcg[has] / idcg[has]
    return out


def _relevance(r: _Ranked, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Binary relevance of the sorted rows and the number of relevant rows per query."""
    rel = (r.label > threshold).astype(np.float64)
    return rel, _per_query_sum(r, rel)


def _map(r: _Ranked, k: int | None, threshold: float, no_relevant: float) -> np.ndarray:
    kk = _check_k(k)
    rel, n_rel = _relevance(r, threshold)
    csum = np.cumsum(rel)
    first = np.cumsum(r.sizes) - r.sizes  # index of each query's first sorted row
    before = csum[first] - rel[first]  # relevant rows before the query starts
    hits = csum - before[r.codes]  # relevant rows at or above each row, inside its query
    precision = hits / (r.rank + 1.0)
    num = _per_query_sum(r, np.where(r.rank < kk, precision * rel, 0.0))
    out = np.full(r.n_queries, float(no_relevant))
    has = n_rel > 0
    out[has] = num[has] / np.minimum(n_rel[has], kk)
    return out


def _recall(r: _Ranked, k: int | None, threshold: float, no_relevant: float) -> np.ndarray:
    kk = _check_k(k)
    rel, n_rel = _relevance(r, threshold)
    hits = _per_query_sum(r, np.where(r.rank < kk, rel, 0.0))
    out = np.full(r.n_queries, float(no_relevant))
    has = n_rel > 0
    out[has] = hits[has] / n_rel[has]
    return out


def _mrr(r: _Ranked, k: int | None, threshold: float, no_relevant: float) -> np.ndarray:
    kk = _check_k(k)
    rel, n_rel = _relevance(r, threshold)
    out = np.where(n_rel > 0, 0.0, float(no_relevant))
    found = (rel > 0) & (r.rank < kk)
    # rows are sorted by query then rank, so the first hit of a query is its best rank
    q, first = np.unique(r.codes[found], return_index=True)
    out[q] = 1.0 / (r.rank[found][first] + 1.0)
    return out


# --- public per-query metrics ------------------------------------------------


def ndcg_at_k(
    qid: ArrayLike,
    label: ArrayLike,
    score: ArrayLike,
    k: int | None,
    *,
    no_relevant: float = 1.0,
    exp_gain: bool = True,
) -> np.ndarray:
    """NDCG@k per query, as XGBoost's ``ndcg@k`` (``k=None``: the whole list, ``ndcg``).

    ``no_relevant`` is the score of a query with no label above 0: 1.0 matches
    ``ndcg@k``, 0.0 matches ``ndcg@k-``, NaN flags the query.
    """
    return _ndcg(_rank(qid, label, score), k, no_relevant, exp_gain)


def map_at_k(
    qid: ArrayLike,
    label: ArrayLike,
    score: ArrayLike,
    k: int | None,
    *,
    threshold: float = 0,
    no_relevant: float = 1.0,
) -> np.ndarray:
    """Average precision@k per query (XGBoost's ``map@k``); relevant = ``label > threshold``."""
    return _map(_rank(qid, label, score), k, threshold, no_relevant)


def recall_at_k(
    qid: ArrayLike,
    label: ArrayLike,
    score: ArrayLike,
    k: int | None,
    *,
    threshold: float = 0,
    no_relevant: float = 0.0,
) -> np.ndarray:
    """Share of a query's relevant items (``label > threshold``) ranked in the top k."""
    return _recall(_rank(qid, label, score), k, threshold, no_relevant)


def mrr(
    qid: ArrayLike,
    label: ArrayLike,
    score: ArrayLike,
    *,
    k: int | None = None,
    threshold: float = 0,
    no_relevant: float = 0.0,
) -> np.ndarray:
    """Reciprocal rank of the first relevant item per query (0 when none in the top k)."""
    return _mrr(_rank(qid, label, score), k, threshold, no_relevant)


def per_query(
    qid: ArrayLike,
    label: ArrayLike,
    score: ArrayLike,
    ks: Sequence[int] = (5, 10, 20),
    *,
    threshold: float = 0,
    no_relevant: float | None = None,
) -> pd.DataFrame:
    """Every per-query metric in one frame indexed by query id (ranked once).

    Columns: ``ndcg@k``, ``map@k``, ``recall@k`` for each k, ``mrr`` and
    ``has_relevant`` (the query has an item with ``label > threshold``).
    ``no_relevant=None`` keeps each metric's own default (1 for NDCG and MAP as
    in XGBoost, 0 for recall and MRR); a number applies to all of them.
    """
    r = _rank(qid, label, score)
    cols: dict[str, np.ndarray] = {}
    for k in ks:
        cols[f"ndcg@{k}"] = _ndcg(r, k, 1.0 if no_relevant is None else no_relevant, True)
    for k in ks:
        cols[f"map@{k}"] = _map(r, k, threshold, 1.0 if no_relevant is None else no_relevant)
    for k in ks:
        cols[f"recall@{k}"] = _recall(r, k, threshold, 0.0 if no_relevant is None else no_relevant)
    cols["mrr"] = _mrr(r, None, threshold, 0.0 if no_relevant is None else no_relevant)
    cols["has_relevant"] = _relevance(r, threshold)[1] > 0
    return pd.DataFrame(cols, index=pd.Index(r.query_ids, name="qid"))


def summarise(
    qid: ArrayLike,
    label: ArrayLike,
    score: ArrayLike,
    ks: Sequence[int] = (5, 10, 20),
    *,
    threshold: float = 0,
    no_relevant: float | None = None,
) -> dict[str, float]:
    """Means over queries of :func:`per_query`, plus ``n_queries`` and ``no_relevant_share``.

    Queries flagged with ``no_relevant=float("nan")`` are left out of the means.
    """
    frame = per_query(qid, label, score, ks, threshold=threshold, no_relevant=no_relevant)
    has = frame.pop("has_relevant")
    out = {
        name: float(np.nanmean(col)) if col.notna().any() else math.nan
        for name, col in frame.items()
    }
    out["n_queries"] = float(len(frame))
    out["no_relevant_share"] = float(1.0 - has.mean())
    return out


# --- list-level metrics ------------------------------------------------------


def _flatten_lists(list_item_ids: object) -> tuple[np.ndarray, np.ndarray]:
    """Flat item ids and the length of each list.

    Accepts an iterable of lists (lists, arrays, a pandas Series of arrays; a
    ``None`` list counts as empty), a 2-D array (one list per row), or a flat
    1-D sequence of item ids (one single list).
    """
    if isinstance(list_item_ids, pd.Series):
        list_item_ids = list_item_ids.to_numpy()
    if isinstance(list_item_ids, np.ndarray) and list_item_ids.dtype != object:
        if list_item_ids.ndim == 1:
            return list_item_ids, np.array([len(list_item_ids)])
        if list_item_ids.ndim == 2:
            rows, cols = list_item_ids.shape
            return list_item_ids.ravel(), np.full(rows, cols)
        raise ValueError("a list array must be 1-D (one list) or 2-D (one list per row)")
    items = list(list_item_ids)  # type: ignore[call-overload]
    if items and all(np.isscalar(x) for x in items):
        return np.asarray(items), np.array([len(items)])
    arrays = [np.asarray(x).ravel() if x is not None else np.empty(0) for x in items]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    if not arrays or lengths.sum() == 0:
        return np.empty(0), lengths
    return np.concatenate(arrays), lengths


def top_k_lists(qid: ArrayLike, item_id: ArrayLike, score: ArrayLike, k: int) -> list[np.ndarray]:
    """Each query's ``k`` best-scored items, best first (ties in row order, as ranked)."""
    qid, item_id = np.asarray(qid), np.asarray(item_id)
    _, codes = np.unique(qid, return_inverse=True)
    order = np.lexsort((-np.asarray(score, dtype=np.float64), codes))
    sizes = np.bincount(codes)
    rank = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    top = order[rank < k]
    return np.split(item_id[top], np.cumsum(np.minimum(sizes, k))[:-1])


def list_metrics(
    lists: pd.DataFrame, relevant: pd.DataFrame, users: np.ndarray, k: int
) -> dict[str, np.ndarray]:
    """``ndcg@k``, ``recall@k`` and ``hit@k`` of final lists, one value per user of
    ``users`` (unique), in that order.

    ``lists``: user_id, item_ids (best first, distinct). ``relevant``: user_id,
    item_id, rel (integer grade above 0, one row per pair) for everything the user
    engaged with in the hold-out window, shown or not: IDCG is over the top ``k`` of
    all of them and recall divides by all of them, so an engaged item a list left
    out is a miss. Gains and discounts are ``ndcg_at_k``'s. A user without a list
    scores 0. Pass only users with relevant items: one without scores 0 too, which
    would read as a miss.
    """
    kk = _check_k(k)
    if not math.isfinite(kk):
        raise ValueError("list metrics need a finite k")
    users = pd.Index(np.asarray(users))
    rel = relevant["rel"].to_numpy()
    if len(rel) and (rel.min() < 1 or rel.max() >= 32 or not np.array_equal(rel, np.floor(rel))):
        raise ValueError("rel must be integer grades from 1 to 31")
    rel_user = users.get_indexer(relevant["user_id"].to_numpy())
    known = rel_user >= 0
    rel_user, rel_item, rel = rel_user[known], relevant["item_id"].to_numpy()[known], rel[known]
    n_relevant = np.bincount(rel_user, minlength=len(users))

    def discounted(user: np.ndarray, rank: np.ndarray, grade: np.ndarray) -> np.ndarray:
        inside = rank < kk
        gain = (np.exp2(grade[inside]) - 1.0) / np.log2(rank[inside] + 2.0)
        return np.bincount(user[inside], weights=gain, minlength=len(users))

    ideal = np.lexsort((-rel, rel_user))
    ideal_rank = np.arange(len(ideal)) - np.repeat(np.cumsum(n_relevant) - n_relevant, n_relevant)
    idcg = discounted(rel_user[ideal], ideal_rank, rel[ideal])

    shown, lengths = _flatten_lists(lists["item_ids"])
    list_user = users.get_indexer(np.repeat(lists["user_id"].to_numpy(), lengths))
    rank = np.arange(len(shown)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    top = (rank < kk) & (list_user >= 0)
    hits = pd.DataFrame({"u": list_user[top], "item_id": shown[top], "rank": rank[top]}).merge(
        pd.DataFrame({"u": rel_user, "item_id": rel_item, "rel": rel}), on=["u", "item_id"]
    )
    user, hit_rank = hits["u"].to_numpy(), hits["rank"].to_numpy()
    dcg = discounted(user, hit_rank, hits["rel"].to_numpy())
    found = np.bincount(user, minlength=len(users))
    has = n_relevant > 0
    return {
        f"ndcg@{k}": np.divide(dcg, idcg, out=np.zeros(len(users)), where=idcg > 0),
        f"recall@{k}": np.divide(found, n_relevant, out=np.zeros(len(users)), where=has),
        f"hit@{k}": (found > 0).astype(np.float64),
    }


def catalogue_coverage(
    list_item_ids: Iterable[Sequence[object]] | ArrayLike, catalogue_size: int
) -> float:
    """Share of the catalogue that appears in at least one list."""
    if catalogue_size <= 0:
        raise ValueError(f"catalogue_size must be positive, got {catalogue_size}")
    flat, _ = _flatten_lists(list_item_ids)
    return len(pd.unique(flat)) / catalogue_size


def novelty(
    list_item_ids: Iterable[Sequence[object]] | ArrayLike,
    item_popularity: Mapping[object, float] | pd.Series,
    *,
    n_users: int | None = None,
) -> float:
    """Mean self-information ``-log2 p(i)`` of the recommended items, in bits.

    ``p(i) = popularity(i) / N`` with ``N`` the total popularity (share of
    interactions) or, when given, ``n_users`` (share of users, Zhou et al. 2010,
    for popularity counted as distinct users). Items missing from
    ``item_popularity`` or with a count below 1 count as seen once, so brand-new
    listings get the largest finite novelty. Each list's mean is taken first,
    then the mean over non-empty lists, so every user weighs the same. NaN when
    there is no recommended item.
    """
    flat, lengths = _flatten_lists(list_item_ids)
    if len(flat) == 0:
        return math.nan
    pop = (
        item_popularity
        if isinstance(item_popularity, pd.Series)
        else pd.Series(dict(item_popularity), dtype=np.float64)
    )
    pop = pop.astype(np.float64)
    total = float(n_users) if n_users is not None else float(pop.clip(lower=0).sum())
    if total < 1:
        raise ValueError("total popularity (or n_users) must be at least 1")
    pos = pop.index.get_indexer(flat)
    counts = np.where(pos >= 0, pop.to_numpy()[pos], 0.0)
    info = -np.log2(np.clip(np.maximum(counts, 1.0) / total, None, 1.0))
    list_idx = np.repeat(np.arange(len(lengths)), lengths)
    sums = np.bincount(list_idx, weights=info, minlength=len(lengths))
    nonempty = lengths > 0
    return float(np.mean(sums[nonempty] / lengths[nonempty]))


# --- comparing two rankers ------------------------------------------------------


def bootstrap_diff_ci(
    a_per_query: ArrayLike,
    b_per_query: ArrayLike,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Paired bootstrap over queries of ``mean(a) - mean(b)``.

    ``a_per_query[i]`` and ``b_per_query[i]`` must be the same query (per-query
    arrays from this module line up when both rankers scored the same rows).
    Returns ``(mean_diff, lo, hi)`` with the percentile interval at level
    ``1 - alpha``. Resamples are drawn in chunks, so memory stays bounded for
    millions of queries. Deterministic for a given seed.
    """
    a = np.asarray(a_per_query, dtype=np.float64).ravel()
    b = np.asarray(b_per_query, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        raise ValueError("no queries to compare")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("per-query values contain NaN; drop those queries first")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    diff = a - b
    n = len(diff)
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK_CELLS // n)
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diff[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(diff.mean()), float(lo), float(hi)
