"""How far above recent popularity can any standard recommender get on MovieLens 100K
with a global time cut? Outside the pipeline on purpose: it asks whether the quality
bar's 1.2x is reachable on this log at all, by any method, even with a blend weight
picked on the scored days themselves (an upper bound, not a result).

    python -m bench.bench_movielens_ceiling --movielens /path/to/ml-100k

Scored: users with a rating before the cut and one in the ``--days`` after it (the
users a personal list could serve), NDCG@10 with the rated films excluded, binary
relevance. Methods: popularity over all history and over the last 7/14/28/56 days,
item-kNN (cosine), EASE (closed form, three regularisations), implicit's ALS on BM25
weights, and EASE + recent popularity blends (z-scores, weight picked on the scored
days).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

CUTS = (("1997-12-15", 30), ("1998-02-01", 30), ("1998-03-11", 42), ("1998-03-24", 30))


def _ndcg(scores: np.ndarray, seen: sp.csr_matrix, users: np.ndarray, truth: pd.Series) -> float:
    out = []
    for u in users:
        row = np.asarray(scores[u], np.float64).copy()
        row[seen[u].indices] = -np.inf
        top = np.argpartition(-row, 10)[:10]
        top = top[np.argsort(-row[top])]
        relevant = truth[u]
        dcg = sum(1 / np.log2(k + 2) for k, i in enumerate(top) if i in relevant)
        out.append(dcg / sum(1 / np.log2(k + 2) for k in range(min(10, len(relevant)))))
    return float(np.mean(out))


def _z(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, np.float64)
    return (matrix - matrix.mean(1, keepdims=True)) / (matrix.std(1, keepdims=True) + 1e-9)


def ceiling(ratings: pd.DataFrame, cut: pd.Timestamp, days: int) -> dict[str, float]:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import bm25_weight
    from threadpoolctl import threadpool_limits

    before = ratings[ratings.ts < cut]
    after = ratings[(ratings.ts >= cut) & (ratings.ts < cut + pd.Timedelta(days=days))]
    users = np.intersect1d(before.user.unique(), after.user.unique())
    truth = after[after.user.isin(users)].groupby("user").item.apply(set)
    n_users, n_items = ratings.user.max() + 1, ratings.item.max() + 1
    seen = sp.csr_matrix(
        (np.ones(len(before)), (before.user, before.item)), shape=(n_users, n_items)
    )
    seen.data[:] = 1.0

    def everyone(vector: np.ndarray) -> np.ndarray:
        return np.tile(vector, (n_users, 1))

    counts = np.asarray(seen.sum(0)).ravel()
    out = {"users scored": float(len(users))}
    out["popularity (all days)"] = _ndcg(everyone(counts), seen, users, truth)
    recent = {}
    for window in (7, 14, 28, 56):
        last = before[before.ts >= cut - pd.Timedelta(days=window)]
        recent[window] = np.bincount(last.item, minlength=n_items) + 1e-6 * counts
        ranked = everyone(recent[window])
        out[f"popularity (last {window} days)"] = _ndcg(ranked, seen, users, truth)
    norm = np.sqrt(np.maximum(counts, 1))
    similarity = (seen.T @ seen).toarray() / norm[:, None] / norm[None, :]
    np.fill_diagonal(similarity, 0)
    out["item-kNN"] = _ndcg(seen @ similarity, seen, users, truth)
    gram = (seen.T @ seen).toarray()
    ease = {}
    for lam in (100, 300, 1000):
        inverse = np.linalg.inv(gram + lam * np.eye(n_items))
        weights = -inverse / np.diag(inverse)
        np.fill_diagonal(weights, 0)
        ease[lam] = seen @ weights
        out[f"EASE (lambda {lam})"] = _ndcg(ease[lam], seen, users, truth)
    with threadpool_limits(1, "blas"):
        for factors, reg in ((16, 0.1), (64, 0.05)):
            model = AlternatingLeastSquares(
                factors=factors, iterations=15, regularization=reg, random_state=0
            )
            model.fit(bm25_weight(seen.T, K1=100, B=0.8).T.tocsr().astype(np.float32), False)
            out[f"ALS ({factors} factors)"] = _ndcg(
                model.user_factors @ model.item_factors.T, seen, users, truth
            )
    popular = np.log1p(recent[28])
    popular = (popular - popular.mean()) / popular.std()
    out["EASE + recent popularity, best blend"] = max(
        _ndcg(_z(ease[300]) + w * everyone(popular), seen, users, truth) for w in (0.5, 1, 2, 4)
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movielens", required=True, type=Path, help="the ml-100k folder")
    args = parser.parse_args()
    ratings = pd.read_csv(
        args.movielens / "u.data", sep="\t", names=["user", "item", "rating", "t"]
    )
    ratings["ts"] = pd.to_datetime(ratings.t, unit="s")
    for cut, days in CUTS:
        found = ceiling(ratings, pd.Timestamp(cut), days)
        best_pop = max(v for k, v in found.items() if k.startswith("popularity"))
        print(f"\ncut {cut}, the next {days} days, {found.pop('users scored'):.0f} users")
        for name, value in found.items():
            print(f"  {name:40s} {value:.4f}  {value / best_pop:5.2f}x best popularity")


if __name__ == "__main__":
    main()
