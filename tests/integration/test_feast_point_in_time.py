"""A real Feast repository over a tmp lake: point-in-time retrieval never leaks a
snapshot before its event timestamp, and the online store serves what the offline
store returns at the same instant.

Two snapshots are written, as the feature stage writes them: D-1 (event timestamp
D 00:00) and D (event timestamp D+1 00:00).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ranking_jobs import columns as cols
from ranking_jobs import contracts as C
from ranking_jobs import families, feast_store, lake
from ranking_jobs.families import FEATURE_REFS
from ranking_jobs.settings import Settings
from tests.conftest import make_settings

D = dt.date(2026, 1, 31)
D1 = D - dt.timedelta(days=1)
DAY = dt.timedelta(days=1)


def day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + DAY, dt.time(), tzinfo=dt.UTC)


# Which entities each snapshot holds. Item 4 and user 103 exist only in D-1 (stale
# but inside the views' 2-day ttl on D+1); item 3 and user 102 only in D;
# item 99, user 999 and (101, shoes) never.
ITEMS = {D1: [1, 2, 4], D: [1, 2, 3]}
USERS = {D1: [100, 101, 103], D: [100, 101, 102]}
AFFINITY = {D1: [(100, "tops"), (101, "tops")], D: [(100, "tops"), (100, "shoes"), (101, "tops")]}
CLICKS_7D = {D1: 1, D: 50}  # item 1's clicks_7d: the value the leakage tests follow


def _value(name: str, key: int, day: dt.date, integer: bool) -> float | int:
    """A distinct, reproducible value per (feature, entity, snapshot)."""
    v = (sum(map(ord, name)) % 97) * 1000 + key % 1000 * 3 + (day - D1).days
    return int(v) if integer else v + 0.25


def item_table(day: dt.date) -> pa.Table:
    ids = ITEMS[day]
    data: dict[str, Any] = {"item_id": pa.array(ids, pa.int64())}
    for c in cols.ITEM_COUNTS + cols.ITEM_INTS:
        data[c] = pa.array([_value(c, i, day, True) for i in ids], pa.int64())
    for c in cols.ITEM_FLOATS:
        data[c] = pa.array([_value(c, i, day, False) for i in ids], pa.float64())
    data["clicks_7d"] = pa.array([CLICKS_7D[day] if i == 1 else 2 for i in ids], pa.int64())
    data["event_timestamp"] = pa.array([day_end(day)] * len(ids), C.TS)
    return pa.table(data)


def user_table(day: dt.date) -> pa.Table:
    ids = USERS[day]
    data: dict[str, Any] = {"user_id": pa.array(ids, pa.int64())}
    for c in cols.USER_COUNTS + cols.USER_INTS:
        data[c] = pa.array([_value(c, u, day, True) for u in ids], pa.int64())
    for c in cols.USER_FLOATS:
        data[c] = pa.array([_value(c, u, day, False) for u in ids], pa.float64())
    # a user with impressions only has no price level (Spark writes a null)
    data["user_price_level"] = pa.array(
        [None if u == 102 else _value("user_price_level", u, day, False) for u in ids],
        pa.float64(),
    )
    data["event_timestamp"] = pa.array([day_end(day)] * len(ids), C.TS)
    return pa.table(data)


def affinity_table(day: dt.date, dimension: str = "category") -> pa.Table:
    """The same (user, value) pairs for every attribute; entity rows carry the same value."""
    pairs = AFFINITY[day]
    return pa.table(
        {
            "user_id": pa.array([u for u, _ in pairs], pa.int64()),
            dimension: pa.array([c for _, c in pairs], pa.string()),
            f"{dimension}_affinity": pa.array(
                [0.1 * (i + 1) + (day - D1).days for i in range(len(pairs))], pa.float64()
            ),
            "event_timestamp": pa.array([day_end(day)] * len(pairs), C.TS),
        }
    )


def user_item_table(day: dt.date) -> pa.Table:
    """User 100 engaged with item 1 before D-1 ended (twice by D); user 101 with item 2 on D."""
    pairs = USER_ITEM[day]
    return pa.table(
        {
            "user_id": pa.array([u for u, _ in pairs], pa.int64()),
            "item_id": pa.array([i for _, i in pairs], pa.int64()),
            "ui_engagements": pa.array([1 + (day - D1).days] * len(pairs), pa.int64()),
            "ui_purchases": pa.array([0] * len(pairs), pa.int64()),
            "ui_days_since": pa.array([0.5] * len(pairs), pa.float64()),
            "ui_days": pa.array([1] * len(pairs), pa.int64()),
            "ui_span_days": pa.array([0] * len(pairs), pa.int64()),
            "event_timestamp": pa.array([day_end(day)] * len(pairs), C.TS),
        }
    )


def profile_table(day: dt.date) -> pa.Table:
    """Every user of the snapshot; user 101 declared nothing."""
    ids = USERS[day]
    return pa.table(
        {
            "user_id": pa.array(ids, pa.int64()),
            "declared_size_rank": pa.array([None if u == 101 else 3.0 for u in ids], pa.float64()),
            "declared_styles": pa.array(
                [None if u == 101 else ["boho", "vintage"] for u in ids], pa.list_(pa.string())
            ),
            "event_timestamp": pa.array([day_end(day)] * len(ids), C.TS),
        }
    )


USER_ITEM = {D1: [(100, 1)], D: [(100, 1), (101, 2)]}
FEATURE_VIEWS = [
    "item_stats",
    "user_stats",
    *(f"user_{d}_affinity" for d in cols.AFFINITY_DIMENSIONS),
    "user_item_stats",
    "user_profile",
]


def write_feature_lake(settings: Settings) -> int:
    """Both snapshots of every view the model reads; returns the Feast objects applied."""
    for day in (D1, D):
        lake.write_partition(settings, C.FEATURES_ITEM, day, item_table(day))
        lake.write_partition(settings, C.FEATURES_USER, day, user_table(day))
        for dimension, table in C.FEATURES_USER_AFFINITY.items():
            lake.write_partition(settings, table, day, affinity_table(day, dimension))
        lake.write_partition(settings, C.FEATURES_USER_ITEM, day, user_item_table(day))
        lake.write_partition(settings, C.FEATURES_USER_PROFILE, day, profile_table(day))
    return feast_store.apply_definitions(settings)


@pytest.fixture(scope="module")
def feast_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = make_settings(Path(tmp_path_factory.mktemp("feast_pit")))
    assert settings.feast.offline_store == "duckdb"
    # 3 entities + 4 attribute entities, 2 stats + 4 affinity + co-visitation +
    # user-item + profile + 2 list views + the sold-items view + the model's service
    assert write_feature_lake(settings) == 20
    yield settings


def entity_rows(rows: list[tuple[int, int, str, dt.datetime]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.array([r[0] for r in rows], "int64"),
            "item_id": pd.array([r[1] for r in rows], "int64"),
            **{d: [r[2] for r in rows] for d in cols.AFFINITY_DIMENSIONS},
            "event_timestamp": pd.to_datetime([r[3] for r in rows], utc=True),
        }
    )


# ----------------------------------------------------------------------------- leakage


def test_registry_has_the_feature_views(feast_settings: Settings) -> None:
    store = feast_store.feature_store(feast_settings)
    views = {fv.name: fv for fv in store.list_feature_views()}
    assert set(FEATURE_VIEWS) <= set(views)
    declared = {f.name for f in views["item_stats"].features}
    assert declared == set(cols.ITEM_COUNTS + cols.ITEM_FLOATS + cols.ITEM_INTS)


def test_snapshot_is_invisible_before_its_event_timestamp(feast_settings: Settings) -> None:
    start_d = dt.datetime.combine(D, dt.time(), tzinfo=dt.UTC)
    as_of = [
        start_d - dt.timedelta(hours=12),  # D-1 12:00: before any snapshot is known
        start_d - dt.timedelta(microseconds=1),
        start_d,  # D 00:00: snapshot D-1 just became known
        start_d + dt.timedelta(hours=12),  # D 12:00: D's own snapshot is not yet known
        day_end(D) - dt.timedelta(microseconds=1),
        day_end(D),  # D+1 00:00: snapshot D is known
        day_end(D) + dt.timedelta(hours=6),
    ]
    # reversed, so the output has to come back in the input's row order
    rows = entity_rows([(100, 1, "tops", t) for t in reversed(as_of)])
    out = feast_store.assemble_features(feast_settings, rows)

    assert list(out["event_timestamp"]) == list(rows["event_timestamp"])
    assert set(families.ASSEMBLED_FEATURES) <= set(out.columns)
    got = list(out["clicks_7d"])[::-1]
    assert all(math.isnan(v) for v in got[:2]), got
    assert got[2:] == [1.0, 1.0, 1.0, 50.0, 50.0]
    # every view follows the same rule: user 100's features come from the same snapshot
    level = list(out["user_price_level"])[::-1]
    assert level[3] == np.float32(_value("user_price_level", 100, D1, False))
    assert level[5] == np.float32(_value("user_price_level", 100, D, False))
    affinity = list(out["category_affinity"])[::-1]
    assert affinity[3] == np.float32(0.1) and affinity[5] == np.float32(1.1)


def test_chunked_retrieval_equals_one_retrieval(feast_settings: Settings) -> None:
    """Chunks of 3 rows in as-of order give what one call gives, in the input's order."""
    start_d = dt.datetime.combine(D, dt.time(), tzinfo=dt.UTC)
    times = [start_d + dt.timedelta(hours=h) for h in (30, -6, 0, 12, 24, 6, 36, 1)]
    pairs = [(100, 1), (101, 2), (102, 3), (103, 4), (999, 99), (100, 3), (101, 1), (100, 2)]
    rows = entity_rows([(u, i, "tops", t) for (u, i), t in zip(pairs, times, strict=True)])
    store = feast_store.feature_store(feast_settings)
    refs = list(FEATURE_REFS)
    whole = feast_store.historical_features(
        store, rows, refs, chunk_rows=len(rows), finish=feast_store.add_cross_features
    )
    chunked = feast_store.historical_features(
        store, rows, refs, chunk_rows=3, finish=feast_store.add_cross_features
    )
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunked["item_id"].tolist() == [i for _, i in pairs]
    assert chunked["clicks_7d"].notna().sum() >= 4  # real values, not an all-NaN frame
    assert chunked[families.ASSEMBLED_FEATURES].dtypes.eq("float32").all()
    # (100, 1) at D+1 06:00 sees D's pair row (2 engagements); other pairs have none
    assert chunked["ui_engagements"].tolist()[0] == 2.0
    assert chunked["ui_engagements"].isna().sum() >= 5


