"""The drift measure: the population stability index on the reference's bins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ranking_jobs.monitoring import drift, judge, psi
from ranking_jobs.settings import Settings


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_tenfold_shift():
    rng = np.random.default_rng(0)
    prices = rng.lognormal(3.0, 0.8, 20_000)
    again = rng.lognormal(3.0, 0.8, 20_000)
    assert psi(prices, again) < 0.01
    assert psi(prices, prices * 10) > 5
    assert 0.02 < psi(prices, prices * 1.2) < 0.25  # a modest move reads as one


def test_psi_counts_nulls_in_a_bin_of_their_own():
    values = np.arange(10_000, dtype=float)
    half_null = values.copy()
    half_null[::2] = np.nan
    assert psi(values, half_null) > 1
    assert psi(half_null, half_null) == 0.0


def test_psi_on_a_mostly_zero_count_and_on_a_constant():
    rng = np.random.default_rng(1)
    counts = (rng.random(10_000) < 0.1) * rng.integers(1, 5, 10_000)
    assert psi(counts, (rng.random(10_000) < 0.1) * rng.integers(1, 5, 10_000)) < 0.01
    assert psi(counts, counts + 3) > 1
    # 90% zeros tonight against 99% in the reference: every decile of the reference is
    # 0, yet the zeros keep a bin of their own, apart from the counts above them
    rare = (rng.random(10_000) < 0.01) * rng.integers(1, 5, 10_000)
    assert psi(rare, counts) > 0.15  # (0.9 - 0.99) ln(0.9 / 0.99) + (0.1 - 0.01) ln 10 = 0.22
    assert psi(rare, (rng.random(10_000) < 0.01) * rng.integers(1, 5, 10_000)) < 0.01
    assert psi(np.zeros(100), np.zeros(50)) == 0.0
    assert psi(np.full(100, np.nan), np.full(100, np.nan)) == 0.0


def test_the_score_is_compared_only_with_scores_of_the_same_model():
    rng = np.random.default_rng(2)
    tonight = pd.DataFrame({"price": rng.random(1000), "score": rng.random(1000) + 5,
                            "model_version": "m/v2"})  # fmt: skip
    before = pd.DataFrame({"price": rng.random(1000), "score": rng.random(1000),
                           "model_version": "m/v1"})  # fmt: skip
    assert drift(tonight, before)["name"].tolist() == ["price"]  # a new champion is no drift
    same = drift(tonight, before.assign(model_version="m/v2")).set_index("name")
    assert same.loc["score", "psi"] > 5 and same.loc["score", "shift"] > 10


def test_jittered_group_rates_are_no_drift_but_a_tenfold_price_and_a_lost_join_are():
    """Ten categories' conversion rates, each a few percent off from one night to the
    next, trade places: PSI jumps while the mean barely moves. Prices x10 and a column
    gone null move both."""
    rng = np.random.default_rng(3)
    share = rng.dirichlet(np.ones(10))
    rates = np.sort(rng.uniform(0.07, 0.14, 10))
    category = rng.choice(10, 20_000, p=share)
    jittered = rates * rng.uniform(0.93, 1.07, 10)
    price = rng.lognormal(3, 0.8, 20_000)
    before = pd.DataFrame({"rate": rates[category], "price": price, "joined": price})
    tonight = pd.DataFrame({"rate": jittered[category], "price": price * 10,
                            "joined": np.full(20_000, np.nan)})  # fmt: skip
    found = drift(tonight, before).set_index("name")
    assert found.loc["rate", "psi"] > 1 and found.loc["rate", "shift"] < 0.5
    status = judge(found, Settings()).to_dict()
    assert status == {"rate": "ok", "price": "fail", "joined": "fail"}
    burst = drift(pd.DataFrame({"clicks_1d": price * 10}), pd.DataFrame({"clicks_1d": price}))
    assert judge(burst, Settings()).tolist() == ["warn"]  # one day's traffic never stops a night
    lenient = Settings(monitor_psi_fail=1e6)
    assert judge(found, lenient).to_dict() == {"rate": "ok", "price": "warn", "joined": "warn"}
