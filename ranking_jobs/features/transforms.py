"""Pure Spark transforms from raw tables to feature snapshots (no I/O here).

Several snapshots are computed in one pass: ``with_snapshots`` pairs every event
with each snapshot whose 30-day window contains it, and every aggregate groups
by the snapshot day ``dt``. A snapshot for day D only sees events strictly before
its end instant (D+1 00:00 UTC), which is also the Feast event timestamp of its
rows, so nothing unknown at that instant can reach a training row.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ranking_jobs.features.columns import ITEM_COUNTS, WINDOWS

COUNTED = {
    "impression": "impressions",
    "click": "clicks",
    "like": "likes",
    "save": "saves",
    "add_to_bag": "bag_adds",
    "purchase": "purchases",
}
# Weight of an interaction in a user's affinity: stronger intent counts more.
AFFINITY_WEIGHTS = {"click": 1.0, "like": 2.0, "save": 2.0, "add_to_bag": 3.0, "purchase": 4.0}
AFFINITY_HALF_LIFE_DAYS = 7.0
END = "snapshot_end"


def snapshot_frame(spark: SparkSession, days: list[dt.date]) -> DataFrame:
    """One row per snapshot: its day ``dt`` and its end instant."""
    rows = [
        (d, dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)) for d in days
    ]
    return spark.createDataFrame(rows, f"dt date, {END} timestamp")


def _days_before_end(col: str, days: int) -> Column:
    return F.col(col) >= F.col(END) - F.make_interval(days=F.lit(days))


def with_snapshots(events: DataFrame, snapshots: DataFrame) -> DataFrame:
    """Each event once per snapshot whose longest window contains it."""
    cond = (F.col("ts") < F.col(END)) & _days_before_end("ts", max(WINDOWS))
    return events.join(F.broadcast(snapshots), cond)


def _age_days(col: str) -> Column:
    return (F.col(END).cast("long") - F.col(col).cast("long")) / 86400.0


def windowed_counts(snap_events: DataFrame, keys: list[str]) -> DataFrame:
    """Counts of every event type over 1/7/30-day windows, per snapshot and key."""
    aggs = []
    for w in WINDOWS:
        for event_type, name in COUNTED.items():
            hit = _days_before_end("ts", w) & (F.col("event_type") == event_type)
            aggs.append(F.sum(F.when(hit, 1).otherwise(0)).cast("long").alias(f"{name}_{w}d"))
    return snap_events.groupBy("dt", END, *keys).agg(*aggs)


def smoothed_rate(successes: Column, trials: Column, prior: Column, strength: float) -> Column:
    """Beta-prior smoothing: a cold item's rate starts at the prior and moves with evidence."""
    return (successes + F.lit(strength) * prior) / (trials + F.lit(strength))


def latest_items(items: DataFrame, snapshots: DataFrame) -> DataFrame:
    """Per snapshot, every listing seen up to it, with its most recent attributes."""
    seen = items.withColumnRenamed("dt", "item_dt").join(
        F.broadcast(snapshots), F.col("item_dt") <= F.col("dt")
    )
    w = Window.partitionBy("dt", "item_id").orderBy(F.col("item_dt").desc())
    return seen.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn", "item_dt")


