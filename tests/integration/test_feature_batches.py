"""Feature snapshots on a real (tmp) lake, rolled from daily aggregates.

Built night by night (each night reducing only the raw days the lake has not yet
reduced) or on a fresh lake in one call (daily aggregates in several batches,
snapshots in two, one of them two snapshots in one pass), every daily aggregate and
every feature of every table is the same; the windowed counts, user-item history
and affinities equal a recomputation from the raw events; and the rows a batch is
sized by, counted by hand on a lake of a few events."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bench.bench_features import feature_frames
from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.columns import DAILY_COLUMNS
from ranking_jobs.context import RunContext
from ranking_jobs.families import FEATURE_COLUMNS
from ranking_jobs.features import daily, plan_batches, snapshot_rows, write_daily, write_snapshots
from ranking_jobs.settings import Settings
from tests.conftest import make_settings

pytestmark = pytest.mark.spark

DS = dt.date(2026, 1, 31)
DAY = dt.timedelta(days=1)
# Two neighbours and one a month earlier: their windows overlap, and the early one's
# window reaches partitions that are outside the later ones'.
DAYS = [DS - 31 * DAY, DS - DAY, DS]
RAW = (C.RAW_EVENTS, C.RAW_ITEMS, C.RAW_USERS)


@pytest.fixture(scope="module")
def tiny_raw(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The generator's tiny marketplace over 33 days: listings sell and leave the
    raw/items snapshots, so a snapshot's window decides which listings it sees."""
    from ranking_jobs.data import generate

    settings = make_settings(tmp_path_factory.mktemp("batches"), scale="tiny", history_days=33)
    generate(RunContext.create(DS.isoformat(), settings))
    return settings


def _raw_copy(raw: Settings, root: Path) -> Settings:
    """A lake under ``root`` holding only ``raw``'s raw tables."""
    settings = make_settings(root)
    for table in RAW:
        shutil.copytree(lake.table_uri(raw, table), lake.table_uri(settings, table))
    return settings


def _ctx(settings: Settings, day: dt.date) -> RunContext:
    return RunContext.create(day.isoformat(), settings)


