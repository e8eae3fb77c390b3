"""The three validation stages on a real (tmp_path) lake: a valid tiny day passes,
and every broken input is refused with a message naming the rule and the column."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.settings import Settings
from ranking_jobs.validation import (
    DataValidationError,
    MissingDataPartitionError,
    validate_lists,
    validate_raw,
    validate_training_set,
)

DS = dt.date(2026, 1, 31)
START = dt.datetime.combine(DS, dt.time(), tzinfo=dt.UTC)
Columns = dict[str, list[Any] | pa.Array]


# ----------------------------------------------------------------------------- data


def raw_columns(day: dt.date = DS, n_events: int = 24) -> dict[str, Columns]:
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    users: Columns = {
        "user_id": [1, 2, 3, 4, 5],
        "signed_up_at": [start - dt.timedelta(days=30 + i) for i in range(5)],
        "country": ["FR", "DE", "IT", "ES", "NL"],
        "declared_size": ["M", None, "S", "L", "M"],
        "declared_styles": [["boho"], [], None, ["street", "vintage"], ["classic"]],
    }
    items: Columns = {
        "item_id": [101, 102, 103, 104, 105, 106],
        "seller_id": [5, 5, 4, 4, 3, 3],
        "category": ["dresses", "dresses", "shoes", "bags", "tops", "tops"],
        "subcategory": ["midi", "maxi", "boots", "tote", "tee", "shirt"],
        "brand": ["a", "b", "c", "d", "e", "f"],
        "size": ["M", "S", "38", "one", "L", "M"],
        "condition": ["new_with_tags", "very_good", "good", "satisfactory", "good", "good"],
        "colour": ["red", "blue", "black", "tan", "white", "green"],
        "style": ["boho", "classic", "street", "classic", "street", "vintage"],
        "price": [25.0, 40.0, 60.0, 35.5, 9.99, 12.0],
        "currency": ["EUR"] * 6,
        "listed_at": [start - dt.timedelta(days=i + 1) for i in range(6)],
        "sold_at": [None] * 5 + [start + dt.timedelta(hours=3)],
        "status": ["available"] * 5 + ["sold"],
    }
    types = C.EVENT_TYPES
    events: Columns = {
        "event_id": [f"{day}-e{i}" for i in range(n_events)],
        "ts": [start + dt.timedelta(minutes=37 * i) for i in range(n_events)],
        "user_id": [1 + i % 4 for i in range(n_events)],
        "item_id": [101 + i % 5 for i in range(n_events)],
        "event_type": [types[i % len(types)] for i in range(n_events)],
        "surface": [C.SURFACES[i % 3] for i in range(n_events)],
        "query": ["dress" if i % 3 == 1 else None for i in range(n_events)],
        "position": [i % 10 for i in range(n_events)],
        "session_id": [f"s{i % 6}" for i in range(n_events)],
    }
    return {C.RAW_EVENTS: events, C.RAW_ITEMS: items, C.RAW_USERS: users}


def to_table(columns: Columns, schema: pa.Schema) -> pa.Table:
    """Arrow table with the contract's types where the values allow, inferred otherwise."""
    arrays = {}
    for name, values in columns.items():
        if isinstance(values, pa.Array):
            arrays[name] = values
            continue
        typ = schema.field(name).type if name in schema.names else None
        try:
            arrays[name] = pa.array(values, type=typ)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[name] = pa.array(values)
    return pa.table(arrays)


def write_raw(settings: Settings, day: dt.date, tables: dict[str, Columns]) -> None:
    for table, columns in tables.items():
        lake.write_partition(settings, table, day, to_table(columns, C.RAW_SCHEMAS[table]))


def lists_columns() -> Columns:
    return {
        "user_id": [1, 2, 3, 4],
        "item_ids": [[101, 102, 103], [103, 101], [101, 104, 102], [105, 102]],
        "scores": [[0.9, 0.5, 0.1], [2.0, 1.0], [0.3, 0.3, 0.2], [1.5, -0.5]],
        "model_version": ["v7"] * 4,
        "run_id": ["manual__2026-01-31"] * 4,
        "generated_at": [START + dt.timedelta(hours=5)] * 4,
        "event_timestamp": [START + dt.timedelta(days=1)] * 4,
    }


