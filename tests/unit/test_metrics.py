"""Ranking metrics: hand-computed examples, XGBoost agreement, bootstrap behaviour."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from ranking_jobs.evaluation.metrics import (
    bootstrap_diff_ci,
    catalogue_coverage,
    map_at_k,
    mrr,
    ndcg_at_k,
    novelty,
    per_query,
    recall_at_k,
    summarise,
)

# One query of five items, rows in this (arbitrary) order.
LABEL = np.array([3, 2, 0, 1, 2])
SCORE = np.array([0.5, 0.9, 0.8, 0.1, 0.3])
QID = np.zeros(5, dtype=int)
# Predicted order (score desc): rows 1, 2, 0, 4, 3 -> labels 2, 0, 3, 2, 1.
# Ideal order: labels 3, 2, 2, 1, 0.


def d(rank: int) -> float:
    """Discount of 1-based rank."""
    return 1.0 / math.log2(rank + 1)


def g(rel: int) -> float:
    return 2.0**rel - 1.0


# --- NDCG ------------------------------------------------------------------


def test_ndcg_by_hand_five_items() -> None:
    # DCG@5  = 3*1 + 0*0.6309 + 7*0.5 + 3*0.4307 + 1*0.3869 = 8.17888
    dcg5 = g(2) * d(1) + g(0) * d(2) + g(3) * d(3) + g(2) * d(4) + g(1) * d(5)
    # IDCG@5 = 7*1 + 3*0.6309 + 3*0.5 + 1*0.4307 + 0 = 10.82347
    idcg5 = g(3) * d(1) + g(2) * d(2) + g(2) * d(3) + g(1) * d(4) + g(0) * d(5)
    assert dcg5 == pytest.approx(8.17888, abs=1e-5)
    assert idcg5 == pytest.approx(10.82347, abs=1e-5)
    assert ndcg_at_k(QID, LABEL, SCORE, 5)[0] == pytest.approx(dcg5 / idcg5, abs=1e-12)
    assert dcg5 / idcg5 == pytest.approx(0.755662, abs=1e-6)

    # DCG@3 = 3 + 0 + 3.5 = 6.5 ; IDCG@3 = 7 + 1.89279 + 1.5 = 10.39279 -> 0.625433
    dcg3 = g(2) * d(1) + g(0) * d(2) + g(3) * d(3)
    idcg3 = g(3) * d(1) + g(2) * d(2) + g(2) * d(3)
    assert ndcg_at_k(QID, LABEL, SCORE, 3)[0] == pytest.approx(dcg3 / idcg3, abs=1e-12)
    assert dcg3 / idcg3 == pytest.approx(0.625433, abs=1e-6)

    # k beyond the list and k=None are the whole list
    assert ndcg_at_k(QID, LABEL, SCORE, 50)[0] == pytest.approx(dcg5 / idcg5, abs=1e-12)
    assert ndcg_at_k(QID, LABEL, SCORE, None)[0] == pytest.approx(dcg5 / idcg5, abs=1e-12)


def test_ndcg_linear_gain() -> None:
    dcg = 2 * d(1) + 0 * d(2) + 3 * d(3) + 2 * d(4) + 1 * d(5)
    idcg = 3 * d(1) + 2 * d(2) + 2 * d(3) + 1 * d(4)
    got = ndcg_at_k(QID, LABEL, SCORE, 5, exp_gain=False)[0]
    assert got == pytest.approx(dcg / idcg, abs=1e-12)


def test_perfect_and_order_invariance() -> None:
    assert ndcg_at_k(QID, LABEL, LABEL.astype(float), 3)[0] == pytest.approx(1.0)
    # rows shuffled across two interleaved queries: same per-query result
    qid = np.array([7, 3, 7, 3, 7, 3, 7, 3, 7, 3])
    label = np.r_[LABEL, LABEL[::-1]][[0, 5, 1, 6, 2, 7, 3, 8, 4, 9]]
    score = np.r_[SCORE, SCORE[::-1]][[0, 5, 1, 6, 2, 7, 3, 8, 4, 9]]
    got = ndcg_at_k(qid, label, score, 5)  # order of np.unique(qid): 3 then 7
    expected = ndcg_at_k(QID, LABEL, SCORE, 5)[0]
    assert got == pytest.approx([expected, expected], abs=1e-12)
    perm = np.random.default_rng(1).permutation(10)
    assert ndcg_at_k(qid[perm], label[perm], score[perm], 5) == pytest.approx(got, abs=1e-12)


def test_ties_keep_original_row_order() -> None:
    # equal scores: the row seen first is ranked first
    assert ndcg_at_k([0, 0], [0, 1], [0.5, 0.5], 2)[0] == pytest.approx(d(2) / d(1))
    assert ndcg_at_k([0, 0], [1, 0], [0.5, 0.5], 2)[0] == pytest.approx(1.0)
    # all tied: predicted order is row order 0..4 -> labels 3, 2, 0, 1, 2
    tied = np.full(5, 0.3)
    dcg = g(3) * d(1) + g(2) * d(2) + g(0) * d(3) + g(1) * d(4) + g(2) * d(5)
    idcg = g(3) * d(1) + g(2) * d(2) + g(2) * d(3) + g(1) * d(4)
    assert ndcg_at_k(QID, LABEL, tied, 5)[0] == pytest.approx(dcg / idcg, abs=1e-12)
    # MRR and MAP see the same tie order
    assert mrr([0, 0, 0], [0, 0, 1], [1.0, 1.0, 1.0])[0] == pytest.approx(1 / 3)
    assert map_at_k([0, 0, 0], [0, 1, 0], [2.0, 2.0, 2.0], 3)[0] == pytest.approx(1 / 2)


def test_queries_without_relevant_items() -> None:
    qid = [0, 0, 0, 1, 1]
    label = [0, 0, 0, 1, 0]
    score = [0.3, 0.2, 0.1, 0.1, 0.9]
    # XGBoost ndcg@k scores an all-zero query 1, ndcg@k- scores it 0
    assert ndcg_at_k(qid, label, score, 2) == pytest.approx([1.0, d(2)])
    assert ndcg_at_k(qid, label, score, 2, no_relevant=0.0) == pytest.approx([0.0, d(2)])
    assert np.isnan(ndcg_at_k(qid, label, score, 2, no_relevant=math.nan)[0])
    assert map_at_k(qid, label, score, 2) == pytest.approx([1.0, 0.5])
    assert map_at_k(qid, label, score, 2, no_relevant=0.0) == pytest.approx([0.0, 0.5])
    assert recall_at_k(qid, label, score, 1) == pytest.approx([0.0, 0.0])
    assert recall_at_k(qid, label, score, 2) == pytest.approx([0.0, 1.0])
    assert mrr(qid, label, score) == pytest.approx([0.0, 0.5])
    assert np.isnan(mrr(qid, label, score, no_relevant=math.nan)[0])

    summary = summarise(qid, label, score, ks=(2,), no_relevant=math.nan)
    assert summary["ndcg@2"] == pytest.approx(d(2))  # NaN queries left out of the mean
    assert summary["no_relevant_share"] == pytest.approx(0.5)
    assert summary["n_queries"] == 2.0


# --- MAP, recall, MRR ---------------------------------------------------------


def test_map_recall_mrr_by_hand() -> None:
    # threshold 0 -> relevant = label > 0; predicted-order relevance: 1 0 1 1 1, R = 4
    # AP@5 = (P@1 + P@3 + P@4 + P@5) / min(R, 5) = (1 + 2/3 + 3/4 + 4/5) / 4 = 0.804167
    assert map_at_k(QID, LABEL, SCORE, 5)[0] == pytest.approx((1 + 2 / 3 + 3 / 4 + 4 / 5) / 4)
    # AP@3 = (1 + 2/3) / min(4, 3) = 0.555556
    assert map_at_k(QID, LABEL, SCORE, 3)[0] == pytest.approx((1 + 2 / 3) / 3)
    # threshold 1 -> relevant = label > 1: 1 0 1 1 0, R = 3; AP@5 = (1 + 2/3 + 3/4) / 3
    assert map_at_k(QID, LABEL, SCORE, 5, threshold=1)[0] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)

    # recall@3: 2 of 4 relevant in the top 3; with threshold 1: 2 of 3
    assert recall_at_k(QID, LABEL, SCORE, 3)[0] == pytest.approx(2 / 4)
    assert recall_at_k(QID, LABEL, SCORE, 3, threshold=1)[0] == pytest.approx(2 / 3)
    assert recall_at_k(QID, LABEL, SCORE, 1)[0] == pytest.approx(1 / 4)

    # MRR: first relevant at rank 1; with threshold 2 (only label 3) at rank 3
    assert mrr(QID, LABEL, SCORE)[0] == pytest.approx(1.0)
    assert mrr(QID, LABEL, SCORE, threshold=2)[0] == pytest.approx(1 / 3)
    assert mrr(QID, LABEL, SCORE, threshold=2, k=2)[0] == pytest.approx(0.0)


def test_summarise_and_per_query_line_up() -> None:
    qid = np.r_[QID, np.ones(5, dtype=int)]
    label = np.r_[LABEL, [0, 0, 1, 0, 0]]
    score = np.r_[SCORE, [0.9, 0.8, 0.7, 0.6, 0.5]]
    frame = per_query(qid, label, score, ks=(3, 5))
    assert list(frame.index) == [0, 1]
    assert frame.loc[1, "mrr"] == pytest.approx(1 / 3)
    assert frame.loc[1, "recall@3"] == pytest.approx(1.0)
    summary = summarise(qid, label, score, ks=(3, 5))
    expected = (ndcg_at_k(QID, LABEL, SCORE, 5)[0] + (1 / math.log2(4))) / 2
    assert summary["ndcg@5"] == pytest.approx(expected)
    assert summary["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert set(summary) == {
        "ndcg@3", "ndcg@5", "map@3", "map@5", "recall@3", "recall@5", "mrr",
        "n_queries", "no_relevant_share",
    }  # fmt: skip


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="length"):
        ndcg_at_k([0, 0], [1], [0.1, 0.2], 1)
    with pytest.raises(ValueError, match="NaN"):
        ndcg_at_k([0, 0], [1, 0], [0.1, math.nan], 1)
    with pytest.raises(ValueError, match="non-negative"):
        ndcg_at_k([0, 0], [1, -1], [0.1, 0.2], 1)
    with pytest.raises(ValueError, match="integer"):
        ndcg_at_k([0, 0], [1.5, 0], [0.1, 0.2], 1)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k([0, 0], [1, 0], [0.1, 0.2], 0)
    with pytest.raises(ValueError, match="no rows"):
        ndcg_at_k([], [], [], 1)


# --- agreement with XGBoost's own metrics --------------------------------------


def _xgb_eval(labels, margins, groups, metrics, objective="rank:ndcg") -> dict[str, float]:
    """XGBoost's metric values on given scores: a 0-round booster predicts base_margin."""
    dm = xgb.DMatrix(np.zeros((len(labels), 1)), label=labels, base_margin=margins)
    dm.set_group(groups)
    params = {"objective": objective, "eval_metric": metrics, "nthread": 1}
    booster = xgb.train(params, dm, 0)
    out = {}
    for item in booster.eval(dm).split("\t")[1:]:
        name, value = item.rsplit(":", 1)
        out[name.removeprefix("eval-")] = float(value)
    return out


