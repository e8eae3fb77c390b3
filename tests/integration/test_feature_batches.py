"""Feature snapshots on a real (tmp) lake: built in one call (in two batches, one of
them two snapshots in one pass) or one day at a time, every feature of every
table is the same; and the replicated rows a batch is sized by, counted by hand
on a lake of a few events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from bench.bench_features import feature_frames
from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.families import FEATURE_COLUMNS
from ranking_jobs.features import plan_batches, snapshot_rows, write_snapshots
from ranking_jobs.settings import Settings
from tests.conftest import make_settings

pytestmark = pytest.mark.spark

DS = dt.date(2026, 1, 31)
DAY = dt.timedelta(days=1)
# Two neighbours and one a month earlier: their windows overlap, and the early one's
# window reaches partitions that are outside the later ones'.
DAYS = [DS - 31 * DAY, DS - DAY, DS]


@pytest.fixture(scope="module")
def tiny_lake(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The generator's tiny marketplace over 33 days: listings sell and leave the
    raw/items snapshots, so a snapshot's window decides which listings it sees."""
    from ranking_jobs.data import generate

    settings = make_settings(tmp_path_factory.mktemp("batches"), scale="tiny", history_days=33)
    generate(RunContext.create(DS.isoformat(), settings))
    return settings


def test_snapshots_built_in_one_call_equal_one_day_at_a_time(
    spark: Any, tiny_lake: Settings
) -> None:
    ctx = RunContext.create(DS.isoformat(), tiny_lake)
    for day in DAYS:
        write_snapshots(spark, ctx, [day])
    alone = feature_frames(tiny_lake, DAYS)

    rows = snapshot_rows(spark, tiny_lake, DAYS)
    budget = rows[DAYS[1]] + rows[DAYS[2]]
    # The early snapshot's window holds 2 raw days, so it joins the next one: one
    # pass reads both windows, D-60..D-1, and must not let D-1 see D-31's listings.
    assert plan_batches(rows, budget) == [DAYS[:2], DAYS[2:]]
    counts = write_snapshots(spark, ctx, DAYS, batch_rows=budget)
    together = feature_frames(tiny_lake, DAYS)

    for table, want in FEATURE_COLUMNS.items():
        frame = alone[table]
        assert set(want) <= set(frame.columns), table
        assert set(frame["dt"]) == set(DAYS), table
        assert counts[table] == len(frame), table
        pd.testing.assert_frame_equal(
            together[table], frame, check_exact=False, rtol=1e-12, obj=table
        )


# ----------------------------------------------------------------------------- sizing


def _ts(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _write_day(settings: Settings, day: dt.date, events: list[tuple[str, int, str]]) -> None:
    """``events`` as (session, item, event_type) of user 1; two listings on sale."""
    n = len(events)
    lake.write_partition(
        settings,
        C.RAW_EVENTS,
        day,
        pa.table(
            {
                "event_id": [f"{day}-{i}" for i in range(n)],
                "ts": pa.array([_ts(day, 10 + i) for i in range(n)], C.TS),
                "user_id": [1] * n,
                "item_id": [item for _, item, _ in events],
                "event_type": [etype for _, _, etype in events],
                "surface": ["home"] * n,
                "query": pa.array([None] * n, pa.string()),
                "position": pa.array([0] * n, pa.int32()),
                "session_id": [session for session, _, _ in events],
            },
            schema=C.EVENTS_SCHEMA,
        ),
    )
    lake.write_partition(
        settings,
        C.RAW_ITEMS,
        day,
        pa.table(
            {
                "item_id": [1, 2],
                "seller_id": [9, 9],
                "category": ["tops"] * 2,
                "subcategory": ["tee"] * 2,
                "brand": ["a"] * 2,
                "size": ["M"] * 2,
                "condition": ["good"] * 2,
                "colour": ["red"] * 2,
                "style": ["boho"] * 2,
                "price": [10.0, 20.0],
                "currency": ["EUR"] * 2,
                "listed_at": pa.array([_ts(day, 0)] * 2, C.TS),
                "sold_at": pa.array([None] * 2, C.TS),
                "status": ["available"] * 2,
            },
            schema=C.ITEMS_SCHEMA,
        ),
    )


def test_snapshot_rows_by_hand(spark: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, user_item_lookback_days=40)
    old, d1, d0 = DS - 35 * DAY, DS - DAY, DS
    # d1: session a engages items 1, 2, 3 (item 1 twice) -> 3 * 2 = 6 pairs; b one item
    _write_day(settings, d1, [
        ("a", 1, "click"), ("a", 1, "like"), ("a", 2, "save"), ("a", 3, "click"),
        ("a", 4, "impression"), ("b", 1, "click"),
    ])  # fmt: skip
    # d0: session c engages items 1 and 2 -> 2 pairs; 2 impressions
    _write_day(settings, d0, [
        ("c", 1, "click"), ("c", 2, "purchase"), ("c", 3, "impression"), ("c", 4, "impression"),
    ])  # fmt: skip
    # 35 days earlier: outside both 30-day windows, inside the 40-day lookback
    _write_day(settings, old, [("z", 1, "click"), ("z", 2, "click")])
    rows = snapshot_rows(spark, settings, [d1, d0])
    # d1: events 6 + pairs 6 + item rows 2, engaged events 5 + 2 (old)
    assert rows[d1] == 6 + 6 + 2 + 5 + 2
    # d0: d1's 6 + 6 + 2 and its own 4 events + 2 pairs + 2 item rows; engaged 5 + 2 + 2
    assert rows[d0] == (6 + 6 + 2) + (4 + 2 + 2) + (5 + 2 + 2)