def training_columns() -> Columns:
    rows: dict[str, list[Any]] = {
        k: []
        for k in ("user_id", "item_id", "as_of", "label", "split", "feat_a", "feat_b", "category")
    }
    for d, split in enumerate(("train", "train", "valid", "test")):
        as_of = START - dt.timedelta(days=3 - d)
        for user in (1, 2, 3):
            for j, item in enumerate((101, 102, 103)):
                rows["user_id"].append(user)
                rows["item_id"].append(item)
                rows["as_of"].append(as_of)
                rows["label"].append(5 if (j == 0 and user == 1) else j % 2)
                rows["split"].append(split)
                rows["feat_a"].append(None if j == 2 else 0.1 * (user + j))
                rows["feat_b"].append(user * 10 + j)
                rows["category"].append("dresses")
    return rows


def training_table(columns: Columns) -> pa.Table:
    schema = pa.schema(
        [
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("as_of", C.TS),
            ("label", pa.int64()),
            ("split", pa.string()),
            ("feat_a", pa.float64()),
            ("feat_b", pa.int32()),
        ]
    )
    return to_table(columns, schema)


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    settings = Settings(data_root=str(tmp_path / "lake"), state_dir=tmp_path / "var")
    return RunContext.create(DS, settings)


@pytest.fixture
def valid_day(ctx: RunContext) -> RunContext:
    write_raw(ctx.settings, DS, raw_columns())
    return ctx


# ------------------------------------------------------------------------ valid data


def test_valid_raw_day_passes_and_writes_data_docs(valid_day: RunContext) -> None:
    result = validate_raw(valid_day)
    assert result["success"] is True
    assert set(result["tables"]) == {C.RAW_EVENTS, C.RAW_ITEMS, C.RAW_USERS}
    assert result["tables"][C.RAW_EVENTS]["rows"] == 24
    assert result["tables"][C.RAW_EVENTS]["failures"] == []
    assert result["trailing_event_volumes"] == {}
    index = Path(result["data_docs"])
    assert index == valid_day.settings.paths.reports_dir / "data_docs" / "index.html"
    assert index.is_file() and "raw_events" in index.read_text()
    json.dumps(result)  # JSON-able for the stage summary


def test_rerun_and_later_days_keep_earlier_pages_in_the_site(valid_day: RunContext) -> None:
    first = validate_raw(valid_day)
    site = Path(first["data_docs"]).parent
    pages_before = {p.relative_to(site) for p in site.rglob("*.html")}
    write_raw(valid_day.settings, DS + dt.timedelta(days=1), raw_columns(DS + dt.timedelta(days=1)))
    second = validate_raw(RunContext.create(DS + dt.timedelta(days=1), valid_day.settings))
    assert second["trailing_event_volumes"] == {DS.isoformat(): 24}
    pages_after = {p.relative_to(site) for p in site.rglob("*.html")}
    assert pages_before <= pages_after and len(pages_after) > len(pages_before)


def test_valid_lists_pass(valid_day: RunContext) -> None:
    lake.write_partition(
        valid_day.settings,
        C.RECOMMENDATIONS,
        DS,
        to_table(lists_columns(), C.RECOMMENDATIONS_SCHEMA),
    )
    result = validate_lists(valid_day)
    assert result["success"] and result["tables"][C.RECOMMENDATIONS]["rows"] == 4
    assert result["warnings"] == []


def test_valid_training_set_passes(ctx: RunContext) -> None:
    lake.write_partition(ctx.settings, C.TRAINING, DS, training_table(training_columns()))
    result = validate_training_set(ctx)
    assert result["success"]
    assert result["features"] == ["feat_a", "feat_b"]


