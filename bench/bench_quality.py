"""Ranking quality on generated data: the model against every baseline and the oracle.

    python -m bench.bench_quality [--scale small] [--ds 2026-01-31] [--root DIR]

Generates the preset's marketplace (reused when already there), then runs the
pipeline's own stages for ``--ds``: features, training set, training and the
evaluation stage, whose hold-out (the day ``ds``, after every training and
early-stopping day) scores the model, the baselines (random, popularity,
category-popular, co-visitation) and the model fitted with the other
position-debias setting on the same queries. On top, the bench ranks the same
hold-out rows by the generator's true utility (the oracle) and reports which
fraction of the oracle's NDCG each method reaches. Figures are printed, never
asserted; the target is NDCG@10 at least 1.3x the best baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path("/tmp/bench-quality")
TARGET = 1.3
STAGES = ("build_features", "build_training_set", "train_model", "evaluate_model")


# The training configuration the quality bar is measured with on `small` (every one a
# pipeline setting; the bench prints them). Against the pipeline's defaults it learns
# from twice the days with shallower, more regularised trees: on `small` the defaults
# stop early within 10-50 rounds and overfit the brand vocabulary.
TRAINING = {
    "train_rows": "shown",
    "train_days": 8,
    "categorical_features": False,
    "max_depth": 4,
    "min_child_weight": 50.0,
    "colsample_bytree": 0.6,
    "learning_rate": 0.05,
    "num_boost_round": 800,
    "early_stopping_rounds": 60,
}


def _training(args: argparse.Namespace) -> dict[str, Any]:
    """``TRAINING``, or the pipeline's own defaults under ``--pipeline-defaults``, with
    ``--train-rows`` and ``--categorical`` applied when given."""
    chosen = {} if args.pipeline_defaults else dict(TRAINING)
    if args.train_rows is not None:
        chosen["train_rows"] = args.train_rows
    if args.categorical is not None:
        chosen["categorical_features"] = args.categorical
    return chosen


def _settings(args: argparse.Namespace) -> Any:
    from ranking_jobs.settings import Settings

    root = args.root / args.scale
    training = _training(args)
    tag = hashlib.sha256(json.dumps(training, sort_keys=True).encode()).hexdigest()[:8]
    return Settings(
        data_root=str(root / "lake"),  # the training partition is rewritten by every run
        state_dir=root / f"var-{tag}",  # one registry per training configuration
        scale=args.scale,
        seed=args.seed,
        history_days=args.history_days,
        task_retries=0,
        position_debias=args.position_debias,
        **training,
    )


def _oracle(ctx: Any) -> tuple[dict[str, float], dict[str, float], int]:
    """The hold-out rows ranked by true utility, scored as the evaluation scores methods:
    on every candidate and on the shown items only."""
    import numpy as np
    import pandas as pd

    from ranking_jobs import contracts as C
    from ranking_jobs import lake
    from ranking_jobs.data import true_utility
    from ranking_jobs.evaluation import KS, holdout, list_metrics
    from ranking_jobs.evaluation.metrics import summarise

    settings = ctx.settings
    test = holdout(lake.read_partition(settings, C.TRAINING, ctx.ds).to_pandas())
    truth = lake.read_partition(settings, C.TRUTH_USERS, ctx.ds).to_pandas()
    snapshot = ctx.ds - dt.timedelta(days=1)
    items = pd.concat(
        [lake.read_partition(settings, C.RAW_ITEMS, d).to_pandas() for d in (snapshot, ctx.ds)]
    )
    utility = true_utility(
        truth, items, test["user_id"].to_numpy(), test["item_id"].to_numpy()
    ).astype(np.float64)
    qid, rel = test["qid"].to_numpy(), test["rel"].to_numpy()
    out = {**summarise(qid, rel, utility, ks=KS), **list_metrics(test, utility, settings.eval_k)}
    shown = test["shown_position"].notna().to_numpy()
    return out, summarise(qid[shown], rel[shown], utility[shown], ks=KS), len(test)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from ranking_jobs.context import RunContext
    from ranking_jobs.data import generate
    from ranking_jobs.stages import run_stage

    settings = _settings(args)
    ctx = RunContext.create(args.ds, settings)
    marker = Path(settings.data_root) / "generated.json"
    timings: dict[str, float] = {}
    if not marker.exists():
        t = time.perf_counter()
        summary = generate(ctx)
        timings["generate"] = round(time.perf_counter() - t, 1)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(summary, default=str))
    results: dict[str, Any] = {}
    for name in STAGES:
        t = time.perf_counter()
        results[name] = run_stage(name, ctx)
        timings[name] = round(time.perf_counter() - t, 1)
        print(f"  {name}: {timings[name]}s", flush=True)
    oracle, oracle_shown, rows = _oracle(ctx)
    return {
        "evaluation": results["evaluate_model"],
        "oracle": oracle,
        "oracle_shown": oracle_shown,
        "holdout_rows": rows,
        "timings": timings,
        "training": {k: getattr(settings, k) for k in (*TRAINING, "position_debias", "seed")},
    }


def _table(
    title: str, metrics: dict[str, dict[str, float]], best: str, oracle: str, k: int
) -> None:
    """One table, best first, and the model's ratio to the best baseline."""
    best_ndcg = metrics[best][f"ndcg@{k}"]
    oracle_ndcg = metrics[oracle][f"ndcg@{k}"]
    print(f"\n{title}")
    head = (
        f"{'method':>34} {'NDCG@10':>8} {'MAP@10':>7} {'recall@20':>9} {'MRR':>6} "
        f"{'coverage@10':>11} {'x best baseline':>15} {'of oracle':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, m in sorted(metrics.items(), key=lambda kv: -kv[1][f"ndcg@{k}"]):
        coverage = m.get("coverage@10")
        print(
            f"{name:>34} {m['ndcg@10']:>8.4f} {m['map@10']:>7.4f} {m['recall@20']:>9.4f} "
            f"{m['mrr']:>6.4f} {'-' if coverage is None else f'{coverage:.3f}':>11} "
            f"{m['ndcg@10'] / best_ndcg:>15.2f} {m['ndcg@10'] / oracle_ndcg:>9.1%}"
        )
    ratio = metrics["model"][f"ndcg@{k}"] / best_ndcg
    verdict = "MET" if ratio >= TARGET else "NOT MET"
    print(f"model / best baseline ({best}) = {ratio:.2f}x: {verdict}")


def _print(res: dict[str, Any], args: argparse.Namespace) -> None:
    ev = res["evaluation"]
    k = ev["k"]
    oracle = "oracle (true utility)"
    print(
        f"\nHold-out {args.ds} at scale {args.scale}: {ev['queries']:,} queries with "
        f"engagement, {res['holdout_rows']:,} rows; target {TARGET}x the best baseline"
    )
    print("training settings:", json.dumps(res["training"]))
    gate = ev.get("gate_rows", "candidates")
    views = {
        "candidates": ("All candidates (what precompute ranks)", ev["metrics"], res["oracle"]),
        "shown": (
            "Shown items only (re-ranking the logged impressions; exposure taken out)",
            ev["metrics_shown_only"],
            res["oracle_shown"],
        ),
    }
    for name, (title, metrics, oracle_metrics) in views.items():
        table = {**metrics, oracle: oracle_metrics}
        best = max(ev["baselines"], key=lambda m: table[m][f"ndcg@{k}"])
        marker = " [the gate's view]" if name == gate else ""
        _table(f"{title}{marker}:", table, best, oracle, k)
    print()
    for other, (diff, lo, hi) in ev["gain_vs"].items():
        print(f"  model - {other:<32} {diff:+.4f} (95% CI {lo:+.4f}..{hi:+.4f})")
    print("candidate recall of the hold-out's engaged items:", json.dumps(ev["candidate_recall"]))
    best = ev["best_baseline"]
    for seg, by_method in ev["segments"].items():
        cells = ", ".join(
            f"{m} {v[f'ndcg@{k}']:.4f}"
            for m, v in by_method.items()
            if m in ("model", best) or m.startswith("model_")
        )
        print(f"  {seg:>18} ({int(by_method['model']['n_queries']):,} queries): {cells}")
    print("stage timings (s):", json.dumps(res["timings"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--ds", default="2026-01-31")
    parser.add_argument("--history-days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--position-debias",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the trained model's setting; the evaluation also fits the other one",
    )
    parser.add_argument(
        "--pipeline-defaults",
        action="store_true",
        help="train with the pipeline's default settings instead of the bench's TRAINING",
    )
    parser.add_argument(
        "--train-rows",
        choices=["candidates", "shown"],
        help="what the model learns from and the gate judges (RANKING_TRAIN_ROWS)",
    )
    parser.add_argument(
        "--categorical",
        action=argparse.BooleanOptionalAction,
        help="native categorical item attributes (RANKING_CATEGORICAL_FEATURES)",
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    started = time.perf_counter()
    res = run(args)
    _print(res, args)
    print(f"wall time {time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
