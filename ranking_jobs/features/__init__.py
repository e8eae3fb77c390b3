"""Feature extraction stage: raw lake tables -> feature snapshots -> Feast.

A snapshot for day D holds everything known at the end of D. The stage writes
D's snapshot and, on a first run or after a gap, the earlier snapshots that the
training window needs, so a fresh lake needs no manual backfill.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.columns import AFFINITY_DIMENSIONS, WINDOWS
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
    return all(
        lake.has_partition(settings, t, day)
        and set(want) <= lake.partition_columns(settings, t, day)
        for t, want in FEATURE_COLUMNS.items()
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
    written = write_snapshots(spark, ctx, todo)

    from ranking_jobs.feast_store import apply_definitions

    applied = apply_definitions(settings)
    return {"snapshots": [d.isoformat() for d in todo], "feast_objects": applied, "rows": written}


def arrow_schema(frame: DataFrame) -> pa.Schema:
    """The Arrow schema of a frame's rows without its ``dt`` partition column: a snapshot
    without rows (a sparse log's quiet month) is written as an empty file of it."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    fields = [f for f in frame.schema.fields if f.name != "dt"]
    return to_arrow_schema(StructType(fields), timezone="UTC")


def write_snapshots(
    spark: Any, ctx: RunContext, days: list[dt.date], batch_rows: int | None = None
) -> dict[str, int]:
    """Write the snapshots batch by batch, one Spark pass per table and batch; rows
    written per table.

    One pass over every snapshot replicates each event into every snapshot whose
    window holds it, so a long backfill in one pass ran out of heap. A batch holds
    consecutive snapshots whose replicated rows (``snapshot_rows``) stay within
    ``batch_rows`` (default: the ``feature_batch_rows`` setting); a single snapshot
    needs no estimate.
    """
    settings = ctx.settings
    budget = batch_rows or settings.features.batch_rows
    days = sorted(days)
    batches = (
        [days] if len(days) == 1 else plan_batches(snapshot_rows(spark, settings, days), budget)
    )
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


def snapshot_rows(spark: Any, settings: Settings, days: list[dt.date]) -> dict[dt.date, int]:
    """Rows each snapshot replicates: the events, co-visitation pairs and raw/items
    rows of its 30-day window, and the engaged events of its user-item lookback."""
    from ranking_jobs.features import common

    window, lookback = max(WINDOWS), settings.features.user_item_lookback_days
    events = _read(spark, settings, C.RAW_EVENTS, _days_back(days, max(window, lookback)))
    volumes = {r["dt"]: r.asDict() for r in common.day_volumes(events).collect()}
    items = _read(spark, settings, C.RAW_ITEMS, _days_back(days, window))
    for r in items.groupBy("dt").count().collect():
        volumes.setdefault(r["dt"], {})["items"] = r["count"]

    def total(day: dt.date, n: int, *names: str) -> int:
        return sum(volumes.get(d, {}).get(k, 0) for d in lake.day_range(day, n) for k in names)

    return {
        d: total(d, window, "events", "pairs", "items") + total(d, lookback, "engaged")
        for d in days
    }


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
    names these attributes): the events in each snapshot's windows, the items seen in
    them, the raw items and users of each snapshot day, and the engagements of each
    snapshot's user-item lookback."""

    settings: Settings
    events: Any
    items_seen: Any
    item_snapshots: Any
    user_snapshots: Any
    pair_events: Any


def _write_batch(spark: Any, settings: Settings, days: list[dt.date]) -> dict[str, int]:
    """The snapshots of ``days`` in one Spark pass per table; rows written per table."""
    from pyspark.sql import functions as F

    from ranking_jobs.features import common
    from ranking_jobs.spark_lake import write_days

    window = _days_back(days, max(WINDOWS))
    snapshots = common.snapshot_frame(spark, days)
    # Only the columns the transforms read are cached: caching every event column
    # made item_stats' pass slower (docs/decisions.md).
    used = _read(spark, settings, C.RAW_EVENTS, window, common.EVENT_COLUMNS)
    events = common.with_snapshots(used, snapshots).cache()
    items_seen = common.latest_items(_read(spark, settings, C.RAW_ITEMS, window), snapshots)
    items_seen = items_seen.cache()
    # User-item history looks back further than the windows (a repurchase can be
    # months apart); only engagements are read for it, never the impressions.
    lookback = settings.features.user_item_lookback_days
    history = _days_back(days, lookback)
    engaged = _read(spark, settings, C.RAW_EVENTS, history, common.EVENT_COLUMNS)
    engaged = engaged.where(F.col("event_type") != "impression")
    pair_events = common.with_snapshots(engaged, snapshots, lookback)
    item_snapshots = _read(spark, settings, C.RAW_ITEMS, days).join(F.broadcast(snapshots), "dt")
    user_snapshots = _read(spark, settings, C.RAW_USERS, days).join(F.broadcast(snapshots), "dt")

    inputs = SnapshotInputs(
        settings, events, items_seen, item_snapshots, user_snapshots, pair_events
    )
    frames = {family.table: family.build(inputs) for family in FAMILIES}
    rows = {}
    for table, frame in frames.items():
        keys = [c for c in ("user_id", "item_id", *AFFINITY_DIMENSIONS) if c in frame.columns]
        with (
            timed(log, f"{table} x {len(days)} snapshots") as t,
            lake.staged_partitions(settings, table, days, arrow_schema(frame)) as staging,
        ):
            frame = frame.repartition("dt").sortWithinPartitions("dt", *keys).cache()
            t["count"] = rows[table] = frame.count()
            write_days(frame, settings, staging)
            frame.unpersist()
    events.unpersist()
    items_seen.unpersist()
    return rows
