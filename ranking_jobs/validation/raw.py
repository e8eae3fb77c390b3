"""Suites of the day's raw data: raw/events, raw/items and raw/users at dt=ds."""

from __future__ import annotations

import datetime as dt
import logging
import math
import statistics
from typing import Any

import pandas as pd
import pyarrow as pa

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.settings import Settings
from ranking_jobs.validation.common import finish, read_required, session_for
from ranking_jobs.validation.engine import ValidationSummary
from ranking_jobs.validation.frames import to_frame
from ranking_jobs.validation.spec import (
    Rule,
    SuiteSpec,
    between,
    in_set,
    is_null,
    row_count,
    schema_rules,
    unique,
)

log = logging.getLogger(__name__)

UNKNOWN_ITEM = "item_id_not_in_raw_items"
UNKNOWN_USER = "user_id_not_in_raw_users"


def trailing_volumes(settings: Settings, ds: dt.date) -> dict[str, int]:
    """Row counts of the raw/events partitions present in the window before ``ds``."""
    first = ds - dt.timedelta(days=settings.validation.volume_window_days)
    days = [d for d in lake.list_partitions(settings, C.RAW_EVENTS) if first <= d < ds]
    return {d.isoformat(): lake.partition_rows(settings, C.RAW_EVENTS, d) for d in days}


def volume_rule(volumes: dict[str, int], min_ratio: float, max_ratio: float) -> Rule | None:
    """Day volume within [min_ratio, max_ratio] x the trailing median of the days with
    events (None: no such day). A day without events (a shop closed on Saturdays) is no
    measure of an open day's volume: counted, it would drag the band down to 0."""
    volumes = {day: rows for day, rows in volumes.items() if rows > 0}
    if not volumes:
        return None
    median = statistics.median(volumes.values())
    return row_count(
        f"day volume must be within {min_ratio:g}x..{max_ratio:g}x of the median {median:g} "
        f"of the {len(volumes)} earlier day(s) with events {min(volumes)}..{max(volumes)}",
        min_value=max(1, math.ceil(min_ratio * median)),
        max_value=math.floor(max_ratio * median),
    )


def _day_bounds(column: str, start: dt.datetime, end: dt.datetime) -> Rule:
    return between(
        column,
        f"{column} must fall inside the run's day [{start.isoformat()}, {end.isoformat()})",
        min_value=pd.Timestamp(start),
        max_value=pd.Timestamp(end),
        strict_max=True,
    )


def events_spec(
    start: dt.datetime,
    end: dt.datetime,
    *,
    min_referential_integrity: float,
    volume: Rule | None = None,
) -> SuiteSpec:
    share = f"at least {min_referential_integrity:.2%} of events"
    rules = [
        row_count(
            f"the night's day {start.date().isoformat()} must have events (earlier days "
            "without events are allowed)",
            min_value=1,
        ),
        *schema_rules(C.EVENTS_SCHEMA),
        unique("event_id"),
        in_set("event_type", C.EVENT_TYPES),
        in_set("surface", C.SURFACES),
        between("position", "position must be >= 0", min_value=0),
        _day_bounds("ts", start, end),
        is_null(
            UNKNOWN_ITEM,
            f"{share} must reference an item of that day's raw/items",
            mostly=min_referential_integrity,
        ),
        is_null(
            UNKNOWN_USER,
            f"{share} must reference a user of that day's raw/users",
            mostly=min_referential_integrity,
        ),
    ]
    if volume is not None:
        rules.append(volume)
    return SuiteSpec("raw_events", rules)


def items_spec(end: dt.datetime) -> SuiteSpec:
    return SuiteSpec(
        "raw_items",
        [
            row_count("the snapshot must have items", min_value=1),
            *schema_rules(C.ITEMS_SCHEMA),
            unique("item_id", "item_id is unique within a snapshot"),
            in_set("status", C.ITEM_STATUSES),
            in_set("condition", C.CONDITIONS),
            between("price", "price must be > 0", min_value=0, strict_min=True),
            between(
                "listed_at",
                "listed_at must not be after the day",
                max_value=pd.Timestamp(end),
                strict_max=True,
            ),
        ],
    )


def users_spec(end: dt.datetime) -> SuiteSpec:
    return SuiteSpec(
        "raw_users",
        [
            row_count("the snapshot must have users", min_value=1),
            *schema_rules(C.USERS_SCHEMA),
            unique("user_id"),
            between(
                "signed_up_at",
                "signed_up_at must not be after the day",
                max_value=pd.Timestamp(end),
                strict_max=True,
            ),
        ],
    )


def _unknown(values: pd.Series, known: pd.Series) -> pd.Series:
    """``values`` where they are not in ``known``, else null (GX then lists the bad ids)."""
    hit = values.isin(known.dropna().unique())
    return values.astype(object).where(~hit, None)


def with_reference_columns(
    events: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame
) -> pd.DataFrame:
    """Events plus the referential-integrity columns the events suite asserts on."""
    out = events.copy()
    if "item_id" in events and "item_id" in items:
        out[UNKNOWN_ITEM] = _unknown(events["item_id"], items["item_id"])
    if "user_id" in events and "user_id" in users:
        out[UNKNOWN_USER] = _unknown(events["user_id"], users["user_id"])
    return out


def validate_raw(ctx: RunContext) -> dict[str, Any]:
    """Validate raw/events, raw/items and raw/users of dt=ctx.ds; raise DataValidationError."""
    settings = ctx.settings
    tables: dict[str, pa.Table] = read_required(ctx, list(C.RAW_SCHEMAS), ctx.ds)
    frames = {name: to_frame(t) for name, t in tables.items()}
    volumes = trailing_volumes(settings, ctx.ds)
    volume = volume_rule(
        volumes, settings.validation.volume_min_ratio, settings.validation.volume_max_ratio
    )
    if volume is None:
        log.info("no earlier day with events before %s: volume check skipped", ctx.ds)

    session = session_for(ctx, "validate_raw")
    checks = [
        (
            C.RAW_EVENTS,
            with_reference_columns(frames[C.RAW_EVENTS], frames[C.RAW_ITEMS], frames[C.RAW_USERS]),
            events_spec(
                ctx.start,
                ctx.end,
                volume=volume,
                min_referential_integrity=settings.validation.min_referential_integrity,
            ),
        ),
        (C.RAW_ITEMS, frames[C.RAW_ITEMS], items_spec(ctx.end)),
        (C.RAW_USERS, frames[C.RAW_USERS], users_spec(ctx.end)),
    ]
    summaries: list[ValidationSummary] = [
        session.check(df, spec, table, location=lake.partition_uri(settings, table, ctx.ds))
        for table, df, spec in checks
    ]
    result = finish(ctx, "validate_raw", session, summaries)
    result["trailing_event_volumes"] = volumes
    return result
