"""Item-to-item co-visitation: items engaged with in the same session, top-K per item.

Feeds candidate generation ("more like what you just engaged with"). Scores are
cosine-normalised pair counts, so a very popular item does not become everyone's
neighbour just by being everywhere.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ranking_jobs.features.common import END

TOP_K = 20


def item_covisitation(pairs: DataFrame, item_days: DataFrame, top_k: int = TOP_K) -> DataFrame:
    """Per snapshot and item: up to ``top_k`` neighbour ids and scores, best first.

    ``pairs`` and ``item_days``: the daily pair counts and item aggregates rolled
    into each snapshot's window; a visit is a session's engagements within one day.
    """
    visits = item_days.groupBy("dt", "item_id").agg(F.sum("sessions").alias("n"))
    together = pairs.groupBy("dt", END, "item_id", "neighbour_id").agg(
        F.sum("together").alias("together")
    )
    n_a = visits.select("dt", "item_id", F.col("n").alias("n_a"))
    n_b = visits.select("dt", F.col("item_id").alias("neighbour_id"), F.col("n").alias("n_b"))
    scored = (
        together.join(n_a, ["dt", "item_id"])
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
