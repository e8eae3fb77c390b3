"""Pair features computed at join time (``feast_store.add_cross_features``), by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ranking_jobs import families
from ranking_jobs.feast_store import add_cross_features


def _rows(**overrides: list) -> pd.DataFrame:
    """Four pairs: a letter-sized top, a waist-sized pair of jeans, a shoe and a bag."""
    base = {
        "user_id": [1, 2, 3, 4],
        "event_timestamp": pd.Timestamp("2026-01-31", tz="UTC"),
        "size": ["M", "W30", "39", "one size"],
        "style": ["boho", "casual", "boho", "vintage"],
        "price": [20.0, 40.0, 60.0, 30.0],
        "price_rel_category": [2.0, 1.0, 0.5, 1.0],
        "user_price_level": [30.0, 30.0, 30.0, 30.0],
        "user_price_rel_level": [0.0, 0.0, 0.0, 0.0],
        "user_size_letter": [1.5, 1.5, 1.5, 1.5],  # between XS and S
        "user_size_waist": [np.nan, np.nan, np.nan, np.nan],  # never engaged with jeans
        "user_size_shoe": [6.0, 6.0, 6.0, 6.0],  # "41"
        "declared_size_rank": [5.0, 5.0, 5.0, 5.0],  # XL
        "declared_styles": [["boho", "vintage"], ["boho"], [], None],
    }
    base.update(overrides)
    frame = pd.DataFrame(base)
    for c in families.ASSEMBLED_FEATURES:
        if c not in frame:
            frame[c] = 1.0
    return frame


def test_size_distance_uses_the_items_own_chart() -> None:
    out = add_cross_features(_rows())
    # M is 3 in the letter chart (user at 1.5); 39 is 4 in the shoe chart (user at 6)
    assert out["size_distance"][0] == pytest.approx(1.5)
    assert math.isnan(out["size_distance"][1])  # no waist history
    assert out["size_distance"][2] == pytest.approx(2.0)
    assert math.isnan(out["size_distance"][3])  # one size is in no chart
    # the declared size is a letter size: only letter-sized items get a distance
    assert out["declared_size_distance"][0] == pytest.approx(2.0)
    assert out["declared_size_distance"][1:].isna().all()


def test_declared_style_match_and_price_gap() -> None:
    out = add_cross_features(_rows())
    # boho in [boho, vintage]; casual not in [boho]; nothing declared -> unknown
    assert out["declared_style_match"][:2].tolist() == [1.0, 0.0]
    assert out["declared_style_match"][2:].isna().all()
    assert "declared_styles" not in out  # read, then dropped: never a model input
    assert out["price_rel_gap"].tolist() == pytest.approx([math.log(2.0), 0.0, math.log(0.5), 0])
    assert out["price_distance"][0] == pytest.approx(abs(math.log1p(20.0) - math.log1p(30.0)))


def test_style_match_reads_each_users_profile_at_each_as_of_time() -> None:
    """Rows of one user and as-of time share a profile; another as-of time may differ."""
    t0, t1 = pd.Timestamp("2026-01-30", tz="UTC"), pd.Timestamp("2026-01-31", tz="UTC")
    rows = _rows(
        user_id=[7, 7, 7, 8],
        event_timestamp=[t0, t0, t1, t0],
        style=["boho", "casual", "casual", "casual"],
        declared_styles=[["boho"], ["boho"], ["casual", "punk"], ["punk"]],
    )
    out = add_cross_features(rows)
    assert out["declared_style_match"].tolist() == [1.0, 0.0, 1.0, 0.0]


def test_sizes_outside_every_chart_and_missing_profiles_give_nan_not_errors() -> None:
    nothing = [np.nan] * 4
    rows = _rows(size=["XXXL", "W99", "", "M"], declared_size_rank=nothing)
    out = add_cross_features(rows.assign(user_size_letter=nothing, declared_styles=[None] * 4))
    for c in ("size_distance", "declared_size_distance", "declared_style_match"):
        assert out[c].isna().all(), c


def test_a_free_listing_has_no_price_gap_rather_than_minus_infinity() -> None:
    out = add_cross_features(_rows(price=[0.0, 40.0, 60.0, 30.0], price_rel_category=[0, 1, 1, 1]))
    assert math.isnan(out["price_rel_gap"][0])
    assert np.isfinite(out["price_rel_gap"][1:]).all()
