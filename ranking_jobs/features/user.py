"""User features: activity over windows, recency, price level, breadth, sizes worn, and
the profile declared at sign-up."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ranking_jobs.columns import ITEM_COUNTS, USER_SIZE_FLOATS
from ranking_jobs.contracts import SIZE_CHARTS
from ranking_jobs.features.affinity import intent_weight
from ranking_jobs.features.common import (
    END,
    age_days,
    exact_sum,
    interactions,
    position_in,
    windowed_counts,
)


def user_stats(snap_events: DataFrame, items: DataFrame) -> DataFrame:
    """Per snapshot user seen in 30 days: activity over windows, recency, price level,
    breadth, and where in each size chart their engagement sits.

    ``items``: per snapshot, latest attributes of every listing (``latest_items``).
    A user's price level is also taken relative to each category's median price,
    because a cheap coat and a dear T-shirt can cost the same.
    """
    counts = windowed_counts(snap_events, ["user_id"]).select(
        "dt", END, "user_id", *[F.col(c).alias(f"user_{c}") for c in ITEM_COUNTS]
    )
    category_price = items.groupBy("dt", "category").agg(
        F.percentile_approx("price", 0.5, 1000).alias("_category_price")
    )
    inter = (
        interactions(snap_events)
        .join(items.select("dt", "item_id", "price", "category", "size"), ["dt", "item_id"], "left")
        .join(category_price, ["dt", "category"], "left")
        .withColumn("_w", intent_weight())
    )
    ranks = {system: position_in(sizes, "size") for system, sizes in SIZE_CHARTS.items()}
    sizes = [
        (
            exact_sum(F.col("_w") * rank).cast("double")
            / exact_sum(F.when(rank.isNotNull(), F.col("_w"))).cast("double")
        ).alias(USER_SIZE_FLOATS[system])
        for system, rank in ranks.items()
    ]
    profile = inter.groupBy("dt", END, "user_id").agg(
        F.min(age_days("ts")).alias("user_days_since_active"),
        F.percentile_approx("price", 0.5, 1000).cast("double").alias("user_price_level"),
        F.percentile_approx(F.log(F.col("price") / F.col("_category_price")), 0.5, 1000)
        .cast("double")
        .alias("user_price_rel_level"),
        *sizes,
        F.countDistinct("category").cast("long").alias("user_category_breadth"),
    )
    return (
        counts.join(profile, ["dt", END, "user_id"], "left")
        .select("*", F.col(END).alias("event_timestamp"))
        .drop(END)
    )


def user_profile(user_snapshots: DataFrame) -> DataFrame:
    """Per snapshot, every signed-up user's declared size (its position in the letter
    chart) and styles: all a brand-new user's list can be personalised by.

    ``user_snapshots``: the raw users partitions with their ``dt`` and ``snapshot_end``.
    """
    return user_snapshots.select(
        "dt",
        "user_id",
        position_in(SIZE_CHARTS["letter"], "declared_size").alias("declared_size_rank"),
        F.col("declared_styles"),
        F.col(END).alias("event_timestamp"),
    )
