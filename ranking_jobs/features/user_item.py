"""User-item history: how much and how recently a user engaged with this very listing.

Keyed by (user, item). In a marketplace a user comes back to an item they liked
or saved; in a shop that sells the same product again, past purchases are the
strongest signal there is. Only engaged pairs have rows, so the table stays a
small fraction of the event log.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ranking_jobs.features.common import END, age_days, interactions


def user_item_stats(snap_events: DataFrame) -> DataFrame:
    """Per snapshot and engaged (user, item): engagements, purchases, days since the last.

    ``snap_events``: events joined to the snapshots whose lookback contains them
    (``with_snapshots``); the lookback sets how far back a pair is remembered.
    """
    return (
        interactions(snap_events)
        .groupBy("dt", END, "user_id", "item_id")
        .agg(
            F.count("*").cast("long").alias("ui_engagements"),
            F.sum(F.when(F.col("event_type") == "purchase", 1).otherwise(0))
            .cast("long")
            .alias("ui_purchases"),
            F.min(age_days("ts")).alias("ui_days_since"),
        )
        .select(
            "dt",
            "user_id",
            "item_id",
            "ui_engagements",
            "ui_purchases",
            "ui_days_since",
            F.col(END).alias("event_timestamp"),
        )
    )
