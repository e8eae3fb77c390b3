"""Feature extraction stage: raw lake tables -> feature snapshots -> Feast.

A snapshot for day D holds everything known at the end of D. The stage reduces
each raw/events day it has not reduced yet (and D itself) to daily aggregates
(``daily``), then rolls D's snapshot and, on a first run or after a gap, the
earlier snapshots that the training window needs from them, so a fresh lake needs
no manual backfill.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.columns import AFFINITY_DIMENSIONS, DAILY_COLUMNS, WINDOWS
from ranking_jobs.context import RunContext
from ranking_jobs.families import FAMILIES, FEATURE_COLUMNS
from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


def is_current(settings: Settings, day: dt.date) -> bool:
    """Whether every feature table has a snapshot for ``day`` with today's columns.

    A snapshot written before a feature was added lacks its column, and Feast
    would fail on it at retrieval: such a day is rewritten like a missing one.
    """
    return _current(settings, FEATURE_COLUMNS, day)


def _current(settings: Settings, tables: dict[str, list[str]], day: dt.date) -> bool:
    """Whether each of ``tables`` has a partition for ``day`` holding its columns."""
    return all(
        lake.has_partition(settings, t, day)
        and set(want) <= set(lake.partition_schema(settings, t, day).names)
        for t, want in tables.items()
    )


def snapshots_needed(ctx: RunContext) -> list[dt.date]:
    """Snapshots the night reads: the eve of every label window of its calendar and
    ``ds`` itself."""
    from ranking_jobs.calendar import calendar_of

    return calendar_of(ctx).snapshots


def build_features(ctx: RunContext) -> dict[str, Any]:
    settings = ctx.settings
    wanted = snapshots_needed(ctx)
    todo = [d for d in wanted if d == ctx.ds or not is_current(settings, d)]
    raw_days = set(lake.list_partitions(settings, C.RAW_EVENTS))
    todo = [d for d in todo if d in raw_days]
    if ctx.ds not in todo:
        raise lake.MissingPartitionError(
            f"no raw/events partition for {ctx.ds_str} under {settings.paths.data_root}"
        )
    if len(todo) > 1:
        log.info(
            "also writing %d missing or outdated earlier snapshots: %s", len(todo) - 1, todo[:-1]
        )

    from ranking_jobs.spark import get_spark

    spark = get_spark(settings, "build_features")
    reduced = write_daily(spark, ctx, todo)
    written = write_snapshots(spark, ctx, todo)

    from ranking_jobs.feast_store import apply_definitions

    applied = apply_definitions(settings)
    return {
        "snapshots": [d.isoformat() for d in todo],
        "daily_aggregates": reduced,
        "feast_objects": applied,
        "rows": written,
    }


def arrow_schema(frame: DataFrame) -> pa.Schema:
    """The Arrow schema of a frame's rows without its ``dt`` partition column: a snapshot
    without rows (a sparse log's quiet month) is written as an empty file of it."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    fields = [f for f in frame.schema.fields if f.name != "dt"]
    return to_arrow_schema(StructType(fields), timezone="UTC")


def daily_days(settings: Settings, snapshots: list[dt.date]) -> list[dt.date]:
    """The raw days whose daily aggregates ``snapshots`` roll up: every raw/events
    partition within their longest window or user-item lookback."""
    span = max(max(WINDOWS), settings.features.user_item_lookback_days)
    raw_days = set(lake.list_partitions(settings, C.RAW_EVENTS))
    return [d for d in _days_back(snapshots, span) if d in raw_days]


def write_daily(
    spark: Any, ctx: RunContext, snapshots: list[dt.date], batch_rows: int | None = None
) -> dict[str, Any]:
    """Reduce every raw day the snapshots need and the lake lacks (and ``ds`` itself,
    which a rerun may have changed) to its daily aggregates, each day once.

    Batches of consecutive days hold at most ``batch_rows`` raw events (default: the
    ``feature_batch_rows`` setting). Returns the days reduced, their events and the
    Spark seconds per million events."""
    settings = ctx.settings
    days = [
        d
        for d in daily_days(settings, snapshots)
        if d == ctx.ds or not _current(settings, DAILY_COLUMNS, d)
    ]
    events = {d: lake.partition_rows(settings, C.RAW_EVENTS, d) for d in days}
    batches = plan_batches(events, batch_rows or settings.features.batch_rows)
    start = time.perf_counter()
    for i, batch in enumerate(batches, 1):
        n = sum(events[d] for d in batch)
        with timed(log, f"daily aggregates {i}/{len(batches)}: {batch[0]}..{batch[-1]}") as t:
            t["count"] = n
            _write_daily_batch(spark, settings, batch)
    seconds = time.perf_counter() - start
    total = sum(events.values())
    return {
        "days": [d.isoformat() for d in days],
        "events": total,
        "seconds": round(seconds, 1),
        "seconds_per_million_events": round(seconds / total * 1e6, 1) if total else None,
    }


def _write_daily_batch(spark: Any, settings: Settings, days: list[dt.date]) -> None:
    from ranking_jobs.features import common, daily

    events = _read(spark, settings, C.RAW_EVENTS, days, common.EVENT_COLUMNS).cache()
    for table, transform in daily.DAILY_TRANSFORMS.items():
        _write_table(settings, table, days, transform(events))
    events.unpersist()


def write_snapshots(
    spark: Any, ctx: RunContext, days: list[dt.date], batch_rows: int | None = None
) -> dict[str, int]:
    """Write the snapshots batch by batch, one Spark pass per table and batch; rows
    written per table. The daily aggregates of their windows must be in the lake.

    One pass over several snapshots pairs each daily aggregate row with every
    snapshot whose window holds it, so a batch holds consecutive snapshots whose
    paired rows (``snapshot_rows``) stay within ``batch_rows`` (default: the
    ``feature_batch_rows`` setting).
    """
    settings = ctx.settings
    budget = batch_rows or settings.features.batch_rows
    days = sorted(days)
    batches = plan_batches(snapshot_rows(settings, days), budget)
    written: Counter[str] = Counter()
    for i, batch in enumerate(batches, 1):
        if len(batches) > 1:
            log.info(
                "batch %d of %d: %d snapshots, %s..%s",
                i,
                len(batches),
                len(batch),
                batch[0],
                batch[-1],
            )
        written.update(_write_batch(spark, settings, batch))
    return dict(written)


def plan_batches(rows: dict[dt.date, int], budget: int) -> list[list[dt.date]]:
    """Consecutive snapshots, oldest first, grouped so each group's rows stay within
    ``budget``; a snapshot over the budget on its own is a group of one."""
    batches: list[list[dt.date]] = []
    total = 0
    for day in sorted(rows):
        if batches and total + rows[day] <= budget:
            batches[-1].append(day)
            total += rows[day]
        else:
            batches.append([day])
            total = rows[day]
    return batches


def snapshot_rows(settings: Settings, days: list[dt.date]) -> dict[dt.date, int]:
    """Rows each snapshot pairs with itself: the daily aggregates and raw/items rows of
    its 30-day window, and the user-item aggregates of its lookback (from the Parquet
    footers; no data read)."""
    window, lookback = max(WINDOWS), settings.features.user_item_lookback_days
    in_window = (C.DAILY_ITEM, C.DAILY_USER, C.DAILY_USER_ITEM, C.DAILY_PAIRS, C.RAW_ITEMS)
    spans = [(t, window) for t in in_window] + [(C.DAILY_USER_ITEM, lookback)]
    present = {t: set(lake.list_partitions(settings, t)) for t in in_window}
    counted: dict[tuple[str, dt.date], int] = {}

    def rows(table: str, day: dt.date) -> int:
        if (table, day) not in counted:
            has = day in present[table]
            counted[table, day] = lake.partition_rows(settings, table, day) if has else 0
        return counted[table, day]

    return {d: sum(rows(t, day) for t, n in spans for day in lake.day_range(d, n)) for d in days}


def _days_back(days: list[dt.date], n: int) -> list[dt.date]:
    """Every day in the ``n`` days ending with any of ``days``, oldest first."""
    return sorted({d for day in days for d in lake.day_range(day, n)})


def _read(
    spark: Any,
    settings: Settings,
    table: str,
    days: list[dt.date],
    columns: tuple[str, ...] | None = None,
) -> Any:
    from ranking_jobs import spark_lake  # pyspark is imported only by the stages using it

    return spark_lake.read_days(spark, settings, table, days, columns)


@dataclass(frozen=True)
class SnapshotInputs:
    """What the families' transforms read for a batch of snapshots (``Family.inputs``
    names these attributes): the daily aggregates rolled into each snapshot's 30-day
    window (items, users, user-items, item pairs) and its user-item lookback, the
    items seen in the window, and the raw items and users of each snapshot day."""

    settings: Settings
    item_days: Any
    user_days: Any
    user_items: Any
    user_item_history: Any
    pairs: Any
    items_seen: Any
    item_snapshots: Any
    user_snapshots: Any


def _write_batch(spark: Any, settings: Settings, days: list[dt.date]) -> dict[str, int]:
    """The snapshots of ``days`` in one Spark pass per table; rows written per table."""
    from pyspark.sql import functions as F

    from ranking_jobs.features import common, daily

    window, lookback = max(WINDOWS), settings.features.user_item_lookback_days
    spans = dict.fromkeys(DAILY_COLUMNS, window) | {C.DAILY_USER_ITEM: max(window, lookback)}
    tables = {t: _read(spark, settings, t, _days_back(days, n)) for t, n in spans.items()}
    snapshots = common.snapshot_frame(spark, days)
    rolled = daily.rolled_inputs(tables, snapshots, lookback)
    # Read by several families: cached once.
    cached = [rolled["item_days"].cache(), rolled["user_items"].cache()]
    seen = _read(spark, settings, C.RAW_ITEMS, _days_back(days, window))
    items_seen = common.latest_items(seen, snapshots).cache()
    cached.append(items_seen)
    inputs = SnapshotInputs(
        settings=settings,
        **rolled,
        items_seen=items_seen,
        item_snapshots=_read(spark, settings, C.RAW_ITEMS, days).join(F.broadcast(snapshots), "dt"),
        user_snapshots=_read(spark, settings, C.RAW_USERS, days).join(F.broadcast(snapshots), "dt"),
    )
    rows = {
        family.table: _write_table(settings, family.table, days, family.build(inputs))
        for family in FAMILIES
    }
    for frame in cached:
        frame.unpersist()
    return rows


SORT_KEYS = ("user_id", "item_id", "neighbour_id")


def _write_table(settings: Settings, table: str, days: list[dt.date], frame: DataFrame) -> int:
    """Write ``frame``'s rows of ``days`` as the table's partitions, each swapped in
    whole; rows written. Sorted by key within a day, so a rewrite is the same file."""
    from ranking_jobs.spark_lake import write_days

    keys = [c for c in (*SORT_KEYS, *AFFINITY_DIMENSIONS) if c in frame.columns]
    with (
        timed(log, f"{table} x {len(days)} days") as t,
        lake.staged_partitions(settings, table, days, arrow_schema(frame)) as staging,
    ):
        write_days(frame.repartition("dt").sortWithinPartitions("dt", *keys), settings, staging)
        t["count"] = rows = lake.staged_rows(settings, staging)
    return rows
