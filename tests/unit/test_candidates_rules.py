"""Candidate sources, labels and business rules on tiny hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ranking_jobs import contracts as C
from ranking_jobs.candidates import (
    SOURCE_BIT,
    CandidateInputs,
    generate_candidates,
    rank_available,
)
from ranking_jobs.lists import rules
from ranking_jobs.settings import Settings
from ranking_jobs.training.dataset import grade_labels, query_rows


def _items() -> pd.DataFrame:
    # item 5 is the most popular but sold; item 4 belongs to user 1 (a seller).
    return pd.DataFrame(
        {
            "item_id": [1, 2, 3, 4, 5, 6],
            "category": ["tops", "tops", "shoes", "tops", "shoes", "bags"],
            "seller_id": [9, 9, 8, 1, 8, 7],
            "is_available": [1, 1, 1, 1, 0, 1],
            "impressions_7d": [10, 10, 10, 10, 10, 10],
            "clicks_7d": [5, 1, 3, 9, 50, 2],
            "likes_7d": [0] * 6,
            "saves_7d": [0] * 6,
            "bag_adds_7d": [0] * 6,
            "purchases_7d": [0] * 6,
        }
    )


def _affinity(dim: str, pairs: dict[int, list[str]]) -> pd.DataFrame:
    """Affinities of each user's values, strongest first."""
    rows = [(u, v, 1.0 - 0.1 * i) for u, vals in pairs.items() for i, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["user_id", dim, f"{dim}_affinity"])


def _generate(users, items, affinity, per_user, excluded=None, **more):
    quotas = more.pop("quotas", None)
    inputs = CandidateInputs(
        items=items,
        affinity={"category": affinity} if isinstance(affinity, pd.DataFrame) else affinity,
        excluded=_none() if excluded is None else excluded,
        **more,
    )
    return generate_candidates(np.array(users), inputs, per_user, quotas)


def test_popularity_ranking_skips_unavailable_and_orders_by_engagement():
    ranked = rank_available(_items())
    assert ranked["item_id"].tolist() == [4, 1, 3, 6, 2]


def test_candidates_exclude_own_sold_and_bought_items():
    affinity = _affinity("category", {1: ["shoes"], 2: ["tops"]})
    bought = pd.DataFrame({"user_id": [2], "item_id": [1]})
    cands = _generate([1, 2], _items(), affinity, 6, bought)
    by_user = cands.groupby("user_id")["item_id"].apply(list).to_dict()
    assert 4 not in by_user[1]  # own listing
    assert 5 not in by_user[1] and 5 not in by_user[2]  # sold
    assert 1 not in by_user[2]  # already bought
    # favourite category first: user 1 likes shoes -> item 3 leads
    assert by_user[1][0] == 3
    assert by_user[2][:2] == [4, 2]  # category quota int(6 * 0.35) = 2
    assert cands.groupby("user_id").size().max() <= 6
    assert not cands.duplicated(["user_id", "item_id"]).any()


def test_popularity_counts_purchases_for_purchase_only_logs():
    items = _items().assign(clicks_7d=0, impressions_7d=0, purchases_7d=[0, 3, 1, 0, 0, 2])
    assert rank_available(items)["item_id"].tolist() == [2, 6, 3, 1, 4]


def _catalogue() -> pd.DataFrame:
    """Twelve available dresses and bags by several brands and sizes, with 1-day counts
    and ages: enough for every source to have something to say."""
    n = 12
    items = pd.DataFrame(
        {
            "item_id": np.arange(100, 100 + n),
            "seller_id": 50,
            "category": ["dresses"] * 8 + ["bags"] * 4,
            "brand": ["zara", "cos", "zara", "cos", "gucci", "zara", "cos", "zara"] + ["cos"] * 4,
            "size": ["S", "M", "M", "S", "L", "S", "M", "L"] + ["one"] * 4,
            "is_available": 1,
            "age_days": [40.0, 30, 20, 10, 2.5, 1.0, 0.5, 60, 5, 0.2, 9, 9],
        }
    )
    for w in ("1d", "7d"):
        for e in ("impressions", "likes", "saves", "bag_adds", "purchases"):
            items[f"{e}_{w}"] = 0
    items["clicks_7d"] = np.arange(n, 0, -1) * 7  # popularity: 100 > 101 > ... > 111
    items["clicks_1d"] = items["clicks_7d"] // 7
    items.loc[items["item_id"] == 108, "clicks_1d"] = 40  # 108 is rising
    return items