def test_agrees_with_xgboost_on_random_groups_with_ties() -> None:
    rng = np.random.default_rng(42)
    for case in range(15):
        groups = rng.integers(1, 30, size=rng.integers(1, 12))
        n = int(groups.sum())
        labels = rng.integers(0, 5, size=n) * (rng.random(n) < 0.4)
        if case % 5 == 0:
            labels[: groups[0]] = 0  # a query with no relevant item
        margins = (rng.integers(0, 6, size=n) / 4).astype(np.float32)  # many ties
        qid = np.repeat(np.arange(len(groups)), groups)

        theirs = _xgb_eval(labels, margins, groups, ["ndcg@3", "ndcg@10-", "ndcg"])
        assert ndcg_at_k(qid, labels, margins, 3).mean() == pytest.approx(
            theirs["ndcg@3"], abs=1e-12
        )
        ours = ndcg_at_k(qid, labels, margins, 10, no_relevant=0.0).mean()
        assert ours == pytest.approx(theirs["ndcg@10-"], abs=1e-12)
        assert ndcg_at_k(qid, labels, margins, None).mean() == pytest.approx(
            theirs["ndcg"], abs=1e-12
        )

        binary = (labels > 0).astype(float)
        theirs = _xgb_eval(binary, margins, groups, ["map@5", "map@5-"], "rank:map")
        assert map_at_k(qid, binary, margins, 5).mean() == pytest.approx(theirs["map@5"], abs=1e-12)
        ours = map_at_k(qid, binary, margins, 5, no_relevant=0.0).mean()
        assert ours == pytest.approx(theirs["map@5-"], abs=1e-12)


