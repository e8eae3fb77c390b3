"""Does the synthetic marketplace behave like one? Statistical checks on the tiny preset.

Thresholds leave a wide margin to the values the generator produces (see the
comments) while still failing on a generator that ignores position, taste or
the heavy tails.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ranking_jobs import contracts, lake
from ranking_jobs.context import RunContext
from ranking_jobs.data import generate, true_utility
from ranking_jobs.data.truth import CATEGORY_COLUMNS, SIZE_COLUMNS
from ranking_jobs.settings import Settings

DS = dt.date(2026, 1, 31)
HISTORY = 14


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    root: Path = tmp_path_factory.mktemp("realism")
    settings = Settings(
        data_root=str(root / "lake"),
        state_dir=root / "var",
        scale="tiny",
        seed=3,
        history_days=HISTORY,
    )
    generate(RunContext.create(DS, settings))
    days = lake.day_range(DS, HISTORY)
    events = lake.read_days(settings, contracts.RAW_EVENTS, days).to_pandas()
    items = lake.read_days(settings, contracts.RAW_ITEMS, days).to_pandas()
    truth = lake.read_partition(settings, contracts.TRUTH_USERS, DS).to_pandas()
    return {
        "events": events,
        "items": items.drop_duplicates("item_id", keep="last"),
        "truth": truth,
    }


@pytest.fixture(scope="module")
def impressions(market: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per impression with what followed it (clicked, bought) and the truth."""
    events, items, truth = market["events"], market["items"], market["truth"]
    key = ["session_id", "item_id"]
    imps = events[events.event_type == "impression"].copy()
    for kind in ("click", "purchase"):
        done = events.loc[events.event_type == kind, key].assign(**{kind: True})
        imps = imps.merge(done, on=key, how="left")
        imps[kind] = imps[kind].notna()
    meta = items.set_index("item_id")
    imps["category"] = meta.category.reindex(imps.item_id).to_numpy()
    imps["size"] = meta["size"].reindex(imps.item_id).to_numpy()
    t = truth.set_index("user_id").reindex(imps.user_id)
    favourite = np.array([c.split("__")[1] for c in CATEGORY_COLUMNS])[
        t[list(CATEGORY_COLUMNS)].to_numpy().argmax(axis=1)
    ]
    imps["preferred_category"] = imps.category.to_numpy() == favourite
    true_sizes = t[list(SIZE_COLUMNS)].to_numpy()
    imps["size_fits"] = (true_sizes == imps["size"].to_numpy()[:, None]).any(axis=1)
    imps["utility"] = true_utility(truth, items, imps.user_id.to_numpy(), imps.item_id.to_numpy())
    return imps


def top_share(counts: pd.Series | np.ndarray, top: float = 0.1) -> float:
    c = np.sort(np.asarray(counts, dtype=float))[::-1]
    return float(c[: max(1, int(len(c) * top))].sum() / c.sum())


def gini(counts: pd.Series | np.ndarray) -> float:
    x = np.sort(np.asarray(counts, dtype=float))
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def test_click_through_falls_with_position(impressions: pd.DataFrame) -> None:
    top = impressions[impressions.position <= 2].click.mean()  # ~0.065
    mid = impressions[impressions.position.between(3, 9)].click.mean()  # ~0.025
    deep = impressions[impressions.position >= 10].click.mean()  # ~0.009
    assert top > mid > deep
    assert top > 2.5 * deep
    assert 0.005 < impressions.click.mean() < 0.15, "a plausible overall CTR"


def test_user_activity_is_heavy_tailed(market: dict[str, pd.DataFrame]) -> None:
    events, truth = market["events"], market["truth"]
    per_user = events.groupby("user_id").size().reindex(truth.user_id, fill_value=0)
    assert top_share(per_user) > 0.4  # ~0.6
    assert gini(per_user) > 0.5  # ~0.77
    assert (per_user == 0).mean() > 0.15, "many users never show up in two weeks"
    sessions = events.groupby("user_id").session_id.nunique()
    assert sessions.max() > 10 * sessions.median()


def test_item_popularity_is_heavy_tailed(
    market: dict[str, pd.DataFrame], impressions: pd.DataFrame
) -> None:
    items = market["items"].item_id
    shown = impressions.groupby("item_id").size().reindex(items, fill_value=0)
    clicked = impressions[impressions.click].groupby("item_id").size().reindex(items, fill_value=0)
    assert top_share(shown) > 0.25  # ~0.36 (uniform exposure would give 0.10)
    assert gini(shown) > 0.3  # ~0.48
    assert top_share(clicked) > 0.45  # ~0.62
    brands = impressions.merge(market["items"][["item_id", "brand"]], on="item_id").brand
    assert top_share(brands.value_counts()) > 0.3, "a few brands dominate"


def test_taste_drives_clicks_and_purchases(impressions: pd.DataFrame) -> None:
    for column in ("preferred_category", "size_fits"):
        rate = impressions.groupby(column)[["click", "purchase"]].mean()
        assert rate.loc[True, "click"] > 1.5 * rate.loc[False, "click"], column  # ~3.4 / ~2.5
        assert rate.loc[True, "purchase"] > 1.5 * rate.loc[False, "purchase"], column  # ~7 / ~5


def test_logging_policy_is_not_the_truth(impressions: pd.DataFrame) -> None:
    """Logged lists are not ordered by true utility, so the logs hold room to improve."""
    imps = impressions
    rank_corr = imps.groupby("session_id")[["position", "utility"]].corr(method="spearman")
    per_session = rank_corr.xs("position", level=1)["utility"].dropna()
    assert abs(per_session.mean()) < 0.15
    # ...yet users do respond to the truth: clicked impressions have far higher utility
    assert imps[imps.click].utility.mean() > imps[~imps.click].utility.mean() + 1.5


def test_daily_and_weekly_rhythm(market: dict[str, pd.DataFrame]) -> None:
    events = market["events"]
    starts = events.groupby("session_id").ts.min()
    per_hour = starts.dt.hour.value_counts().reindex(range(24), fill_value=0)
    assert per_hour.loc[18:22].mean() > 3 * per_hour.loc[2:5].mean()
    per_day = starts.groupby(starts.dt.date).size()
    weekday = pd.Series([d.weekday() for d in per_day.index], index=per_day.index)
    assert per_day[weekday >= 5].mean() > per_day[weekday <= 3].mean()


def test_search_shows_more_relevant_items_than_home(impressions: pd.DataFrame) -> None:
    by_surface = impressions.groupby("surface")[["click", "utility"]].mean()
    assert by_surface.loc["search", "click"] > by_surface.loc["home", "click"]
    assert by_surface.loc["search", "utility"] > by_surface.loc["home", "utility"]


def test_listings_sell_at_a_plausible_pace(market: dict[str, pd.DataFrame]) -> None:
    items, events = market["items"], market["events"]
    sold = items.sold_at.notna().sum()
    assert 0.02 < sold / len(items) < 0.5
    buys = (events.event_type == "purchase").sum()
    clicks = (events.event_type == "click").sum()
    assert 0.02 < buys / clicks < 0.3