def test_each_source_proposes_within_its_quota_and_is_recorded():
    items = _catalogue()
    affinity = {
        "category": _affinity("category", {1: ["dresses"]}),
        "brand": _affinity("brand", {1: ["gucci"]}),
        "size": _affinity("size", {1: ["M"]}),
    }
    recent = pd.DataFrame({"user_id": [1], "item_id": [110]})
    covis = pd.DataFrame({"item_id": [110, 110], "neighbour_id": [111, 109], "score": [0.9, 0.4]})
    quotas = {"covisitation": 0.1, "category_popular": 0.2, "brand_popular": 0.1}
    quotas |= {"new_arrivals": 0.1, "trending": 0.1}
    cands = _generate([1], items, affinity, 10, recent=recent, covisitation=covis, quotas=quotas)
    got = cands.set_index("item_id")["source"].to_dict()
    # one item per 0.1 of ten: co-visitation's best neighbour; two popular dresses in
    # size M; the gucci item; the newest dress; the rising bag; then global popularity
    assert list(got.items())[:6] == [
        (111, "covisitation"),
        (101, "category_popular"),
        (102, "category_popular"),
        (104, "brand_popular"),
        (106, "new_arrivals"),
        (108, "trending"),
    ]
    assert set(list(got.values())[6:]) == {"global_popular"}
    assert len(cands) == 10 and not cands["item_id"].duplicated().any()
    assert 110 not in got  # the recent item itself is not offered back by co-visitation
    # item 100 (the most popular) came from global popularity only; 101 also from it
    bits = cands.set_index("item_id")["sources"]
    assert bits[100] == SOURCE_BIT["global_popular"]
    assert bits[101] == SOURCE_BIT["category_popular"] | SOURCE_BIT["global_popular"]


def test_zero_quota_silences_a_source_and_unknown_sources_are_refused():
    items = _catalogue()
    affinity = {"category": _affinity("category", {1: ["bags"]})}
    only_global = _generate([1], items, affinity, 5, quotas={"category_popular": 0.0})
    assert set(only_global["source"]) == {"global_popular"}
    assert only_global["item_id"].tolist() == [100, 101, 102, 103, 104]
    with pytest.raises(ValueError, match="unknown candidate sources \\['bestsellers'\\]"):
        Settings(candidate_quotas={"bestsellers": 0.2})
    with pytest.raises(ValueError, match="shares in \\[0, 1\\]"):
        Settings(candidate_quotas={"trending": 1.5})


def test_past_items_source_leads_by_frequency_then_recency_within_its_quota():
    ts = pd.Timestamp("2026-01-10", tz="UTC")
    history = pd.DataFrame(
        {
            "user_id": [2, 2, 2, 2, 2, 1, 1],
            "item_id": [3, 6, 2, 5, 4, 6, 4],
            "n": [1, 3, 1, 9, 1, 1, 5],
            "last_ts": [ts, ts, ts - pd.Timedelta(days=1), ts, ts - pd.Timedelta(days=2), ts, ts],
        }
    )
    affinity = _affinity("category", {2: ["tops"]})
    no_history = _generate([1, 2], _items(), affinity, 6)
    assert "past_items" not in set(no_history["source"])

    share = Settings().candidates.quotas["past_items"]
    cands = _generate([1, 2], _items(), affinity, 6, history=history)
    u2 = cands[cands["user_id"] == 2]
    # quota int(6 * 0.3) = 1: the most frequent available past item leads
    # (5 was bought more often but is sold)
    assert int(6 * share) == 1
    assert u2[u2["source"] == "past_items"]["item_id"].tolist() == [6]
    assert u2["item_id"].iloc[0] == 6
    assert 5 not in u2["item_id"].tolist()
    # a larger list takes more past items; equal counts: the more recent first
    wide = _generate([2], _items(), affinity, 12, history=history)
    assert wide[wide["source"] == "past_items"]["item_id"].tolist() == [6, 3, 2]
    # user 1's own listing (item 4) is never offered, however often it was interacted with
    u1 = cands[cands["user_id"] == 1]
    assert u1["item_id"].iloc[0] == 6 and u1["source"].iloc[0] == "past_items"
    assert 4 not in u1["item_id"].tolist()
    assert not cands.duplicated(["user_id", "item_id"]).any()
    assert cands.groupby("user_id").size().max() <= 6

    excluded = pd.DataFrame({"user_id": [2], "item_id": [6]})
    kept = _generate([2], _items(), affinity, 12, excluded, history=history)
    assert 6 not in kept["item_id"].tolist()