def test_an_optional_feature_may_be_entirely_null(ctx: RunContext) -> None:
    """A shop without size charts has no size distance: that is not a broken join."""
    table = training_table(training_columns())
    table = table.append_column("size_distance", pa.nulls(table.num_rows, pa.float64()))
    lake.write_partition(ctx.settings, C.TRAINING, DS, table)
    result = validate_training_set(ctx)
    assert result["success"] and "size_distance" in result["features"]


def _without_user_item_history(table: pa.Table) -> pa.Table:
    for column in ("ui_engagements", "ui_days_since"):
        table = table.append_column(column, pa.nulls(table.num_rows, pa.float64()))
    return table


def test_user_item_history_of_a_purchase_only_log_is_warned_not_refused(
    ctx: RunContext,
) -> None:
    """Every engagement a purchase (beside impressions) and bought items never candidates:
    no training row has a user-item history. A log with clicks has one, so there the
    empty family is a broken join."""
    tables = raw_columns()
    tables[E]["event_type"] = ["impression", "purchase"] * 12
    write_raw(ctx.settings, DS, tables)
    table = _without_user_item_history(training_table(training_columns()))
    lake.write_partition(ctx.settings, C.TRAINING, DS, table)
    result = validate_training_set(ctx)
    assert result["success"]
    assert result["warnings"] == [
        "user-item history features (ui_engagements, ui_purchases, ui_days, ui_span_days, "
        "ui_days_since) not required "
        "tonight: every engagement in the 30 days up to 2026-01-31 is a purchase and "
        "exclude_purchased keeps bought items out of the candidates"
    ]

    clicks = raw_columns()
    write_raw(ctx.settings, DS, clicks)
    with pytest.raises(DataValidationError) as info:
        validate_training_set(ctx)
    message = str(info.value)
    for column in ("ui_engagements", "ui_days_since"):
        assert f"not_be_null on column '{column}': 2 of 2 rows unexpected" in message, message
        assert (
            f"[feature {column} must not be entirely null (user-item history family: the raw "
            "data has what it is computed from)]"
        ) in message, message
    # with bought items among the candidates (a repurchase shop) the family is required
    rebuy = ctx.settings.replace(exclude_purchased=False)
    write_raw(ctx.settings, DS, tables)
    with pytest.raises(DataValidationError, match="ui_days_since"):
        validate_training_set(RunContext.create(DS, rebuy))


def test_a_log_without_sellers_impressions_or_profiles_names_those_families(
    ctx: RunContext,
) -> None:
    tables = raw_columns()
    tables[E]["event_type"] = ["click", "like", "purchase"] * 8
    tables[IT]["seller_id"] = [0] * 6
    tables[U]["declared_size"] = [None] * 5
    tables[U]["declared_styles"] = [None, [], None, [], None]
    write_raw(ctx.settings, DS, tables)
    lake.write_partition(ctx.settings, C.TRAINING, DS, training_table(training_columns()))
    warnings = validate_training_set(ctx)["warnings"]
    assert [w.split(" features (")[0] for w in warnings] == [
        "seller",
        "impression",
        "declared profile",
    ]
    assert warnings[0].endswith("not required tonight: raw/items of 2026-01-31 has 1 seller(s)")
    assert "(impressions_1d, impressions_7d" in warnings[1]
    assert warnings[1].endswith("raw/events has no impression in the 30 days up to 2026-01-31")
    # the full raw day has all of them: nothing to warn about
    write_raw(ctx.settings, DS, raw_columns())
    assert validate_training_set(ctx)["warnings"] == []


def test_stage_registry_runs_validation(valid_day: RunContext) -> None:
    from ranking_jobs.runner import run_stage

    assert run_stage("validate_raw", valid_day)["success"] is True


# ---------------------------------------------------------------------- broken raw


def _set(table: str, column: str, index: int, value: Any) -> Callable[[dict], None]:
    def mutate(tables: dict[str, Columns]) -> None:
        tables[table][column][index] = value

    return mutate


