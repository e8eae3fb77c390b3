"""Ranking quality on the UCI Online Retail data: the pipeline's model against baselines.

    python -m bench.bench_quality_uci [--data PATH] [--holdout-days 30] [--root DIR]

The last ``--holdout-days`` days of the file are held out (temporal split at
split time T = midnight starting the first held-out day). Every method builds a
top-20 list per hold-out user from what was known before T; relevance is the set
of items the user bought in the held-out days. Hold-out users are the customers
who bought both before T and after it (every method needs some history).

- ``model``: in a child process the file is imported into a fresh lake with the
  project's adapter, then ``build_features``, ``build_training_set`` and
  ``train_model`` run for ds = T - 1 day exactly as the CLI runs them, with
  ``exclude_purchased=False``, a year of user-item history and
  ``label_window_days = --holdout-days`` (the
  training labels span as long a window as the hold-out; every window ends by
  T). The booster is scored on the pipeline's candidates at T (snapshot ds)
  with features from ``assemble_features``, as the precompute stage does.
- ``popularity``: the most purchased items of the 30 days before T.
- ``buy_again``: the user's past items, most often bought first, then most recent.
- ``als``: ``implicit``'s ALS on the user x item purchase counts before T,
  repurchases allowed.

One table: NDCG@10, MAP@10, recall@20 (the project's metrics, relevant items
outside a list ranked below it), catalogue coverage of the top-10 lists, the
ratio of NDCG@10 to the best baseline and wall time per method; then the 1.1x
target and the model's candidate recall. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.bench_features import run_child

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ranking_jobs.settings import Settings

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("RANKING_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
DEFAULT_DATA = DATASETS / "uci-online-retail" / "online_retail.parquet"
K, LIST_K = 10, 20
POPULAR_DAYS = 30
TARGET = 1.1
BASELINES = ("popularity", "buy_again", "als")
ALS_PARAMS = {"factors": 64, "regularization": 0.05, "alpha": 1.0, "iterations": 20}
SEED = 7
# A shop's customers rebuy over months: remember a user's items for a year.
USER_ITEM_LOOKBACK_DAYS = 365
STAGES = ("build_features", "build_training_set", "train_model")


def _settings(args: argparse.Namespace) -> Settings:
    from ranking_jobs.settings import Settings

    return Settings(
        data_root=str(args.root / "lake"),
        state_dir=args.root / "var",
        exclude_purchased=False,
        train_rows="candidates",  # a sales log has no impressions
        user_item_lookback_days=USER_ITEM_LOOKBACK_DAYS,
        label_window_days=args.holdout_days,
        train_days=args.train_days,
        spark_driver_memory="2g",
        mlflow_experiment="bench_quality_uci",
        seed=SEED,
    )


def _split(args: argparse.Namespace, last_day: dt.date) -> tuple[dt.date, dt.date]:
    """(ds, first held-out day): the pipeline runs for the day before the hold-out."""
    first_held = last_day - dt.timedelta(days=args.holdout_days - 1)
    return first_held - dt.timedelta(days=1), first_held


# --- child: import and the pipeline's stages ------------------------------------------


def _child_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    from ranking_jobs.context import RunContext
    from ranking_jobs.data.adapters import run_import
    from ranking_jobs.stages import run_stage

    settings = _settings(args)
    started = time.perf_counter()
    summary = run_import(settings, "uci", args.data)
    seconds = {"import": time.perf_counter() - started}
    ds, first_held = _split(args, dt.date.fromisoformat(summary["end"]))
    ctx = RunContext.create(ds, settings, "bench_quality_uci")
    results = {}
    for stage in STAGES:
        started = time.perf_counter()
        results[stage] = run_stage(stage, ctx)
        seconds[stage] = time.perf_counter() - started
    trained = results["train_model"]
    return {
        "ds": ds.isoformat(),
        "first_held": first_held.isoformat(),
        "last_day": summary["end"],
        "kept_lines": summary["kept"],
        "repeat_purchase_share": summary["repeat_purchase_share"],
        "training_rows": results["build_training_set"]["rows_by_split"],
        "training_queries": results["build_training_set"]["queries"],
        "model": {
            "name": settings.registered_model,
            "version": trained["model_version"],
            "run_id": trained["mlflow_run_id"],
        },
        "rounds": trained["rounds"],
        "valid_ndcg": trained[f"valid_ndcg@{settings.eval_k}"],
        "seconds": seconds,
    }


# --- child: every method on the same split --------------------------------------------


def _child_evaluate(args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from ranking_jobs import contracts as C
    from ranking_jobs import lake
    from ranking_jobs.precompute import inputs

    settings = _settings(args)
    ds = dt.date.fromisoformat(info["ds"])
    split = pd.Timestamp(info["first_held"], tz="UTC")
    days = lake.list_partitions(settings, C.RAW_EVENTS)
    events = lake.read_days(
        settings, C.RAW_EVENTS, days, ["user_id", "item_id", "ts", "event_type"]
    ).to_pandas()
    bought = events[events["event_type"] == "purchase"]
    before, after = bought[bought["ts"] < split], bought[bought["ts"] >= split]
    users = np.intersect1d(before["user_id"].unique(), after["user_id"].unique())
    truth = after[after["user_id"].isin(users)][["user_id", "item_id"]].drop_duplicates()
    items = inputs.item_table(settings, ds)
    catalogue = int((items["is_available"] == 1).sum())

    methods: dict[str, tuple[pd.DataFrame, float]] = {}
    for name, make in (
        ("popularity", lambda: _popularity(before, split, users)),
        ("buy_again", lambda: _buy_again(before, users)),
        ("als", lambda: _als(before, users)),
    ):
        started = time.perf_counter()
        lists = make()
        methods[name] = (lists, time.perf_counter() - started)
    started = time.perf_counter()
    lists, cands = _model(settings, info, users, ds, split)
    model_s = time.perf_counter() - started
    methods["model"] = (lists, model_s + sum(info["seconds"][s] for s in STAGES))

    rows = []
    for name, (lists, seconds) in methods.items():
        rows.append({"method": name, **_score(lists, truth, users, catalogue), "wall_s": seconds})
    return {
        "rows": rows,
        "users": len(users),
        "cold_users": int(after["user_id"].nunique() - len(users)),
        "truth_pairs": len(truth),
        "repurchase_share": _repurchase_share(truth, before),
        "catalogue": catalogue,
        "candidates": _candidate_recall(cands, truth),
        "model_scoring_s": model_s,
    }


def _popularity(before: pd.DataFrame, split: pd.Timestamp, users: np.ndarray) -> pd.DataFrame:
    """The same top list for everyone: most purchase events of the last POPULAR_DAYS."""
    import pandas as pd

    recent = before[before["ts"] >= split - pd.Timedelta(days=POPULAR_DAYS)]
    top = recent.groupby("item_id").size().rename("n").reset_index()
    top = top.sort_values(["n", "item_id"], ascending=[False, True]).head(LIST_K)
    lists = pd.DataFrame({"user_id": users}).merge(top[["item_id"]], how="cross")
    return _ranked(lists)


def _buy_again(before: pd.DataFrame, users: np.ndarray) -> pd.DataFrame:
    past = before[before["user_id"].isin(users)]
    past = past.groupby(["user_id", "item_id"], as_index=False).agg(
        n=("ts", "size"), last_ts=("ts", "max")
    )
    past = past.sort_values(
        ["user_id", "n", "last_ts", "item_id"], ascending=[True, False, False, True]
    )
    return _ranked(past.groupby("user_id").head(LIST_K)[["user_id", "item_id"]])


def _als(before: pd.DataFrame, users: np.ndarray) -> pd.DataFrame:
    """implicit's ALS on purchase counts; already bought items stay recommendable."""
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    user_ids, u = np.unique(before["user_id"].to_numpy(), return_inverse=True)
    item_ids, i = np.unique(before["item_id"].to_numpy(), return_inverse=True)
    counts = sp.csr_matrix(
        (np.ones(len(u), dtype=np.float32), (u, i)), shape=(len(user_ids), len(item_ids))
    )
    counts.sum_duplicates()
    rows = np.searchsorted(user_ids, users)
    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads would fight them
        model = AlternatingLeastSquares(**ALS_PARAMS, random_state=SEED, num_threads=2)
        model.fit(counts, show_progress=False)
        ids, _ = model.recommend(rows, counts[rows], N=LIST_K, filter_already_liked_items=False)
    lists = pd.DataFrame(
        {"user_id": np.repeat(users, ids.shape[1]), "item_id": item_ids[ids.ravel()]}
    )
    return _ranked(lists[ids.ravel() >= 0])


