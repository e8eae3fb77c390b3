"""Candidate sources, labels and business rules on tiny hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ranking_jobs import contracts as C
from ranking_jobs.precompute import rules
from ranking_jobs.precompute.candidates import (
    PAST_ITEMS_SHARE,
    generate_candidates,
    rank_available,
)
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


def test_popularity_ranking_skips_unavailable_and_orders_by_engagement():
    ranked = rank_available(_items())
    assert ranked["item_id"].tolist() == [4, 1, 3, 6, 2]


def test_candidates_exclude_own_sold_and_bought_items():
    affinity = pd.DataFrame(
        {"user_id": [1, 2], "category": ["shoes", "tops"], "category_affinity": [1.0, 1.0]}
    )
    bought = pd.DataFrame({"user_id": [2], "item_id": [1]})
    cands = generate_candidates(np.array([1, 2]), _items(), affinity, bought, per_user=4)
    by_user = cands.groupby("user_id")["item_id"].apply(list).to_dict()
    assert 4 not in by_user[1]  # own listing
    assert 5 not in by_user[1] and 5 not in by_user[2]  # sold
    assert 1 not in by_user[2]  # already bought
    # favourite category first: user 1 likes shoes -> item 3 leads
    assert by_user[1][0] == 3
    assert by_user[2][:2] == [4, 2]
    assert cands.groupby("user_id").size().max() <= 4
    assert not cands.duplicated(["user_id", "item_id"]).any()


def test_popularity_counts_purchases_for_purchase_only_logs():
    items = _items().assign(clicks_7d=0, impressions_7d=0, purchases_7d=[0, 3, 1, 0, 0, 2])
    assert rank_available(items)["item_id"].tolist() == [2, 6, 3, 1, 4]


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
    affinity = pd.DataFrame({"user_id": [2], "category": ["tops"], "category_affinity": [1.0]})
    no_history = generate_candidates(np.array([1, 2]), _items(), affinity, _none(), per_user=6)
    assert "past_items" not in set(no_history["source"])

    cands = generate_candidates(
        np.array([1, 2]), _items(), affinity, _none(), per_user=6, history=history
    )
    u2 = cands[cands["user_id"] == 2]
    # quota int(6 * PAST_ITEMS_SHARE) = 1: the most frequent available past item leads
    # (5 was bought more often but is sold)
    assert int(6 * PAST_ITEMS_SHARE) == 1
    assert u2[u2["source"] == "past_items"]["item_id"].tolist() == [6]
    assert u2["item_id"].iloc[0] == 6
    assert 5 not in u2["item_id"].tolist()
    # a larger list takes more past items; equal counts: the more recent first
    wide = generate_candidates(
        np.array([2]), _items(), affinity, _none(), per_user=12, history=history
    )
    assert wide[wide["source"] == "past_items"]["item_id"].tolist() == [6, 3, 2]
    # user 1's own listing (item 4) is never offered, however often it was interacted with
    u1 = cands[cands["user_id"] == 1]
    assert u1["item_id"].iloc[0] == 6 and u1["source"].iloc[0] == "past_items"
    assert 4 not in u1["item_id"].tolist()
    assert not cands.duplicated(["user_id", "item_id"]).any()
    assert cands.groupby("user_id").size().max() <= 6

    excluded = pd.DataFrame({"user_id": [2], "item_id": [6]})
    kept = generate_candidates(
        np.array([2]), _items(), affinity, excluded, per_user=12, history=history
    )
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
        {"user_id": [1, 1, 3], "item_id": [11, 12, 12], "source": ["covis", "popular", "popular"]}
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
    assert rows["source"].tolist() == ["shown", "covis", "popular"]
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
    cands = pd.DataFrame({"user_id": [1, 1], "item_id": [11, 12], "source": "past_items"})
    items = pd.DataFrame(
        {"item_id": [10, 11, 12], "category": "a", "brand": "x", "size": "M", "style": "boho"}
    )
    rows = query_rows(cands, labels, items).sort_values("item_id")
    assert rows["item_id"].tolist() == [11, 12]
    assert rows["label"].tolist() == [C.NOT_SHOWN_GRADE, 5]


def test_top_n_and_padding_keep_order_and_exclusions():
    scored = pd.DataFrame(
        {"user_id": [1, 1, 1, 2], "item_id": [3, 2, 2, 3], "score": [0.5, 0.9, 0.9, 0.1]}
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


@pytest.mark.parametrize("n", [1, 2])
def test_to_lists_sorted_descending(n):
    scored = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "score": [0.1, 0.3, 0.2]})
    lists = rules.to_lists(rules.top_n(scored, n))
    assert list(lists.loc[0, "item_ids"]) == [2, 3][:n]