def _none() -> pd.DataFrame:
    return pd.DataFrame({"user_id": [], "item_id": []}, dtype="int64")


def test_grade_labels_keeps_strongest_interaction():
    events = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2],
            "item_id": [10, 10, 10, 11, 10],
            "event_type": ["impression", "click", "add_to_bag", "impression", "like"],
            "position": [4, 4, 1, 7, 0],
        }
    )
    graded = grade_labels(events).set_index(["user_id", "item_id"])
    positions = graded["shown_position"].fillna(-1).to_dict()
    assert positions == {(1, 10): 4.0, (1, 11): 7.0, (2, 10): -1}  # best impression position
    labels = graded["label"]
    assert labels[(1, 10)] == C.LABEL_GRADES["add_to_bag"]
    assert labels[(1, 11)] == C.LABEL_GRADES["impression"]
    assert labels[(2, 10)] == C.LABEL_GRADES["like"]
    assert graded["shown"].to_dict() == {(1, 10): True, (1, 11): True, (2, 10): False}


def test_query_rows_union_candidates_and_impressions_for_shown_users_only():
    labels = pd.DataFrame(
        {
            "user_id": [1, 1],
            "item_id": [10, 11],
            "label": [2, 1],
            "shown": [True, True],
            "shown_position": [0.0, 3.0],
        }
    )
    cands = pd.DataFrame(
        {
            "user_id": [1, 1, 3],
            "item_id": [11, 12, 12],
            "source": ["covisitation", "trending", "trending"],
            "sources": [3, 32, 32],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": [10, 11, 12],
            "category": ["a", "b", "c"],
            "brand": "x",
            "size": "M",
            "style": "boho",
        }
    )
    rows = query_rows(cands, labels, items).sort_values("item_id")
    assert rows["user_id"].tolist() == [1, 1, 1]  # user 3 was shown nothing that day
    assert rows["label"].tolist() == [2, 1, C.NOT_SHOWN_GRADE]
    assert rows["source"].tolist() == ["shown", "covisitation", "trending"]
    assert rows["sources"].tolist() == [0, 3, 32]
    assert rows["shown_position"].fillna(-1).tolist() == [0.0, 3.0, -1]


def test_query_rows_take_unshown_purchases_only_as_candidates():
    # a purchase-only log: nothing was shown; user 1 bought 10 (not a candidate) and 12
    labels = pd.DataFrame(
        {
            "user_id": [1, 1],
            "item_id": [10, 12],
            "label": [5, 5],
            "shown": [False, False],
            "shown_position": [np.nan, np.nan],
        }
    )
    cands = pd.DataFrame(
        {"user_id": [1, 1], "item_id": [11, 12], "source": "past_items", "sources": 1}
    )
    items = pd.DataFrame(
        {"item_id": [10, 11, 12], "category": "a", "brand": "x", "size": "M", "style": "boho"}
    )
    rows = query_rows(cands, labels, items).sort_values("item_id")
    assert rows["item_id"].tolist() == [11, 12]
    assert rows["label"].tolist() == [C.NOT_SHOWN_GRADE, 5]


def test_top_n_and_padding_keep_order_and_exclusions():
    scored = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2],
            "item_id": [3, 2, 2, 3],
            "seller_id": [8, 9, 9, 8],
            "score": [0.5, 0.9, 0.9, 0.1],
        }
    )
    ranked = rules.top_n(scored, 2)
    assert ranked[ranked.user_id == 1]["item_id"].tolist() == [2, 3]
    popular = rank_available(_items())
    padded = rules.pad_from_popular(
        ranked, popular, pd.DataFrame({"user_id": [2], "item_id": [4]}), 3
    )
    lists = rules.to_lists(padded).set_index("user_id")
    u2 = lists.loc[2]
    assert len(u2["item_ids"]) == 3
    assert u2["item_ids"][0] == 3 and 4 not in u2["item_ids"]
    assert np.all(np.diff(u2["scores"]) <= 0)
    u1 = lists.loc[1]
    assert list(u1["item_ids"][:2]) == [2, 3] and 4 not in u1["item_ids"][2:]  # own listing
    assert len(set(u1["item_ids"])) == 3


