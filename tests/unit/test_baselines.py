"""Baselines that make final lists, and the list-level metrics, on hand-made frames."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from ranking_jobs import baselines, lake
from ranking_jobs import contracts as C
from ranking_jobs.baselines import BaselineInputs
from ranking_jobs.candidates import rank_available
from ranking_jobs.evaluation.metrics import list_metrics, ndcg_at_k
from ranking_jobs.settings import Settings

AS_OF = pd.Timestamp("2024-03-10", tz="UTC")
COUNTS = ("impressions", "clicks", "likes", "saves", "bag_adds", "purchases")


def _items(n: int, clicks: np.ndarray | None = None, **columns: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64),
            "seller_id": np.full(n, 10_000, dtype=np.int64),
            "is_available": np.ones(n, dtype=np.int64),
            "category": np.where(np.arange(n) % 2 == 0, "tops", "shoes"),
            **{f"{e}_7d": np.zeros(n, dtype=np.int64) for e in COUNTS},
        }
    )
    frame["clicks_7d"] = np.arange(n)[::-1] if clicks is None else clicks
    return frame.assign(**columns)


def _interactions(pairs: list[tuple[int, int]], n: int = 1, days_ago: float = 1.0) -> pd.DataFrame:
    frame = pd.DataFrame(pairs, columns=["user_id", "item_id"]).astype("int64")
    return frame.assign(n=n, last_ts=AS_OF - pd.Timedelta(days=days_ago))


def _none(*columns: str) -> pd.DataFrame:
    return pd.DataFrame({c: np.empty(0, np.int64) for c in columns})


def _inputs(items: pd.DataFrame, interactions: pd.DataFrame, **more: object) -> BaselineInputs:
    fields = {
        "excluded": _none("user_id", "item_id"),
        "covisitation": _none("item_id", "neighbour_id", "score"),
        "affinity": pd.DataFrame({"user_id": [], "category": [], "category_affinity": []}),
        "as_of": AS_OF,
        "repeats": True,
        **more,
    }
    return BaselineInputs(items=items, interactions=interactions, **fields)  # type: ignore[arg-type]


def _top(frame: pd.DataFrame, user: int) -> list[int]:
    return frame.loc[frame["user_id"] == user, "item_id"].tolist()


# --- list metrics ---------------------------------------------------------------


def test_list_metrics_by_hand_with_a_miss_outside_the_list_and_a_short_list():
    lists = pd.DataFrame({"user_id": [1, 2], "item_ids": [np.array([10, 11, 12]), np.array([20])]})
    relevant = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3, 4],
            "item_id": [10, 12, 99, 20, 21, 30, 40],  # 99, 21: engaged, never listed
            "rel": [2, 1, 3, 1, 1, 2, 1],
        }
    )
    got = list_metrics(lists, relevant, np.array([2, 1, 3]), k=3)  # 4: not asked for

    dcg1 = 3 / math.log2(2) + 1 / math.log2(4)
    idcg1 = 7 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)
    dcg2, idcg2 = 1.0, 1 + 1 / math.log2(3)
    np.testing.assert_allclose(got["ndcg@3"], [dcg2 / idcg2, dcg1 / idcg1, 0.0])
    np.testing.assert_allclose(got["recall@3"], [1 / 2, 2 / 3, 0.0])
    np.testing.assert_array_equal(got["hit@3"], [1.0, 1.0, 0.0])
    # the same as ndcg_at_k with the missed item ranked below the cut
    row_wise = ndcg_at_k([1] * 4, [2, 0, 1, 3], [4, 3, 2, 1], 3)
    assert got["ndcg@3"][1] == pytest.approx(row_wise[0])
    # k cuts the list and the ideal alike
    top1 = list_metrics(lists, relevant, np.array([1]), k=1)
    assert top1["ndcg@1"][0] == pytest.approx(3 / 7)
    assert top1["recall@1"][0] == pytest.approx(1 / 3)


def test_list_metrics_with_no_lists_scores_zero():
    relevant = pd.DataFrame({"user_id": [1], "item_id": [5], "rel": [1]})
    none = pd.DataFrame({"user_id": np.empty(0, np.int64), "item_ids": []})
    got = list_metrics(none, relevant, np.array([1]), k=10)
    assert {name: float(v[0]) for name, v in got.items()} == {
        "ndcg@10": 0.0,
        "recall@10": 0.0,
        "hit@10": 0.0,
    }


# --- the rules every baseline obeys --------------------------------------------


def _marketplace() -> BaselineInputs:
    """Users who sell, bought and engaged with sold items; the most popular items are
    sold, so a baseline that skipped a rule would show them."""
    rng = np.random.default_rng(0)
    n_items, users = 80, np.arange(40)
    items = _items(
        n_items,
        is_available=(np.arange(n_items) >= 8).astype(np.int64),  # the 8 most popular sold
        seller_id=np.where(np.arange(n_items) < 40, np.arange(n_items) % 40, 10_000),
    )
    pairs = {(int(u), int(i)) for u in users for i in rng.choice(n_items, 8, replace=False)}
    pairs |= {(u, u) for u in range(40)}  # each user engaged with their own listing
    inter = _interactions(sorted(pairs))
    inter["n"] = rng.integers(1, 4, len(inter))
    inter["last_ts"] = AS_OF - pd.to_timedelta(rng.uniform(0, 20, len(inter)), unit="D")
    excluded = inter.groupby("user_id").head(3)[["user_id", "item_id"]]
    covisitation = pd.DataFrame(
        {
            "item_id": np.repeat(np.arange(n_items), 5),
            "neighbour_id": rng.integers(0, n_items, 5 * n_items),
            "score": rng.random(5 * n_items),
        }
    )
    affinity = pd.DataFrame({"user_id": users, "category": "shoes", "category_affinity": 1.0})
    return _inputs(items, inter, excluded=excluded, covisitation=covisitation, affinity=affinity)


def _broken_rules(frame: pd.DataFrame, src: BaselineInputs) -> pd.DataFrame:
    rows = frame.merge(src.items, on="item_id")
    bad = (rows["is_available"] != 1) | (rows["seller_id"] == rows["user_id"])
    banned = frame.merge(src.excluded, on=["user_id", "item_id"])
    return pd.concat([rows.loc[bad, ["user_id", "item_id"]], banned])


def test_every_baseline_shows_only_available_items_of_others_not_excluded():
    src = _marketplace()
    users = np.arange(45)  # 40..44 have no history
    assert baselines.names(src) == list(baselines.BASELINES)
    settings = Settings(top_n=12, surface_size=6, seller_cap=2)
    for name in baselines.names(src):
        got = baselines.scores(name, users, src, 5, seed=3)
        assert len(got) > 0, name
        assert _broken_rules(got, src).empty, name
        assert got.groupby("user_id").size().max() <= 5, name
        assert not got.duplicated(["user_id", "item_id"]).any(), name
        assert (got.groupby("user_id")["score"].diff().dropna() <= 0).all(), name

        made = baselines.lists(name, users, src, settings)
        assert made["user_id"].tolist() == users.tolist(), name  # everyone gets a list
        flat = made.explode("item_ids").rename(columns={"item_ids": "item_id"})
        assert _broken_rules(flat.astype({"item_id": "int64"}), src).empty, name
        assert made["item_ids"].map(len).between(1, 12).all(), name


def test_buy_again_only_with_repeats_and_most_repeated_first():
    items = _items(5)
    inter = pd.concat(
        [
            _interactions([(1, 0)], n=3, days_ago=9),
            _interactions([(1, 1)], n=1, days_ago=1),
            _interactions([(1, 2)], n=3, days_ago=2),  # as often as 0, more recently
        ]
    )
    assert "buy_again" not in baselines.names(_inputs(items, inter, repeats=False))
    got = baselines.scores("buy_again", np.array([1, 2]), _inputs(items, inter), 5, 0)
    assert _top(got, 1) == [2, 0, 1]
    assert _top(got, 2) == []


def test_item_knn_prefers_the_co_engaged_item_over_a_popular_one():
    items = _items(10)
    pairs = [(u, i) for u in range(1, 6) for i in (1, 2)]  # 1 and 2 go together
    pairs += [(u, 9) for u in range(6, 30)] + [(6, 1)]  # 9: popular, once with 1
    src = _inputs(items, _interactions([*pairs, (100, 1)]))
    got = baselines.scores("item_knn", np.array([100]), src, 3, 0)
    assert _top(got, 100)[0] == 2
    assert 9 in _top(got, 100)  # reached, but ranked below
    popular = baselines.scores("popularity", np.array([100]), src, 1, 0)
    assert _top(popular, 100) == [9]


def test_als_recovers_two_blocks_of_taste():
    rng = np.random.default_rng(1)
    items = _items(40)
    pairs = [
        (u, int(i)) for u in range(60) for i in rng.choice(20, 8, replace=False) + 20 * (u >= 30)
    ]
    got = baselines.scores("als", np.arange(60), _inputs(items, _interactions(pairs)), 10, 7)
    block = got["item_id"].to_numpy() >= 20
    assert (block == (got["user_id"].to_numpy() >= 30)).all()
    assert got.groupby("user_id").size().eq(10).all()


def test_random_is_seeded_and_independent_of_the_other_users():
    src = _inputs(_items(500), _interactions([]))
    users = np.arange(50)
    first = baselines.scores("random", users, src, 10, seed=5)
    pd.testing.assert_frame_equal(first, baselines.scores("random", users, src, 10, seed=5))
    alone = baselines.scores("random", np.array([7]), src, 10, seed=5)
    assert _top(alone, 7) == _top(first, 7)
    other = baselines.scores("random", users, src, 10, seed=6)
    assert not first["item_id"].equals(other["item_id"])
    assert first["item_id"].nunique() > 100  # users differ


def test_covisitation_seeds_from_the_last_week_only():
    covis = pd.DataFrame({"item_id": [1, 2], "neighbour_id": [3, 4], "score": [1.0, 5.0]})
    inter = pd.concat([_interactions([(1, 1)], days_ago=2), _interactions([(1, 2)], days_ago=8)])
    got = baselines.scores(
        "covisitation", np.array([1]), _inputs(_items(6), inter, covisitation=covis), 5, 0
    )
    assert _top(got, 1) == [3]


def test_category_popular_takes_the_favourite_categories():
    items = _items(12, category=np.array(["tops", "shoes", "bags"] * 4))
    affinity = pd.DataFrame(
        {
            "user_id": [1, 3, 3, 3, 3],
            "category": ["shoes", "shoes", "bags", "tops", "hats"],
            "category_affinity": [0.9, 0.1, 0.8, 0.7, 0.6],  # 3: shoes not in the top 3
        }
    )
    src = _inputs(items, _interactions([]), affinity=affinity)
    got = baselines.scores("category_popular", np.array([1, 2, 3]), src, 3, 0)
    assert _top(got, 1) == [1, 4, 7]  # lower ids are more clicked
    assert _top(got, 2) == []
    assert _top(got, 3) == [0, 2, 3]  # tops and bags merged by popularity


def test_empty_history_gives_popular_lists():
    items = _items(30, seller_id=np.where(np.arange(30) == 0, 1, 10_000))
    src = _inputs(items, _interactions([]))
    settings = Settings(top_n=5, surface_size=5, seller_cap=5)
    users = np.array([1, 2])
    popular = rank_available(items)["item_id"].to_numpy()
    for name in baselines.names(src):
        got = baselines.scores(name, users, src, 5, 0)
        assert list(got.columns) == ["user_id", "item_id", "score"], name
        made = baselines.lists(name, users, src, settings)
        if name != "random":
            assert (
                made["item_ids"].map(list).tolist()
                == [
                    popular[1:6].tolist(),  # item 0 is user 1's own
                    popular[:5].tolist(),
                ]
            ), name
    nothing = _inputs(items.assign(is_available=0), _interactions([]))
    for name in baselines.names(nothing):
        assert baselines.lists(name, users, nothing, settings).empty, name


def test_load_inputs_reads_the_lake_of_a_day(settings):
    day = dt.date(2024, 3, 9)
    n = 4
    lake.write_partition(
        settings,
        C.RAW_ITEMS,
        day,
        pa.table(
            {
                "item_id": range(n),
                "seller_id": [50] * n,
                **{d: ["x"] * n for d in ("category", "brand", "size", "style")},
            }
        ),
    )
    counts = {f"{e}_{w}d": [1] * n for w in (1, 7) for e in COUNTS}
    stats = {"item_id": range(n), "is_available": [1, 1, 1, 0], "age_days": [1.0] * n}
    lake.write_partition(settings, C.FEATURES_ITEM, day, pa.table({**stats, **counts}))
    events = {
        "user_id": [1, 1, 1, 2],
        "item_id": [0, 0, 1, 3],
        "ts": pd.to_datetime(["2024-03-09 10:00", "2024-03-09 11:00"] * 2, utc=True),
        "event_type": ["click", "purchase", "impression", "click"],
    }
    lake.write_partition(settings, C.RAW_EVENTS, day, pa.table(events))
    covis = {"item_id": [0], "neighbour_ids": [[2]], "neighbour_scores": [[0.5]]}
    lake.write_partition(settings, C.FEATURES_COVISITATION, day, pa.table(covis))
    affinity = {"user_id": [1], "category": ["x"], "category_affinity": [1.0]}
    lake.write_partition(settings, C.FEATURES_USER_AFFINITY["category"], day, pa.table(affinity))

    src = baselines.load_inputs(settings, day)
    assert src.as_of == pd.Timestamp("2024-03-10", tz="UTC")
    assert not src.repeats and "buy_again" not in baselines.names(src)
    assert src.excluded.values.tolist() == [[1, 0]]  # the purchase
    assert src.interactions[["user_id", "item_id", "n"]].values.tolist() == [[1, 0, 2], [2, 3, 1]]
    assert _top(baselines.scores("covisitation", np.array([1]), src, 5, 0), 1) == [2]
    made = baselines.lists("item_knn", np.array([1, 2]), src, settings)
    assert made["item_ids"].map(list).tolist() == [[1, 2], [0, 1, 2]]  # 0 bought, 3 sold

    repeats = baselines.load_inputs(settings.replace(exclude_purchased=False), day)
    assert repeats.repeats and repeats.excluded.empty
    once = baselines.load_inputs(settings.replace(exclude_engaged=True), day)
    assert not once.repeats
    assert sorted(once.excluded.values.tolist()) == [[1, 0], [2, 3]]  # engaged, not shown
    assert _top(baselines.scores("buy_again", np.array([1]), repeats, 5, 0), 1) == [0]
