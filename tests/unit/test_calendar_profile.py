"""The night's calendar (which windows and snapshots serve a day) and the settings the
data profile derives."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd
import pyarrow as pa
import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake, profile
from ranking_jobs.calendar import HistoryTooShortError, night_calendar
from ranking_jobs.settings import Settings

DS = dt.date(2026, 1, 31)


@pytest.mark.parametrize("width", [1, 2, 3, 5, 7, 14, 28])
def test_windows_are_back_to_back_end_with_ds_and_read_only_their_eve(width):
    settings = Settings(label_window_days=width, train_days=4)
    cal = night_calendar(settings, DS, None)
    assert [w.split for w in cal.windows] == ["train"] * 4 + ["valid", "test"]
    assert all(len(w.days) == width for w in cal.windows)
    assert cal.holdout.last == DS
    assert all(a.last + dt.timedelta(days=1) == b.first for a, b in itertools.pairwise(cal.windows))
    for window in cal.windows:
        # no snapshot a window reads may hold a day of its labels
        assert window.snapshot < window.first
        assert window.snapshot == window.first - dt.timedelta(days=1)
        assert window.as_of.date() == window.first
    assert cal.snapshots == sorted({w.snapshot for w in cal.windows} | {DS})


def test_windows_never_start_before_the_lakes_history():
    settings = Settings(label_window_days=7, train_days=8, min_history_days=3)
    first = DS - dt.timedelta(days=40)
    cal = night_calendar(settings, DS, first)
    # 41 days: 3 of history, then whole 7-day windows back from ds: 5 fit
    assert len(cal.windows) == 5
    assert min(cal.snapshots) >= first + dt.timedelta(days=2)
    assert cal.describe()["train_windows"] == 3
    assert cal.describe()["history_days_used"] == (DS - cal.windows[0].snapshot).days + 1


@pytest.mark.parametrize(("history", "valid"), [(60, 3), (12, 2), (8, 1)])
def test_validation_takes_the_windows_it_asks_for_but_never_more_than_a_third(history, valid):
    settings = Settings(label_window_days=1, train_days=8, valid_windows=3, min_history_days=3)
    cal = night_calendar(settings, DS, DS - dt.timedelta(days=history - 1))
    splits = [w.split for w in cal.windows]
    assert splits[-1] == "test" and splits.count("valid") == valid
    assert splits == sorted(splits, key=["train", "valid", "test"].index)  # valid after train
    assert splits.count("train") == min(8, len(splits) - 1 - valid) >= 2 * valid


def test_a_history_too_short_for_three_windows_is_refused_by_name():
    settings = Settings(label_window_days=7)
    with pytest.raises(HistoryTooShortError, match="7-day label windows needs 24 days"):
        night_calendar(settings, DS, DS - dt.timedelta(days=20))


def _profile(**over):
    base = {
        "history_days": 365,
        "engaged_users_in_window": {"1": 80, "2": 150, "3": 210, "7": 420, "14": 700, "28": 1100},
        "repeat_purchase_share": 0.0,
        "repeat_engagement_share": 0.3,
        "impressions": 0,
        "events": 20_000,
        "return_gaps": {"0.5": 3.0, "0.9": 20.0, "0.95": 41.0},
    }
    return {**base, **over}


def test_the_label_window_is_the_shortest_that_holds_enough_engaged_users():
    derived = profile.derive(Settings(), _profile())
    assert derived["label_window_days"]["value"] == 14
    assert derived["exclude_purchased"]["value"] is True
    assert derived["exclude_engaged"]["value"] is False  # users come back to 30% of items
    assert "user_item_lookback_days" not in derived
    assert derived["active_days"]["value"] == 60  # covers the 95% quantile, 41 days
    assert derived["valid_windows"]["value"] == 1  # 700 engaged users in one window


def test_few_engaged_users_per_window_spread_validation_over_several():
    few = {"1": 60, "2": 100, "3": 130, "7": 190, "14": 250, "28": 260}
    derived = profile.derive(Settings(), _profile(history_days=14, engaged_users_in_window=few))
    assert derived["label_window_days"]["value"] == 1
    assert derived["valid_windows"]["value"] == profile.MAX_VALID_WINDOWS  # 500 / 60 > 4


def test_a_short_history_takes_the_longest_window_that_leaves_room_to_train():
    # 3 + 7 * 6 = 45 <= 50 < 3 + 14 * 6: 14 days would leave no room for four train windows
    derived = profile.derive(Settings(), _profile(history_days=50))
    assert derived["label_window_days"]["value"] == 7
    assert "420" in derived["label_window_days"]["why"]


def test_repurchases_keep_past_items_and_a_year_of_history():
    derived = profile.derive(Settings(), _profile(repeat_purchase_share=0.4))
    assert derived["exclude_purchased"]["value"] is False
    assert derived["user_item_lookback_days"]["value"] == 365


def test_logged_impressions_widen_the_candidates():
    sales = profile.derive(Settings(), _profile())
    assert sales["candidates_per_user"]["value"] == profile.CANDIDATES_SALES_LOG
    feed = profile.derive(Settings(), _profile(impressions=12_000))
    assert feed["candidates_per_user"]["value"] == profile.CANDIDATES_SHOWN_LOG
    assert "60% of the events are impressions" in feed["candidates_per_user"]["why"]
    # a ratings log whose 1-star ratings were imported as impressions is no feed
    ratings = profile.derive(Settings(), _profile(impressions=1_300))
    assert ratings["candidates_per_user"]["value"] == profile.CANDIDATES_SALES_LOG


def test_training_takes_as_many_windows_as_the_row_budget_holds():
    shop = profile.derive(Settings(), _profile())  # 14-day windows of 700 engaged users
    assert shop["label_window_days"]["value"] == 14
    assert shop["train_days"]["value"] == 3_000_000 // (120 * 700) == 35
    assert "35 windows of about 700 queries x 120 candidates" in shop["train_days"]["why"]
    busy = {"1": 20_000, "2": 30_000, "3": 40_000, "7": 60_000, "14": 80_000, "28": 90_000}
    feed = profile.derive(Settings(), _profile(impressions=15_000, engaged_users_in_window=busy))
    assert feed["train_days"]["value"] == profile.MIN_TRAIN_DAYS  # 0 fit: the floor
    tiny = {w: 3 for w in ("1", "2", "3", "7", "14", "28")}
    sparse = profile.derive(Settings(), _profile(engaged_users_in_window=tiny))
    assert sparse["train_days"]["value"] == profile.MAX_TRAIN_DAYS
    bigger = profile.derive(Settings(train_max_rows=6_000_000), _profile())
    assert bigger["train_days"]["value"] == min(6_000_000 // (120 * 700), profile.MAX_TRAIN_DAYS)


def test_a_sparse_log_of_years_takes_a_window_of_months():
    sparse = {"1": 5, "2": 7, "3": 7, "7": 16, "14": 17, "28": 48, "91": 160, "182": 310}
    years = profile.derive(Settings(), _profile(history_days=3856, engaged_users_in_window=sparse))
    assert years["label_window_days"]["value"] == 182  # the longest with room: 310 users
    assert years["valid_windows"]["value"] == 2
    months = profile.derive(Settings(), _profile(history_days=700, engaged_users_in_window=sparse))
    assert months["label_window_days"]["value"] == 91  # 3 + 182 * 6 > 700


def test_validation_follows_an_explicit_label_window():
    derived = profile.derive(Settings(label_window_days=2), _profile())
    assert derived["label_window_days"]["value"] == 2
    assert derived["valid_windows"]["value"] == 4  # 150 engaged users in 2 days: 500 / 150
    odd = profile.derive(Settings(label_window_days=5), _profile())
    assert odd["valid_windows"]["value"] == 3  # read from 3 days (210 engaged users)


def test_a_log_where_nobody_comes_back_to_an_item_excludes_every_engaged_item():
    once = profile.derive(Settings(), _profile(repeat_engagement_share=0.01))
    assert once["exclude_engaged"]["value"] is True
    assert "1.0%" in once["exclude_engaged"]["why"]
    rebuy = profile.derive(
        Settings(), _profile(repeat_engagement_share=0.01, repeat_purchase_share=0.3)
    )
    assert rebuy["exclude_engaged"]["value"] is False  # re-buying is coming back


def test_explicit_settings_win_over_the_profile(monkeypatch):
    monkeypatch.setenv("RANKING_LABEL_WINDOW_DAYS", "3")
    settings = Settings()
    chosen = profile.choose(settings, profile.derive(settings, _profile()))
    assert chosen["label_window_days"] == {
        "value": 3,
        "source": "explicit",
        "why": "set explicitly",
    }
    assert chosen["exclude_purchased"]["source"] == "profile"


def test_the_profile_measures_returns_to_an_item_and_repurchases_from_the_lake(tmp_path):
    settings = Settings(data_root=str(tmp_path / "lake"), state_dir=str(tmp_path / "var"))
    first = DS - dt.timedelta(days=2)
    # user 1 comes back to item 10 a day later and buys it twice; user 2 sees item 11 once
    days = {
        first: ([1, 2, 2], [10, 11, 12], ["click", "like", "impression"]),
        first + dt.timedelta(days=1): ([1, 1], [10, 10], ["purchase", "click"]),
        DS: ([1, 3], [10, 13], ["purchase", "click"]),
    }
    for day, (users, items, kinds) in days.items():
        ts = pd.Timestamp(day, tz="UTC")
        events = {"user_id": users, "item_id": items, "ts": [ts] * len(users), "event_type": kinds}
        lake.write_partition(settings, C.RAW_EVENTS, day, pa.table(events))
    lake.write_partition(settings, C.RAW_ITEMS, DS, pa.table({"seller_id": [7, 7, 8, 8]}))
    users = {"declared_size": pa.array([None], pa.string()), "declared_styles": [["boho"]]}
    lake.write_partition(settings, C.RAW_USERS, DS, pa.table(users))

    got = profile.measure(settings, DS)

    assert got["history_days"] == 3 and got["events"] == 7 and got["impressions"] == 1
    assert got["engaged_users_in_window"]["1"] == 2 and got["engaged_users_in_window"]["3"] == 3
    assert got["repeat_purchase_share"] == 0.5  # the second purchase of (1, 10)
    assert got["repeat_engagement_share"] == pytest.approx(1 / 3)  # (1, 10) of 3 pairs
    assert got["sellers"] == 2 and got["declared_profiles"]