def _shared_datasets() -> Path:
    env = os.environ.get("RANKING_SHARED_DATASETS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "datasets"


def _load_letor(path: Path, n_features: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A libsvm file as a dense matrix (absent entries NaN = missing), labels, group sizes."""
    rows, labels = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if not parts:
            continue
        labels.append(float(parts[0]))
        pairs = [p.split(":") for p in parts[1:]]
        rows.append(([int(i) for i, _ in pairs], [float(v) for _, v in pairs]))
    x = np.full((len(rows), n_features), np.nan, dtype=np.float32)
    for i, (idx, val) in enumerate(rows):
        x[i, idx] = val
    groups = np.loadtxt(path.with_name(path.name + ".query"), dtype=np.int64, ndmin=1)
    return x, np.asarray(labels), groups


def test_agrees_with_xgboost_ndcg10_on_letor_sample() -> None:
    folder = _shared_datasets() / "letor-sample"
    files = [folder / f for f in ("rank.train", "rank.train.query", "rank.test", "rank.test.query")]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        pytest.skip(
            f"letor-sample data set not found ({', '.join(missing)}); "
            "set RANKING_SHARED_DATASETS to the folder that holds letor-sample/"
        )
    x_tr, y_tr, g_tr = _load_letor(folder / "rank.train", 301)
    x_te, y_te, g_te = _load_letor(folder / "rank.test", 301)
    assert g_tr.sum() == len(y_tr) and g_te.sum() == len(y_te)
    dtrain = xgb.DMatrix(x_tr, label=y_tr, group=g_tr)
    dtest = xgb.DMatrix(x_te, label=y_te, group=g_te)
    history: dict = {}
    booster = xgb.train(
        {"objective": "rank:ndcg", "eval_metric": "ndcg@10", "max_depth": 4, "eta": 0.2,
         "nthread": 1, "seed": 0},
        dtrain,
        num_boost_round=20,
        evals=[(dtest, "test")],
        evals_result=history,
        verbose_eval=False,
    )  # fmt: skip
    theirs = history["test"]["ndcg@10"][-1]
    qid = np.repeat(np.arange(len(g_te)), g_te)
    ours = ndcg_at_k(qid, y_te, booster.predict(dtest), 10).mean()
    print(f"letor-sample test ndcg@10: ours={ours!r} xgboost={theirs!r} diff={ours - theirs:.3e}")
    assert abs(ours - theirs) < 1e-6
    assert 0.3 < ours < 1.0  # a trained model, not a degenerate one


# --- list-level metrics ----------------------------------------------------------


def test_catalogue_coverage() -> None:
    lists = [[1, 2, 3], [3, 4], []]
    assert catalogue_coverage(lists, 10) == pytest.approx(0.4)
    series = pd.Series([np.array([1, 2, 3]), np.array([3, 4]), None])
    assert catalogue_coverage(series, 10) == pytest.approx(0.4)
    assert catalogue_coverage(np.array([[1, 2], [2, 5]]), 4) == pytest.approx(0.75)
    assert catalogue_coverage([1, 2, 2], 4) == pytest.approx(0.5)  # one flat list
    assert catalogue_coverage([], 4) == 0.0
    with pytest.raises(ValueError):
        catalogue_coverage(lists, 0)


def test_novelty_mean_self_information() -> None:
    popularity = {1: 8, 2: 4, 3: 2, 4: 2}  # total 16 -> p = 1/2, 1/4, 1/8, 1/8
    # self-information 1, 2, 3, 3 bits; list means 1.5 and 3.0 -> 2.25
    assert novelty([[1, 2], [3, 4]], popularity) == pytest.approx(2.25)
    # every list weighs the same: (1) and (2+3+3)/3 -> (1 + 8/3) / 2
    assert novelty([[1], [2, 3, 4], []], popularity) == pytest.approx((1 + 8 / 3) / 2)
    # an item nobody has seen counts as seen once: -log2(1/16) = 4 bits
    assert novelty([[99]], pd.Series(popularity)) == pytest.approx(4.0)
    # share of users instead of share of interactions: -log2(8/32) = 2
    assert novelty([[1]], popularity, n_users=32) == pytest.approx(2.0)
    assert math.isnan(novelty([[]], popularity))


# --- bootstrap ----------------------------------------------------------------------


def _ranker_scores(rng: np.random.Generator, n_queries: int = 300, size: int = 20):
    qid = np.repeat(np.arange(n_queries), size)
    label = rng.integers(0, 4, size=len(qid)) * (rng.random(len(qid)) < 0.3)
    good = label + rng.normal(0, 0.8, len(qid))
    return qid, label, good


def test_bootstrap_identical_rankers_include_zero() -> None:
    rng = np.random.default_rng(0)
    qid, label, score = _ranker_scores(rng)
    a = ndcg_at_k(qid, label, score, 10)
    diff, lo, hi = bootstrap_diff_ci(a, a.copy())
    assert (diff, lo, hi) == (0.0, 0.0, 0.0)
    # two different but equally (un)informed rankers: the interval straddles 0
    r1 = ndcg_at_k(qid, label, rng.random(len(qid)), 10)
    r2 = ndcg_at_k(qid, label, rng.random(len(qid)), 10)
    diff, lo, hi = bootstrap_diff_ci(r1, r2, seed=3)
    assert lo < 0 < hi
    assert lo <= diff <= hi


def test_bootstrap_clearly_better_ranker_excludes_zero() -> None:
    rng = np.random.default_rng(1)
    qid, label, good = _ranker_scores(rng)
    a = ndcg_at_k(qid, label, good, 10, no_relevant=0.0)
    b = ndcg_at_k(qid, label, rng.random(len(qid)), 10, no_relevant=0.0)
    diff, lo, hi = bootstrap_diff_ci(a, b, n_boot=2000)
    assert 0 < lo <= diff <= hi
    assert diff == pytest.approx(a.mean() - b.mean())
    # reversed comparison mirrors the interval
    rdiff, rlo, rhi = bootstrap_diff_ci(b, a, n_boot=2000)
    assert (rdiff, rlo, rhi) == pytest.approx((-diff, -hi, -lo))


def test_bootstrap_contains_true_difference_at_nominal_rate(monkeypatch) -> None:
    true_diff, n = 0.03, 400
    rng = np.random.default_rng(7)
    base = rng.random(n)
    _, lo, hi = bootstrap_diff_ci(base + true_diff + rng.normal(0, 0.2, n), base)
    assert lo <= true_diff <= hi

    # coverage over many simulated experiments is close to 95 %
    covered = 0
    reps = 200
    for rep in range(reps):
        noise = rng.normal(0, 0.2, n)
        _, lo, hi = bootstrap_diff_ci(base + true_diff + noise, base, n_boot=500, seed=rep)
        covered += lo <= true_diff <= hi
    assert 0.89 <= covered / reps <= 0.99

    # chunked resampling (tiny chunks) gives a valid, deterministic answer
    import ranking_jobs.evaluation.metrics as m

    monkeypatch.setattr(m, "_BOOT_CHUNK_CELLS", 1000)
    first = bootstrap_diff_ci(base + true_diff, base, seed=5)
    assert first == bootstrap_diff_ci(base + true_diff, base, seed=5)
    assert first == pytest.approx((true_diff, true_diff, true_diff))


def test_bootstrap_validation() -> None:
    with pytest.raises(ValueError, match="length"):
        bootstrap_diff_ci([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_diff_ci([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_diff_ci([1.0], [1.0], alpha=1.5)
