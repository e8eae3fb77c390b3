"""LambdaMART training and the evaluation gate on small hand-made ranking data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ranking_jobs.evaluation import decide, eval_labels, holdout
from ranking_jobs.features.columns import MODEL_FEATURES
from ranking_jobs.settings import Settings
from ranking_jobs.training import model


def _frame(seed: int, queries: int, split: str) -> pd.DataFrame:
    """Queries whose label is driven by one feature (ctr_7d); the rest is noise."""
    rng = np.random.default_rng(seed)
    n = 12
    rows = queries * n
    df = pd.DataFrame(
        rng.normal(size=(rows, len(MODEL_FEATURES))).astype("float32"), columns=MODEL_FEATURES
    )
    df["user_id"] = np.repeat(np.arange(queries), n)
    df["item_id"] = np.tile(np.arange(n), queries)
    df["as_of"] = pd.Timestamp("2026-01-10", tz="UTC")
    signal = df["ctr_7d"].to_numpy()
    df["label"] = np.select([signal > 1.2, signal > 0.5, signal > 0.0], [5, 2, 1], 0)
    df["split"] = split
    return df.sample(frac=1.0, random_state=seed)  # shuffled: fit must group by query itself


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(num_boost_round=40, early_stopping_rounds=10, nthread=1)


def test_ranker_learns_the_signal_and_beats_random(settings):
    from ranking_jobs.evaluation.metrics import ndcg_at_k

    booster, history = model.fit(settings, _frame(1, 60, "train"), _frame(2, 30, "valid"))
    assert "valid" in history and booster.num_boosted_rounds() <= 40
    test = model.sort_by_query(_frame(3, 40, "test"))
    qid = test["user_id"].to_numpy()
    ours = ndcg_at_k(qid, test["label"].to_numpy(), model.predict(booster, test), 10)
    rnd = ndcg_at_k(qid, test["label"].to_numpy(), np.random.default_rng(0).random(len(test)), 10)
    assert ours.mean() > 0.9 > rnd.mean()
    gains = booster.get_score(importance_type="gain")
    assert max(gains, key=gains.get) == "ctr_7d"


def test_same_inputs_give_byte_identical_models(settings):
    a, _ = model.fit(settings, _frame(1, 30, "train"), _frame(2, 10, "valid"))
    b, _ = model.fit(settings, _frame(1, 30, "train"), _frame(2, 10, "valid"))
    assert model.booster_fingerprint(a) == model.booster_fingerprint(b)
    c, _ = model.fit(settings, _frame(4, 30, "train"), _frame(2, 10, "valid"))
    assert model.booster_fingerprint(a) != model.booster_fingerprint(c)


def test_dmatrix_groups_are_contiguous_per_query():
    df = _frame(5, 7, "train")
    dm = model.ranking_dmatrix(df)
    assert dm.num_row() == len(df)
    assert list(np.diff(dm.get_uint_info("group_ptr"))) == [12] * 7


def test_eval_labels_count_engagement_only():
    assert list(eval_labels(np.array([0, 1, 2, 3, 4, 5]))) == [0, 0, 1, 2, 3, 4]


def test_holdout_keeps_test_queries_with_engagement():
    df = pd.DataFrame(
        {
            "split": ["test"] * 4 + ["train"],
            "user_id": [1, 1, 2, 2, 3],
            "as_of": pd.Timestamp("2026-01-10", tz="UTC"),
            "label": [1, 2, 1, 0, 5],
        }
    )
    out = holdout(df)
    assert out["user_id"].tolist() == [1, 1]  # user 2 only saw impressions, user 3 is train


def test_gate_promotes_a_clearly_better_model_and_refuses_a_worse_one():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 0.3, 500)
    better, worse = base + 0.1, base - 0.05
    ok, _ = decide(better, base, None, min_gain=0.0, tolerance=0.01, seed=0)
    assert ok.promoted and "gain over best baseline" in ok.reasons[0]
    no, stats = decide(worse, base, None, min_gain=0.0, tolerance=0.01, seed=0)
    assert not no.promoted and stats["gain_vs_baseline"][2] < 0
    # better than the baseline but clearly worse than the champion: refused
    champ, _ = decide(better, base, better + 0.05, min_gain=0.0, tolerance=0.01, seed=0)
    assert not champ.promoted and any("worse than champion" in r for r in champ.reasons)
    # within the tolerance of the champion: promoted
    close, _ = decide(better, base, better + 0.005, min_gain=0.0, tolerance=0.01, seed=0)
    assert close.promoted


@pytest.mark.parametrize(
    ("window", "first", "test_day"),
    [(1, "2026-01-26", "2026-01-31"), (30, "2025-08-05", "2026-01-02")],
)
def test_label_windows_are_back_to_back_and_the_last_ends_with_ds(window, first, test_day):
    import datetime as dt
    import itertools

    from ranking_jobs.context import RunContext
    from ranking_jobs.features import snapshots_needed
    from ranking_jobs.training.dataset import label_days, label_window

    ctx = RunContext.create("2026-01-31", Settings(train_days=4, label_window_days=window))
    days = label_days(ctx)
    assert list(days.values()) == ["train"] * 4 + ["valid", "test"]
    starts = list(days)
    assert starts[0] == dt.date.fromisoformat(first)
    assert starts[-1] == dt.date.fromisoformat(test_day)
    windows = [label_window(ctx.settings, d) for d in starts]
    assert windows[-1][-1] == ctx.ds
    assert all(a[-1] + dt.timedelta(days=1) == b[0] for a, b in itertools.pairwise(windows))
    eves = {d - dt.timedelta(days=1) for d in starts}
    assert snapshots_needed(ctx) == sorted(eves | {ctx.ds})
