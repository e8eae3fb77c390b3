"""User features: activity over windows, recency, price level, breadth."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ranking_jobs.features.columns import ITEM_COUNTS
from ranking_jobs.features.common import END, age_days, interactions, windowed_counts


def user_stats(snap_events: DataFrame, items: DataFrame) -> DataFrame:
    """Per snapshot user seen in 30 days: activity over windows, recency, price level, breadth.

    ``items``: per snapshot, latest attributes of every listing (``latest_items``).
    """
    counts = windowed_counts(snap_events, ["user_id"]).select(
        "dt", END, "user_id", *[F.col(c).alias(f"user_{c}") for c in ITEM_COUNTS]
    )
    inter = interactions(snap_events).join(
        items.select("dt", "item_id", "price", "category"), ["dt", "item_id"], "left"
    )
    profile = inter.groupBy("dt", END, "user_id").agg(
        F.min(age_days("ts")).alias("user_days_since_active"),
        F.percentile_approx("price", 0.5, 1000).cast("double").alias("user_price_level"),
        F.countDistinct("category").cast("long").alias("user_category_breadth"),
    )
    return (
        counts.join(profile, ["dt", END, "user_id"], "left")
        .select("*", F.col(END).alias("event_timestamp"))
        .drop(END)
    )
