"""Availability stage: the items sold since the live lists were made, into the online store.

Lists are made once a night, but one-of-a-kind listings sell all day. This light
step (hourly in Airflow: ``ranking_availability``) collects every item sold since
the live lists' as-of time, from both freshest sources of the lake contracts
(purchases in ``raw/events`` and ``sold_at`` in the ``raw/items`` snapshots), and
writes them as ONE row of the ``sold_items`` feature view (entity ``segment``,
like ``popular_items``). Serving reads that row with the fallback list's key, so
the filter costs one extra hash field per request, never one key per item.

The window starts ``sold_items_margin_hours`` before the live lists' as-of time
(read from the online store's fallback list, which every publish writes), so
lists kept from a missed night are filtered too. Every partition from that day
on is read, whatever the run's day: the freshest data always wins, and the
run's day only names the audit partition ``sold_items/dt=``. Rows are stamped
with the wall-clock time, so every run really replaces the previous one on any
store (Feast's own writers skip writes that are not newer).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake, online
from ranking_jobs.context import RunContext
from ranking_jobs.logs import timed
from ranking_jobs.online import FALLBACK_SEGMENT
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)


def _days_from(settings: Settings, table: str, since: dt.datetime) -> list[dt.date]:
    return [d for d in lake.list_partitions(settings, table) if d >= since.date()]


def sold_since(settings: Settings, since: dt.datetime) -> tuple[pa.Array, list[str]]:
    """Sorted unique ids of items sold at or after ``since``, and the partitions read."""
    found: list[pa.Array] = []
    read: list[str] = []
    for day in _days_from(settings, C.RAW_EVENTS, since):
        events = lake.read_partition(settings, C.RAW_EVENTS, day, ["item_id", "event_type", "ts"])
        bought = pc.and_(
            pc.equal(events["event_type"], "purchase"),
            pc.greater_equal(events["ts"], pa.scalar(since, C.TS)),
        )
        found.append(events["item_id"].filter(bought).combine_chunks())
        read.append(f"{C.RAW_EVENTS}/dt={day}")
    for day in _days_from(settings, C.RAW_ITEMS, since):
        items = lake.read_partition(settings, C.RAW_ITEMS, day, ["item_id", "sold_at"])
        sold = pc.fill_null(pc.greater_equal(items["sold_at"], pa.scalar(since, C.TS)), False)
        found.append(items["item_id"].filter(sold).combine_chunks())
        read.append(f"{C.RAW_ITEMS}/dt={day}")
    if not found:
        return pa.array([], pa.int64()), read
    ids = pc.unique(pa.concat_arrays([a.cast(pa.int64()) for a in found]))
    return ids.take(pc.sort_indices(ids)), read


def live_as_of(settings: Settings) -> dt.datetime | None:
    """The as-of time of the lists live in the online store (its fallback list's)."""
    popular = online.reader(settings, direct=False).popular()  # a batch job's timeouts
    return popular.generated_at if popular is not None else None


def refresh_availability(ctx: RunContext) -> dict[str, Any]:
    """Write the items sold since the live lists' as-of time to the ``sold_items`` view."""
    settings = ctx.settings
    now = dt.datetime.now(dt.UTC)
    as_of = live_as_of(settings)
    anchor = as_of or min(ctx.end, now)  # nothing live yet: the run's day end
    since = anchor - dt.timedelta(hours=settings.serving.sold_items_margin_hours)
    with timed(log, "collected sold items", "items") as t:
        ids, read = sold_since(settings, since)
        t["count"] = len(ids)
    stamp = pa.scalar(now, C.TS)
    row = pa.table(
        {
            "segment": [FALLBACK_SEGMENT],
            "item_ids": pa.array([ids.to_pylist()], pa.list_(pa.int64())),
            "since": pa.array([since], C.TS),
            "updated_at": pa.array([stamp.as_py()], C.TS),
            "event_timestamp": pa.array([stamp.as_py()], C.TS),
        },
        schema=C.SOLD_ITEMS_SCHEMA,
    )
    lake.write_partition(settings, C.SOLD_ITEMS, ctx.ds, row)
    with online.writing(settings, now, [online.SOLD_VIEW]) as writer:
        writer.write([row], online.SOLD_VIEW)
    log.info("%s items sold since %s are now filtered from serving", f"{len(ids):,}", since)
    return {
        "sold_items": len(ids),
        "since": since.isoformat(),
        "live_lists_as_of": as_of.isoformat() if as_of else None,
        "updated_at": now.isoformat(),
        "partitions_read": read,
    }
