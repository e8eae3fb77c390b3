"""Non-model rankers scored on the same hold-out rows as the model.

Each takes the hold-out frame (one row per query candidate, with its features)
and returns one score per row; higher ranks first. Ties are broken by recent
popularity so a baseline is never handicapped by arbitrary row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ranking_jobs.candidates import TOP_VALUES, covisitation_reach, popularity

# Popularity as a tie-breaker: small enough never to outweigh a real score step.
_TIE = 1e-9


def random_scores(rows: pd.DataFrame, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(len(rows))


def popularity_scores(rows: pd.DataFrame) -> np.ndarray:
    return popularity(rows).to_numpy()


def category_popular_scores(rows: pd.DataFrame, qid: np.ndarray) -> np.ndarray:
    """Items of the user's favourite categories first, each block by recent popularity.

    Favourite = among the query's ``TOP_VALUES`` highest category affinities
    (the same rule the candidate generator uses).
    """
    aff = rows["category_affinity"].fillna(0.0).to_numpy(dtype="float64")
    frame = pd.DataFrame({"qid": qid, "category": rows["category"].to_numpy(), "aff": aff})
    per_cat = frame.drop_duplicates(["qid", "category"])
    per_cat = per_cat[per_cat["aff"] > 0]
    rank = per_cat.groupby("qid")["aff"].rank(method="first", ascending=False)
    fav = per_cat[rank <= TOP_VALUES][["qid", "category"]].assign(fav=1.0)
    flag = frame.merge(fav, on=["qid", "category"], how="left")["fav"].fillna(0.0).to_numpy()
    pop = popularity(rows).to_numpy()
    return flag * (1.0 + pop.max(initial=0.0)) + pop


def covisitation_scores(
    rows: pd.DataFrame, recent: pd.DataFrame, neighbours: pd.DataFrame
) -> np.ndarray:
    """Sum of co-visitation scores between a candidate and the user's recent items.

    ``recent``: user_id, item_id the user engaged with before the as-of time.
    ``neighbours``: item_id, neighbour_id, score from the co-visitation snapshot.
    """
    reach = covisitation_reach(recent, neighbours)
    covis = rows[["user_id", "item_id"]].merge(reach, on=["user_id", "item_id"], how="left")
    pop = popularity(rows).to_numpy()
    return covis["covis"].fillna(0.0).to_numpy() + _TIE * pop
