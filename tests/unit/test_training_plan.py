"""The training set's query plan: every engaged query while the budget holds, a sample
before any candidate is built when the windows are far over it, and a capped hold-out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ranking_jobs import contracts as C
from ranking_jobs.calendar import Window
from ranking_jobs.settings import Settings
from ranking_jobs.training.dataset import PRESAMPLE_TO, planned_queries, require_engagement

DAY = dt.date(2026, 1, 10)


def _labels(users: int, shown: int) -> pd.DataFrame:
    """``users`` users, each shown ``shown`` items and clicking the first."""
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(users), shown),
            "item_id": np.tile(np.arange(shown), users),
            "label": np.tile(
                [C.LABEL_GRADES["click"]] + [C.LABEL_GRADES["impression"]] * (shown - 1), users
            ),
            "shown": True,
        }
    )


def _windows() -> list[Window]:
    return [
        Window("train", (DAY,)),
        Window("valid", (DAY + dt.timedelta(days=1),)),
        Window("test", (DAY + dt.timedelta(days=2),)),
    ]


def test_every_query_is_built_while_the_budget_holds() -> None:
    settings = Settings(train_max_rows=10_000, candidates_per_user=10, holdout_row_users=1_000)
    windows = _windows()
    labels = {w: _labels(100, 5) for w in windows}  # 2 x 100 x 15 = 3,000 estimated rows
    plan = planned_queries(settings, windows, labels)
    assert all(np.array_equal(plan[w], np.arange(100)) for w in windows)


def test_windows_far_over_the_budget_are_sampled_before_candidates_and_the_holdout_capped() -> None:
    settings = Settings(train_max_rows=3_000, candidates_per_user=10, holdout_row_users=100)
    windows = _windows()
    labels = {w: _labels(1_000, 5) for w in windows}  # 30,000 estimated rows: 10x the budget
    plan = planned_queries(settings, windows, labels)
    train, valid, test = (plan[w] for w in windows)
    built = 15 * (len(train) + len(valid))
    assert PRESAMPLE_TO * 3_000 - 15 < built <= PRESAMPLE_TO * 3_000
    assert len(train) > 50 and len(valid) > 50  # drawn from both windows
    assert len(test) == 100 and len(np.unique(test)) == 100 and set(test) <= set(range(1_000))
    again = planned_queries(settings, windows, labels)
    assert all(np.array_equal(again[w], plan[w]) for w in windows)  # seeded


def test_users_only_shown_items_are_no_query() -> None:
    settings = Settings(train_max_rows=10_000, candidates_per_user=10, holdout_row_users=1_000)
    windows = _windows()
    labels = {w: _labels(100, 5) for w in windows}
    for frame in labels.values():  # users 50..99 engage with nothing
        frame.loc[frame["user_id"] >= 50, "label"] = C.LABEL_GRADES["impression"]
    valid = labels[windows[1]]
    valid.loc[(valid["user_id"] == 60) & (valid["item_id"] == 3), "label"] = C.LABEL_GRADES[
        "purchase"
    ]
    plan = planned_queries(settings, windows, labels)
    assert np.array_equal(plan[windows[0]], np.arange(50))
    assert np.array_equal(plan[windows[1]], [*range(50), 60])
    assert np.array_equal(plan[windows[2]], np.arange(50))


def test_a_split_without_any_engagement_is_refused_by_name() -> None:
    settings = Settings(train_max_rows=10_000, candidates_per_user=10, holdout_row_users=1_000)
    windows = _windows()
    labels = {w: _labels(20, 5) for w in windows}
    require_engagement(windows, planned_queries(settings, windows, labels))  # engaged: passes
    labels[windows[1]]["label"] = C.LABEL_GRADES["impression"]
    with pytest.raises(
        ValueError, match=r"in the valid label windows \(2026-01-11\.\.2026-01-11\)"
    ):
        require_engagement(windows, planned_queries(settings, windows, labels))
