"""User affinity: the time-decayed share of a user's intent per item attribute value.

One table per attribute (category, brand, size, style), keyed by (user, value);
at retrieval time Feast joins it through the candidate item's own value, which
turns it into a (user, item) cross feature.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from ranking_jobs.features.common import END, age_days, exact_sum, interactions

# Weight of an interaction: stronger intent counts more.
AFFINITY_WEIGHTS = {"click": 1.0, "like": 2.0, "save": 2.0, "add_to_bag": 3.0, "purchase": 4.0}
AFFINITY_HALF_LIFE_DAYS = 7.0


def intent_weight() -> Column:
    """Weight of an interaction row: its intent, halved every half-life since it happened."""
    weight = F.lit(0.0)
    for event_type, w in AFFINITY_WEIGHTS.items():
        weight = F.when(F.col("event_type") == event_type, F.lit(w)).otherwise(weight)
    decay = F.pow(F.lit(0.5), age_days("ts") / F.lit(AFFINITY_HALF_LIFE_DAYS))
    return weight * decay


def user_affinity(snap_events: DataFrame, items: DataFrame, dimension: str) -> DataFrame:
    """Per snapshot and user, each ``dimension`` value's share of decayed, weighted intent.

    ``items``: per snapshot, latest attributes of every listing (``latest_items``).
    Shares of a user sum to 1; a user with no interactions has no rows.
    """
    scored = (
        interactions(snap_events)
        .join(items.select("dt", "item_id", dimension), ["dt", "item_id"])
        .withColumn("_w", intent_weight())
    )
    per_value = scored.groupBy("dt", END, "user_id", dimension).agg(
        exact_sum(F.col("_w")).alias("_w")
    )
    total = F.sum("_w").over(Window.partitionBy("dt", "user_id"))  # exact too: decimals
    return per_value.select(
        "dt",
        "user_id",
        dimension,
        (F.col("_w").cast("double") / total.cast("double")).alias(f"{dimension}_affinity"),
        F.col(END).alias("event_timestamp"),
    )
