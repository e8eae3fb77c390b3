"""The Spark feature transforms on tiny hand-made frames, against values computed by hand.

Snapshot day D = 2026-01-31, so its end instant (and Feast event timestamp) is
END = 2026-02-01 00:00 UTC. Every expected number below is derived in a comment
from the events listed in ``EVENTS``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ranking_jobs import columns as cols
from ranking_jobs import contracts as C
from ranking_jobs.features import affinity, common, daily, item, user, user_item

pytestmark = pytest.mark.spark

D = dt.date(2026, 1, 31)
D1 = D - dt.timedelta(days=1)
END = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
M = 4.0  # prior strength: pseudo-impressions of the category prior
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


# ----------------------------------------------------------------------------- data


def _spark_type(t: pa.DataType) -> str:
    if pa.types.is_list(t):
        return f"array<{_spark_type(t.value_type)}>"
    mapping = {
        pa.string(): "string",
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.float64(): "double",
        C.TS: "timestamp",
    }
    return mapping[t]


def ddl(schema: pa.Schema) -> str:
    """Spark DDL of a lake contract, plus the partition column ``dt``."""
    return ", ".join([f"`{f.name}` {_spark_type(f.type)}" for f in schema] + ["dt date"])


# (user, item, event_type, ts). Item 1 has impressions at END-1h (D-0), END-3d,
# END-20d, END-40d and exactly at END.
EVENTS: list[tuple[int, int, str, dt.datetime]] = [
    (100, 1, "impression", END - HOUR),
    (100, 1, "impression", END - 3 * DAY),
    (100, 1, "impression", END - 20 * DAY),
    (100, 1, "impression", END - 40 * DAY),  # outside every window
    (100, 1, "impression", END),  # at the end instant: known only after D
    (100, 1, "click", END - 3 * DAY),
    (101, 2, "impression", END - 2 * HOUR),
    (101, 2, "impression", END - 10 * DAY),
    (101, 2, "click", END - 2 * HOUR),
    (101, 2, "purchase", END - HOUR),
    (100, 3, "save", END - 6 * DAY),
    (100, 4, "impression", END - 5 * DAY),
    (100, 4, "like", END - 5 * DAY),
]

# item_id, seller_id, category, brand, price, listed days before END, status
ITEMS: list[tuple[int, int, str, str, float, int, str]] = [
    (1, 10, "tops", "a", 30.0, 10, "available"),
    (2, 10, "tops", "b", 10.0, 12, "sold"),
    (3, 11, "tops", "a", 50.0, 3, "available"),
    (4, 11, "shoes", "a", 80.0, 30, "available"),
]


# Size and condition of each listing: item 4 is a shoe, the rest letter-sized tops.
SIZE_CONDITION = {1: ("M", "good"), 2: ("S", "very_good"), 3: ("L", "new_with_tags"),
                  4: ("39", "satisfactory")}  # fmt: skip


def events_df(spark: Any, events: list[tuple[int, int, str, dt.datetime]] = EVENTS) -> Any:
    rows = [
        (f"e{i}", ts, user, item, etype, "home", None, i % 10, f"s{user}", ts.date())
        for i, (user, item, etype, ts) in enumerate(events)
    ]
    return spark.createDataFrame(rows, ddl(C.EVENTS_SCHEMA))


def items_df(spark: Any, days: list[dt.date], overrides: dict | None = None) -> Any:
    """Each listing in the raw/items partition of every one of ``days``."""
    rows = []
    for day in days:
        day_end = dt.datetime.combine(day + DAY, dt.time(), tzinfo=dt.UTC)
        for item_id, seller, cat, brand, price, listed, status in ITEMS:
            price = (overrides or {}).get((day, item_id), price)
            sold_at = day_end - 3 * HOUR if status == "sold" else None
            size, condition = SIZE_CONDITION[item_id]
            rows.append(
                (item_id, seller, cat, "sub", brand, size, condition, "red", "boho", price, "EUR",
                 END - listed * DAY, sold_at, status, day)
            )  # fmt: skip
    return spark.createDataFrame(rows, ddl(C.ITEMS_SCHEMA))


def rolled(
    spark: Any, days: list[dt.date], events: Any, lookback: int = max(cols.WINDOWS)
) -> dict[str, Any]:
    """The daily aggregates of ``events`` rolled into the snapshots of ``days``, as the
    stage rolls them from the lake."""
    daily_tables = {t: f(events) for t, f in daily.DAILY_TRANSFORMS.items()}
    return daily.rolled_inputs(daily_tables, common.snapshot_frame(spark, days), lookback)


def compute(spark: Any, days: list[dt.date], events: Any, items: Any) -> dict[str, Any]:
    """The feature tables for ``days``, wired as build_features wires them."""
    from pyspark.sql import functions as F

    snapshots = common.snapshot_frame(spark, days)
    r = rolled(spark, days, events)
    seen = common.latest_items(items, snapshots)
    item_snapshots = items.where(F.col("dt").isin(days)).join(F.broadcast(snapshots), "dt")
    return {
        "item": item.item_stats(r["item_days"], item_snapshots, M, seen),
        "user": user.user_stats(r["user_days"], r["user_items"], seen),
        "affinity": affinity.user_affinity(r["user_items"], seen, "category"),
        "brand_affinity": affinity.user_affinity(r["user_items"], seen, "brand"),
        "user_item": user_item.user_item_stats(r["user_item_history"]),
    }


OVERRIDES = {(D1, 1): 35.0, (D1, 3): 45.0}  # D-1's raw/items partition had other prices


def _cached(frames: dict[str, Any]) -> dict[str, Any]:
    return {name: frame.cache() for name, frame in frames.items()}


@pytest.fixture(scope="module")
def inputs(spark: Any) -> tuple[Any, Any]:
    return events_df(spark), items_df(spark, [D1, D], overrides=OVERRIDES)


@pytest.fixture(scope="module")
def tables(spark: Any, inputs: tuple[Any, Any]) -> dict[str, Any]:
    """Snapshot D alone."""
    return _cached(compute(spark, [D], *inputs))


@pytest.fixture(scope="module")
def both_days(spark: Any, inputs: tuple[Any, Any]) -> dict[str, Any]:
    """Snapshots D-1 and D in one pass."""
    return _cached(compute(spark, [D1, D], *inputs))


@pytest.fixture(scope="module")
def item_rows(tables: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["item_id"]: r.asDict() for r in tables["item"].collect()}


def by_key(df: Any, *keys: str) -> dict[Any, dict[str, Any]]:
    out = {}
    for r in df.collect():
        d = r.asDict()
        out[tuple(d[k] for k in keys) if len(keys) > 1 else d[keys[0]]] = d
    return out


# ----------------------------------------------------------------------------- windows


def test_windowed_counts_by_hand(item_rows: dict[int, dict[str, Any]]) -> None:
    one = item_rows[1]
    # impressions at END-1h, END-3d, END-20d count; END-40d and END itself do not.
    assert (one["impressions_1d"], one["impressions_7d"], one["impressions_30d"]) == (1, 2, 3)
    assert (one["clicks_1d"], one["clicks_7d"], one["clicks_30d"]) == (0, 1, 1)
    two = item_rows[2]
    assert (two["impressions_1d"], two["impressions_7d"], two["impressions_30d"]) == (1, 1, 2)
    assert (two["clicks_1d"], two["purchases_1d"], two["purchases_30d"]) == (1, 1, 1)
    assert (item_rows[3]["saves_1d"], item_rows[3]["saves_7d"]) == (0, 1)
    assert (item_rows[4]["likes_1d"], item_rows[4]["likes_7d"]) == (0, 1)
    # an item with no events at all still gets a row of zeros, not nulls
    three = item_rows[3]
    assert all(three[c] == 0 for c in cols.ITEM_COUNTS if not c.startswith("saves_"))


def test_window_edges_inclusive_start_exclusive_end(spark: Any) -> None:
    """[END - w days, END): an event exactly w days before END counts, one at END does not."""
    events = events_df(
        spark,
        [
            (1, 1, "click", END - DAY),
            (1, 1, "click", END - 7 * DAY),
            (1, 1, "click", END - 30 * DAY),
            (1, 1, "click", END - 30 * DAY - dt.timedelta(microseconds=1)),
            (1, 1, "click", END),
        ],
    )
    row = daily.window_counts(rolled(spark, [D], events)["item_days"], ["item_id"]).first()
    assert (row["clicks_1d"], row["clicks_7d"], row["clicks_30d"]) == (1, 2, 3)


# ----------------------------------------------------------------------------- item stats


def test_smoothed_rates_use_category_prior(item_rows: dict[int, dict[str, Any]]) -> None:
    # tops (items 1, 2, 3), 30 days: clicks 1 + 1 + 0 = 2, impressions 3 + 2 + 0 = 5,
    # purchases 0 + 1 + 0 = 1. Category prior = (successes + 1) / (trials + M).
    tops_ctr = (2 + 1) / (5 + M)
    tops_conv = (1 + 1) / (2 + M)
    shoes_ctr = (0 + 1) / (1 + M)  # item 4: 1 impression, no click
    one, two, three = item_rows[1], item_rows[2], item_rows[3]
    assert one["category_ctr_30d"] == pytest.approx(tops_ctr)
    assert item_rows[4]["category_ctr_30d"] == pytest.approx(shoes_ctr)
    # smoothed CTR = (clicks + M * prior) / (impressions + M)
    assert one["ctr_7d"] == pytest.approx((1 + M * tops_ctr) / (2 + M))
    assert one["ctr_30d"] == pytest.approx((1 + M * tops_ctr) / (3 + M))
    assert two["ctr_7d"] == pytest.approx((1 + M * tops_ctr) / (1 + M))
    assert two["conversion_30d"] == pytest.approx((1 + M * tops_conv) / (1 + M))
    # a cold item sits exactly at its category's prior
    assert three["ctr_7d"] == pytest.approx(tops_ctr)
    assert three["conversion_30d"] == pytest.approx(tops_conv)
    # brand a (items 1, 3, 4): clicks 1, impressions 3 + 0 + 1 = 4; brand b (item 2): 1 / 2
    assert one["brand_ctr_30d"] == pytest.approx((1 + 1) / (4 + M))
    assert two["brand_ctr_30d"] == pytest.approx((1 + 1) / (2 + M))
    # conversions the same way: tops 1 purchase / 2 clicks; brand a 0 / 1, brand b 1 / 1
    assert three["category_conversion_30d"] == pytest.approx(tops_conv)
    assert one["brand_conversion_30d"] == pytest.approx((0 + 1) / (1 + M))
    assert two["brand_conversion_30d"] == pytest.approx((1 + 1) / (1 + M))


def test_price_age_availability_and_seller(item_rows: dict[int, dict[str, Any]]) -> None:
    # tops prices 30, 10, 50 -> median 30; shoes 80 alone
    assert item_rows[1]["price_rel_category"] == pytest.approx(30 / 30)
    assert item_rows[2]["price_rel_category"] == pytest.approx(10 / 30)
    assert item_rows[3]["price_rel_category"] == pytest.approx(50 / 30)
    assert item_rows[4]["price_rel_category"] == pytest.approx(1.0)
    assert item_rows[3]["price"] == 50.0
    assert item_rows[1]["age_days"] == pytest.approx(10.0)
    assert item_rows[4]["age_days"] == pytest.approx(30.0)
    assert [item_rows[i]["is_available"] for i in (1, 2, 3, 4)] == [1, 0, 1, 1]
    # good, very good, new with tags, satisfactory: positions in contracts.CONDITIONS
    assert [item_rows[i]["condition_rank"] for i in (1, 2, 3, 4)] == [2.0, 1.0, 0.0, 3.0]
    # seller 10 (items 1, 2): 1 purchase, 2 clicks over 30 days; seller 11: none
    tops_conv = (1 + 1) / (2 + M)
    assert item_rows[1]["seller_sales_30d"] == item_rows[2]["seller_sales_30d"] == 1
    assert item_rows[3]["seller_sales_30d"] == 0
    assert item_rows[1]["seller_conversion_30d"] == pytest.approx((1 + M * tops_conv) / (2 + M))
    shoes_conv = (0 + 1) / (0 + M)
    assert item_rows[4]["seller_conversion_30d"] == pytest.approx(shoes_conv)


def test_rates_count_listings_sold_on_earlier_days(spark: Any) -> None:
    # Item 2 (tops, seller 10) is bought on D-1 and then leaves the listing snapshots,
    # as the generator's snapshots do. The sale is within D's 30 days.
    events = events_df(spark, [(101, 2, "purchase", END - DAY - HOUR)])
    items = items_df(spark, [D1, D]).where("not (item_id = 2 and dt = date'2026-01-31')")
    rows = by_key(compute(spark, [D], events, items)["item"], "item_id")
    assert rows[1]["seller_sales_30d"] == 1
    # item 1 has no events, so its conversion is the tops prior: (1 purchase + 1) / (0 + M)
    assert rows[1]["conversion_30d"] == pytest.approx((1 + 1) / (0 + M))


def test_latest_items_takes_most_recent_attributes(spark: Any) -> None:
    items = items_df(spark, [D1, D], overrides={(D1, 1): 35.0})
    seen = by_key(
        common.latest_items(items, common.snapshot_frame(spark, [D1, D])), "dt", "item_id"
    )
    assert seen[(D1, 1)]["price"] == 35.0
    assert seen[(D, 1)]["price"] == 30.0


def test_latest_items_sees_only_the_partitions_of_its_window(spark: Any) -> None:
    # D's 30-day window holds the raw/items partitions D-29..D: item 1, last listed
    # in D-30's, is gone from it; item 2, last in D-29's, is still seen
    items = (
        items_df(spark, [D - 30 * DAY])
        .where("item_id = 1")
        .unionByName(items_df(spark, [D - 29 * DAY]).where("item_id = 2"))
        .unionByName(items_df(spark, [D]).where("item_id > 2"))
    )
    snapshots = common.snapshot_frame(spark, [D])

    def seen(lookback_days: int) -> list[int]:
        frame = common.latest_items(items, snapshots, lookback_days)
        return sorted(r["item_id"] for r in frame.collect())

    assert seen(30) == [2, 3, 4]
    assert seen(31) == [1, 2, 3, 4]


# ----------------------------------------------------------------------------- users


def test_user_stats_by_hand(tables: dict[str, Any]) -> None:
    users = by_key(tables["user"], "user_id")
    u100, u101 = users[100], users[101]
    # user 100: impressions of item 1 (END-1h, -3d, -20d) and item 4 (-5d)
    assert (u100["user_impressions_1d"], u100["user_impressions_7d"]) == (1, 3)
    assert u100["user_impressions_30d"] == 4
    # interactions: click item 1 (age 3 d, 30.0), save item 3 (6 d, 50.0), like item 4 (5 d, 80.0)
    assert u100["user_days_since_active"] == pytest.approx(3.0)
    assert u100["user_price_level"] == pytest.approx(50.0)
    assert u100["user_category_breadth"] == 2
    # user 101: click (2 h) and purchase (1 h) of item 2
    assert u101["user_days_since_active"] == pytest.approx(1 / 24)
    assert u101["user_price_level"] == pytest.approx(10.0)
    assert (u101["user_purchases_1d"], u101["user_clicks_30d"], u101["user_category_breadth"]) == (
        1,
        1,
        1,
    )


def test_user_sizes_and_relative_price_level(tables: dict[str, Any]) -> None:
    users = by_key(tables["user"], "user_id")
    u100, u101 = users[100], users[101]

    def w(weight: float, age_days: float) -> float:
        return weight * 0.5 ** (age_days / 7.0)

    # user 100: click item 1 (M = 3, 3 d), save item 3 (L = 4, 6 d), like item 4 (shoe 39 = 4)
    click, save = w(1.0, 3), w(2.0, 6)
    assert u100["user_size_letter"] == pytest.approx((3 * click + 4 * save) / (click + save))
    assert u100["user_size_shoe"] == pytest.approx(4.0)
    assert u100["user_size_waist"] is None
    assert u101["user_size_letter"] == pytest.approx(2.0)  # S, clicked and bought
    # tops' median price 30, shoes' 80: user 100's items at log(30/30), log(50/30), log(80/80)
    assert u100["user_price_rel_level"] == pytest.approx(0.0)
    assert u101["user_price_rel_level"] == pytest.approx(np.log(10 / 30))


def test_user_profile_positions_the_declared_letter_size(spark: Any) -> None:
    from pyspark.sql import functions as F

    users = spark.createDataFrame(
        [
            (1, END - 9 * DAY, "DE", "M", ["boho", "vintage"], D),
            (2, END - 9 * DAY, "FR", "XXL", None, D),
            (3, END - 9 * DAY, "FR", None, [], D),
            (4, END - 9 * DAY, "FR", "W30", ["casual"], D),  # not a letter size
        ],
        ddl(C.USERS_SCHEMA),
    )
    snapshots = common.snapshot_frame(spark, [D])
    profile = user.user_profile(users.join(F.broadcast(snapshots), "dt"))
    rows = by_key(profile, "user_id")
    assert [rows[u]["declared_size_rank"] for u in (1, 2, 3, 4)] == [3.0, 6.0, None, None]
    assert rows[1]["declared_styles"] == ["boho", "vintage"]
    assert rows[2]["declared_styles"] is None
    expected = ["user_id", "dt", "event_timestamp", *cols.PROFILE_FLOATS, *cols.PROFILE_LISTS]
    assert sorted(profile.columns) == sorted(expected)
    assert dict(profile.dtypes)["declared_size_rank"] == "double"


def test_user_category_affinity_decayed_shares(tables: dict[str, Any]) -> None:
    aff = by_key(tables["affinity"], "user_id", "category")

    def w(weight: float, age_days: float) -> float:
        return weight * 0.5 ** (age_days / 7.0)

    # user 100: click tops (3 d), save tops (6 d), like shoes (5 d); impressions weigh nothing
    tops = w(1.0, 3) + w(2.0, 6)
    shoes = w(2.0, 5)
    assert aff[(100, "tops")]["category_affinity"] == pytest.approx(tops / (tops + shoes))
    assert aff[(100, "shoes")]["category_affinity"] == pytest.approx(shoes / (tops + shoes))
    # user 101 only ever touched tops
    assert aff[(101, "tops")]["category_affinity"] == pytest.approx(1.0)
    assert set(aff) == {(100, "tops"), (100, "shoes"), (101, "tops")}
    per_user = tables["affinity"].groupBy("user_id").sum("category_affinity").collect()
    for r in per_user:
        assert r[1] == pytest.approx(1.0)


def test_affinity_decay_half_life(spark: Any) -> None:
    """Two clicks in two categories, 7 and 14 days old: weights 0.5 and 0.25 -> 2/3 and 1/3."""
    events = events_df(spark, [(1, 1, "click", END - 7 * DAY), (1, 4, "click", END - 14 * DAY)])
    aff = by_key(compute(spark, [D], events, items_df(spark, [D]))["affinity"], "category")
    assert aff["tops"]["category_affinity"] == pytest.approx(0.5 / 0.75)
    assert aff["shoes"]["category_affinity"] == pytest.approx(0.25 / 0.75)


# ----------------------------------------------------------------------------- snapshots


def _pandas(df: Any, keys: list[str]) -> pd.DataFrame:
    from pyspark.sql import functions as F

    df = df.withColumn("event_timestamp", F.col("event_timestamp").cast("long"))
    return df.toPandas().sort_values(keys).reset_index(drop=True)


def test_snapshots_in_one_pass_equal_one_at_a_time(
    spark: Any, inputs: tuple[Any, Any], tables: dict[str, Any], both_days: dict[str, Any]
) -> None:
    alone_d1 = compute(spark, [D1], *inputs)
    keys = {"item": ["dt", "item_id"], "user": ["dt", "user_id"],
            "affinity": ["dt", "user_id", "category"],
            "brand_affinity": ["dt", "user_id", "brand"]}  # fmt: skip
    for name, k in keys.items():
        alone = _pandas(alone_d1[name].unionByName(tables[name]), k)
        together = _pandas(both_days[name], k)
        assert set(together["dt"]) == {D1, D}, name
        pd.testing.assert_frame_equal(together, alone, check_exact=False, rtol=1e-12)
    # and the snapshots differ where the data does: the impression of item 1 at
    # END(D-1) = D 00:00 is excluded from D-1, and D-1 uses D-1's listing price
    rows = by_key(both_days["item"], "dt", "item_id")
    assert (rows[(D1, 1)]["impressions_1d"], rows[(D, 1)]["impressions_7d"]) == (0, 2)
    assert rows[(D1, 1)]["impressions_30d"] == 2  # END-3d and END-20d; END-1h is after D-1
    assert (rows[(D1, 1)]["price"], rows[(D, 1)]["price"]) == (35.0, 30.0)
    # D-1's tops median is 35 (prices 35, 10, 45)
    assert rows[(D1, 3)]["price_rel_category"] == pytest.approx(45 / 35)


def test_plan_batches_keeps_each_batch_within_the_budget() -> None:
    from ranking_jobs.features import plan_batches

    days = [D - i * DAY for i in range(5, -1, -1)]
    rows = dict(zip(days, [4, 3, 3, 12, 5, 5], strict=True))
    # oldest first: 4 + 3 + 3 = 10 fits, 12 alone is over the budget, 5 + 5 fits
    assert plan_batches(rows, 10) == [days[:3], days[3:4], days[4:]]
    assert plan_batches(rows, 100) == [days]
    assert plan_batches(rows, 1) == [[d] for d in days]


def test_event_timestamp_is_end_of_snapshot_day(both_days: dict[str, Any]) -> None:
    from pyspark.sql import functions as F

    want = {
        (day, int(dt.datetime.combine(day + DAY, dt.time(), tzinfo=dt.UTC).timestamp()))
        for day in (D1, D)
    }
    assert max(ts for _, ts in want) == int(END.timestamp())
    for name, frame in both_days.items():
        assert dict(frame.dtypes)["event_timestamp"] == "timestamp", name
        stamps = frame.select("dt", F.col("event_timestamp").cast("long").alias("ts"))
        got = {(r["dt"], r["ts"]) for r in stamps.distinct().collect()}
        assert got == want, name


# ----------------------------------------------------------------------------- schema


@pytest.mark.parametrize(
    ("name", "keys", "ints", "floats"),
    [
        ("item", ["item_id"], cols.ITEM_COUNTS + cols.ITEM_INTS, cols.ITEM_FLOATS),
        ("user", ["user_id"], cols.USER_COUNTS + cols.USER_INTS, cols.USER_FLOATS),
        ("affinity", ["user_id", "category"], [], ["category_affinity"]),
        ("brand_affinity", ["user_id", "brand"], [], ["brand_affinity"]),
        ("user_item", ["user_id", "item_id"], cols.USER_ITEM_INTS, cols.USER_ITEM_FLOATS),
    ],
)
def test_columns_match_feast_schema(
    tables: dict[str, Any], name: str, keys: list[str], ints: list[str], floats: list[str]
) -> None:
    """Exactly the columns (and Int64 / Float64 types) the Feast views declare, no more."""
    types = dict(tables[name].dtypes)
    expected = [*keys, "dt", "event_timestamp", *ints, *floats]
    assert len(tables[name].columns) == len(set(tables[name].columns))
    assert sorted(tables[name].columns) == sorted(expected)
    assert {c: types[c] for c in ints} == dict.fromkeys(ints, "bigint")
    assert {c: types[c] for c in floats} == dict.fromkeys(floats, "double")
    assert types["dt"] == "date"
    key_types = {"user_id": "bigint", "item_id": "bigint", "category": "string", "brand": "string"}
    assert {k: types[k] for k in keys} == {k: key_types[k] for k in keys}


def test_every_affinity_dimension_gives_shares_summing_to_one(tables: dict[str, Any]) -> None:
    from pyspark.sql import functions as F

    brand = tables["brand_affinity"]
    sums = brand.groupBy("user_id").agg(F.sum("brand_affinity").alias("s")).collect()
    assert sums and all(r["s"] == pytest.approx(1.0) for r in sums)
    assert set(cols.AFFINITY_FLOATS) == {f"{d}_affinity" for d in cols.AFFINITY_DIMENSIONS}
    assert set(C.FEATURES_USER_AFFINITY) == set(cols.AFFINITY_DIMENSIONS)


def test_covisitation_cosine_neighbours_by_hand(spark: Any) -> None:
    from ranking_jobs.features import covisitation

    # sessions (one per user here): s100 = {1, 2}, s101 = {1, 2, 3}, s102 = {3};
    # impressions never count. Sessions per item: n1 = n2 = n3 = 2.
    # together(1,2) = 2 -> 2/sqrt(2*2) = 1.0; together(1,3) = together(2,3) = 1 -> 0.5
    events = events_df(spark, [
        (100, 1, "click", END - HOUR), (100, 2, "like", END - HOUR),
        (101, 1, "click", END - DAY), (101, 2, "click", END - DAY),
        (101, 3, "add_to_bag", END - DAY), (102, 3, "save", END - 2 * DAY),
        (102, 1, "impression", END - 2 * DAY),
    ])  # fmt: skip
    r = rolled(spark, [D], events)
    rows = by_key(covisitation.item_covisitation(r["pairs"], r["item_days"]), "item_id")
    assert rows[1]["neighbour_ids"] == [2, 3]
    assert rows[1]["neighbour_scores"] == pytest.approx([1.0, 0.5])
    assert rows[3]["neighbour_ids"] == [1, 2]  # a tie is broken by the neighbour id
    assert rows[3]["neighbour_scores"] == pytest.approx([0.5, 0.5])
    top1 = covisitation.item_covisitation(r["pairs"], r["item_days"], 1)
    assert by_key(top1, "item_id")[2]["neighbour_ids"] == [1]


def test_user_item_history_counts_engagements_within_the_lookback(spark: Any) -> None:
    from ranking_jobs.features import user_item

    events = events_df(spark, [
        (100, 1, "click", END - 2 * DAY), (100, 1, "purchase", END - DAY),
        (100, 1, "impression", END - HOUR),  # impressions never count
        (100, 2, "purchase", END - 40 * DAY),  # outside a 30-day lookback
        (101, 2, "like", END - 40 * DAY),
        (101, 3, "impression", END - HOUR),  # shown only: no row
    ])  # fmt: skip

    def history(lookback: int) -> dict[Any, dict[str, Any]]:
        r = rolled(spark, [D], events, lookback)
        return by_key(user_item.user_item_stats(r["user_item_history"]), "user_id", "item_id")

    short = history(30)
    assert set(short) == {(100, 1)}
    assert short[(100, 1)]["ui_engagements"] == 2 and short[(100, 1)]["ui_purchases"] == 1
    assert short[(100, 1)]["ui_days_since"] == pytest.approx(1.0)
    # engaged on the snapshot day and the day before: two days, one day apart
    assert (short[(100, 1)]["ui_days"], short[(100, 1)]["ui_span_days"]) == (2, 1)
    long = history(60)
    assert set(long) == {(100, 1), (100, 2), (101, 2)}
    assert long[(100, 2)]["ui_purchases"] == 1 and long[(101, 2)]["ui_purchases"] == 0
    assert long[(101, 2)]["ui_days_since"] == pytest.approx(40.0)
    assert (long[(100, 2)]["ui_days"], long[(100, 2)]["ui_span_days"]) == (1, 0)


def test_exact_sums_do_not_depend_on_the_order_of_the_terms(spark):
    """Decayed intent weights summed in two orders (and over 1 and 7 partitions): the
    features' sums come out bit for bit the same, where doubles would not."""
    import math

    from pyspark.sql import functions as F

    rng = np.random.default_rng(3)
    weights = rng.choice([1.0, 2.0, 3.0, 4.0], 2000) * 0.5 ** (rng.random(2000) * 30 / 7)
    frame = spark.createDataFrame(pd.DataFrame({"w": weights, "g": 1}))

    def total(ordered, partitions):
        rows = ordered.coalesce(1) if partitions == 1 else ordered.repartition(partitions)
        exact = rows.groupBy("g").agg(common.exact_sum(F.col("w")).cast("double").alias("s"))
        return exact.first()["s"]

    got = {
        total(frame.orderBy(order), partitions)
        for order in (F.col("w").asc(), F.col("w").desc())
        for partitions in (1, 7)
    }
    assert len(got) == 1
    (value,) = got
    assert value == pytest.approx(math.fsum(np.round(weights, 18)), rel=1e-15)
    assert sum(sorted(weights)) != sum(sorted(weights, reverse=True))  # doubles would differ
