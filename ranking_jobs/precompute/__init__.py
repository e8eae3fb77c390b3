"""Precompute stage: the champion's top-N list for every active user.

Spark makes the lists one shard of users per task (``scoring``): candidates from
snapshot ``ds``, features from Feast at the end of ``ds`` through the same assembly
function as training, the champion's scores, then the business rules (``rules``).
The lists go to ``recommendations/dt=ds`` with the model version and run id on every
row, and the popular fallback list to ``popular/dt=ds``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.precompute import inputs
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
    from ranking_jobs.precompute.scoring import ListWorkers, lists_in_spark

    settings = ctx.settings
    with ListWorkers(settings, ctx.ds) as workers:  # load while the champion loads
        champ = registry.champion(settings)
        if champ is None:
            raise NoChampionError(
                f"no @{registry.CHAMPION} model in {settings.registered_model}: no lists "
                f"for {ctx.ds_str}; a model must pass the evaluation gate first"
            )
        booster = registry.load_booster(settings, champ)
        users = active_users(settings, ctx)
        items = inputs.item_table(settings, ctx.ds)  # read here first: a bad lake fails fast
        made = lists_in_spark(settings, booster, users, ctx.ds, pd.Timestamp(ctx.end), workers)
    lists = made.drop(["candidates"]).to_pandas()
    lists_uri = lake.write_partition(
        settings,
        C.RECOMMENDATIONS,
        ctx.ds,
        _list_table(lists, champ.label, ctx),
        sort_by=["user_id"],
        row_group_rows=C.LISTS_ROW_GROUP_ROWS,
    )

    top = rank_available(items).head(settings.fallback_size)
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

    lengths = pc.list_value_length(made["item_ids"])
    return {
        "users": made.num_rows,
        "model_version": champ.label,
        "lists_uri": lists_uri,
        "popular_uri": popular_uri,
        "candidates": int(pc.sum(made["candidates"]).as_py() or 0),
        "list_length": {
            "min": int(pc.min(lengths).as_py() or 0),
            "mean": float(pc.mean(lengths).as_py() or 0.0),
            "max": int(pc.max(lengths).as_py() or 0),
        },
        "distinct_items": len(pc.unique(pc.list_flatten(made["item_ids"]))),
        "catalogue_available": int((items["is_available"] == 1).sum()),
    }
