"""Item-to-item co-visitation: items engaged with in the same session, top-K per item.

Feeds candidate generation ("more like what you just engaged with"). Scores are
cosine-normalised pair counts, so a very popular item does not become everyone's
neighbour just by being everywhere.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ranking_jobs.features.common import END, interactions

TOP_K = 20


def item_covisitation(snap_events: DataFrame, top_k: int = TOP_K) -> DataFrame:
    """Per snapshot and item: up to ``top_k`` neighbour ids and scores, best first."""
    engaged = interactions(snap_events).select("dt", END, "session_id", "item_id").dropDuplicates()
    sessions_per_item = engaged.groupBy("dt", "item_id").agg(F.count("*").alias("n"))
    left = engaged.alias("a")
    right = engaged.alias("b")
    pairs = (
        left.join(
            right,
            (F.col("a.dt") == F.col("b.dt"))
            & (F.col("a.session_id") == F.col("b.session_id"))
            & (F.col("a.item_id") != F.col("b.item_id")),
        )
        .groupBy(
            F.col("a.dt").alias("dt"),
            F.col("a.snapshot_end").alias(END),
            F.col("a.item_id").alias("item_id"),
            F.col("b.item_id").alias("neighbour_id"),
        )
        .agg(F.count("*").alias("together"))
    )
    n_a = sessions_per_item.select("dt", "item_id", F.col("n").alias("n_a"))
    n_b = sessions_per_item.select(
        "dt", F.col("item_id").alias("neighbour_id"), F.col("n").alias("n_b")
    )
    scored = (
        pairs.join(n_a, ["dt", "item_id"])
        .join(n_b, ["dt", "neighbour_id"])
        .withColumn("score", F.col("together") / F.sqrt(F.col("n_a") * F.col("n_b")))
    )
    rank = Window.partitionBy("dt", "item_id").orderBy(F.col("score").desc(), F.col("neighbour_id"))
    top = scored.withColumn("_rank", F.row_number().over(rank)).where(F.col("_rank") <= top_k)
    ordered = F.array_sort(F.collect_list(F.struct("_rank", "neighbour_id", "score")))
    return (
        top.groupBy("dt", END, "item_id")
        .agg(ordered.alias("_n"))
        .select(
            "dt",
            "item_id",
            F.col("_n.neighbour_id").alias("neighbour_ids"),
            F.col("_n.score").cast("array<double>").alias("neighbour_scores"),
            F.col(END).alias("event_timestamp"),
        )
    )
