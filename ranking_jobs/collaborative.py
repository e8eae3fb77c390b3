"""Collaborative signals of a snapshot: item-kNN and ALS over who engaged with what.

The baselines rank with them alone; the candidates take their best items as sources
and the ranker reads their scores as pair features, so the model starts from what the
strongest collaborative baselines know and learns where to trust them. Fitted from
the engagement history up to a snapshot (nothing later), deterministically for a seed,
so every process that fits them for the same snapshot gets the same scores.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

NEIGHBOURS = 100  # item_knn: most similar items kept per item
BATCH_USERS = 2_000  # users scored at once: bounds the dense/sparse blocks
BATCH_ITEMS = 4_000  # item_knn builds the similarity in blocks of items
# ALS: a modest, fixed configuration (no tuning on the hold-out it is judged on).
ALS_PARAMS = {"factors": 64, "iterations": 15, "regularization": 0.05}
BM25 = {"K1": 100, "B": 0.8}  # implicit's own example weighting of engagement counts
METHODS = ("item_knn", "als")


class Collaborative:
    """The user x item engagement counts of a history and the models fitted on them.

    ``interactions``: user_id, item_id, n (engagements per pair); ``available``: the
    item ids that may be recommended. Models are fitted on first use.
    """

    def __init__(self, interactions: pd.DataFrame, available: np.ndarray, seed: int) -> None:
        self.user_ids, u = np.unique(
            interactions["user_id"].to_numpy(np.int64), return_inverse=True
        )
        self.item_ids, i = np.unique(
            interactions["item_id"].to_numpy(np.int64), return_inverse=True
        )
        self.available = np.flatnonzero(np.isin(self.item_ids, np.asarray(available, np.int64)))
        counts = sp.csr_matrix(
            (interactions["n"].to_numpy(np.float32), (u, i)),
            shape=(len(self.user_ids), len(self.item_ids)),
        )
        counts.sum_duplicates()
        self.counts = counts
        self.seed = seed

    @property
    def empty(self) -> bool:
        """Nobody engaged with anything that is still available."""
        return len(self.available) == 0

    @cached_property
    def binary(self) -> sp.csr_matrix:
        """Who engaged with what, once or more alike."""
        out = self.counts.copy()
        out.data[:] = 1.0
        return out

    @cached_property
    def neighbours(self) -> sp.csr_matrix:
        """item x available item cosine similarity over who engaged (binary), the item
        itself left out, top ``NEIGHBOURS`` per item. Sold items keep their row: what
        their buyers also liked is still recommendable."""
        per_item = np.asarray(self.binary.sum(axis=0)).ravel()
        scale = sp.diags(1.0 / np.sqrt(np.maximum(per_item, 1.0)))
        normed = (self.binary @ scale).astype(np.float32)
        by_item = normed.T.tocsr()
        towards = normed[:, self.available].tocsr()
        blocks = []
        for start in range(0, by_item.shape[0], BATCH_ITEMS):
            block = (by_item[start : start + BATCH_ITEMS] @ towards).tocsr()
            row = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
            block.data[self.available[block.indices] == row + start] = 0.0  # the item itself
            top = top_per_row(block, NEIGHBOURS)
            top.eliminate_zeros()
            blocks.append(top)
        return sp.vstack(blocks, format="csr")

    @cached_property
    def als(self) -> object:
        """implicit's ALS on BM25-weighted engagement counts."""
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.nearest_neighbours import bm25_weight
        from threadpoolctl import threadpool_limits

        # implicit's example weighs the item x user matrix, then fits its transpose
        weighted = bm25_weight(self.counts.T, **BM25).T.tocsr().astype(np.float32)
        with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS's would fight
            model = AlternatingLeastSquares(**ALS_PARAMS, random_state=self.seed)
            model.fit(weighted, show_progress=False)
        return model

    def top(self, method: str, users: np.ndarray, k: int) -> pd.DataFrame:
        """user_id, item_id, score: the ``k`` best available items of each user of
        ``users`` with a history, by ``method`` (``METHODS``); ``BATCH_USERS`` at a time."""
        from threadpoolctl import threadpool_limits

        known = np.asarray(users, np.int64)
        known = known[np.isin(known, self.user_ids)]
        rows = np.searchsorted(self.user_ids, known)
        parts = [_frame(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))]
        if self.empty:
            return parts[0]
        for start in range(0, len(rows), BATCH_USERS):
            batch = rows[start : start + BATCH_USERS]
            if method == "item_knn":
                best = top_per_row((self.binary[batch] @ self.neighbours).tocsr(), k).tocoo()
                at, column, score = best.row, self.available[best.col], best.data
            else:
                with threadpool_limits(1, "blas"):
                    ids, top = self.als.recommend(  # type: ignore[attr-defined]
                        batch, None, N=k, filter_already_liked_items=False, items=self.available
                    )
                at, column, score = np.repeat(np.arange(len(batch)), ids.shape[1]), ids, top
            parts.append(_frame(self.user_ids[batch[at]], self.item_ids[column], score))
        return pd.concat(parts, ignore_index=True)

    def pair_scores(self, user_id: np.ndarray, item_id: np.ndarray) -> dict[str, np.ndarray]:
        """Each method's score of the (user, item) pairs: the summed kNN similarity of the
        item to the user's history (0 without one), and the ALS dot product (NaN where
        the user or the item has no factors)."""
        user_id, item_id = np.asarray(user_id, np.int64), np.asarray(item_id, np.int64)
        knn = np.zeros(len(user_id), np.float32)
        als = np.full(len(user_id), np.nan, np.float32)
        rows, has_user = _positions(self.user_ids, user_id)
        cols, has_item = _positions(self.item_ids, item_id)
        if self.empty or not has_user.any():
            return {"knn_score": knn, "als_score": als}
        both = np.flatnonzero(has_user & has_item)
        model = self.als
        als[both] = np.einsum(
            "ij,ij->i",
            model.user_factors[rows[both]],  # type: ignore[attr-defined]
            model.item_factors[cols[both]],  # type: ignore[attr-defined]
        )
        towards, is_available = _positions(self.available, cols)
        reach = np.flatnonzero(has_user & has_item & is_available)
        for start in range(0, len(reach), BATCH_USERS * 50):
            pick = reach[start : start + BATCH_USERS * 50]
            users, at = np.unique(rows[pick], return_inverse=True)
            block = (self.binary[users] @ self.neighbours).tocsr()
            knn[pick] = np.asarray(block[at, towards[pick]]).ravel()
        return {"knn_score": knn, "als_score": als}


def _positions(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``ids`` sits in ``sorted_ids``, and whether it is there at all."""
    at = np.searchsorted(sorted_ids, ids).clip(0, max(len(sorted_ids) - 1, 0))
    found = sorted_ids[at] == ids if len(sorted_ids) else np.zeros(len(ids), bool)
    return at, found


def _frame(users: np.ndarray, items: np.ndarray, score: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.asarray(users, np.int64),
            "item_id": np.asarray(items, np.int64).ravel(),
            "score": np.asarray(score, np.float64).ravel(),
        }
    )


def top_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
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
