"""Daily aggregates of raw/events, and the snapshot windows rolled from them.

Every feature window ends at a day boundary (a snapshot for day D sees the
partitions D-w+1..D), so each windowed figure is a sum, count or maximum over
whole days. The stage therefore reduces each raw/events day once, to the compact
tables below, and a snapshot adds up the days of its windows: a night reads its
one new day of events, and a fresh lake reduces every day once rather than once
per snapshot that sees it. Time-decayed weights are stored decayed to their
day's end and decayed further by whole days when rolled
(2^(-(a+b)/h) = 2^(-a/h) * 2^(-b/h)).

A session's co-visitation is counted within one day: a session that runs past
midnight counts as two visits. Every function here is a pure DataFrame transform.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ranking_jobs import contracts as C
from ranking_jobs.columns import WINDOWS
from ranking_jobs.features.common import COUNTED, END, age_days, exact_sum

# Weight of an interaction: stronger intent counts more.
AFFINITY_WEIGHTS = {"click": 1.0, "like": 2.0, "save": 2.0, "add_to_bag": 3.0, "purchase": 4.0}
AFFINITY_HALF_LIFE_DAYS = 7.0
DAY_END = "day_end"


def decay(age: Column) -> Column:
    """How much an interaction ``age`` days old still counts: halved every half-life."""
    return F.pow(F.lit(0.5), age / F.lit(AFFINITY_HALF_LIFE_DAYS))


def intent_weight() -> Column:
    """An interaction's intent weight, decayed to the end of its day (``DAY_END``)."""
    weight = F.lit(0.0)
    for event_type, w in AFFINITY_WEIGHTS.items():
        weight = F.when(F.col("event_type") == event_type, F.lit(w)).otherwise(weight)
    return weight * decay(age_days("ts", DAY_END))


def _engaged(events: DataFrame) -> DataFrame:
    return events.where(F.col("event_type") != "impression")


def _counts() -> list[Column]:
    return [
        F.count(F.when(F.col("event_type") == event_type, 1)).cast("long").alias(name)
        for event_type, name in COUNTED.items()
    ]


def item_days(events: DataFrame) -> DataFrame:
    """Per day and item: events of each type, and the sessions that engaged with it."""
    sessions = F.countDistinct(F.when(F.col("event_type") != "impression", F.col("session_id")))
    return events.groupBy("dt", "item_id").agg(*_counts(), sessions.cast("long").alias("sessions"))


def user_days(events: DataFrame) -> DataFrame:
    """Per day and user: events of each type."""
    return events.groupBy("dt", "user_id").agg(*_counts())


def user_item_days(events: DataFrame) -> DataFrame:
    """Per day and engaged (user, item): engagements, purchases, the last one's time and
    the intent weight decayed to the day's end (exact: ``exact_sum``)."""
    day_end = F.to_timestamp(F.date_add(F.col("dt"), 1))
    return (
        _engaged(events)
        .withColumn(DAY_END, day_end)
        .groupBy("dt", "user_id", "item_id")
        .agg(
            F.count("*").cast("long").alias("engagements"),
            F.count(F.when(F.col("event_type") == "purchase", 1)).cast("long").alias("purchases"),
            F.max("ts").alias("last_ts"),
            exact_sum(intent_weight()).alias("intent"),
        )
    )


def pair_days(events: DataFrame) -> DataFrame:
    """Per day and ordered pair of distinct items: the sessions that engaged with both."""
    visits = _engaged(events).select("dt", "session_id", "item_id").dropDuplicates()
    other = visits.select("dt", "session_id", F.col("item_id").alias("neighbour_id"))
    return (
        visits.join(other, ["dt", "session_id"])
        .where(F.col("item_id") != F.col("neighbour_id"))
        .groupBy("dt", "item_id", "neighbour_id")
        .agg(F.count("*").cast("long").alias("together"))
    )


DAILY_TRANSFORMS = {
    C.DAILY_ITEM: item_days,
    C.DAILY_USER: user_days,
    C.DAILY_USER_ITEM: user_item_days,
    C.DAILY_PAIRS: pair_days,
}


def rolled(daily: DataFrame, snapshots: DataFrame, days: int) -> DataFrame:
    """Each daily row once per snapshot whose last ``days`` days hold it, with the
    snapshot's ``dt`` and end and the row's ``age`` in whole days (0: the snapshot day)."""
    day = F.col("day")
    joined = daily.withColumnRenamed("dt", "day").join(
        F.broadcast(snapshots), (day <= F.col("dt")) & (day > F.date_sub(F.col("dt"), days))
    )
    return joined.withColumn("age", F.datediff(F.col("dt"), day)).drop("day")


def rolled_inputs(
    daily: dict[str, DataFrame], snapshots: DataFrame, lookback_days: int
) -> dict[str, DataFrame]:
    """The daily tables rolled into each snapshot's 30-day window, and the user-item
    table into its ``lookback_days`` as well, by their ``SnapshotInputs`` names.

    ``daily``: each table's rows of the days the windows (and the lookback) hold."""
    window = max(WINDOWS)
    return {
        "item_days": rolled(daily[C.DAILY_ITEM], snapshots, window),
        "user_days": rolled(daily[C.DAILY_USER], snapshots, window),
        "user_items": rolled(daily[C.DAILY_USER_ITEM], snapshots, window),
        "pairs": rolled(daily[C.DAILY_PAIRS], snapshots, window),
        "user_item_history": rolled(daily[C.DAILY_USER_ITEM], snapshots, lookback_days),
    }


def window_counts(rolled_days: DataFrame, keys: list[str]) -> DataFrame:
    """Counts of every event type over the 1/7/30-day windows, per snapshot and key,
    from rolled ``item_days`` or ``user_days``."""
    aggs = [
        F.sum(F.when(F.col("age") < w, F.col(name)).otherwise(0)).cast("long").alias(f"{name}_{w}d")
        for w in WINDOWS
        for name in COUNTED.values()
    ]
    return rolled_days.groupBy("dt", END, *keys).agg(*aggs)


def rolled_intent() -> Column:
    """A rolled row's intent weight decayed to its snapshot's end, as a double."""
    return F.col("intent").cast("double") * decay(F.col("age").cast("double"))
