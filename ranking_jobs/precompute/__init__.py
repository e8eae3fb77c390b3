"""Precompute stage: the champion's top-N list for every active user.

Candidates come from snapshot ``ds`` and features from Feast at the end of
``ds`` through the same assembly function as training; the assembled rows are
written to ``candidates/dt=ds`` and scored there by Spark (``scoring``). After
the business rules (``rules``) the lists are written to ``recommendations/dt=ds``
with the model version and run id on every row, plus the popular fallback list
to ``popular/dt=ds``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.logs import timed
from ranking_jobs.precompute import inputs, rules
from ranking_jobs.precompute.candidates import rank_available

log = logging.getLogger(__name__)

FALLBACK_SEGMENT = "global"


class NoChampionError(RuntimeError):
    """Nothing may be published before a model has passed the gate once."""


def active_users(settings: Any, ctx: RunContext) -> np.ndarray:
    """Users with any event in the feature window ending at ``ds``."""
    users = lake.read_partition(settings, C.FEATURES_USER, ctx.ds, ["user_id"])
    return np.sort(users["user_id"].to_numpy())


def _list_table(lists: pd.DataFrame, label: str, ctx: RunContext) -> pa.Table:
    lists = lists.assign(
        model_version=label,
        run_id=ctx.run_id,
        generated_at=pd.Timestamp(ctx.end),
        event_timestamp=pd.Timestamp(ctx.end),
    )
    return pa.Table.from_pandas(lists, schema=C.RECOMMENDATIONS_SCHEMA, preserve_index=False)


def precompute_lists(ctx: RunContext) -> dict[str, Any]:
    from ranking_jobs import registry
    from ranking_jobs.feast_store import assemble_features
    from ranking_jobs.precompute.scoring import TASK_ROWS, score_in_spark

    settings = ctx.settings
    champ = registry.champion(settings)
    if champ is None:
        raise NoChampionError(
            f"no @{registry.CHAMPION} model in {settings.registered_model}: no lists for "
            f"{ctx.ds_str}; a model must pass the evaluation gate first"
        )
    booster = registry.load_booster(settings, champ)

    users = active_users(settings, ctx)
    found = inputs.candidates_at(settings, users, ctx.ds)
    items, excluded = found.items, found.excluded
    with timed(log, "pair features"):
        cands = inputs.with_pair_features(found.frame, found)
    cands["event_timestamp"] = pd.Timestamp(ctx.end)
    feats = assemble_features(settings, cands)
    with timed(log, "wrote the candidates partition") as t:
        cands_uri = lake.write_partition(
            settings,
            C.CANDIDATES,
            ctx.ds,
            pa.Table.from_pandas(feats, preserve_index=False),
            row_group_rows=TASK_ROWS,
        )
        t["count"] = len(feats)
    del feats
    scored = score_in_spark(settings, booster, cands_uri).to_pandas()

    with timed(log, "business rules") as t:
        scored = scored.merge(items[["item_id", "seller_id"]], on="item_id", how="left")
        popular = rank_available(items)
        ranked = rules.pad_from_popular(
            rules.top_n(scored, settings.top_n), popular, excluded, settings.top_n
        )
        ranked = rules.cap_sellers(ranked, settings.seller_cap, settings.surface_size)
        lists = rules.to_lists(ranked)
        t["count"] = len(scored)
    lists_uri = lake.write_partition(
        settings,
        C.RECOMMENDATIONS,
        ctx.ds,
        _list_table(lists, champ.label, ctx),
        sort_by=["user_id"],
        row_group_rows=C.LISTS_ROW_GROUP_ROWS,
    )

    top = popular.head(settings.fallback_size)
    fallback = pd.DataFrame(
        {
            "user_id": [0],
            "item_ids": [top["item_id"].to_numpy(np.int64)],
            "scores": [top["popularity"].to_numpy(np.float32)],
        }
    )
    fallback_table = _list_table(fallback, "popularity", ctx).drop(["user_id"])
    fallback_table = fallback_table.append_column(
        "segment", pa.array([FALLBACK_SEGMENT], pa.string())
    )
    popular_uri = lake.write_partition(settings, C.POPULAR, ctx.ds, fallback_table)

    lengths = lists["item_ids"].map(len)
    return {
        "users": len(lists),
        "model_version": champ.label,
        "lists_uri": lists_uri,
        "popular_uri": popular_uri,
        "candidates": len(cands),
        "candidates_uri": cands_uri,
        "list_length": {
            "min": int(lengths.min()),
            "mean": float(lengths.mean()),
            "max": int(lengths.max()),
        },
        "distinct_items": int(ranked["item_id"].nunique()),
        "catalogue_available": int((items["is_available"] == 1).sum()),
    }
