"""Shared pieces of the feature transforms: snapshots, smoothing, exact sums.

Several snapshots are computed in one pass: the daily aggregates are paired with
each snapshot whose window holds their day (``daily.rolled``), and every
aggregate groups by the snapshot day ``dt``. A snapshot for day D only sees the
raw partitions up to D, i.e. events strictly before its end instant (D+1 00:00
UTC), which is also the Feast event timestamp of its rows, so nothing unknown at
that instant can reach a training row. Every function here and in the family
modules is a pure DataFrame transform.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ranking_jobs.columns import WINDOWS

COUNTED = {
    "impression": "impressions",
    "click": "clicks",
    "like": "likes",
    "save": "saves",
    "add_to_bag": "bag_adds",
    "purchase": "purchases",
}
END = "snapshot_end"
# The raw event columns the daily aggregates read.
EVENT_COLUMNS = ("dt", "ts", "user_id", "item_id", "event_type", "session_id")


def snapshot_frame(spark: SparkSession, days: list[dt.date]) -> DataFrame:
    """One row per snapshot: its day ``dt`` and its end instant."""
    rows = [
        (d, dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)) for d in days
    ]
    return spark.createDataFrame(rows, f"dt date, {END} timestamp")


def age_days(col: str, end: str = END) -> Column:
    """Days from ``col`` to the instant ``end`` (default: the snapshot's end)."""
    return (F.col(end).cast("long") - F.col(col).cast("long")) / 86400.0


# Fixed point for sums of fractional values: exact, so independent of the order in
# which Spark's tasks add them.
EXACT = "decimal(38,18)"


def exact_sum(values: Column) -> Column:
    """The sum of ``values`` in fixed point (``EXACT``), as a decimal.

    A sum of doubles depends on the order its terms are added in, which follows the
    input's partitioning: the same events read by a cluster, or from an S3 lake, gave
    features differing in the last bits, and through early stopping a different model
    and different lists. Terms are rounded to 18 decimals first; a group's sum then
    comes out the same however it is split."""
    return F.sum(values.cast(EXACT))


def smoothed_rate(successes: Column, trials: Column, prior: Column, strength: float) -> Column:
    """Beta-prior smoothing: a cold item's rate starts at the prior and moves with evidence."""
    return (successes + F.lit(strength) * prior) / (trials + F.lit(strength))


def latest_items(
    items: DataFrame, snapshots: DataFrame, lookback_days: int = max(WINDOWS)
) -> DataFrame:
    """Per snapshot, every listing seen in its last ``lookback_days`` raw/items
    partitions (its own included), with its most recent attributes.

    Bounded like the event windows, so a snapshot is the same whichever other
    snapshots are computed with it (a nightly run reads only those partitions).
    """
    item_day = F.col("item_dt")
    seen = items.withColumnRenamed("dt", "item_dt").join(
        F.broadcast(snapshots),
        (item_day <= F.col("dt")) & (item_day > F.date_sub(F.col("dt"), lookback_days)),
    )
    w = Window.partitionBy("dt", "item_id").orderBy(F.col("item_dt").desc())
    return seen.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn", "item_dt")


def position_in(values: Sequence[str], col: str) -> Column:
    """0-based position of ``col``'s value in ``values`` (a double), null when absent:
    a condition on the condition scale, a size in its size chart."""
    position = F.array_position(F.array(*[F.lit(v) for v in values]), F.col(col))
    return F.when(position > 0, position - 1).cast("double")