def _drop(table: str, column: str) -> Callable[[dict], None]:
    return lambda tables: tables[table].pop(column)


def _replace(table: str, column: str, fn: Callable[[list], Any]) -> Callable[[dict], None]:
    def mutate(tables: dict[str, Columns]) -> None:
        tables[table][column] = fn(tables[table][column])

    return mutate


def _truncate_events(n: int) -> Callable[[dict], None]:
    def mutate(tables: dict[str, Columns]) -> None:
        tables[C.RAW_EVENTS] = {k: v[:n] for k, v in tables[C.RAW_EVENTS].items()}

    return mutate


E, IT, U = C.RAW_EVENTS, C.RAW_ITEMS, C.RAW_USERS
RAW_CASES = {
    "missing column": (_drop(E, "surface"), "expect_column_to_exist", "surface", None),
    "wrong type (price as text)": (
        _replace(IT, "price", lambda v: [str(x) for x in v]),
        "expect_column_values_to_be_in_type_list",
        "price",
        "observed str, e.g. ['25.0'",
    ),
    "null required column": (
        _set(E, "session_id", 3, None),
        "expect_column_values_to_not_be_null",
        "session_id",
        None,
    ),
    "unknown event_type": (
        _set(E, "event_type", 2, "view"),
        "expect_column_values_to_be_in_set",
        "event_type",
        "'view'",
    ),
    "negative position": (
        _set(E, "position", 5, -1),
        "expect_column_values_to_be_between",
        "position",
        "-1",
    ),
    "non-positive price": (
        _set(IT, "price", 2, 0.0),
        "expect_column_values_to_be_between",
        "price",
        "0.0",
    ),
    "ts after the day": (
        _set(E, "ts", 4, START + dt.timedelta(days=1)),
        "expect_column_values_to_be_between",
        "ts",
        "2026-02-01T00:00:00+00:00",
    ),
    "duplicate event_id": (
        _set(E, "event_id", 1, "2026-01-31-e0"),
        "expect_column_values_to_be_unique",
        "event_id",
        "2026-01-31-e0",
    ),
    "events reference unknown items beyond threshold": (
        _set(E, "item_id", 7, 999),
        "expect_column_values_to_be_null",
        "item_id_not_in_raw_items",
        "999",
    ),
    "empty events partition": (
        _truncate_events(0),
        "expect_table_row_count_to_be_between",
        "table",
        "raw/events/dt=2026-01-31",
    ),
}


@pytest.mark.parametrize("case", list(RAW_CASES))
def test_broken_raw_input_is_refused(ctx: RunContext, case: str) -> None:
    mutate, expectation, column, example = RAW_CASES[case]
    tables = raw_columns()
    mutate(tables)
    write_raw(ctx.settings, DS, tables)
    with pytest.raises(DataValidationError) as info:
        validate_raw(ctx)
    message = str(info.value)
    assert expectation in message and column in message, message
    failing = [f for f in info.value.failures if f.expectation == expectation]
    assert any(f.column == column for f in failing), message
    if example is not None:
        assert example in message, message
    assert "Data Docs: " in message and Path(info.value.data_docs).is_file()


def test_referential_integrity_below_threshold_passes(ctx: RunContext) -> None:
    """One unknown item in 24 events is fine at a 0.9 threshold and refused at 0.99."""
    tables = raw_columns()
    tables[E]["item_id"][7] = 999
    write_raw(ctx.settings, DS, tables)
    lenient = RunContext.create(DS, ctx.settings.replace(min_referential_integrity=0.9))
    assert validate_raw(lenient)["success"]
    with pytest.raises(DataValidationError, match="item_id_not_in_raw_items"):
        validate_raw(ctx)


