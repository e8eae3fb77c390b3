"""Final lists against what users then did: the comparison the gate and the quality
bench both make.

Every method (the model, the champion, each baseline) makes the lists a surface
would receive for the same users from the same snapshot: personal lists for the
users active at the snapshot, the night's fallback list for the others, exactly as
the night publishes them. A list is judged on the user's engagements in the label
days that follow, over everything the user could have been shown: an engaged item
the list does not hold is a miss, whichever candidate generator missed it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ranking_jobs import baselines, lake
from ranking_jobs import contracts as C
from ranking_jobs.candidates import inputs
from ranking_jobs.evaluation.metrics import bootstrap_diff_ci, list_metrics
from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

KS = (5, 10, 20)

# users -> their final lists (user_id, item_ids, scores); users it leaves out get the
# fallback list
ListMaker = Callable[[np.ndarray], pd.DataFrame]


@dataclass(frozen=True)
class Comparison:
    users: np.ndarray  # the scored users, sorted
    personal: np.ndarray  # whether each user was active at the snapshot (had a personal list)
    per_user: Mapping[str, Mapping[str, np.ndarray]]  # method -> metric -> value per user
    fallback: str  # the non-personal baseline the users without a personal list received

    def mean(self, method: str, metric: str) -> float:
        return float(self.per_user[method][metric].mean())

    def best(self, methods: list[str], metric: str) -> str:
        return max(methods, key=lambda m: self.mean(m, metric))

    def summary(self, reference: str | None, metric: str, seed: int) -> dict[str, Any]:
        """Method -> mean of every metric, plus the paired 95% CI of ``metric`` against
        ``reference`` (the best baseline) and the ratio of the means."""
        out: dict[str, Any] = {}
        for method, values in self.per_user.items():
            row = {name: float(v.mean()) for name, v in values.items()}
            if reference is not None and method != reference:
                diff, lo, hi = bootstrap_diff_ci(
                    values[metric], self.per_user[reference][metric], seed=seed
                )
                base = self.mean(reference, metric)
                row.update(
                    {
                        f"gain vs {reference}": diff,
                        "gain CI low": lo,
                        "gain CI high": hi,
                        "ratio": row[metric] / base if base > 0 else float("nan"),
                    }
                )
            out[method] = row
        return out


def relevance(settings: Settings, days: list[dt.date]) -> pd.DataFrame:
    """user_id, item_id, rel: the strongest engagement (a click or more) of each user
    with each item in ``days``, graded so that a click is 1."""
    events = lake.read_days(
        settings, C.RAW_EVENTS, days, ["user_id", "item_id", "event_type"], missing_ok=True
    ).to_pandas()
    grade = events["event_type"].map(C.LABEL_GRADES).fillna(C.NOT_SHOWN_GRADE)
    engaged = events.assign(rel=C.engagement_grade(grade.to_numpy("int64")))
    engaged = engaged[engaged["rel"] > 0]
    return engaged.groupby(["user_id", "item_id"], as_index=False)["rel"].max()


def sample_users(users: np.ndarray, most: int, seed: int) -> np.ndarray:
    """At most ``most`` of ``users``, a seeded sample, sorted."""
    users = np.unique(users)
    if len(users) > most:
        users = np.sort(np.random.default_rng(seed).choice(users, most, replace=False))
    return users


def with_fallback(lists: pd.DataFrame, users: np.ndarray, fallback: np.ndarray) -> pd.DataFrame:
    """``lists`` for ``users``, the fallback list for every user it lacks."""
    have = lists.loc[lists["user_id"].isin(users), ["user_id", "item_ids"]]
    missing = np.setdiff1d(users, have["user_id"].to_numpy())
    filler = pd.DataFrame({"user_id": missing, "item_ids": [fallback] * len(missing)})
    return pd.concat([have, filler], ignore_index=True)


def compare(
    settings: Settings,
    snapshot: dt.date,
    days: list[dt.date],
    makers: Mapping[str, ListMaker],
    src: baselines.BaselineInputs | None = None,
    fallback: tuple[str, np.ndarray] | None = None,
) -> Comparison:
    """Every method's final lists for the users who engaged in ``days`` (at most
    ``eval_users`` of them), scored on those engagements. Personal lists go to the
    users active in the ``active_days`` ending with ``snapshot``; the others get the
    ``fallback`` list (name, items): the one given (what a night published), else the
    best non-personal list on these engagements, which the night then publishes.
    The baselines of ``baselines.names`` are added to ``makers``."""
    truth = relevance(settings, days)
    if truth.empty:
        raise ValueError(f"no engagement in {days[0]}..{days[-1]} to score lists on")
    users = sample_users(
        truth["user_id"].to_numpy(), settings.evaluation.users, settings.generator.seed
    )
    truth = truth[truth["user_id"].isin(users)]
    active = inputs.active_users(settings, snapshot)
    personal = np.isin(users, active)
    src = src or baselines.load_inputs(settings, snapshot)
    chosen, items = fallback or best_fallback(
        settings, src, truth, users[~personal] if (~personal).any() else users
    )
    everyone: dict[str, ListMaker] = {
        **{name: _baseline(name, src, settings) for name in baselines.names(src)},
        **makers,
    }
    per_user: dict[str, dict[str, np.ndarray]] = {}
    for method, make in everyone.items():
        with timed(log, f"{method} lists of {personal.sum():,} users") as t:
            made = make(users[personal])
            t["count"] = len(made)
        final = with_fallback(made, users, items)
        per_user[method] = {}
        for k in KS:
            per_user[method].update(list_metrics(final, truth, users, k))
    log.info(
        "lists scored on %s users engaged in %s..%s (%s with a personal list)",
        f"{len(users):,}",
        days[0],
        days[-1],
        f"{personal.sum():,}",
    )
    return Comparison(users, personal, per_user, chosen)


def best_fallback(
    settings: Settings, src: baselines.BaselineInputs, truth: pd.DataFrame, users: np.ndarray
) -> tuple[str, np.ndarray]:
    """The non-personal list that serves ``users`` (those without a personal one) best,
    by NDCG@eval_k on their engagements: the list the night then publishes for them."""
    made = {name: baselines.fallback(name, src, settings)[0] for name in baselines.NON_PERSONAL}
    metric = f"ndcg@{settings.evaluation.k}"

    def score(items: np.ndarray) -> float:
        same = pd.DataFrame({"user_id": users, "item_ids": [items] * len(users)})
        return float(list_metrics(same, truth, users, settings.evaluation.k)[metric].mean())

    name = max(made, key=lambda n: score(made[n]))
    return name, made[name]


def _baseline(name: str, src: baselines.BaselineInputs, settings: Settings) -> ListMaker:
    return lambda users: baselines.lists(name, users, src, settings)
