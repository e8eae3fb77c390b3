"""From a shard of users to their final lists: candidates, features, scores, rules.

Every step is per user, so a shard's lists do not depend on which other users share
it: the Spark job (``scoring``) runs this on each shard where the data is, and a
shard of every user gives the same lists.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ranking_jobs.candidates import CandidateInputs, inputs, rank_available
from ranking_jobs.feast_store import SnapshotView, assemble_features
from ranking_jobs.lists import rules
from ranking_jobs.model import predict
from ranking_jobs.settings import Settings


class ListInputs(NamedTuple):
    """What every shard of a night reads, loaded once per process and kept."""

    candidates: CandidateInputs
    popular: pd.DataFrame  # available items by popularity, with seller_id: the padding
    views: list[SnapshotView] | None


def list_inputs(
    settings: Settings, snapshot: dt.date, views: list[SnapshotView] | None
) -> ListInputs:
    """``views``: the feature views as the driver resolved them (``snapshot_views``);
    a worker given them never imports Feast, slow to import in every Python process
    (docs/decisions.md)."""
    source = inputs.candidate_inputs(settings, snapshot)
    return ListInputs(source, rank_available(source.items), views)


def candidate_features(
    settings: Settings,
    source: CandidateInputs,
    users: np.ndarray,
    as_of: pd.Timestamp,
    views: list[SnapshotView] | None = None,
) -> pd.DataFrame:
    """The candidates of ``users`` with every model feature at ``as_of``: what the
    champion scores (and what the precompute benchmark's raw reference predicts on)."""
    found = inputs.candidates_for(settings, source, users)
    rows = inputs.with_pair_features(found.frame, found)
    rows["event_timestamp"] = as_of
    return assemble_features(settings, rows, views=views)


def user_lists(
    settings: Settings,
    booster: Any,
    source: ListInputs,
    users: np.ndarray,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """One row per user of ``users``: item_ids and scores (the top ``top_n`` after the
    business rules, best first) and ``candidates``, how many were scored."""
    shard = source.candidates.of_users(users)
    feats = candidate_features(settings, shard, users, as_of, source.views)
    scored = feats[["user_id", "item_id"]].assign(score=predict(booster, feats))
    del feats
    lists = rules.final_lists(scored, shard.items, source.popular, shard.excluded, settings)
    counts = scored.groupby("user_id").size()
    lists["candidates"] = counts.reindex(lists["user_id"], fill_value=0).to_numpy(np.int32)
    return lists