def test_missing_partition_names_the_path(ctx: RunContext) -> None:
    tables = raw_columns()
    for table in (E, IT):
        lake.write_partition(ctx.settings, table, DS, to_table(tables[table], C.RAW_SCHEMAS[table]))
    with pytest.raises(MissingDataPartitionError) as info:
        validate_raw(ctx)
    assert isinstance(info.value, DataValidationError)
    assert isinstance(info.value, lake.MissingPartitionError)
    assert lake.partition_uri(ctx.settings, U, DS) in str(info.value)


def test_volume_collapse_against_trailing_days(ctx: RunContext) -> None:
    for back in (1, 2, 3):
        day = DS - dt.timedelta(days=back)
        lake.write_partition(ctx.settings, E, day, to_table(raw_columns(day)[E], C.EVENTS_SCHEMA))
    tables = raw_columns(n_events=3)
    write_raw(ctx.settings, DS, tables)
    with pytest.raises(DataValidationError) as info:
        validate_raw(ctx)
    message = str(info.value)
    assert "expect_table_row_count_to_be_between" in message and "day volume" in message
    assert "observed 3" in message and "median 24" in message, message


def test_volume_within_band_passes(ctx: RunContext) -> None:
    day = DS - dt.timedelta(days=1)
    lake.write_partition(ctx.settings, E, day, to_table(raw_columns(day, 40)[E], C.EVENTS_SCHEMA))
    write_raw(ctx.settings, DS, raw_columns(n_events=24))
    assert validate_raw(ctx)["trailing_event_volumes"] == {day.isoformat(): 40}


def test_days_without_events_are_allowed_before_the_night_but_not_as_its_day(
    ctx: RunContext,
) -> None:
    """A shop closed on the day before: that day's empty partition neither fails the
    night after it nor lowers its volume band; a night on the closed day is refused."""
    closed, open_day = DS - dt.timedelta(days=1), DS - dt.timedelta(days=2)
    write_raw(ctx.settings, open_day, raw_columns(open_day, 30))
    empty = raw_columns(closed)
    _truncate_events(0)(empty)
    write_raw(ctx.settings, closed, empty)
    write_raw(ctx.settings, DS, raw_columns(n_events=24))
    result = validate_raw(ctx)
    assert result["trailing_event_volumes"] == {open_day.isoformat(): 30, closed.isoformat(): 0}
    assert result["tables"][E]["failures"] == []  # band 6..150 from the open day alone
    with pytest.raises(DataValidationError) as info:
        validate_raw(RunContext.create(closed, ctx.settings))
    message = str(info.value)
    assert "validate_raw for dt=2026-01-30" in message, message
    assert "expect_table_row_count_to_be_between on table: observed 0" in message, message
    assert "the night's day 2026-01-30 must have events" in message, message


# --------------------------------------------------------------------- broken lists


def _list_set(column: str, row: int, value: Any) -> Callable[[Columns], None]:
    def mutate(cols: Columns) -> None:
        cols[column][row] = value

    return mutate


LIST_CASES = {
    "unsorted scores": (
        _list_set("scores", 0, [0.1, 0.5, 0.9]),
        "expect_column_values_to_be_null",
        "scores_not_descending_at",
        "[1]",
    ),
    "duplicate item in a list": (
        _list_set("item_ids", 0, [101, 102, 101]),
        "expect_column_values_to_be_null",
        "item_ids_duplicate",
        "[101]",
    ),
    "sold item in a list": (
        _list_set("item_ids", 1, [103, 106]),
        "expect_column_values_to_be_null",
        "item_ids_sold",
        "[106]",
    ),
    "own listing in a list": (
        _list_set("item_ids", 3, [103, 102]),
        "expect_column_values_to_be_null",
        "item_ids_own_listing",
        "[103]",
    ),
    "list longer than top_n": (
        lambda c: (
            c["item_ids"].__setitem__(0, [101, 102, 103, 104]),
            c["scores"].__setitem__(0, [4.0, 3.0, 2.0, 1.0]),
        ),
        "expect_column_values_to_be_between",
        "item_ids_length",
        "[4]",
    ),
    "empty list": (
        lambda c: (c["item_ids"].__setitem__(1, []), c["scores"].__setitem__(1, [])),
        "expect_column_values_to_be_between",
        "item_ids_length",
        "[0]",
    ),
    "unequal lengths": (
        _list_set("scores", 2, [0.3, 0.2]),
        "expect_column_pair_values_to_be_equal",
        "item_ids_length",
        None,
    ),
    "duplicate user": (
        _list_set("user_id", 1, 1),
        "expect_column_values_to_be_unique",
        "user_id",
        "[1, 1]",
    ),
    "null user": (
        _list_set("user_id", 1, None),
        "expect_column_values_to_not_be_null",
        "user_id",
        None,
    ),
    "empty model_version": (
        _list_set("model_version", 2, ""),
        "expect_column_value_lengths_to_be_between",
        "model_version",
        "['']",
    ),
}


