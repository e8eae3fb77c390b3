"""Item features: popularity over windows, smoothed rates, age, price, seller quality."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ranking_jobs.columns import ITEM_COUNTS
from ranking_jobs.contracts import CONDITIONS
from ranking_jobs.features.common import END, age_days, position_in, smoothed_rate
from ranking_jobs.features.daily import window_counts

# Rates of a listing's category and brand: what a cold listing is judged by.
SCOPED_RATES = [
    "category_ctr_30d",
    "category_conversion_30d",
    "brand_ctr_30d",
    "brand_conversion_30d",
]


def item_stats(
    item_days: DataFrame, item_snapshots: DataFrame, prior_strength: float, items_seen: DataFrame
) -> DataFrame:
    """Per snapshot item: popularity, smoothed rates (item, category, brand), age, price, seller.

    ``item_days``: the item daily aggregates rolled into each snapshot's window.
    ``item_snapshots``: the raw items partitions with their ``dt`` and ``snapshot_end``.
    ``items_seen``: per snapshot, latest attributes of every listing (``latest_items``).
    Category, brand and seller rates also count listings that sold since (gone from
    ``item_snapshots``): otherwise every sale would drop out of them the next day.
    """
    counts = window_counts(item_days, ["item_id"])
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
    brand_conv = prior(["brand"], "purchases_30d", "clicks_30d", "brand_conversion_30d")
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
        .join(brand_conv, ["dt", "brand"], "left")
        .join(cat_price, ["dt", "category"])
        .join(seller, ["dt", "seller_id"], "left")
        .fillna(no_evidence, subset=SCOPED_RATES)
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
        cat_conv_c.alias("category_conversion_30d"),
        F.col("brand_ctr_30d"),
        F.col("brand_conversion_30d"),
        age_days("listed_at").alias("age_days"),
        F.col("price").cast("double"),
        (F.col("price") / F.col("category_median_price")).alias("price_rel_category"),
        (F.col("status") == "available").cast("long").alias("is_available"),
        F.col("seller_sales_30d").cast("long"),
        smoothed_rate(F.col("seller_sales_30d"), F.col("_seller_clicks_30d"), cat_conv_c, m).alias(
            "seller_conversion_30d"
        ),
        position_in(CONDITIONS, "condition").alias("condition_rank"),
        F.col(END).alias("event_timestamp"),
    )
