"""Training set: candidates plus logged impressions, graded labels, Feast features.

For as-of time T (midnight starting label day d) the rows of a user who was
shown anything on day d are the candidates generated from snapshot d-1 plus the
items actually shown on d; each row's label is the strongest interaction with
the item during d. Features come from Feast at T, so nothing from day d leaks in.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.feast_store import assemble_features
from ranking_jobs.features.columns import AFFINITY_DIMENSIONS
from ranking_jobs.precompute import inputs
from ranking_jobs.precompute.candidates import generate_candidates

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SHOWN_ONLY = "shown"


def label_days(ctx: RunContext) -> dict[dt.date, str]:
    """Train on the oldest days, stop early on ds-1, hold out ds itself."""
    n = ctx.settings.train_days
    days = lake.day_range(ctx.ds, n + 2)
    return {d: ("train" if i < n else SPLITS[i - n + 1]) for i, d in enumerate(days)}


def grade_labels(day_events: pd.DataFrame) -> pd.DataFrame:
    """Strongest interaction per (user, item) in the label window, as a graded label,
    with the best position the item was shown at (NaN when the events carry none)."""
    grades = day_events["event_type"].map(C.LABEL_GRADES).fillna(C.NOT_SHOWN_GRADE)
    out = day_events[["user_id", "item_id"]].assign(label=grades.astype("int64"))
    if "position" in day_events:
        out["shown_position"] = day_events["position"].astype("float64")
    else:
        out["shown_position"] = np.nan
    return out.groupby(["user_id", "item_id"], as_index=False).agg(
        label=("label", "max"), shown_position=("shown_position", "min")
    )


def query_rows(candidates: pd.DataFrame, labels: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Union of candidates and shown items of users with a logged impression; labelled.

    ``source`` says which candidate generator proposed the row, or ``shown`` for a
    logged item no generator proposed (the generators' recall is measured on it).
    """
    shown_users = labels["user_id"].unique()
    cands = candidates[candidates["user_id"].isin(shown_users)][["user_id", "item_id", "source"]]
    rows = cands.merge(labels, on=["user_id", "item_id"], how="outer")
    rows["source"] = rows["source"].fillna(SHOWN_ONLY)
    rows["label"] = rows["label"].fillna(C.NOT_SHOWN_GRADE).astype("int64")
    # Items listed after the snapshot are not in it yet; they are dropped.
    return rows.merge(items[["item_id", *AFFINITY_DIMENSIONS]], on="item_id", how="inner")


def rows_for_day(ctx: RunContext, day: dt.date) -> pd.DataFrame:
    settings = ctx.settings
    snapshot = day - dt.timedelta(days=1)
    events = lake.read_partition(
        settings, C.RAW_EVENTS, day, ["user_id", "item_id", "event_type", "position"]
    ).to_pandas()
    labels = grade_labels(events)
    items = inputs.item_table(settings, snapshot)
    cands = generate_candidates(
        labels["user_id"].unique(),
        items,
        inputs.affinity_table(settings, snapshot),
        inputs.purchases_until(settings, snapshot)
        if settings.exclude_purchased
        else pd.DataFrame(columns=["user_id", "item_id"]),
        settings.candidates_per_user,
    )
    rows = query_rows(cands, labels, items)
    rows["as_of"] = pd.Timestamp(day, tz="UTC")
    return rows


def build_training_set(ctx: RunContext) -> dict[str, Any]:
    parts = []
    for day, split in label_days(ctx).items():
        rows = rows_for_day(ctx, day)
        rows["split"] = split
        parts.append(rows)
        log.info(
            "label day %s (%s): %s rows, %s queries",
            day,
            split,
            f"{len(rows):,}",
            f"{rows.groupby(['user_id']).ngroups:,}",
        )
    rows = pd.concat(parts, ignore_index=True)
    rows["event_timestamp"] = rows["as_of"]
    table = assemble_features(ctx.settings, rows).drop(columns="event_timestamp")
    table = table.sort_values(["as_of", "user_id", "item_id"], kind="stable")
    import pyarrow as pa

    uri = lake.write_partition(
        ctx.settings, C.TRAINING, ctx.ds, pa.Table.from_pandas(table, preserve_index=False)
    )
    counts = table.groupby("split").size().to_dict()
    positives = table.groupby("split")["label"].apply(lambda s: int((s >= 2).sum())).to_dict()
    return {
        "uri": uri,
        "rows": len(table),
        "rows_by_split": counts,
        "positives_by_split": positives,
        "queries": int(table.groupby(["user_id", "as_of"]).ngroups),
    }


def query_ids(df: pd.DataFrame) -> np.ndarray:
    """Dense query id per (user, as-of) in the frame's order of appearance."""
    return df.groupby(["as_of", "user_id"], sort=False).ngroup().to_numpy()