@pytest.mark.parametrize("case", list(LIST_CASES))
def test_broken_lists_are_refused(valid_day: RunContext, case: str) -> None:
    mutate, expectation, column, example = LIST_CASES[case]
    cols = lists_columns()
    mutate(cols)
    settings = valid_day.settings.replace(top_n=3)
    lake.write_partition(settings, C.RECOMMENDATIONS, DS, to_table(cols, C.RECOMMENDATIONS_SCHEMA))
    with pytest.raises(DataValidationError) as info:
        validate_lists(RunContext.create(DS, settings))
    message = str(info.value)
    assert expectation in message and column in message, message
    assert "recommendations/dt=2026-01-31" in message
    if example is not None:
        assert example in message, message


def test_a_seller_past_its_cap_near_the_top_is_refused(valid_day: RunContext) -> None:
    cols = lists_columns()
    cols["item_ids"][2], cols["scores"][2] = [101, 104], [0.3, 0.2]
    settings = valid_day.settings.replace(seller_cap=1, surface_size=2)
    lake.write_partition(settings, C.RECOMMENDATIONS, DS, to_table(cols, C.RECOMMENDATIONS_SCHEMA))
    with pytest.raises(DataValidationError) as info:
        validate_lists(RunContext.create(DS, settings))
    message = str(info.value)
    # list 0 is [101, 102, 103]: 101 and 102 are both seller 5's, in the first two
    assert "'item_ids_seller_over_cap': 1 of 4 rows unexpected" in message, message
    assert "e.g. [102] [at most 1 items of one seller among the first 2" in message, message
    wider = settings.replace(surface_size=1)
    assert validate_lists(RunContext.create(DS, wider))["success"]


def test_a_catalogue_of_one_seller_makes_the_cap_a_no_op(ctx: RunContext) -> None:
    """An imported log without sellers (every item seller 0): no list can hold a cap of 1
    among its first 2, so the lists pass and the summary says the cap was not applied."""
    tables = raw_columns()
    tables[IT]["seller_id"] = [0] * 6
    write_raw(ctx.settings, DS, tables)
    settings = ctx.settings.replace(seller_cap=1, surface_size=2)
    lake.write_partition(
        settings, C.RECOMMENDATIONS, DS, to_table(lists_columns(), C.RECOMMENDATIONS_SCHEMA)
    )
    result = validate_lists(RunContext.create(DS, settings))
    assert result["success"]
    assert result["warnings"] == [
        "seller cap not applied to 4 of 4 lists: their items come from too few sellers for 1 "
        "per seller among the first 2 (raw/items of 2026-01-31 has 1 seller(s))"
    ]


