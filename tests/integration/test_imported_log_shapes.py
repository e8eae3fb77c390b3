"""Imported logs of legitimate shapes: a shop closed on Saturdays, a log of sales only
without sellers, impressions or profiles. Imported for real, then read by the calendar,
the raw suite and the training-set suite's family rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.calendar import calendar_of
from ranking_jobs.context import RunContext
from ranking_jobs.data.adapters import import_interactions
from ranking_jobs.settings import Settings
from ranking_jobs.validation import DataValidationError, validate_raw
from ranking_jobs.validation.training import empty_families

FIRST = dt.date(2024, 3, 1)  # a Friday
LAST = dt.date(2024, 3, 15)  # a Friday
SATURDAYS = [dt.date(2024, 3, 2), dt.date(2024, 3, 9)]


def shop_log(path: Path, event_types: list[str]) -> Path:
    """Four users a day engage with items 1..6, every day but Saturdays."""
    rows = []
    for offset in range((LAST - FIRST).days + 1):
        day = FIRST + dt.timedelta(days=offset)
        if day in SATURDAYS:
            continue
        for user in range(1, 5):
            for k, event_type in enumerate(event_types):
                ts = dt.datetime.combine(day, dt.time(9 + user, k), tzinfo=dt.UTC)
                item = 1 + (offset * 4 + user + k) % 6
                rows.append((user, item, ts.isoformat(), event_type))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "event_type"])
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_root=str(tmp_path / "lake"),
        state_dir=tmp_path / "var",
        train_days=6,
        label_window_days=1,
        min_history_days=1,
    )


def test_a_shop_closed_on_saturdays_runs_its_other_nights(
    settings: Settings, tmp_path: Path
) -> None:
    log = shop_log(tmp_path / "log.csv", ["impression", "click", "purchase"])
    summary = import_interactions(RunContext.create(LAST, settings), log)
    assert summary["days_without_events"] == [d.isoformat() for d in SATURDAYS]
    assert lake.partition_rows(settings, C.RAW_EVENTS, SATURDAYS[1]) == 0

    # Sunday after a closed Saturday: its volume band comes from the open days only
    sunday = validate_raw(RunContext.create(dt.date(2024, 3, 10), settings))
    assert sunday["success"] and sunday["trailing_event_volumes"]["2024-03-09"] == 0
    with pytest.raises(DataValidationError) as info:
        validate_raw(RunContext.create(SATURDAYS[1], settings))
    assert "the night's day 2024-03-09 must have events" in str(info.value)
    assert "raw/events/dt=2024-03-09" in str(info.value)

    # one-day label windows pass over the closed Saturday: every split has labels
    calendar = calendar_of(RunContext.create(LAST, settings))
    assert [w.first.day for w in calendar.windows] == [7, 8, 10, 11, 12, 13, 14, 15]
    assert [w.split for w in calendar.windows[-2:]] == ["valid", "test"]
    assert calendar.holdout.last == LAST


def test_a_sales_log_without_sellers_leaves_out_what_it_lacks(
    settings: Settings, tmp_path: Path
) -> None:
    sales = shop_log(tmp_path / "sales.csv", ["purchase"])
    import_interactions(RunContext.create(LAST, settings), sales)
    assert empty_families(settings, LAST).keys() == {
        "seller",
        "impression",
        "declared profile",
        "user-item history",
    }
    # where users buy the same items again, bought items stay candidates: history exists
    rebuy = settings.replace(exclude_purchased=False)
    assert "user-item history" not in empty_families(rebuy, LAST)

    clicks = shop_log(tmp_path / "clicks.csv", ["click", "purchase"])
    import_interactions(RunContext.create(LAST, settings), clicks)
    assert empty_families(settings, LAST).keys() == {"seller", "impression", "declared profile"}
