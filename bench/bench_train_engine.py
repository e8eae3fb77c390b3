"""Single-node training against XGBoost's Spark estimator (``RANKING_TRAIN_ENGINE``) on
the same rows: seconds, boosting rounds and hold-out NDCG@10 of each, and the paired
difference with its bootstrap CI.

    python -m bench.bench_train_engine --lake DIR [--cluster] [--ds 2026-01-31]

``DIR`` is a lake a night has run on (``bench_nightly --root R`` leaves ``R/<scale>/lake``):
its training set for ``--ds`` is read, both engines fit its train and valid splits with
the product's parameters and early stopping, and both score the queries of its test
split (every candidate, the engaged ones relevant). The Spark engine runs in local mode
on this machine's two cores, or with ``--cluster`` on a standalone master with two
1-core workers started here. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


@contextlib.contextmanager
def _master(cluster: bool) -> Iterator[str]:
    if not cluster:
        yield "local[2]"
        return
    from tests.servers import spark_cluster

    with spark_cluster(Path(tempfile.mkdtemp(prefix="bench-train-engine-")), 2, 1) as (url, _):
        yield url


def read_splits(settings: Any, ds: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training set's fitting rows (train and valid splits, as stored) and its
    hold-out queries ready to score (``qid``, ``rel``)."""
    from ranking_jobs import contracts as C
    from ranking_jobs import lake, model
    from ranking_jobs.evaluation import holdout

    fitting = lake.read_partition(
        settings, C.TRAINING, ds, where=model.of_splits("train", "valid")
    ).to_pandas()
    held = lake.read_partition(settings, C.TRAINING, ds, where=model.of_splits("test"))
    return fitting, holdout(held.to_pandas())


def fit_and_score(
    settings: Any, fitting: pd.DataFrame, test: pd.DataFrame
) -> tuple[float, int, np.ndarray]:
    """Seconds to fit, boosting rounds kept and per-query hold-out NDCG@k of the
    product's model fitted on ``fitting``."""
    from ranking_jobs import model
    from ranking_jobs.evaluation.metrics import ndcg_at_k

    train, valid = (model.training_rows(settings, fitting, s) for s in ("train", "valid"))
    started = time.perf_counter()
    booster, _ = model.fit(settings, train, valid)
    seconds = time.perf_counter() - started
    scores = model.predict(booster, test)
    per_query = ndcg_at_k(test["qid"], test["rel"], scores, settings.evaluation.k)
    return seconds, booster.num_boosted_rounds(), per_query


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--ds", type=dt.date.fromisoformat, default=dt.date(2026, 1, 31))
    parser.add_argument("--cluster", action="store_true", help="a 2-worker standalone cluster")
    args = parser.parse_args(argv)

    from ranking_jobs.evaluation.metrics import bootstrap_diff_ci
    from ranking_jobs.settings import Settings

    settings = Settings(data_root=str(args.lake.resolve()))
    k = settings.evaluation.k
    fitting, test = read_splits(settings, args.ds)
    splits = fitting["split"].value_counts()
    print(
        f"{splits.get('train', 0):,} train / {splits.get('valid', 0):,} valid rows; hold-out "
        f"{test['qid'].nunique():,} queries, {len(test):,} rows"
    )
    got = {}
    with _master(args.cluster) as master:
        for engine in ("xgboost", "spark"):
            engined = settings.replace(train_engine=engine, spark_master=master)
            got[engine] = fit_and_score(engined, fitting, test)
    where = f"on {master}" if args.cluster else "in local mode (2 cores)"
    print(f"\n{'engine':<28}{'seconds':>9}{'rounds':>8}{f'NDCG@{k}':>9}")
    for engine, (seconds, rounds, per_query) in got.items():
        name = engine if engine == "xgboost" else f"spark {where}"
        print(f"{name:<28}{seconds:>9.1f}{rounds:>8}{per_query.mean():>9.4f}")
    diff, low, high = bootstrap_diff_ci(got["spark"][2], got["xgboost"][2])
    print(f"\nspark - xgboost: {diff:+.4f} NDCG@{k} (95% CI {low:+.4f}..{high:+.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