def test_lists_may_not_cover_far_fewer_active_users_than_the_previous_run(
    valid_day: RunContext,
) -> None:
    settings = valid_day.settings

    def active(day: dt.date, users: range) -> None:
        lake.write_partition(settings, C.FEATURES_USER, day, pa.table({"user_id": list(users)}))

    day_before = DS - dt.timedelta(days=2)
    earlier = {k: v * 3 for k, v in lists_columns().items()}
    earlier["user_id"] = list(range(1, 13))
    lake.write_partition(
        settings, C.RECOMMENDATIONS, day_before, to_table(earlier, C.RECOMMENDATIONS_SCHEMA)
    )
    active(day_before, range(1, 13))  # the previous run covered all of its 12 users
    lake.write_partition(
        settings, C.RECOMMENDATIONS, DS, to_table(lists_columns(), C.RECOMMENDATIONS_SCHEMA)
    )
    active(DS, range(1, 11))  # tonight: lists for 4 of 10 active users
    with pytest.raises(DataValidationError) as info:
        validate_lists(valid_day)
    message = str(info.value)
    assert "expect_column_sum_to_be_between" in message and "user_is_active" in message
    assert "at least 80% of the 10 active users: 100.0% were covered on" in message, message
    # a quieter night (5 active users, 4 of them with lists) is within the band
    active(DS, range(1, 6))
    assert validate_lists(valid_day)["success"]


def test_lists_need_the_items_snapshot(ctx: RunContext) -> None:
    lake.write_partition(
        ctx.settings, C.RECOMMENDATIONS, DS, to_table(lists_columns(), C.RECOMMENDATIONS_SCHEMA)
    )
    with pytest.raises(MissingDataPartitionError, match="raw/items/dt=2026-01-31"):
        validate_lists(ctx)


# -------------------------------------------------------------- broken training set


def _rows_set(column: str, rows: list[int], value: Any) -> Callable[[Columns], None]:
    def mutate(cols: Columns) -> None:
        for r in rows:
            cols[column][r] = value

    return mutate


def _drop_rows(rows: set[int]) -> Callable[[Columns], None]:
    def mutate(cols: Columns) -> None:
        for k, v in cols.items():
            cols[k] = [x for i, x in enumerate(v) if i not in rows]

    return mutate


TRAINING_CASES = {
    "bad label": (_rows_set("label", [4], 7), "expect_column_values_to_be_between", "label", "[7]"),
    "negative label": (
        _rows_set("label", [4], -1),
        "expect_column_values_to_be_between",
        "label",
        "[-1]",
    ),
    "unknown split": (
        _rows_set("split", [0], "holdout"),
        "expect_column_values_to_be_in_set",
        "split",
        "holdout",
    ),
    "null as_of": (
        _rows_set("as_of", [0], None),
        "expect_column_values_to_not_be_null",
        "as_of",
        None,
    ),
    "singleton query": (
        _drop_rows({1, 2}),
        "expect_column_values_to_be_between",
        "query_size",
        "[1]",
    ),
    "split without a positive query": (
        lambda c: c["label"].__setitem__(slice(18, 27), [1] * 9),
        "expect_column_values_to_be_null",
        "split_without_positive_query",
        "valid",
    ),
    "split without rows": (
        _drop_rows(set(range(18, 27))),
        "expect_column_distinct_values_to_contain_set",
        "split",
        "needs rows in every split ['train', 'valid', 'test']",
    ),
    "feature entirely null": (
        _rows_set("feat_a", list(range(36)), None),
        "expect_column_values_to_not_be_null",
        "feat_a",
        "must not be entirely null",
    ),
    "infinite feature": (
        _rows_set("feat_a", [3], float("-inf")),
        "expect_column_values_to_be_between",
        "feat_a",
        "-inf",
    ),
    "missing label column": (lambda c: c.pop("label"), "expect_column_to_exist", "label", None),
}


@pytest.mark.parametrize("case", list(TRAINING_CASES))
def test_broken_training_set_is_refused(ctx: RunContext, case: str) -> None:
    mutate, expectation, column, example = TRAINING_CASES[case]
    cols = training_columns()
    mutate(cols)
    lake.write_partition(ctx.settings, C.TRAINING, DS, training_table(cols))
    with pytest.raises(DataValidationError) as info:
        validate_training_set(ctx)
    message = str(info.value)
    assert expectation in message and column in message, message
    assert "training/dt=2026-01-31" in message
    if example is not None:
        assert example in message, message