def _model(
    settings: Settings, info: dict[str, Any], users: np.ndarray, ds: dt.date, split: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pipeline's candidates at T, features through Feast, ranked by the trained booster."""
    from ranking_jobs import registry
    from ranking_jobs.feast_store import assemble_features
    from ranking_jobs.precompute import inputs, rules
    from ranking_jobs.training.model import predict

    booster = registry.load_booster(settings, registry.ModelRef(**info["model"]))
    found = inputs.candidates_at(settings, users, ds)
    cands = inputs.with_pair_features(found.frame, found)
    cands["event_timestamp"] = split
    cands["score"] = predict(booster, assemble_features(settings, cands))
    top = rules.top_n(cands, LIST_K)
    return _ranked(top[["user_id", "item_id"]]), cands[["user_id", "item_id", "source"]]


def _ranked(lists: pd.DataFrame) -> pd.DataFrame:
    """0-based rank of each row in its user's list, keeping the given order."""
    lists = lists.reset_index(drop=True)
    lists["rank"] = lists.groupby("user_id").cumcount()
    return lists


def _score(
    lists: pd.DataFrame, truth: pd.DataFrame, users: np.ndarray, catalogue: int
) -> dict[str, float]:
    """The project's metrics on each user's list; relevant items the list missed (or a
    short list's empty places) rank after it, so recall and IDCG count every bought item."""
    import numpy as np
    import pandas as pd

    from ranking_jobs.evaluation.metrics import catalogue_coverage, summarise

    lists = lists[lists["user_id"].isin(users)]
    marked = lists.merge(truth.assign(label=1), on=["user_id", "item_id"], how="left")
    marked = marked.fillna({"label": 0})
    marked["score"] = float(LIST_K) - marked["rank"]
    length = lists.groupby("user_id").size().reindex(users, fill_value=0).to_numpy()
    filler = pd.DataFrame({"user_id": np.repeat(users, LIST_K - length), "label": 0, "score": 0.0})
    missed = truth.merge(lists[["user_id", "item_id"]], how="left", indicator=True)
    missed = missed[missed["_merge"] == "left_only"].assign(label=1, score=-1.0)
    rows = pd.concat(
        [marked[["user_id", "label", "score"]], filler, missed[["user_id", "label", "score"]]]
    )
    got = summarise(rows["user_id"], rows["label"].astype(np.int64), rows["score"], ks=(K, LIST_K))
    top = lists[lists["rank"] < K]
    return {
        f"ndcg@{K}": got[f"ndcg@{K}"],
        f"map@{K}": got[f"map@{K}"],
        f"recall@{LIST_K}": got[f"recall@{LIST_K}"],
        "coverage": catalogue_coverage(top["item_id"].to_numpy(), catalogue),
    }


def _repurchase_share(truth: pd.DataFrame, before: pd.DataFrame) -> float:
    """Share of held-out (user, item) pairs the user had bought before: buy-again's ceiling."""
    seen = before[["user_id", "item_id"]].drop_duplicates().assign(seen=1)
    return float(truth.merge(seen, how="left")["seen"].notna().mean())


def _candidate_recall(cands: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """Mean per-user share of held-out items among the model's candidates, overall and
    by source: what the ranker could possibly reach."""
    hit = truth.merge(cands, on=["user_id", "item_id"], how="left")
    n_truth = truth.groupby("user_id").size()
    out = {
        "per_user": float(cands.groupby("user_id").size().mean()),
        "recall": float((hit.groupby("user_id")["source"].count() / n_truth).mean()),
    }
    for source, group in hit.dropna(subset=["source"]).groupby("source"):
        share = group.groupby("user_id").size().reindex(n_truth.index, fill_value=0) / n_truth
        out[f"recall_{source}"] = float(share.mean())
    return out


# --- parent ----------------------------------------------------------------------------


def _print_table(info: dict[str, Any], res: dict[str, Any], args: argparse.Namespace) -> None:
    rows = {r["method"]: r for r in res["rows"]}
    best_name = max(BASELINES, key=lambda m: rows[m][f"ndcg@{K}"])
    best = rows[best_name][f"ndcg@{K}"]
    print(
        f"\nUCI Online Retail, temporal split: history before {info['first_held']}, hold-out "
        f"{info['first_held']}..{info['last_day']} ({args.holdout_days} days); "
        f"{res['users']:,} hold-out users (bought before and after; {res['cold_users']:,} "
        f"new customers left out), {res['truth_pairs']:,} (user, item) purchases to find, "
        f"{res['repurchase_share']:.1%} of them bought by the user before; catalogue "
        f"{res['catalogue']:,} items\n"
    )
    head = (
        f"{'method':<11} {'NDCG@10':>8} {'MAP@10':>8} {'recall@20':>10} {'coverage':>9} "
        f"{'NDCG/best':>10} {'users':>6} {'wall s':>7}"
    )
    print(head)
    print("-" * len(head))
    for name in (*BASELINES, "model"):
        r = rows[name]
        print(
            f"{name:<11} {r[f'ndcg@{K}']:>8.4f} {r[f'map@{K}']:>8.4f} "
            f"{r[f'recall@{LIST_K}']:>10.4f} {r['coverage']:>9.2%} "
            f"{r[f'ndcg@{K}'] / best:>10.3f} {res['users']:>6,} {r['wall_s']:>7.1f}"
        )
    ratio = rows["model"][f"ndcg@{K}"] / best
    print(
        f"\ntarget: model NDCG@10 >= {TARGET}x the best baseline ({best_name}, {best:.4f}): "
        f"{ratio:.3f}x, {'met' if ratio >= TARGET else 'NOT met'}"
    )
    s = info["seconds"]
    print(
        f"model wall = build_features {s['build_features']:.0f}s + build_training_set "
        f"{s['build_training_set']:.0f}s + train_model {s['train_model']:.0f}s + scoring "
        f"{res['model_scoring_s']:.0f}s (import {s['import']:.0f}s not counted); "
        f"{info['rounds']} rounds, valid NDCG@10 {info['valid_ndcg']:.4f}; training rows "
        f"{info['training_rows']} in {info['training_queries']:,} queries"
    )
    c = res["candidates"]
    by_source = ", ".join(
        f"{k.removeprefix('recall_')} {v:.4f}" for k, v in c.items() if k.startswith("recall_")
    )
    print(
        f"model candidates: {c['per_user']:.0f} per user, recall of the held-out purchases "
        f"{c['recall']:.4f} (by source: {by_source})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="the UCI Online Retail parquet (default ../shared/datasets/... beside the repo, "
        "or under $RANKING_SHARED_DATASETS)",
    )
    parser.add_argument("--holdout-days", type=int, default=30, help="days held out at the end")
    parser.add_argument("--train-days", type=int, default=4, help="training label windows")
    parser.add_argument(
        "--root", type=Path, default=None, help="lake and state folder (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp lake afterwards")
    parser.add_argument("--timeout", type=float, default=3600, help="per child, seconds")
    parser.add_argument("--rss-limit-gib", type=float, default=6, help="kill a child above this")
    parser.add_argument("--child", choices=["pipeline", "evaluate"], help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        if args.child == "pipeline":
            out = _child_pipeline(args)
        else:
            out = _child_evaluate(args, json.loads(args.info))
        print(json.dumps(out, default=str))
        return 0

    if not args.data.is_file():
        print(
            f"UCI Online Retail file not found at {args.data}: nothing to benchmark "
            "(pass --data or set RANKING_SHARED_DATASETS)"
        )
        return 0
    temp = args.root is None
    args.root = (args.root or Path(tempfile.mkdtemp(prefix="bench-quality-uci-"))).resolve()
    common = [
        "bench.bench_quality_uci",
        f"--data={args.data.resolve()}",
        f"--holdout-days={args.holdout_days}",
        f"--train-days={args.train_days}",
        f"--root={args.root}",
    ]
    limits = {"timeout_s": args.timeout, "rss_limit_gib": args.rss_limit_gib}
    try:
        print(f"import + build_features + build_training_set + train_model under {args.root} ...")
        info = run_child([*common, "--child=pipeline"], **limits)
        if "error" in info:
            print(f"pipeline child failed: {info['error']}")
            return 1
        print(f"  done in {info['child_wall_s']}s, peak RSS {info['tree_peak_rss_mib']} MiB")
        res = run_child([*common, "--child=evaluate", f"--info={json.dumps(info)}"], **limits)
        if "error" in res:
            print(f"evaluation child failed: {res['error']}")
            return 1
        print(
            f"  methods scored in {res['child_wall_s']}s, peak RSS {res['tree_peak_rss_mib']} MiB"
        )
        _print_table(info, res, args)
    finally:
        if temp and not args.keep:
            shutil.rmtree(args.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