def item_stats(
    snap_events: DataFrame, item_snapshots: DataFrame, prior_strength: float, items_seen: DataFrame
) -> DataFrame:
    """Per snapshot item: popularity, smoothed rates (item, category, brand), age, price, seller.

    ``item_snapshots``: the raw items partitions with their ``dt`` and ``snapshot_end``.
    ``items_seen``: per snapshot, latest attributes of every listing (``latest_items``).
    Category, brand and seller rates also count listings that sold since (gone from
    ``item_snapshots``): otherwise every sale would drop out of them the next day.
    """
    counts = windowed_counts(snap_events, ["item_id"])
    base = item_snapshots.join(counts, ["dt", END, "item_id"], "left").fillna(0, subset=ITEM_COUNTS)
    history = counts.join(
        items_seen.select("dt", "item_id", "category", "brand", "seller_id"), ["dt", "item_id"]
    )

    def prior(keys: list[str], succ: str, trials: str, alias: str) -> DataFrame:
        return history.groupBy("dt", *keys).agg(
            ((F.sum(succ) + F.lit(1.0)) / (F.sum(trials) + F.lit(prior_strength))).alias(alias)
        )

    cat_ctr = prior(["category"], "clicks_30d", "impressions_30d", "category_ctr_30d")
    cat_conv = prior(["category"], "purchases_30d", "clicks_30d", "category_conversion_30d")
    brand_ctr = prior(["brand"], "clicks_30d", "impressions_30d", "brand_ctr_30d")
    cat_price = base.groupBy("dt", "category").agg(
        F.percentile_approx("price", 0.5, 1000).alias("category_median_price")
    )
    seller = history.groupBy("dt", "seller_id").agg(
        F.sum("purchases_30d").alias("seller_sales_30d"),
        F.sum("clicks_30d").alias("_seller_clicks_30d"),
    )
    no_evidence = 1.0 / prior_strength  # (0 + 1) / (0 + m): nothing in the window
    out = (
        base.join(cat_ctr, ["dt", "category"], "left")
        .join(cat_conv, ["dt", "category"], "left")
        .join(brand_ctr, ["dt", "brand"], "left")
        .join(cat_price, ["dt", "category"])
        .join(seller, ["dt", "seller_id"], "left")
        .fillna(
            no_evidence, subset=["category_ctr_30d", "category_conversion_30d", "brand_ctr_30d"]
        )
        .fillna(0, subset=["seller_sales_30d", "_seller_clicks_30d"])
    )
    m = prior_strength
    cat_ctr_c, cat_conv_c = F.col("category_ctr_30d"), F.col("category_conversion_30d")
    return out.select(
        "dt",
        "item_id",
        *ITEM_COUNTS,
        smoothed_rate(F.col("clicks_7d"), F.col("impressions_7d"), cat_ctr_c, m).alias("ctr_7d"),
        smoothed_rate(F.col("clicks_30d"), F.col("impressions_30d"), cat_ctr_c, m).alias("ctr_30d"),
        smoothed_rate(F.col("purchases_30d"), F.col("clicks_30d"), cat_conv_c, m).alias(
            "conversion_30d"
        ),
        cat_ctr_c.alias("category_ctr_30d"),
        F.col("brand_ctr_30d"),
        _age_days("listed_at").alias("age_days"),
        F.col("price").cast("double"),
        (F.col("price") / F.col("category_median_price")).alias("price_rel_category"),
        (F.col("status") == "available").cast("long").alias("is_available"),
        F.col("seller_sales_30d").cast("long"),
        smoothed_rate(F.col("seller_sales_30d"), F.col("_seller_clicks_30d"), cat_conv_c, m).alias(
            "seller_conversion_30d"
        ),
        F.col(END).alias("event_timestamp"),
    )


def _interactions(snap_events: DataFrame) -> DataFrame:
    return snap_events.where(F.col("event_type") != "impression")


def user_stats(snap_events: DataFrame, items: DataFrame) -> DataFrame:
    """Per snapshot user seen in 30 days: activity over windows, recency, price level, breadth.

    ``items``: per snapshot, latest attributes of every listing (``latest_items``).
    """
    counts = windowed_counts(snap_events, ["user_id"]).select(
        "dt", END, "user_id", *[F.col(c).alias(f"user_{c}") for c in ITEM_COUNTS]
    )
    inter = _interactions(snap_events).join(
        items.select("dt", "item_id", "price", "category"), ["dt", "item_id"], "left"
    )
    profile = inter.groupBy("dt", END, "user_id").agg(
        F.min(_age_days("ts")).alias("user_days_since_active"),
        F.percentile_approx("price", 0.5, 1000).cast("double").alias("user_price_level"),
        F.countDistinct("category").cast("long").alias("user_category_breadth"),
    )
    return (
        counts.join(profile, ["dt", END, "user_id"], "left")
        .select("*", F.col(END).alias("event_timestamp"))
        .drop(END)
    )


def user_category_affinity(snap_events: DataFrame, items: DataFrame) -> DataFrame:
    """Per snapshot, time-decayed share of a user's intent-weighted interactions per category."""
    weight = F.lit(0.0)
    for event_type, w in AFFINITY_WEIGHTS.items():
        weight = F.when(F.col("event_type") == event_type, F.lit(w)).otherwise(weight)
    decay = F.pow(F.lit(0.5), _age_days("ts") / F.lit(AFFINITY_HALF_LIFE_DAYS))
    scored = (
        _interactions(snap_events)
        .join(items.select("dt", "item_id", "category"), ["dt", "item_id"])
        .withColumn("_w", weight * decay)
    )
    per_cat = scored.groupBy("dt", END, "user_id", "category").agg(F.sum("_w").alias("_w"))
    total = Window.partitionBy("dt", "user_id")
    return per_cat.select(
        "dt",
        "user_id",
        "category",
        (F.col("_w") / F.sum("_w").over(total)).alias("category_affinity"),
        F.col(END).alias("event_timestamp"),
    )
