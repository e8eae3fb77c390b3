"""User features: activity over windows, recency, price level, breadth, sizes worn, and
the profile declared at sign-up."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ranking_jobs.columns import ITEM_COUNTS, USER_COUNTS, USER_FLOATS, USER_INTS, USER_SIZE_FLOATS
from ranking_jobs.contracts import SIZE_CHARTS
from ranking_jobs.features.common import END, age_days, exact_sum, position_in
from ranking_jobs.features.daily import rolled_intent, window_counts


def user_stats(user_days: DataFrame, user_items: DataFrame, items: DataFrame) -> DataFrame:
    """Per snapshot user seen in 30 days: activity over windows, recency, price level,
    breadth, and where in each size chart their engagement sits.

    ``user_days`` and ``user_items``: the user and user-item daily aggregates rolled
    into each snapshot's window. ``items``: per snapshot, latest attributes of every
    listing (``latest_items``). A user's price level is also taken relative to each
    category's median price, because a cheap coat and a dear T-shirt can cost the same.
    Price levels are medians over engagements: a (user, item) aggregate stands for as
    many values as it counts engagements.
    """
    counts = window_counts(user_days, ["user_id"]).select(
        "dt", END, "user_id", *[F.col(c).alias(f"user_{c}") for c in ITEM_COUNTS]
    )
    category_price = items.groupBy("dt", "category").agg(
        F.percentile_approx("price", 0.5, 1000).alias("_category_price")
    )
    inter = (
        user_items.join(
            items.select("dt", "item_id", "price", "category", "size"), ["dt", "item_id"], "left"
        )
        .join(category_price, ["dt", "category"], "left")
        .withColumn("_w", rolled_intent())
    )
    ranks = {system: position_in(sizes, "size") for system, sizes in SIZE_CHARTS.items()}
    sizes = [
        (
            exact_sum(F.col("_w") * rank).cast("double")
            / exact_sum(F.when(rank.isNotNull(), F.col("_w"))).cast("double")
        ).alias(USER_SIZE_FLOATS[system])
        for system, rank in ranks.items()
    ]
    keys = ["dt", END, "user_id"]
    profile = inter.groupBy(*keys).agg(
        F.min(age_days("last_ts")).alias("user_days_since_active"),
        *sizes,
        F.countDistinct("category").cast("long").alias("user_category_breadth"),
    )
    prices = F.struct(
        F.col("price").alias("price"),
        F.log(F.col("price") / F.col("_category_price")).alias("rel"),
    )
    each = inter.select(
        *keys, F.explode(F.array_repeat(prices, F.col("engagements").cast("int"))).alias("_p")
    )
    levels = each.groupBy(*keys).agg(
        F.percentile_approx("_p.price", 0.5, 1000).cast("double").alias("user_price_level"),
        F.percentile_approx("_p.rel", 0.5, 1000).cast("double").alias("user_price_rel_level"),
    )
    return counts.join(profile.join(levels, keys), keys, "left").select(
        "dt",
        "user_id",
        *USER_COUNTS,
        *USER_FLOATS,
        *USER_INTS,
        F.col(END).alias("event_timestamp"),
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
