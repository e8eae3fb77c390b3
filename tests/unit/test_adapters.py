"""Adapters of real data into the raw contracts, on tiny hand-made inputs in tmp_path.

The UCI-shaped file below has one line per drop reason (and lines that trip
several reasons, to pin the first-reason-wins order), a lower-case stock code
variant, a product first seen on a later day, a customer first seen on a later
day, a day without invoices and a repeat purchase.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.data.adapters import (
    UCI_DROP_REASONS,
    import_interactions,
    load_uci_online_retail,
    run_import,
    uci_category,
    uci_colour,
    uci_style,
    weight_to_event_type,
)
from ranking_jobs.settings import Settings

D1, D2, D3, D4 = (dt.date(2011, 1, d) for d in (3, 4, 5, 6))
NAN = float("nan")
UK = "United Kingdom"

# InvoiceNo, StockCode, Description, Quantity, day, time, UnitPrice, CustomerID, Country
UCI_ROWS: list[tuple[Any, ...]] = [
    ("536365", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, D1, "08:26", 2.55, 17850.0, UK),
    ("536365", "71053", "WHITE METAL LANTERN", 1, D1, "08:26", 3.39, 17850.0, UK),
    ("C536379", "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", -1, D1, "09:41", 2.55, 17850, UK),
    ("536380", "22633", "HAND WARMER UNION JACK", 2, D1, "10:00", 1.85, NAN, UK),
    ("536381", "22728", "ALARM CLOCK BAKELIKE PINK", -3, D1, "11:00", 0.0, 13047.0, UK),
    ("536382", "21212", "PACK OF 72 RETROSPOT CAKE CASES", 5, D1, "11:30", 0.0, 13047.0, UK),
    ("536383", "POST", "POSTAGE", 1, D1, "12:00", 18.0, 12346.0, "France"),
    ("536390", "22728", "ALARM CLOCK BAKELIKE PINK", 4, D2, "10:00", 3.75, 12583.0, "France"),
    (
        "536390",
        "85123a",
        "WHITE HANGING HEART T-LIGHT HOLDER",
        1,
        D2,
        "10:00",
        2.95,
        12583,
        "France",
    ),
    ("536391", "22633", "HAND WARMER UNION JACK", 1, D2, "12:00", 1.85, 13047.0, UK),
    ("536400", "23084", "RABBIT NIGHT LIGHT", 2, D4, "09:00", 2.08, 17850.0, UK),
    ("A563185", "B", "Adjust bad debt", 1, D4, "10:00", -11062.06, NAN, UK),
    ("536400", "71053", "WHITE METAL LANTERN", 1, D4, "09:00", 3.39, 17850.0, UK),
]
KEPT_ROWS = [0, 1, 7, 8, 9, 10, 12]
# Sorted upper-cased codes of the whole file -> 1-based ids.
CODES = ["21212", "22633", "22728", "23084", "71053", "85123A", "B", "POST"]
ITEM = {code: i + 1 for i, code in enumerate(CODES)}


def uci_frame(rows: list[tuple[Any, ...]] = UCI_ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "InvoiceNo": [r[0] for r in rows],
            "StockCode": [r[1] for r in rows],
            "Description": [r[2] for r in rows],
            "Quantity": pd.array([r[3] for r in rows], dtype="int64"),
            "InvoiceDate": pd.to_datetime([f"{r[4]} {r[5]}" for r in rows]),
            "UnitPrice": [float(r[6]) for r in rows],
            "CustomerID": [float(r[7]) for r in rows],
            "Country": [r[8] for r in rows],
        }
    )


@pytest.fixture
def uci_file(tmp_path: Path) -> Path:
    path = tmp_path / "online_retail.parquet"
    uci_frame().to_parquet(path, index=False)
    return path


def ctx_for(settings: Settings) -> RunContext:
    return RunContext.create(D4, settings)


def read(settings: Settings, table: str, day: dt.date) -> pa.Table:
    return lake.read_partition(settings, table, day)


def frame(settings: Settings, table: str, day: dt.date) -> pd.DataFrame:
    return read(settings, table, day).to_pandas()


def assert_contracts_hold(settings: Settings, days: list[dt.date]) -> None:
    """Exact schemas; every event's item and user are in that day's snapshots."""
    assert lake.list_partitions(settings, C.RAW_EVENTS) == days
    for day in days:
        tables = {t: read(settings, t, day) for t in C.RAW_SCHEMAS}
        for name, table in tables.items():
            assert table.schema.equals(C.RAW_SCHEMAS[name]), (name, day, table.schema)
        ev, items, users = (tables[t].to_pandas() for t in C.RAW_SCHEMAS)
        start = pd.Timestamp(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
        assert ev["ts"].between(start, start + pd.Timedelta(days=1), inclusive="left").all()
        assert ev["item_id"].isin(items["item_id"]).all(), day
        assert ev["user_id"].isin(users["user_id"]).all(), day
        assert items["item_id"].is_unique and users["user_id"].is_unique
        assert (items["listed_at"] < start + pd.Timedelta(days=1)).all()
        assert (users["signed_up_at"] < start + pd.Timedelta(days=1)).all()


# ---------------------------------------------------------------------------- UCI


def test_uci_counts_by_reason_are_exact(settings: Settings, uci_file: Path) -> None:
    summary = load_uci_online_retail(ctx_for(settings), uci_file)

    assert summary["file"] == {
        "lines": 13,
        "customers": 4,
        "stock_codes": 9,  # 85123a and 85123A are two raw codes ...
        "products": 8,  # ... and one product
        "invoices": 10,
        "first_day": "2011-01-03",
        "last_day": "2011-01-06",
    }
    # First reason wins, in UCI_DROP_REASONS order.
    assert summary["dropped"] == {
        "cancellation": 1,
        "missing_customer_id": 2,
        "non_positive_quantity": 1,
        "non_positive_price": 1,
        "non_product_code": 1,
    }
    assert list(summary["dropped"]) == list(UCI_DROP_REASONS)
    # Every reason counted independently.
    assert summary["flagged"] == {
        "cancellation": 1,
        "missing_customer_id": 2,
        "non_positive_quantity": 2,
        "non_positive_price": 3,
        "non_product_code": 2,
    }
    assert summary["lines_in_range"] == 13 and summary["kept"] == len(KEPT_ROWS) == 7
    assert summary["kept"] + summary["dropped_total"] == summary["lines_in_range"]
    assert summary["kept_quantity_gt_1"] == 3  # rows 0, 7, 10: one event each
    assert summary["days"] == 4 and summary["days_without_events"] == [D3.isoformat()]
    assert summary["users"] == 4 and summary["items"] == 5
    assert summary["products_without_usable_line"] == 3  # 21212 (no price), B, POST
    assert summary["rows"] == {C.RAW_EVENTS: 7, C.RAW_ITEMS: 4 * 3 + 5, C.RAW_USERS: 3 + 3 * 4}
    assert summary["dangling_events"] == {"item_not_in_snapshot": 0, "user_not_in_snapshot": 0}
    assert summary["repeat_purchase_share"] == round(1 / 7, 4)  # 17850 re-bought 71053
    assert summary["recommended_settings"] == {"exclude_purchased": False}


def test_uci_events_items_users_follow_the_mapping(settings: Settings, uci_file: Path) -> None:
    load_uci_online_retail(ctx_for(settings), uci_file)
    days = [D1, D2, D3, D4]
    assert_contracts_hold(settings, days)

    events = pd.concat([frame(settings, C.RAW_EVENTS, d) for d in days], ignore_index=True)
    assert events["event_id"].tolist() == [f"uci-{r:08d}" for r in KEPT_ROWS]
    assert set(events["event_type"]) == {"purchase"} and set(events["surface"]) == {"home"}
    assert set(events["position"]) == {0} and events["query"].isna().all()
    assert events["session_id"].tolist() == [UCI_ROWS[r][0] for r in KEPT_ROWS]
    assert events["user_id"].tolist() == [int(UCI_ROWS[r][7]) for r in KEPT_ROWS]
    assert events["item_id"].tolist() == [ITEM[UCI_ROWS[r][1].upper()] for r in KEPT_ROWS]
    first = events.iloc[0]
    assert first["ts"] == pd.Timestamp("2011-01-03 08:26", tz="UTC")

    # Items: daily snapshots that only grow (nothing sells out in a retail catalogue).
    snap = {d: frame(settings, C.RAW_ITEMS, d).set_index("item_id") for d in days}
    early = [ITEM[c] for c in ("22633", "22728", "71053", "85123A")]
    for d in (D1, D2, D3):
        assert snap[d].index.tolist() == early
    assert snap[D4].index.tolist() == sorted([*early, ITEM["23084"]])
    items = snap[D4]
    assert set(items["status"]) == {"available"} and items["sold_at"].isna().all()
    assert set(items["seller_id"]) == {0} and set(items["brand"]) == {"uci"}
    assert set(items["currency"]) == {"GBP"} and set(items["condition"]) == {"new_with_tags"}
    assert set(items["size"]) == {"one size"}
    assert items.loc[ITEM["85123A"], "price"] == pytest.approx(2.75)  # median of 2.55, 2.95
    assert items.loc[ITEM["22728"], "price"] == pytest.approx(3.75)  # the 0.0 line ignored
    assert items.loc[ITEM["22633"], "price"] == pytest.approx(1.85)  # no customer: still priced
    # listed_at: first line of any kind (22728 first appeared on a negative-quantity line).
    assert items.loc[ITEM["22728"], "listed_at"] == pd.Timestamp("2011-01-03 11:00", tz="UTC")
    assert items.loc[ITEM["23084"], "listed_at"] == pd.Timestamp("2011-01-06 09:00", tz="UTC")
    heart = items.loc[ITEM["85123A"]]
    assert (heart["category"], heart["subcategory"]) == ("candle_light", "t-light holder")
    assert heart["colour"] == "white" and heart["style"] == "classic"
    clock = items.loc[ITEM["22728"]]
    assert (clock["category"], clock["subcategory"], clock["colour"]) == (
        "home_decor",
        "clock",
        "pink",
    )

    # Users: cumulative, signed up at the first line of any kind, its country.
    u1 = frame(settings, C.RAW_USERS, D1).set_index("user_id")
    assert u1.index.tolist() == [12346, 13047, 17850]
    assert u1.loc[17850, "signed_up_at"] == pd.Timestamp("2011-01-03 08:26", tz="UTC")
    assert u1.loc[12346, "country"] == "France"  # only ever bought postage: a user, no events
    u2 = frame(settings, C.RAW_USERS, D2).set_index("user_id")
    assert u2.index.tolist() == [12346, 12583, 13047, 17850]
    assert u2["declared_size"].isna().all() and u2["declared_styles"].isna().all()
    u4 = frame(settings, C.RAW_USERS, D4)
    assert u4["user_id"].tolist() == [12346, 12583, 13047, 17850]  # seller 0 is no user


def test_uci_id_map_and_determinism(tmp_path: Path, uci_file: Path) -> None:
    a = Settings(data_root=str(tmp_path / "a"), state_dir=tmp_path / "va")
    b = Settings(data_root=str(tmp_path / "b"), state_dir=tmp_path / "vb")
    load_uci_online_retail(ctx_for(a), uci_file)
    load_uci_online_retail(ctx_for(b), uci_file, start=D2, end=D2)
    # The same product gets the same id whatever the range.
    assert read(a, C.RAW_ITEMS, D2).equals(read(b, C.RAW_ITEMS, D2))
    assert read(a, C.RAW_EVENTS, D2).equals(read(b, C.RAW_EVENTS, D2))
    assert read(a, C.RAW_USERS, D2).equals(read(b, C.RAW_USERS, D2))
    id_map = pq.read_table(Path(a.paths.data_root) / "import" / "id_map_uci_stock_codes.parquet")
    rows = id_map.to_pandas().set_index("stock_code")
    assert rows["item_id"].to_dict() == ITEM
    assert rows.loc["85123A", "description"] == "WHITE HANGING HEART T-LIGHT HOLDER"
    assert not rows.loc["POST", "is_listing"] and rows.loc["71053", "is_listing"]
    # A rerun replaces partitions byte for byte.
    before = {t: read(a, t, D4) for t in C.RAW_SCHEMAS}
    load_uci_online_retail(ctx_for(a), uci_file)
    assert all(read(a, t, D4).equals(before[t]) for t in C.RAW_SCHEMAS)


def test_uci_range_counts_only_lines_of_the_range(settings: Settings, uci_file: Path) -> None:
    summary = load_uci_online_retail(ctx_for(settings), uci_file, start="2011-01-04", end=D4)
    assert (summary["start"], summary["end"], summary["days"]) == ("2011-01-04", "2011-01-06", 3)
    assert summary["lines_in_range"] == 6 and summary["kept"] == 5
    assert summary["dropped"]["missing_customer_id"] == 1 and summary["dropped_total"] == 1
    assert lake.list_partitions(settings, C.RAW_USERS) == [D2, D3, D4]
    # Users and listings first seen before the range are in its first snapshot.
    assert len(frame(settings, C.RAW_USERS, D2)) == 4
    assert len(frame(settings, C.RAW_ITEMS, D2)) == 4


def test_uci_category_colour_style_tables() -> None:
    assert uci_category("JUMBO BAG RED RETROSPOT") == ("bag", "jumbo bag")
    assert uci_category("LUNCH BAG SPACEBOY DESIGN") == ("bag", "lunch bag")
    assert uci_category("WHITE SKULL HOT WATER BOTTLE") == ("kitchen", "storage")
    assert uci_category("PAPER CHAIN KIT 50'S CHRISTMAS") == ("christmas", "decoration")
    assert uci_category("CHRISTMAS CRAFT LITTLE FRIENDS CARD") == ("christmas", "card")
    assert uci_category("ASSORTED COLOUR BIRD ORNAMENT") == ("home_decor", "decoration")
    assert uci_category("ROSES REGENCY TEACUP AND SAUCER") == ("mug_cup", "cup")
    assert uci_category("") == ("other", "other")
    assert uci_colour("RED WHITE SPOT MUG") == "red" and uci_colour("JAM JAR") == "multicolour"
    assert uci_colour("IVORY KNITTED MUG COSY") == "white"
    assert uci_style("VINTAGE UNION JACK BUNTING") == "vintage"
    assert uci_style("RABBIT NIGHT LIGHT") == "classic"


def test_uci_bad_inputs(settings: Settings, tmp_path: Path, uci_file: Path) -> None:
    broken = tmp_path / "broken.parquet"
    uci_frame().drop(columns=["CustomerID"]).to_parquet(broken, index=False)
    with pytest.raises(ValueError, match=r"broken\.parquet.*CustomerID"):
        load_uci_online_retail(ctx_for(settings), broken)
    empty = tmp_path / "empty.parquet"
    uci_frame().iloc[:0].to_parquet(empty, index=False)
    with pytest.raises(ValueError, match=r"empty\.parquet: the file has no rows"):
        load_uci_online_retail(ctx_for(settings), empty)
    with pytest.raises(ValueError, match=r"no invoice lines in 2012-01-01\.\.2012-01-02"):
        load_uci_online_retail(ctx_for(settings), uci_file, start="2012-01-01", end="2012-01-02")
    with pytest.raises(ValueError, match="start 2011-01-06 is after end 2011-01-03"):
        load_uci_online_retail(ctx_for(settings), uci_file, start=D4, end=D1)
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet: no such file"):
        load_uci_online_retail(ctx_for(settings), tmp_path / "nope.parquet")


def test_uci_day_passes_the_raw_suites(settings: Settings, uci_file: Path) -> None:
    from ranking_jobs.validation import validate_raw

    load_uci_online_retail(ctx_for(settings), uci_file)
    result = validate_raw(RunContext.create(D2, settings))
    assert result["success"] is True
    assert result["trailing_event_volumes"] == {D1.isoformat(): 2}


# ------------------------------------------------------------------------ generic


def write_csv(path: Path, rows: dict[str, list[Any]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


BASIC: dict[str, list[Any]] = {
    "user_id": [1, 2, 1, 3, 2],
    "item_id": [10, 10, 11, 12, 11],
    "timestamp": [
        "2024-03-01T09:00:00Z",
        "2024-03-01T10:30:00",
        "2024-03-02T08:00:00+01:00",
        "2024-03-03 12:00:00",
        "2024-03-03T23:59:59.5Z",
    ],
    "event_type": ["click", "purchase", "like", "add_to_bag", "purchase"],
}
M1, M2, M3 = (dt.date(2024, 3, d) for d in (1, 2, 3))


def test_generic_event_types_with_derived_tables(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "interactions.csv", BASIC)
    summary = import_interactions(ctx_for(settings), path)

    assert summary["rows"] == 5 and summary["kept"] == 5 and summary["days"] == 3
    assert summary["event_types"] == {"purchase": 2, "click": 1, "like": 1, "add_to_bag": 1}
    assert summary["ids"] == {"users": {"mapped": False}, "items": {"mapped": False}}
    assert summary["recommended_settings"] == {"exclude_purchased": True}  # no repeats
    assert_contracts_hold(settings, [M1, M2, M3])
    ev = frame(settings, C.RAW_EVENTS, M2)
    # +01:00 converted to UTC; ids are the input rows.
    assert ev["event_id"].tolist() == ["imp-000000002"]
    assert ev["ts"].iloc[0] == pd.Timestamp("2024-03-02T07:00:00Z")
    assert ev["session_id"].iloc[0] == "1-2024-03-02" and ev["surface"].iloc[0] == "home"
    ev3 = frame(settings, C.RAW_EVENTS, M3)
    assert ev3["ts"].tolist()[-1] == pd.Timestamp("2024-03-03T23:59:59.5Z")

    items = frame(settings, C.RAW_ITEMS, M1).set_index("item_id")
    assert items.index.tolist() == [10]  # item 11 is first seen on 2024-03-02
    row = items.loc[10]
    assert (row["category"], row["condition"], row["price"], row["currency"]) == (
        "unknown",
        "good",
        1.0,
        "EUR",
    )
    assert row["listed_at"] == pd.Timestamp("2024-03-01T09:00:00Z")
    users = frame(settings, C.RAW_USERS, M3).set_index("user_id")
    assert users.index.tolist() == [1, 2, 3] and set(users["country"]) == {"unknown"}
    assert users.loc[3, "signed_up_at"] == pd.Timestamp("2024-03-03T12:00:00Z")


@pytest.mark.parametrize(
    ("weight", "event_type"),
    [
        (5.0, "purchase"),
        (12, "purchase"),
        (4.0, "add_to_bag"),
        (4.99, "add_to_bag"),
        (3, "like"),
        (2, "click"),
        (1.99, "impression"),
        (0.01, "impression"),
        (0, None),
        (-1, None),
    ],
)
def test_weight_thresholds(weight: float, event_type: str | None) -> None:
    assert weight_to_event_type(pd.Series([weight])).iloc[0] == event_type


def test_generic_weights_drop_non_positive_and_count_them(
    settings: Settings, tmp_path: Path
) -> None:
    rows = {k: v for k, v in BASIC.items() if k != "event_type"}
    rows["weight"] = [5, 0, 3.5, -2, 1]
    summary = import_interactions(
        ctx_for(settings), write_csv(tmp_path / "ratings.csv", rows), end=M2
    )
    assert summary["event_type_from"] == "weight"
    assert summary["dropped"] == {"non_positive_weight": 2}
    assert summary["out_of_range"] == 1 and summary["kept"] == 2
    assert summary["event_types"] == {"purchase": 1, "like": 1}
    assert lake.list_partitions(settings, C.RAW_EVENTS) == [M1, M2]
    # A weight-0 row's user is no user at all if that was its only interaction.
    users = frame(settings, C.RAW_USERS, M2)
    assert users["user_id"].tolist() == [1]


def test_generic_parquet_with_tables_and_string_ids(settings: Settings, tmp_path: Path) -> None:
    inter = tmp_path / "log.parquet"
    pd.DataFrame(
        {
            "user_id": ["bob", "alice", "bob", "carol"],
            "item_id": ["sku-b", "sku-a", "sku-a", "sku-c"],
            "timestamp": pd.to_datetime(
                ["2024-03-01 09:00", "2024-03-01 10:00", "2024-03-02 11:00", "2024-03-03 12:00"]
            ),
            "event_type": ["purchase", "click", "purchase", "save"],
            "surface": ["search", None, "home", "similar"],
            "position": [3, 0, 1, 7],
            "query": ["bag", None, None, None],
        }
    ).to_parquet(inter, index=False)
    items = write_csv(
        tmp_path / "items.csv",
        {
            "item_id": ["sku-a", "sku-b"],
            "seller_id": ["dave", None],
            "category": ["bags", None],
            "price": [30.0, None],
            "condition": ["very_good", "good"],
            "listed_at": ["2024-02-01", None],
            "sold_at": [None, "2024-03-02T15:00:00Z"],
            "status": ["available", "available"],
            "shipping": ["fast", "slow"],
        },
    )
    users = write_csv(
        tmp_path / "users.csv",
        {
            "user_id": ["alice", "bob", "erin"],
            "signed_up_at": ["2024-01-01", "2024-01-02", "2024-01-03"],
            "country": ["FR", None, "DE"],
            "declared_styles": ["boho|vintage", None, "classic"],
        },
    )
    summary = import_interactions(ctx_for(settings), inter, items, users)

    # Text ids: mapped in sorted order, sellers are users (same map).
    id_dir = Path(settings.paths.data_root) / "import"
    umap = pd.read_parquet(id_dir / "id_map_users.parquet").set_index("source_id")["id"]
    imap = pd.read_parquet(id_dir / "id_map_items.parquet").set_index("source_id")["id"]
    assert umap.to_dict() == {"alice": 1, "bob": 2, "carol": 3, "dave": 4, "erin": 5}
    assert imap.to_dict() == {"sku-a": 1, "sku-b": 2, "sku-c": 3}
    assert summary["ids"]["users"]["new"] == 5 and summary["ids"]["items"]["mapped"] is True
    assert summary["items_table"]["added_from_interactions"] == 1  # sku-c
    assert summary["items_table"]["ignored_columns"] == ["shipping"]
    assert summary["items_table"]["nulls_filled"] == {"category": 1, "price": 1, "seller_id": 1}
    assert summary["users_table"]["added_from_interactions"] == 1  # carol
    assert summary["recommended_settings"] == {"exclude_purchased": True}

    ev = frame(settings, C.RAW_EVENTS, M1)
    assert ev["user_id"].tolist() == [2, 1] and ev["item_id"].tolist() == [2, 1]
    assert ev["surface"].tolist() == ["search", "home"] and ev["position"].tolist() == [3, 0]
    assert ev["query"].tolist() == ["bag", None]

    # sku-b sells on 03-02: shown sold that day, gone the day after.
    it1 = frame(settings, C.RAW_ITEMS, M1).set_index("item_id")
    assert it1.loc[2, "status"] == "available" and pd.isna(it1.loc[2, "sold_at"])
    assert it1.loc[1, "seller_id"] == 4 and it1.loc[2, "seller_id"] == 0
    assert it1.loc[1, "listed_at"] == pd.Timestamp("2024-02-01", tz="UTC")
    assert it1.loc[1, "price"] == 30.0 and it1.loc[2, "price"] == 1.0
    it2 = frame(settings, C.RAW_ITEMS, M2).set_index("item_id")
    assert it2.loc[2, "status"] == "sold"
    assert it2.loc[2, "sold_at"] == pd.Timestamp("2024-03-02T15:00:00Z")
    it3 = frame(settings, C.RAW_ITEMS, M3).set_index("item_id")
    assert it3.index.tolist() == [1, 3]

    us = frame(settings, C.RAW_USERS, M3).set_index("user_id")
    assert us.index.tolist() == [1, 2, 3, 5]  # dave is a seller, not a user
    assert us.loc[1, "declared_styles"].tolist() == ["boho", "vintage"]
    assert us.loc[2, "country"] == "unknown" and us.loc[3, "country"] == "unknown"
    assert us.loc[2, "declared_styles"] is None and us.loc[5, "declared_styles"].tolist() == [
        "classic"
    ]
    assert us.loc[3, "signed_up_at"] == pd.Timestamp("2024-03-03 12:00", tz="UTC")
    assert_contracts_hold(settings, [M1, M2, M3])


def test_generic_id_map_is_stable_across_imports(settings: Settings, tmp_path: Path) -> None:
    first = write_csv(
        tmp_path / "a.csv",
        {"user_id": ["u2", "u1"], "item_id": [5, 6], "timestamp": ["2024-03-01"] * 2,
         "event_type": ["click"] * 2},
    )  # fmt: skip
    second = write_csv(
        tmp_path / "b.csv",
        {"user_id": ["u0", "u2", "u3"], "item_id": [5, 6, 7], "timestamp": ["2024-03-02"] * 3,
         "event_type": ["click"] * 3},
    )  # fmt: skip
    import_interactions(ctx_for(settings), first)
    summary = import_interactions(ctx_for(settings), second)
    umap = pd.read_parquet(Path(settings.paths.data_root) / "import" / "id_map_users.parquet")
    assert dict(zip(umap["source_id"], umap["id"], strict=True)) == {
        "u1": 1,
        "u2": 2,
        "u0": 3,  # new ids continue after the known ones
        "u3": 4,
    }
    assert summary["ids"]["users"] == {
        "mapped": True,
        "id_map": f"{settings.paths.data_root}/import/id_map_users.parquet",
        "known": 2,
        "new": 2,
    }
    assert summary["ids"]["items"] == {"mapped": False}
    assert frame(settings, C.RAW_EVENTS, M2)["user_id"].tolist() == [3, 2, 4]


GOOD = {"user_id": [1, 2], "item_id": [10, 11], "timestamp": ["2024-03-01T09:00:00Z"] * 2,
        "event_type": ["click", "purchase"]}  # fmt: skip


def _with(**changes: Any) -> dict[str, list[Any]]:
    rows = {k: list(v) for k, v in GOOD.items()}
    for key, value in changes.items():
        if value is None:
            del rows[key]
        else:
            rows[key] = value
    return rows


BadCase = Callable[[Path], dict[str, Any]]


def _items(tmp: Path, rows: dict[str, list[Any]]) -> dict[str, Any]:
    return {"items": write_csv(tmp / "items.csv", rows)}


def _users(tmp: Path, rows: dict[str, list[Any]]) -> dict[str, Any]:
    return {"users": write_csv(tmp / "users.csv", rows)}


BAD_INPUTS: list[tuple[str, dict[str, list[Any]] | None, BadCase | None, str]] = [
    ("missing user_id", _with(user_id=None), None, r"in\.csv: missing required column.*user_id"),
    ("missing timestamp", _with(timestamp=None), None, r"in\.csv: missing.*timestamp"),
    ("neither type nor weight", _with(event_type=None), None, r"in\.csv: needs 'event_type'"),
    ("bad timestamp", _with(timestamp=["2024-03-01", "yesterday"]), None,
     r"in\.csv: column 'timestamp' is not a timestamp.*row 1: 'yesterday'"),
    ("null timestamp", _with(timestamp=["2024-03-01", None]), None,
     r"in\.csv: column 'timestamp' is null"),
    ("fractional id", _with(item_id=[10, 10.5]), None,
     r"in\.csv: column 'item_id' has non-integer ids.*10\.5"),
    ("null id", _with(user_id=[1, None]), None, r"in\.csv: column 'user_id' is null"),
    ("unknown event type", _with(event_type=["click", "view"]), None,
     r"in\.csv: column 'event_type' is not one of .*'view'"),
    ("non-numeric weight", _with(event_type=None, weight=[1, "lots"]), None,
     r"in\.csv: column 'weight' is not a number.*'lots'"),
    ("bad surface", _with(surface=["home", "feed"]), None, r"in\.csv: column 'surface'.*'feed'"),
    ("bad price", None, lambda t: _items(t, {"item_id": [10], "price": [0]}),
     r"items\.csv: column 'price' is not a number > 0"),
    ("bad condition", None, lambda t: _items(t, {"item_id": [10], "condition": ["mint"]}),
     r"items\.csv: column 'condition' is not one of"),
    ("duplicate item", None, lambda t: _items(t, {"item_id": [10, 10]}),
     r"items\.csv: column 'item_id' has duplicate ids"),
    ("items without item_id", None, lambda t: _items(t, {"sku": [10]}),
     r"items\.csv: missing required column.*item_id"),
    ("bad signed_up_at", None,
     lambda t: _users(t, {"user_id": [1], "signed_up_at": ["31/02/2024"]}),
     r"users\.csv: column 'signed_up_at' is not a timestamp"),
    ("fractional seller", None, lambda t: _items(t, {"item_id": [10], "seller_id": [1.5]}),
     r"items\.csv: column 'seller_id' has non-integer ids"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "side", "message"),
    [pytest.param(r, s, m, id=name) for name, r, s, m in BAD_INPUTS],
)
def test_generic_bad_inputs_are_named(
    settings: Settings,
    tmp_path: Path,
    rows: dict[str, list[Any]] | None,
    side: BadCase | None,
    message: str,
) -> None:
    path = write_csv(tmp_path / "in.csv", rows or GOOD)
    kwargs = side(tmp_path) if side else {}
    with pytest.raises(ValueError, match=message):
        import_interactions(ctx_for(settings), path, **kwargs)
    assert not lake.list_partitions(settings, C.RAW_EVENTS)  # nothing half-imported


def test_generic_empty_and_unsupported_files(settings: Settings, tmp_path: Path) -> None:
    header_only = tmp_path / "empty.csv"
    header_only.write_text("user_id,item_id,timestamp,event_type\n")
    with pytest.raises(ValueError, match=r"empty\.csv: the interactions file has no rows"):
        import_interactions(ctx_for(settings), header_only)
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    with pytest.raises(ValueError, match=r"blank\.csv: the file is empty"):
        import_interactions(ctx_for(settings), blank)
    json_file = tmp_path / "log.json"
    json_file.write_text("[]")
    with pytest.raises(ValueError, match=r"log\.json: unsupported file type"):
        import_interactions(ctx_for(settings), json_file)
    zero = write_csv(tmp_path / "zero.csv", _with(event_type=None, weight=[0, -1]))
    with pytest.raises(ValueError, match=r"zero\.csv: every row has weight <= 0"):
        import_interactions(ctx_for(settings), zero)
    good = write_csv(tmp_path / "good.csv", GOOD)
    with pytest.raises(ValueError, match=r"good\.csv: no interactions in 2025-01-01"):
        import_interactions(ctx_for(settings), good, start="2025-01-01", end="2025-01-31")
    with pytest.raises(ValueError, match="start must look like YYYY-MM-DD"):
        import_interactions(ctx_for(settings), good, start="soon")


def test_generic_epoch_seconds_and_float_ids(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "ml.csv",
        {"user_id": [1.0, 2.0], "item_id": [7, 8], "timestamp": [1709283600, 1709370000],
         "weight": [4, 5]},
    )  # fmt: skip
    summary = import_interactions(ctx_for(settings), path)
    assert summary["ids"]["users"] == {"mapped": False}
    ev = pd.concat([frame(settings, C.RAW_EVENTS, d) for d in (M1, M2)], ignore_index=True)
    assert ev["ts"].tolist() == [
        pd.Timestamp("2024-03-01T09:00:00Z"),
        pd.Timestamp("2024-03-02T09:00:00Z"),
    ]
    assert ev["event_type"].tolist() == ["add_to_bag", "purchase"]
    assert ev["user_id"].tolist() == [1, 2]


def test_run_import_dispatches_and_refuses_bad_combinations(
    settings: Settings, tmp_path: Path, uci_file: Path
) -> None:
    path = write_csv(tmp_path / "good.csv", GOOD)
    summary = run_import(settings, "interactions", path, end="2024-03-01")
    assert summary["adapter"] == "interactions" and summary["kept"] == 2
    assert run_import(settings, "uci", uci_file, start=D2, end=D2)["kept"] == 3
    with pytest.raises(ValueError, match="apply to `import interactions` only"):
        run_import(settings, "uci", uci_file, items=path)
    with pytest.raises(ValueError, match="unknown import source 'movielens'"):
        run_import(settings, "movielens", path)
