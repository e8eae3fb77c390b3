"""Precompute stage: the champion's top-N list for every active user (users with an
event in the ``active_days`` ending with ``ds``).

Spark makes the lists one shard of users per task (``scoring``): candidates from
snapshot ``ds``, features from Feast at the end of ``ds`` through the same assembly
function as training, the champion's scores, then the business rules (``rules``).
The lists go to ``recommendations/dt=ds`` with the model version and run id on every
row, and the fallback list (the best non-personal baseline of the night's evaluation)
to ``popular/dt=ds``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ranking_jobs import baselines, lake
from ranking_jobs import contracts as C
from ranking_jobs.candidates import inputs
from ranking_jobs.context import RunContext
from ranking_jobs.logs import timed
from ranking_jobs.online import FALLBACK_SEGMENT
from ranking_jobs.precompute.scoring import LISTS_SCHEMA
from ranking_jobs.summaries import read_summary

log = logging.getLogger(__name__)


def baseline_lists(ctx: RunContext, users: np.ndarray) -> tuple[str, pa.Table]:
    """The lists of the best baseline of the night's evaluation (recent popularity when
    none ran), labelled ``baseline:<name>``.

    Made for ``precompute_shard_users`` users at a time, as the champion's are: a
    baseline's lists are per user, and all of them at once held a million users'
    candidate rows in pandas (18.6 GiB at ``large``)."""
    evaluation = read_summary(ctx, "evaluate_model") or {}
    name = evaluation.get("best_baseline") or "recent_popularity"
    settings = ctx.settings
    src = baselines.load_inputs(settings, ctx.ds)
    users = np.unique(np.asarray(users, dtype=np.int64))
    shard = settings.lists.precompute_shard_users
    parts = []
    with timed(log, f"{name} lists of {len(users):,} users") as t:
        for start in range(0, len(users), shard):
            lists = baselines.lists(name, users[start : start + shard], src, settings)
            lists["candidates"] = lists["item_ids"].map(len).astype(np.int32)
            parts.append(pa.Table.from_pandas(lists, schema=LISTS_SCHEMA, preserve_index=False))
        table = pa.concat_tables(parts) if parts else LISTS_SCHEMA.empty_table()
        t["count"] = table.num_rows
    log.warning("no model has passed the gate yet: publishing the %s baseline's lists", name)
    return f"baseline:{name}", table


def _list_table(lists: pd.DataFrame, label: str, ctx: RunContext) -> pa.Table:
    lists = lists.assign(
        model_version=label,
        run_id=ctx.run_id,
        generated_at=pd.Timestamp(ctx.end),
        event_timestamp=pd.Timestamp(ctx.end),
    )
    return pa.Table.from_pandas(lists, schema=C.RECOMMENDATIONS_SCHEMA, preserve_index=False)


def precompute_lists(ctx: RunContext) -> dict[str, Any]:
    """The champion's lists for every active user or, while no model has passed the gate,
    the lists of the best baseline the night's evaluation found."""
    from ranking_jobs import registry
    from ranking_jobs.precompute.scoring import (
        ListWorkers,
        in_one_process,
        lists_in_process,
        lists_in_spark,
    )

    settings = ctx.settings
    users = inputs.active_users(settings, ctx.ds)
    items = inputs.item_table(settings, ctx.ds)  # read here first: a bad lake fails fast
    champ = registry.champion(settings)
    if champ is None:  # no Spark: a baseline's lists are made here
        label, made = baseline_lists(ctx, users)
    elif in_one_process(settings, users):
        booster = registry.load_booster(settings, champ)
        made = lists_in_process(settings, booster, users, ctx.ds, pd.Timestamp(ctx.end))
        label = champ.label
    else:
        with ListWorkers(settings, ctx.ds) as workers:  # load while the champion loads
            booster = registry.load_booster(settings, champ)
            made = lists_in_spark(settings, booster, users, ctx.ds, pd.Timestamp(ctx.end), workers)
        label = champ.label
    lists = made.drop(["candidates"]).to_pandas()
    lists_uri = lake.write_partition(
        settings,
        C.RECOMMENDATIONS,
        ctx.ds,
        _list_table(lists, label, ctx),
        sort_by=["user_id"],
        row_group_rows=C.LISTS_ROW_GROUP_ROWS,
    )

    evaluation = read_summary(ctx, "evaluate_model") or {}
    chosen = evaluation.get("fallback") or "recent_popularity"
    items_ids, scores = baselines.fallback(
        chosen, baselines.load_inputs(settings, ctx.ds), settings
    )
    fallback = pd.DataFrame({"user_id": [0], "item_ids": [items_ids], "scores": [scores]})
    fallback_table = _list_table(fallback, chosen, ctx).drop(["user_id"])
    fallback_table = fallback_table.append_column(
        "segment", pa.array([FALLBACK_SEGMENT], pa.string())
    )
    popular_uri = lake.write_partition(settings, C.POPULAR, ctx.ds, fallback_table)

    lengths = pc.list_value_length(made["item_ids"])
    return {
        "users": made.num_rows,
        "active_users": len(users),
        "model_version": label,
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
