"""Validation building blocks: specs, frame conversion, derived check columns (pure,
no GX), and check_frame on small frames with one shared in-memory GX session."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ranking_jobs import contracts as C
from ranking_jobs.lake import MissingPartitionError
from ranking_jobs.validation import (
    DataValidationError,
    MissingDataPartitionError,
    Rule,
    SuiteSpec,
    check_frame,
)
from ranking_jobs.validation import lists as L
from ranking_jobs.validation import raw as R
from ranking_jobs.validation import training as T
from ranking_jobs.validation.engine import raise_for
from ranking_jobs.validation.frames import to_frame
from ranking_jobs.validation.spec import between, in_set, kind_of, not_null, schema_rules

START = dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
END = START + dt.timedelta(days=1)


# ------------------------------------------------------------------- pure helpers


def test_errors_are_value_errors_and_missing_partitions_stay_catchable() -> None:
    assert issubclass(DataValidationError, ValueError)
    err = MissingDataPartitionError("raw/events/dt=2026-01-31 missing")
    assert isinstance(err, MissingPartitionError) and isinstance(err, DataValidationError)


def test_schema_rules_follow_the_contract() -> None:
    rules = schema_rules(C.EVENTS_SCHEMA)
    types = {
        r.kwargs["column"]: r.kwargs.get("type_") or r.kwargs.get("type_list")
        for r in rules
        if "type" in r.expectation
    }
    assert set(types) == set(C.EVENTS_SCHEMA.names)
    assert types["ts"] == "Timestamp" and types["event_id"] == "str"
    assert "int32" in types["position"]
    not_null_cols = {r.kwargs["column"] for r in rules if r.expectation.endswith("not_be_null")}
    assert "query" not in not_null_cols and "session_id" in not_null_cols
    assert kind_of(pa.list_(pa.string())) == "list" and kind_of(pa.binary()) is None


def test_to_frame_keeps_kinds_checkable() -> None:
    table = pa.table(
        {
            "i": pa.array([1, None], pa.int64()),
            "j": pa.array([1, 2], pa.int32()),
            "s": ["a", None],
            "l": pa.array([[1], None], pa.list_(pa.int64())),
            "ts": pa.array([START, None], C.TS),
        }
    )
    df = to_frame(table)
    assert str(df["i"].dtype) == "Int64" and str(df["j"].dtype) == "int32"
    assert df["s"].dtype.type is str and df["l"].dtype.type is list
    assert str(df["ts"].dtype) == "datetime64[us, UTC]"


def test_volume_band_from_trailing_median() -> None:
    assert R.volume_rule({}, 0.2, 5.0) is None
    assert R.volume_rule({"2026-01-30": 0}, 0.2, 5.0) is None
    rule = R.volume_rule({"2026-01-28": 90, "2026-01-29": 100, "2026-01-30": 400}, 0.2, 5.0)
    assert rule is not None and rule.expectation == "expect_table_row_count_to_be_between"
    assert rule.kwargs == {"min_value": 20, "max_value": 500}


def test_volume_band_ignores_days_without_events() -> None:
    """A shop closed two days of five: counted, the zeros would halve the median."""
    volumes = {"2026-01-26": 0, "2026-01-27": 100, "2026-01-28": 0, "2026-01-29": 120}
    rule = R.volume_rule({**volumes, "2026-01-30": 80}, 0.2, 5.0)
    assert rule is not None and rule.kwargs == {"min_value": 20, "max_value": 500}
    assert "median 100 of the 3 earlier day(s) with events" in rule.note
    assert "median 100" in rule.note and "3 earlier day(s)" in rule.note


def test_reference_columns_name_the_unknown_ids() -> None:
    events = pd.DataFrame({"item_id": [1, 2, 9], "user_id": [7, 8, 7]})
    out = R.with_reference_columns(
        events, pd.DataFrame({"item_id": [1, 2]}), pd.DataFrame({"user_id": [7]})
    )
    assert out[R.UNKNOWN_ITEM].tolist() == [None, None, 9]
    assert out[R.UNKNOWN_USER].tolist() == [None, 8, None]
    # a missing key column yields no derived column (the schema rule reports it)
    assert R.UNKNOWN_ITEM not in R.with_reference_columns(
        events.drop(columns="item_id"), pd.DataFrame({"item_id": [1]}), pd.DataFrame()
    )


def _lists(item_ids: list, scores: list, users: list | None = None) -> pa.Table:
    users = users or list(range(1, len(item_ids) + 1))
    return pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "item_ids": pa.array(item_ids, pa.list_(pa.int64())),
            "scores": pa.array(scores, pa.list_(pa.float32())),
        }
    )


ITEMS = pa.table(
    {
        "item_id": [10, 11, 12, 13],
        "seller_id": [1, 2, 3, 3],
        "status": ["available", "sold", "available", "available"],
    }
)


@pytest.mark.parametrize("chunk_rows", [1, 2, 200_000])
def test_list_check_columns(monkeypatch: pytest.MonkeyPatch, chunk_rows: int) -> None:
    monkeypatch.setattr(L, "CHUNK_ROWS", chunk_rows)
    table = _lists(
        [[12, 13], [10, 12, 10], [11, 10], [13, 12, 10], None],
        [[0.9, 0.1], [3.0, 2.0, 1.0], [0.5, 0.6], [1.0, 1.0, 2.0], [0.1]],
        users=[1, 2, 3, 3, 5],
    )
    df = L.with_list_checks(table, ITEMS, seller_cap=1, surface_size=2)
    assert df[L.ITEM_IDS_LENGTH].tolist()[:4] == [2, 3, 2, 3]
    assert pd.isna(df[L.ITEM_IDS_LENGTH].iloc[4])
    assert df[L.SCORES_LENGTH].tolist() == [2, 3, 2, 3, 1]
    assert df[L.SCORES_NOT_DESCENDING_AT].tolist() == [None, None, 1, 2, None]
    assert df[L.DUPLICATE_ITEM].tolist() == [None, 10, None, None, None]
    assert df[L.SOLD_ITEM].tolist() == [None, None, 11, None, None]
    assert df[L.OWN_LISTING].tolist() == [None, None, None, 13, None]
    # seller 3 owns 12 and 13: in [13, 12, 10] item 10 (seller 1) could have been second
    # instead of 12, which breaks a cap of 1; [12, 13] holds nothing but seller 3's items,
    # so no order could keep the cap there (not refused, reported apart)
    assert df[L.SELLER_OVER_CAP].tolist() == [None, None, None, 12, None]
    assert df[L.SELLER_CAP_UNMET].tolist() == [13, None, None, None, None]
    relaxed = L.with_list_checks(table, ITEMS, seller_cap=2, surface_size=2)
    assert relaxed[L.SELLER_OVER_CAP].isna().all() and relaxed[L.SELLER_CAP_UNMET].isna().all()


def test_seller_cap_with_one_seller_or_none_is_a_no_op() -> None:
    """An imported log without sellers gives every item seller 0: no list can hold a cap,
    and items of unknown seller (not in raw/items) count for no seller."""
    one_shop = pa.table({"item_id": [10, 11, 12, 13], "seller_id": [0, 0, 0, 0]})
    table = _lists([[10, 11, 12, 13], [13, 99, 12]], [[4.0, 3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    df = L.with_list_checks(table, one_shop, seller_cap=1, surface_size=3)
    assert df[L.SELLER_OVER_CAP].isna().all()
    assert df[L.SELLER_CAP_UNMET].tolist() == [11, 12]
    # a second seller further down the list makes the cap reachable again: refused
    two = pa.table({"item_id": [10, 11, 12, 13], "seller_id": [0, 0, 0, 7]})
    df = L.with_list_checks(table, two, seller_cap=1, surface_size=3)
    assert df[L.SELLER_OVER_CAP].tolist() == [11, None]
    assert df[L.SELLER_CAP_UNMET].tolist() == [None, None]


def test_feature_families_name_model_features() -> None:
    from ranking_jobs.families import MODEL_FEATURES

    assert set(T.FAMILY_OF) <= set(MODEL_FEATURES)
    assert T.FAMILY_OF["ui_days_since"] == "user-item history"
    assert T.FAMILY_OF["seller_sales_30d"] == "seller"
    assert T.FAMILY_OF["user_impressions_7d"] == "impression"


def test_empty_families_drop_their_not_null_rules_and_only_theirs() -> None:
    features = ["ui_days_since", "ui_purchases", "seller_sales_30d", "price"]

    def not_null_notes(spec: SuiteSpec) -> dict[str, str]:
        return {
            r.kwargs["column"]: r.note
            for r in spec.rules
            if r.expectation == "expect_column_values_to_not_be_null"
        }

    strict = not_null_notes(T.features_spec(features))
    assert set(strict) == set(features)
    assert strict["ui_days_since"] == (
        "feature ui_days_since must not be entirely null (user-item history family: "
        "the raw data has what it is computed from)"
    )
    assert strict["price"] == "feature price must not be entirely null"
    excused = not_null_notes(T.features_spec(features, empty={"user-item history": "why"}))
    assert set(excused) == {"seller_sales_30d", "price"}
    [warning] = T.family_warnings({"seller": "raw/items of 2026-01-31 has 1 seller(s)"})
    assert warning == (
        "seller features (seller_sales_30d, seller_conversion_30d) not required tonight: "
        "raw/items of 2026-01-31 has 1 seller(s)"
    )


def test_query_columns() -> None:
    df = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 3, 3],
            "as_of": [START] * 5,
            "label": [2, 0, 1, 1, 0],
            "split": ["train", "train", "valid", "test", "test"],
            "feat": [0.1, 0.2, np.nan, 1.0, 2.0],
            "sources": [1, 2, 0, 4, 4],
            "shown_position": [0.0, np.nan, 3.0, np.nan, 1.0],
        }
    )
    out = T.with_query_columns(df)
    assert out[T.QUERY_SIZE].tolist() == [2, 2, 1, 2, 2]
    assert out[T.SPLIT_WITHOUT_POSITIVE].tolist() == [None, None, "valid", "test", "test"]
    assert T.feature_columns(pa.Schema.from_pandas(df, preserve_index=False)) == ["feat"]


def test_feature_extremes_keep_infinities_and_mark_empty_features() -> None:
    df = pd.DataFrame(
        {
            "a": [0.5, np.nan, -2.0],
            "b": pd.array([None, None, None], dtype="Float32"),
            "c": [1.0, np.inf, 3.0],
            "n": pd.array([4, None, 7], dtype="Int64"),
        }
    )
    table = pa.Table.from_pandas(df, preserve_index=False)
    # streamed in batches: the middle one holds no value of "a" or "n"
    extremes = T.FeatureExtremes(list(df))
    for batch in (table.slice(0, 1), table.slice(1, 1), table.slice(2)):
        extremes.add(batch)
    got = extremes.frame()
    assert got.loc["min", "a"] == -2.0 and got.loc["max", "a"] == 0.5
    assert got["b"].isna().all()  # entirely null: the not-null rule fails on it
    assert got.loc["max", "c"] == np.inf  # the finiteness rule fails on it
    assert got["n"].tolist() == [4.0, 7.0]


# ------------------------------------------------------------- check_frame (GX)


def _valid_frames() -> dict[str, pd.DataFrame]:
    n = 6
    events = pa.table(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "ts": pa.array([START + dt.timedelta(hours=3 * i) for i in range(n)], C.TS),
            "user_id": pa.array([1, 2, 1, 2, 1, 2], pa.int64()),
            "item_id": pa.array([10, 11, 12, 10, 11, 12], pa.int64()),
            "event_type": ["impression", "click", "like", "save", "add_to_bag", "purchase"],
            "surface": ["home", "search", "similar", "home", "search", "similar"],
            "query": [None, "dress", None, None, "boots", None],
            "position": pa.array([0, 1, 2, 3, 4, 5], pa.int32()),
            "session_id": ["s1"] * n,
        }
    )
    items = pa.table(
        {
            "item_id": pa.array([10, 11, 12], pa.int64()),
            "seller_id": pa.array([3, 3, 4]),
            "category": ["a"] * 3,
            "subcategory": ["b"] * 3,
            "brand": ["c"] * 3,
            "size": ["M"] * 3,
            "condition": ["good", "very_good", "new_with_tags"],
            "colour": ["red"] * 3,
            "style": ["boho"] * 3,
            "price": [10.0, 20.0, 5.5],
            "currency": ["EUR"] * 3,
            "listed_at": pa.array([START - dt.timedelta(days=2)] * 3, C.TS),
            "sold_at": pa.array([None, START, None], C.TS),
            "status": ["available", "sold", "available"],
        }
    )
    users = pa.table(
        {
            "user_id": pa.array([1, 2, 3, 4], pa.int64()),
            "signed_up_at": pa.array([START - dt.timedelta(days=9)] * 4, C.TS),
            "country": ["FR", "DE", "FR", "IT"],
            "declared_size": ["M", None, "S", "L"],
            "declared_styles": pa.array([["boho"], None, [], ["street"]], pa.list_(pa.string())),
        }
    )
    return {"events": to_frame(events), "items": to_frame(items), "users": to_frame(users)}


SPECS = {
    "events": lambda: R.events_spec(START, END, min_referential_integrity=0.99),
    "items": lambda: R.items_spec(END),
    "users": lambda: R.users_spec(END),
}


def _check(kind: str, df: pd.DataFrame) -> Any:
    if kind == "events":
        frames = _valid_frames()
        df = R.with_reference_columns(df, frames["items"], frames["users"])
    return check_frame(df, SPECS[kind](), f"raw/{kind}", location=f"lake/raw/{kind}/dt=x")


@pytest.mark.parametrize("kind", ["events", "items", "users"])
def test_valid_frames_pass(kind: str) -> None:
    summary = _check(kind, _valid_frames()[kind])
    assert summary.success, summary.message()
    assert summary.failures == [] and summary.evaluated > 10
    json.dumps(summary.to_dict())


def _assign(column: str, row: int, value: Any):
    def mutate(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        if df[column].dtype == object or isinstance(df[column].dtype, pd.ArrowDtype):
            df[column] = df[column].astype(object)
        df.loc[row, column] = value
        return df

    return mutate


FRAME_CASES = {
    "naive ts": (
        "events",
        lambda d: d.assign(ts=d["ts"].dt.tz_localize(None)),
        "expect_column_values_to_be_of_type",
        "ts",
        "observed datetime64",
    ),
    "unknown surface": (
        "events",
        _assign("surface", 0, "email"),
        "expect_column_values_to_be_in_set",
        "surface",
        "['email']",
    ),
    "ts before the day": (
        "events",
        _assign("ts", 1, START - dt.timedelta(seconds=1)),
        "expect_column_values_to_be_between",
        "ts",
        "2026-01-30T23:59:59",
    ),
    "unknown user beyond threshold": (
        "events",
        _assign("user_id", 1, 99),
        "expect_column_values_to_be_null",
        R.UNKNOWN_USER,
        "[99]",
    ),
    "position as text": (
        "events",
        lambda d: d.assign(position=d["position"].astype(str)),
        "expect_column_values_to_be_in_type_list",
        "position",
        "['0', '1'",
    ),
    "unknown condition": (
        "items",
        _assign("condition", 2, "mint"),
        "expect_column_values_to_be_in_set",
        "condition",
        "['mint']",
    ),
    "unknown status": (
        "items",
        _assign("status", 0, "deleted"),
        "expect_column_values_to_be_in_set",
        "status",
        "['deleted']",
    ),
    "negative price": (
        "items",
        _assign("price", 1, -3.0),
        "expect_column_values_to_be_between",
        "price",
        "[-3.0]",
    ),
    "duplicate item_id": (
        "items",
        _assign("item_id", 1, 10),
        "expect_column_values_to_be_unique",
        "item_id",
        "[10, 10]",
    ),
    "listed in the future": (
        "items",
        _assign("listed_at", 0, END),
        "expect_column_values_to_be_between",
        "listed_at",
        "2026-02-01",
    ),
    "duplicate user_id": (
        "users",
        _assign("user_id", 3, 1),
        "expect_column_values_to_be_unique",
        "user_id",
        "[1, 1]",
    ),
    "declared_styles not a list": (
        "users",
        lambda d: d.assign(declared_styles=["boho", None, "x", "y"]),
        "expect_column_values_to_be_of_type",
        "declared_styles",
        "'boho'",
    ),
    "missing column": (
        "users",
        lambda d: d.drop(columns="country"),
        "expect_column_to_exist",
        "country",
        "the column is missing",
    ),
}


@pytest.mark.parametrize("case", list(FRAME_CASES))
def test_broken_frames_fail_with_rule_column_and_examples(case: str) -> None:
    kind, mutate, expectation, column, example = FRAME_CASES[case]
    summary = _check(kind, mutate(_valid_frames()[kind]))
    assert not summary.success
    message = summary.message()
    assert f"{expectation} on column '{column}'" in message, message
    assert example in message, message
    assert f"lake/raw/{kind}/dt=x" in message
    with pytest.raises(DataValidationError) as info:
        summary.raise_for_failures()
    assert expectation in str(info.value) and column in str(info.value)
    json.dumps(summary.to_dict())


def test_missing_column_is_reported_once_and_its_rules_skipped() -> None:
    spec = SuiteSpec("t", [not_null("a"), between("a", "a >= 0", min_value=0), not_null("b")])
    summary = check_frame(pd.DataFrame({"b": [1, 2]}), spec, "t")
    assert [(f.expectation, f.column) for f in summary.failures] == [
        ("expect_column_to_exist", "a")
    ]
    assert len(summary.skipped) == 2


def test_metric_errors_become_failures_not_exceptions() -> None:
    spec = SuiteSpec("t", [between("s", "s > 0", min_value=0, strict_min=True)])
    summary = check_frame(pd.DataFrame({"s": ["a", "b"]}), spec, "t")
    assert not summary.success
    assert "could not be evaluated" in summary.failures[0].describe()


def test_mostly_threshold_and_table_rules() -> None:
    df = pd.DataFrame({"x": [None] * 99 + [5]})
    spec = SuiteSpec(
        "t",
        [
            Rule("expect_column_values_to_be_null", {"column": "x", "mostly": 0.99}),
            in_set("x", [5]),
            R.volume_rule({"d": 1000}, 0.2, 5.0),
        ],
    )
    summary = check_frame(df, spec, "t")
    assert [f.expectation for f in summary.failures] == ["expect_table_row_count_to_be_between"]
    assert summary.failures[0].observed == 100 and summary.failures[0].column == "table"


def test_raise_for_combines_tables_and_points_at_data_docs() -> None:
    bad = check_frame(pd.DataFrame({"a": [1, None]}), SuiteSpec("t1", [not_null("a")]), "t1")
    good = check_frame(pd.DataFrame({"a": [1]}), SuiteSpec("t2", [not_null("a")]), "t2")
    raise_for("nothing", [good])
    with pytest.raises(DataValidationError) as info:
        raise_for("validate_x failed", [bad, good], data_docs="/x/index.html")
    assert "t1" in str(info.value) and "t2" not in str(info.value).split("failed", 1)[1]
    assert str(info.value).endswith("Data Docs: /x/index.html")
    assert len(info.value.summaries) == 2 and len(info.value.failures) == 1
