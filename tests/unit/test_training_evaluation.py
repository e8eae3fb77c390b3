"""LambdaMART training and the evaluation gate on small hand-made ranking data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ranking_jobs import model
from ranking_jobs.candidates import SOURCE_BIT
from ranking_jobs.columns import CATEGORICAL_FEATURES
from ranking_jobs.contracts import engagement_grade
from ranking_jobs.evaluation import decide, holdout
from ranking_jobs.families import MODEL_FEATURES
from ranking_jobs.settings import Settings


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
    df["shown_position"] = np.tile(np.arange(n), queries).astype("float64")
    df["category"] = rng.choice(["bags", "coats", "dresses"], rows)  # noise, like the rest
    df["brand"], df["size"], df["style"] = rng.choice(["cos", "zara"], rows), "M", "boho"
    df["split"] = split
    return df.sample(frac=1.0, random_state=seed)  # shuffled: fit must group by query itself


@pytest.fixture(scope="module")
def settings() -> Settings:
    # native categories on: the tests below also cover their vocabulary and SHAP columns
    return Settings(
        num_boost_round=40, early_stopping_rounds=10, nthread=1, categorical_features=True
    )


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
    assert list(engagement_grade(np.array([0, 1, 2, 3, 4, 5]))) == [0, 0, 1, 2, 3, 4]


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
    # a backfill never moves a champion trained for a later day, however good it is
    gate = {"min_gain": 0.0, "tolerance": 0.01, "seed": 0}
    back, _ = decide(better, base, base, **gate, ds="2026-01-20", champion_ds="2026-01-31")
    assert not back.promoted
    assert back.reasons[-1].startswith("backfill of 2026-01-20: the champion was trained for")
    later, _ = decide(better, base, base, **gate, ds="2026-02-01", champion_ds="2026-01-31")
    assert later.promoted


def _hold_out_rows() -> pd.DataFrame:
    """Two queries of four items; popularity ranks 1 > 2 > 3 > 4."""
    pops = {1: 40.0, 2: 30.0, 3: 20.0, 4: 10.0}
    rows = pd.DataFrame({"user_id": [7] * 4 + [8] * 4, "item_id": [1, 2, 3, 4] * 2})
    rows["qid"] = (rows["user_id"] == 8).astype(int)
    rows["clicks_7d"] = rows["item_id"].map(pops)
    for c in ("likes_7d", "saves_7d", "bag_adds_7d", "purchases_7d", "impressions_7d"):
        rows[c] = 0.0
    rows["category"] = rows["item_id"].map({1: "a", 2: "a", 3: "b", 4: "c"})
    # user 7 leans to c, then b; user 8 has no category history
    rows["category_affinity"] = np.where(
        rows["user_id"] == 7, rows["category"].map({"a": 0.0, "b": 0.3, "c": 0.7}), np.nan
    )
    return rows


def test_category_popular_puts_favourite_categories_first_then_popularity():
    from ranking_jobs.evaluation import baselines

    rows = _hold_out_rows()
    scores = baselines.category_popular_scores(rows, rows["qid"].to_numpy())

    def order(q: int) -> list[int]:
        mine = rows.assign(s=scores)[rows["qid"] == q]
        return mine.sort_values("s", ascending=False)["item_id"].tolist()

    assert order(0) == [3, 4, 1, 2]  # b and c are favourites (b more popular), then a
    assert order(1) == [1, 2, 3, 4]  # no history: plain popularity


def test_covisitation_scores_sum_neighbours_of_recent_items():
    from ranking_jobs.evaluation import baselines

    rows = _hold_out_rows()
    recent = pd.DataFrame({"user_id": [7, 7], "item_id": [9, 5]})
    neighbours = pd.DataFrame(
        {"item_id": [9, 9, 5, 6], "neighbour_id": [4, 3, 4, 1], "score": [0.5, 0.2, 0.25, 0.9]}
    )
    scores = baselines.covisitation_scores(rows, recent, neighbours)
    u7 = dict(zip(rows.item_id[:4], scores[:4], strict=True))
    assert u7[4] == pytest.approx(0.75) and u7[3] == pytest.approx(0.2)
    assert u7[4] > u7[3] > u7[1] > u7[2]  # no co-visitation: popularity breaks the tie
    assert scores[4:].max() < 1e-6  # user 8 has no recent items


def test_segments_split_users_and_restrict_relevance_to_the_item_segment():
    from ranking_jobs.evaluation import candidate_recall, segment_metrics

    rows = _hold_out_rows()
    rows["user_days_since_active"] = np.where(rows["user_id"] == 7, 2.0, np.nan)
    rows["impressions_30d"] = rows["item_id"].map({1: 500, 2: 400, 3: 3, 4: 0})
    rows["rel"] = [0, 1, 0, 2, 1, 0, 0, 0]  # user 7 engaged 2 and cold 4; user 8 item 1
    rows["source"] = ["category_popular", "global_popular", "shown", "shown"] + ["shown"] * 4
    bit = SOURCE_BIT
    rows["sources"] = [bit["category_popular"], bit["global_popular"] | bit["trending"]] + [0] * 6
    perfect = rows["rel"].to_numpy().astype(float)
    seg = segment_metrics(rows, {"perfect": perfect, "popularity": -rows["item_id"].to_numpy()})
    assert seg["new_users"]["perfect"]["n_queries"] == 1
    assert seg["returning_users"]["perfect"]["n_queries"] == 1
    assert seg["cold_items"]["perfect"]["n_queries"] == 1  # only user 7 engaged a cold item
    assert seg["cold_items"]["perfect"]["ndcg@10"] == pytest.approx(1.0)
    # popularity ranks cold item 4 last of four: NDCG = 1/log2(5)
    assert seg["cold_items"]["popularity"]["ndcg@10"] == pytest.approx(1 / np.log2(5), rel=1e-6)
    recall = candidate_recall(rows)
    assert recall["first_source"] == {"global_popular": pytest.approx(1 / 3)}
    assert recall["all_generators"] == pytest.approx(1 / 3)
    assert recall["by_source"]["trending"] == pytest.approx(1 / 3)
    assert recall["by_source"]["category_popular"] == 0.0  # proposed, but not engaged


def test_queries_follow_display_order_for_unbiased_lambdamart():
    df = pd.DataFrame(
        {
            "as_of": pd.Timestamp("2026-01-10", tz="UTC"),
            "user_id": [1, 1, 1, 1],
            "item_id": [4, 3, 2, 1],
            "shown_position": [np.nan, 0.0, 5.0, np.nan],
        }
    )
    assert model.sort_by_query(df, by_position=True)["item_id"].tolist() == [3, 2, 1, 4]


def test_validation_rows_keep_no_display_order_a_metric_could_read_through_ties():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {
            "as_of": pd.Timestamp("2026-01-10", tz="UTC"),
            "user_id": 1,
            "item_id": rng.permutation(n),
            "shown_position": np.where(np.arange(n) < 20, np.arange(n), np.nan),
        }
    )
    df["label"] = (df["shown_position"] < 5).astype(int)  # engaged items were shown first
    mixed = model.sort_by_query(df)
    again = model.sort_by_query(df.sample(frac=1.0, random_state=1))
    assert mixed["item_id"].tolist() == again["item_id"].tolist()  # not the input order
    # the engaged rows are spread out, not first: ties cannot favour them
    assert mixed.index[mixed["label"] == 1].min() > 0
    assert model.sort_by_query(df, by_position=True)["label"].head(5).tolist() == [1] * 5


def test_position_debias_setting_reaches_xgboost():
    assert model.xgb_params(Settings(position_debias=True))["lambdarank_unbiased"] is True
    assert model.xgb_params(Settings(position_debias=False))["lambdarank_unbiased"] is False


def test_shap_contributions_add_up_to_the_margin_and_cover_every_feature(settings):
    booster, _ = model.fit(settings, _frame(1, 60, "train"), _frame(2, 30, "valid"))
    valid = _frame(6, 30, "valid")
    valid.loc[valid.index[::7], "price"] = np.nan  # missing values take the default branch
    rows = model.sample_rows(valid, 100, seed=3)
    assert len(rows) == 100 and rows.index.equals(model.sample_rows(valid, 100, seed=3).index)
    contribs = model.contributions(booster, rows)
    names = [*MODEL_FEATURES, *CATEGORICAL_FEATURES]
    assert contribs.shape == (100, len(names) + 1)  # the last column is the bias
    vocab = model.booster_vocabulary(booster)
    margin = booster.predict(model.feature_dmatrix(rows, vocab), output_margin=True)
    np.testing.assert_allclose(contribs.sum(axis=1), margin, rtol=0, atol=1e-4)
    np.testing.assert_allclose(margin, model.predict(booster, rows), rtol=0, atol=1e-5)

    importance = model.shap_importance(booster, valid, rows=100, seed=3)
    assert list(importance) == names
    np.testing.assert_allclose(
        list(importance.values()), np.abs(contribs[:, :-1]).mean(axis=0), rtol=1e-6
    )
    assert max(importance, key=importance.get) == "ctr_7d"
    # fewer rows than the bound: all of them, and the seed does not matter
    assert model.shap_importance(booster, rows, seed=1) == model.shap_importance(
        booster, rows, seed=2
    )


def test_a_model_trained_on_fewer_features_scores_by_name(settings):
    """A champion from before a feature was added still scores the new, wider rows."""
    import xgboost as xgb

    train = model.sort_by_query(_frame(1, 30, "train"))  # queries contiguous
    older = [c for c in MODEL_FEATURES if not c.startswith("ui_")]
    dm = xgb.DMatrix(train[older].to_numpy(), label=train["label"], feature_names=older)
    dm.set_group([12] * 30)
    booster = xgb.train({"objective": "rank:ndcg", "seed": 0}, dm, num_boost_round=5)
    test = _frame(3, 5, "test")
    expected = booster.predict(xgb.DMatrix(test[older].to_numpy(), feature_names=older))
    shuffled = test[list(reversed(test.columns))]  # column order must not matter either
    assert model.predict(booster, shuffled) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(KeyError, match="ctr_7d"):
        model.predict(booster, test.drop(columns="ctr_7d"))


def test_training_rows_are_labelled_by_engagement_and_keep_engaged_queries():
    from ranking_jobs.model import training_rows

    as_of = pd.Timestamp("2026-01-30", tz="UTC")
    table = pd.DataFrame(
        {
            "split": ["train"] * 6 + ["valid"],
            "as_of": [as_of] * 7,
            "user_id": [1, 1, 1, 2, 2, 3, 1],
            # user 1: a click (2), an impression (1), an unshown candidate (0); user 2
            # only saw items; user 3 bought an item it was never shown
            "label": [2, 1, 0, 1, 0, 5, 2],
            "shown_position": [0.0, 1.0, np.nan, 0.0, np.nan, np.nan, 1.0],
        }
    )
    rows = training_rows(Settings(), table, "train")
    assert rows.index.tolist() == [0, 1, 2, 5]  # user 2 engaged with nothing
    assert rows["label"].tolist() == [1, 0, 0, 4]  # an impression counts as little as unshown
    shown = training_rows(Settings(train_rows="shown"), table, "train")
    assert shown.index.tolist() == [0, 1]


def test_native_categories_travel_in_the_model_file_and_unknown_values_are_missing(settings):
    import xgboost as xgb

    rng = np.random.default_rng(5)
    train, valid = _frame(1, 60, "train"), _frame(2, 30, "valid")
    for df in (train, valid):
        df["category"] = rng.choice(["bags", "coats", "dresses"], len(df))
        df["brand"], df["size"] = rng.choice(["cos", "zara"], len(df)), "M"
        df["style"] = rng.choice(["boho", None], len(df))
        # dresses always get the top grade: only the category can tell
        df["label"] = np.where(df["category"] == "dresses", 5, df["label"])
    booster, _ = model.fit(settings, train, valid)  # categorical features are on by default
    assert booster.feature_names[-4:] == ["category", "brand", "size", "style"]
    assert booster.feature_types[-4:] == ["c"] * 4
    assert model.booster_vocabulary(booster)["category"] == ["bags", "coats", "dresses"]

    reloaded = xgb.Booster(model_file=bytearray(booster.save_raw("ubj")))
    scores = model.predict(reloaded, valid)
    np.testing.assert_allclose(scores, model.predict(booster, valid))
    dmatrix = model.feature_dmatrix(valid, model.booster_vocabulary(booster))
    np.testing.assert_allclose(scores, booster.predict(dmatrix), rtol=1e-6)
    dresses = (valid["category"] == "dresses").to_numpy()
    # nearly every dress above nearly every other item, the category the strongest split
    assert (scores[dresses][:, None] > scores[~dresses][None, :]).mean() > 0.9
    gain = booster.get_score(importance_type="gain")
    assert max(gain, key=gain.__getitem__) == "category"
    # codes follow the stored vocabulary, not the order values appear in
    flipped = valid.iloc[::-1]
    np.testing.assert_allclose(model.predict(booster, flipped), scores[::-1])
    # a category the model never saw scores like a missing one
    unseen = valid.assign(category="jumpsuits")
    missing = valid.assign(category=None)
    np.testing.assert_allclose(model.predict(booster, unseen), model.predict(booster, missing))
    off, _ = model.fit(settings.replace(categorical_features=False), train, valid)
    assert "category" not in off.feature_names and model.booster_vocabulary(off) == {}
