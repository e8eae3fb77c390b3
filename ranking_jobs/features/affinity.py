"""User affinity: the time-decayed share of a user's intent per item attribute value.

One table per attribute (category, brand, size, style), keyed by (user, value);
at retrieval time Feast joins it through the candidate item's own value, which
turns it into a (user, item) cross feature.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ranking_jobs.features.common import END, exact_sum
from ranking_jobs.features.daily import rolled_intent


def user_affinity(user_items: DataFrame, items: DataFrame, dimension: str) -> DataFrame:
    """Per snapshot and user, each ``dimension`` value's share of decayed, weighted intent.

    ``user_items``: the user-item daily aggregates rolled into each snapshot's window.
    ``items``: per snapshot, latest attributes of every listing (``latest_items``), so
    a listing's value is the one it has at the snapshot, whenever it was engaged with.
    Shares of a user sum to 1; a user with no interactions has no rows.
    """
    scored = user_items.join(items.select("dt", "item_id", dimension), ["dt", "item_id"])
    per_value = scored.groupBy("dt", END, "user_id", dimension).agg(
        exact_sum(rolled_intent()).alias("_w")
    )
    total = F.sum("_w").over(Window.partitionBy("dt", "user_id"))  # exact too: decimals
    return per_value.select(
        "dt",
        "user_id",
        dimension,
        (F.col("_w").cast("double") / total.cast("double")).alias(f"{dimension}_affinity"),
        F.col(END).alias("event_timestamp"),
    )
