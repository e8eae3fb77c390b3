"""The final-list comparison: the fallback users receive, and users without a list."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ranking_jobs import baselines
from ranking_jobs.evaluation.lists import best_fallback, sample_users, with_fallback
from ranking_jobs.settings import Settings
from tests.unit.test_baselines import _inputs, _interactions, _items


def test_users_without_a_list_get_the_fallback_and_others_keep_theirs():
    lists = pd.DataFrame({"user_id": [1, 9], "item_ids": [np.array([5, 6]), np.array([7])]})
    got = with_fallback(lists, np.array([1, 2, 3]), np.array([40, 41]))
    assert sorted(got["user_id"]) == [1, 2, 3]  # 9 was not asked for
    by_user = dict(zip(got["user_id"], got["item_ids"], strict=True))
    assert by_user[1].tolist() == [5, 6]
    assert by_user[2].tolist() == by_user[3].tolist() == [40, 41]


def test_the_fallback_is_the_non_personal_list_that_serves_those_users_best():
    # recent popularity (7-day clicks) ranks item 0 first; all-time popularity (users who
    # ever engaged) ranks item 5 first. The users engage with 5: all-time wins.
    items = _items(6)
    history = _interactions([(u, 5) for u in range(10, 20)] + [(10, 1)])
    src = _inputs(items, history, repeats=False)
    truth = pd.DataFrame({"user_id": [1, 2], "item_id": [5, 5], "rel": [1, 1]})
    settings = Settings(fallback_size=3, seller_cap=3, surface_size=3)
    name, items_ids = best_fallback(settings, src, truth, np.array([1, 2]))
    assert name == "popularity" and items_ids[0] == 5
    # users who engage with the recently clicked item get recent popularity instead
    truth = pd.DataFrame({"user_id": [1, 2], "item_id": [0, 0], "rel": [1, 1]})
    name, items_ids = best_fallback(settings, src, truth, np.array([1, 2]))
    assert name == "recent_popularity" and items_ids[0] == 0
    assert len(baselines.fallback("popularity", src, settings)[0]) == 3


def test_a_personal_baseline_is_no_fallback():
    src = _inputs(_items(3), _interactions([(1, 0)]))
    try:
        baselines.fallback("als", src, Settings())
    except ValueError as exc:
        assert "personal" in str(exc)
    else:
        raise AssertionError("a personal baseline was accepted as the fallback")


def test_the_user_sample_is_seeded_sorted_and_bounded():
    users = np.arange(1_000, dtype=np.int64)[::-1]
    a, b = sample_users(users, 100, seed=3), sample_users(users, 100, seed=3)
    assert len(a) == 100 and np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, sample_users(users, 100, seed=4))
    assert np.array_equal(sample_users(users[:50], 100, seed=3), np.arange(950, 1_000))