def test_nights_one_at_a_time_equal_a_fresh_lakes_backfill(
    spark: Any, tiny_raw: Settings, tmp_path: Path
) -> None:
    nightly, fresh = _raw_copy(tiny_raw, tmp_path / "a"), _raw_copy(tiny_raw, tmp_path / "b")
    reduced = []
    for day in DAYS:
        reduced.append(write_daily(spark, _ctx(nightly, day), [day])["days"])
        write_snapshots(spark, _ctx(nightly, day), [day])
    # the first night reduces the two raw days its window holds, the second the 30 of
    # its window, the third only its own new day
    assert reduced == [
        [str(DAYS[0] - DAY), str(DAYS[0])],
        [str(DS - i * DAY) for i in range(30, 0, -1)],
        [str(DS)],
    ]

    events = {d: lake.partition_rows(fresh, C.RAW_EVENTS, d) for d in lake.day_range(DS, 33)}
    backfill = write_daily(spark, _ctx(fresh, DS), DAYS, batch_rows=sum(events.values()) // 3)
    assert backfill["days"] == [str(d) for d in sorted(events)]  # each day once
    assert backfill["events"] == sum(events.values())
    rows = snapshot_rows(fresh, DAYS)
    budget = rows[DAYS[1]] + rows[DAYS[2]]
    # The early snapshot's window holds 2 raw days, so it joins the next one: one
    # pass reads both windows, D-60..D-1, and must not let D-1 see D-31's listings.
    assert plan_batches(rows, budget) == [DAYS[:2], DAYS[2:]]
    counts = write_snapshots(spark, _ctx(fresh, DS), DAYS, batch_rows=budget)

    daily_days = sorted(events)
    for table, want in {
        **feature_frames(nightly, DAYS),
        **feature_frames(nightly, daily_days, list(DAILY_COLUMNS)),
    }.items():
        days = DAYS if table in FEATURE_COLUMNS else daily_days
        got = feature_frames(fresh, days, [table])[table]
        assert set(want["dt"]) == set(days), table
        assert counts.get(table, len(got)) == len(got), table
        pd.testing.assert_frame_equal(got, want, check_exact=True, obj=table)
    _equals_recomputation_from_raw(fresh, feature_frames(fresh, [DS]))


def _equals_recomputation_from_raw(settings: Settings, features: dict[str, pd.DataFrame]) -> None:
    """Snapshot DS against the raw events read whole: 1/7/30-day item counts, user-item
    history over its 30-day lookback, and the decayed category shares."""
    end = pd.Timestamp(DS + DAY, tz="UTC")
    events = pd.concat(
        [lake.read_partition(settings, C.RAW_EVENTS, d).to_pandas() for d in lake.day_range(DS, 30)]
    )
    # ages in whole seconds, as Spark's timestamp-to-long cast gives them
    events["age"] = (end - events["ts"].dt.floor("s")).dt.total_seconds() / 86400
    items = features[C.FEATURES_ITEM].set_index("item_id")
    for w in (1, 7, 30):
        recent = events[events["age"] <= w]
        clicks = recent[recent["event_type"] == "click"].groupby("item_id").size()
        clicks = clicks[clicks.index.isin(items.index)]  # listings on sale at DS
        got = items[f"clicks_{w}d"]
        assert (got.reindex(clicks.index) == clicks).all() and got.drop(clicks.index).eq(0).all()
    engaged = events[events["event_type"] != "impression"].copy()
    engaged["day"] = engaged["ts"].dt.floor("D")
    history = engaged.groupby(["user_id", "item_id"]).agg(
        ui_engagements=("age", "size"),
        ui_purchases=("event_type", lambda t: int((t == "purchase").sum())),
        ui_days_since=("age", "min"),
        ui_days=("day", "nunique"),
        ui_span_days=("day", lambda d: (d.max() - d.min()).days),
    )
    assert history["ui_days"].max() > 1  # some pair recurs: the day counts are tested
    got = features[C.FEATURES_USER_ITEM].set_index(["user_id", "item_id"])[list(history.columns)]
    assert len(history) > 100
    pd.testing.assert_frame_equal(
        got.sort_index(), history.sort_index(), check_dtype=False, rtol=1e-12
    )
    seen = pd.concat(
        [lake.read_partition(settings, C.RAW_ITEMS, d).to_pandas() for d in lake.day_range(DS, 30)]
    ).drop_duplicates("item_id", keep="last")[["item_id", "category"]]
    engaged = engaged.merge(seen, on="item_id")
    half_life = daily.AFFINITY_HALF_LIFE_DAYS
    engaged["w"] = engaged["event_type"].map(daily.AFFINITY_WEIGHTS) * 0.5 ** (
        engaged["age"] / half_life
    )
    per_value = engaged.groupby(["user_id", "category"])["w"].sum()
    share = per_value / per_value.groupby(level="user_id").transform("sum")
    got = features[C.FEATURES_USER_AFFINITY["category"]].set_index(["user_id", "category"])
    np.testing.assert_allclose(
        got["category_affinity"].reindex(share.index).to_numpy(), share.to_numpy(), rtol=1e-9
    )
    assert len(got) == len(share)


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
    # d1: session a engages items 1, 2, 3 (item 1 twice) -> 3 * 2 = 6 pairs; b one item.
    # Daily rows: 4 items, 1 user, 3 user-items, 6 pairs; and 2 raw/items rows.
    _write_day(settings, d1, [
        ("a", 1, "click"), ("a", 1, "like"), ("a", 2, "save"), ("a", 3, "click"),
        ("a", 4, "impression"), ("b", 1, "click"),
    ])  # fmt: skip
    # d0: session c engages items 1 and 2 -> 2 pairs; daily rows 4 + 1 + 2 + 2, items 2
    _write_day(settings, d0, [
        ("c", 1, "click"), ("c", 2, "purchase"), ("c", 3, "impression"), ("c", 4, "impression"),
    ])  # fmt: skip
    # 35 days earlier: outside both 30-day windows, inside the 40-day lookback; 2 user-items
    _write_day(settings, old, [("z", 1, "click"), ("z", 2, "click")])
    reduced = write_daily(spark, _ctx(settings, d0), [d1, d0])
    assert reduced["days"] == [str(old), str(d1), str(d0)] and reduced["events"] == 12
    rows = snapshot_rows(settings, [d1, d0])
    # d1: its window's 4 + 1 + 3 + 6 + 2; its lookback's user-items 2 (old) + 3
    assert rows[d1] == (4 + 1 + 3 + 6 + 2) + (2 + 3)
    # d0: d1's and its own window rows; user-items of old, d1 and d0
    assert rows[d0] == (4 + 1 + 3 + 6 + 2) + (4 + 1 + 2 + 2 + 2) + (2 + 3 + 2)