def test_snapshot_expires_after_ttl(feast_settings: Settings) -> None:
    """Item 4 is only in D-1 (known at D 00:00); the views' ttl is two days."""
    start_d = dt.datetime.combine(D, dt.time(), tzinfo=dt.UTC)
    rows = entity_rows(
        [
            (100, 4, "tops", start_d + dt.timedelta(days=2)),
            (100, 4, "tops", start_d + dt.timedelta(days=2, hours=1)),
        ]
    )
    out = feast_store.assemble_features(feast_settings, rows)
    assert out["price"][0] == np.float32(_value("price", 4, D1, False))
    assert math.isnan(out["price"][1])


def test_snapshot_path_equals_feast(
    feast_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows at few as-of times skip Feast's general join (``SnapshotView``); at the
    edges of visibility and ttl, for known, stale, null and unknown keys of every
    view, the result is exactly Feast's."""
    start_d = dt.datetime.combine(D, dt.time(), tzinfo=dt.UTC)
    tick = dt.timedelta(microseconds=1)
    times = [
        start_d - dt.timedelta(hours=12),
        start_d - tick,
        start_d,
        start_d + dt.timedelta(hours=12),
        day_end(D) - tick,
        day_end(D),
        day_end(D) + dt.timedelta(hours=6),
        start_d + 2 * DAY,  # D-1's snapshot on its last instant
        start_d + 2 * DAY + tick,
        day_end(D) + 2 * DAY,
        day_end(D) + 2 * DAY + tick,
    ]
    keys = [(u, i) for u in (100, 101, 102, 103, 999) for i in (1, 2, 3, 4, 99)]
    rows = entity_rows([(u, i, c, t) for t in times for u, i in keys for c in ("tops", "shoes")])
    rows.loc[::7, list(cols.AFFINITY_DIMENSIONS)] = None
    rows = rows.sample(frac=1.0, random_state=3)  # not in as-of order
    store = feast_store.feature_store(feast_settings)
    refs = list(FEATURE_REFS)

    def retrieve() -> pd.DataFrame:
        return feast_store.historical_features(
            store, rows, refs, chunk_rows=40, finish=feast_store.add_cross_features
        )

    with monkeypatch.context() as m:
        m.setattr(store, "get_historical_features", None)  # the snapshot path never calls it
        snapshot = retrieve()
    with monkeypatch.context() as m:
        m.setattr(feast_store, "_snapshot_views", lambda *_: None)
        feast = retrieve()
    pd.testing.assert_frame_equal(snapshot, feast)
    assert snapshot[families.ASSEMBLED_FEATURES].notna().to_numpy().mean() > 0.2


# ----------------------------------------------------------------------------- online


@pytest.fixture(scope="module")
def materialized(feast_settings: Settings) -> Any:
    store = feast_store.feature_store(feast_settings)
    store.materialize(
        start_date=day_end(D1) - 3 * DAY, end_date=day_end(D), feature_views=FEATURE_VIEWS
    )
    return store


SAMPLE = [
    (100, 1, "tops"),
    (101, 2, "tops"),  # user 101 has no shoes affinity, but tops
    (102, 3, "shoes"),  # user 102: only in D, null price level, no affinity at all
    (103, 4, "tops"),  # user 103 and item 4: only in D-1 (stale, still within ttl)
    (101, 2, "shoes"),  # (101, shoes) never written
    (999, 99, "bags"),  # neither user nor item nor pair known
    (100, 3, "shoes"),
]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def test_online_equals_offline_at_the_same_instant(materialized: Any) -> None:
    store = materialized
    refs = list(FEATURE_REFS)
    keys = [
        {"user_id": u, "item_id": i, **dict.fromkeys(cols.AFFINITY_DIMENSIONS, c)}
        for u, i, c in SAMPLE
    ]
    online = store.get_online_features(features=refs, entity_rows=keys).to_dict()
    offline = (
        store.get_historical_features(
            entity_df=entity_rows([(u, i, c, day_end(D)) for u, i, c in SAMPLE]), features=refs
        )
        .to_df()
        .set_index(["user_id", "item_id", "category"])
        .drop(columns=[d for d in cols.AFFINITY_DIMENSIONS if d != "category"])
    )
    assert len(offline) == len(SAMPLE)
    names = [r.split(":")[1] for r in refs]
    assert len(names) == len(set(names))
    for n, key in enumerate(SAMPLE):
        off_row = offline.loc[key]
        for name in names:
            on, off = online[name][n], off_row[name]
            if name in cols.PROFILE_LISTS:  # a list, or None on both sides when absent
                assert on == (None if _missing(off) else list(off)), (key, name, on, off)
                continue
            if _missing(on) or _missing(off):
                assert on is None, (key, name, on, off)
                assert _missing(off) and not isinstance(off, type(None)), (key, name, on, off)
                assert math.isnan(float(off)), (key, name, on, off)
            else:
                assert on == off, (key, name, on, off)

    def online_value(key: tuple[int, int, str], name: str) -> Any:
        return online[name][SAMPLE.index(key)]

    # the sample really covers fresh, stale, null and unknown values
    assert online_value((100, 1, "tops"), "clicks_7d") == CLICKS_7D[D]
    assert online_value((103, 4, "tops"), "price") == _value("price", 4, D1, False)
    assert online_value((103, 4, "tops"), "user_price_level") == _value(
        "user_price_level", 103, D1, False
    )
    assert online_value((102, 3, "shoes"), "user_price_level") is None
    assert online_value((102, 3, "shoes"), "user_clicks_7d") == _value(
        "user_clicks_7d", 102, D, True
    )
    assert online_value((101, 2, "shoes"), "category_affinity") is None
    assert online_value((100, 3, "shoes"), "declared_styles") == ["boho", "vintage"]
    assert online_value((101, 2, "shoes"), "declared_styles") is None
    assert online_value((100, 3, "shoes"), "category_affinity") == pytest.approx(1.2)
    assert online_value((100, 3, "shoes"), "style_affinity") == pytest.approx(1.2)
    for name in names:
        assert online_value((999, 99, "bags"), name) is None, name


def test_the_model_feature_service_serves_the_assembly_refs(feast_settings: Settings) -> None:
    """One declaration per family: the service Feast holds for the model is exactly the
    refs the feature assembly retrieves, view by view."""
    from ranking_jobs.families import MODEL_SERVICE

    service = feast_store.feature_store(feast_settings).get_feature_service(MODEL_SERVICE)
    served = [
        f"{projection.name}:{feature.name}"
        for projection in service.feature_view_projections
        for feature in projection.features
    ]
    assert served == list(FEATURE_REFS)