def test_seller_cap_fills_the_head_from_other_sellers_and_drops_nothing():
    # user 1: seller 7 owns the four best items; cap 2 in a head of 4
    scored = pd.DataFrame(
        {
            "user_id": [1] * 7 + [2, 2],
            "item_id": [10, 11, 12, 13, 20, 21, 30, 10, 20],
            "seller_id": [7, 7, 7, 7, 8, 8, 7, 7, 8],
            "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
        }
    )
    capped = rules.cap_sellers(scored, cap=2, head=4)
    lists = rules.to_lists(capped).set_index("user_id")
    u1 = lists.loc[1]
    # head: 10, 11 (seller 7's first two), then 20, 21 from seller 8; then 12, 13, 30
    assert list(u1["item_ids"]) == [10, 11, 20, 21, 12, 13, 30]
    assert np.all(np.diff(u1["scores"]) <= 0)  # still sorted by what it shows
    assert list(u1["scores"][:4]) == pytest.approx([0.9, 0.8, 0.5, 0.4])
    assert list(lists.loc[2, "item_ids"]) == [10, 20]
    assert len(capped) == len(scored)


def test_rank_order_is_user_then_best_score_then_item_with_ties_and_nans():
    rng = np.random.default_rng(7)
    n = 5_000
    user = rng.integers(0, 40, n) * 1_000_003  # large, unsorted ids
    item = rng.permutation(n).astype(np.int64) * 7
    score = rng.choice(np.array([-1.5, -0.0, 0.0, 0.25, 2.0, np.nan], np.float32), n)
    expected = np.lexsort((item, -score, user))  # -0.0 ties 0.0; NaN sorts last
    assert np.array_equal(rules._rank_order(user, score, item), expected)
    assert len(rules._rank_order(user[:0], score[:0], item[:0])) == 0


@pytest.mark.parametrize("n", [1, 2])
def test_to_lists_sorted_descending(n):
    scored = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "score": [0.1, 0.3, 0.2]})
    lists = rules.to_lists(rules.top_n(scored, n))
    assert list(lists.loc[0, "item_ids"]) == [2, 3][:n]


def test_pair_features_score_every_row_from_the_candidates_own_inputs():
    from ranking_jobs.candidates.inputs import Candidates, with_pair_features

    recent = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [110, 111, 110]})
    covis = pd.DataFrame(
        {"item_id": [110, 111, 110], "neighbour_id": [120, 120, 121], "score": [0.5, 0.25, 0.1]}
    )
    found = Candidates(
        pd.DataFrame(),
        CandidateInputs(
            items=_catalogue(), affinity={}, excluded=_none(), recent=recent, covisitation=covis
        ),
    )
    rows = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [120, 121, 121, 120]})
    got = with_pair_features(rows, found)
    # user 1 reaches 120 from both recent items; user 3 has no recent items
    assert got["covis_score"].tolist() == pytest.approx([0.75, 0.1, 0.1, 0.0])
    assert got["covis_score"].dtype == np.float32
    assert got[["user_id", "item_id"]].equals(rows)


@pytest.mark.parametrize(
    ("users", "shard_users", "slots", "expected"),
    [
        (10, 4, 2, [3, 3, 2, 2]),  # 3 shards needed, rounded up to a multiple of 2 cores
        (10, 100, 2, [5, 5]),  # one would do, but then one core idles
        (3, 1, 4, [1, 1, 1]),  # never more shards than users
        (9, 3, 1, [3, 3, 3]),
        (0, 5, 2, []),
    ],
)
def test_shards_cover_every_user_once_in_waves_of_the_cores(users, shard_users, slots, expected):
    from ranking_jobs.precompute.scoring import shards

    ids = np.arange(100, 100 + users, dtype=np.int64)
    got = shards(ids, shard_users, slots)
    assert [len(s) for s in got] == expected
    assert np.array_equal(np.concatenate(got) if got else ids, ids)
