"""The training row budget (``RANKING_TRAIN_MAX_ROWS``): hold-out NDCG@10, boosting
rounds and fitting seconds of the product's model at several budgets on the same rows.

    python -m bench.bench_row_budget --lake DIR [--ds 2026-01-31] [--budgets 750000,1500000]

``DIR`` is a lake a night has run on (``bench_nightly --root R`` leaves ``R/<scale>/lake``).
Its training set for ``--ds`` holds every fitting row the night's budget allowed; each
smaller budget samples whole queries from those rows exactly as ``build_training_set``
does (``training.dataset.within_budget``), and every model is scored on the same
hold-out queries. Each budget's difference from the largest (all the rows) comes with a
paired bootstrap CI. To compare against a budget above the default, build the lake's
training set with a larger ``RANKING_TRAIN_MAX_ROWS`` first. Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--ds", type=dt.date.fromisoformat, default=dt.date(2026, 1, 31))
    parser.add_argument(
        "--budgets",
        default="750000,1500000",
        help="comma-separated row budgets below the stored rows; all the rows are the reference",
    )
    args = parser.parse_args(argv)

    from bench.bench_train_engine import fit_and_score, read_splits
    from ranking_jobs.evaluation.metrics import bootstrap_diff_ci
    from ranking_jobs.settings import Settings
    from ranking_jobs.training.dataset import within_budget

    settings = Settings(data_root=str(args.lake.resolve()))
    k = settings.evaluation.k
    fitting, test = read_splits(settings, args.ds)
    stored = len(fitting)
    budgets = sorted({int(b) for b in args.budgets.split(",") if int(b) < stored})
    print(f"{stored:,} fitting rows stored; hold-out {test['qid'].nunique():,} queries")
    got = {}
    for budget in [*budgets, stored]:
        split = {s: fitting[fitting["split"] == s] for s in ("train", "valid")}
        sampled = within_budget(split, budget, settings.generator.seed)
        rows = sum(len(f) for f in sampled.values())
        both = pd.concat([sampled["train"], sampled["valid"]], ignore_index=True)
        got[budget] = (rows, *fit_and_score(settings, both, test))
        print(f"budget {budget:,}: {rows:,} rows fitted", flush=True)
    reference = got[stored][3]
    head = f"{'budget':>12}{'rows':>12}{'seconds':>9}{'rounds':>8}{f'NDCG@{k}':>9}"
    print(f"\n{head}  vs all rows (95% CI)")
    for budget, (rows, seconds, rounds, per_query) in got.items():
        diff, low, high = bootstrap_diff_ci(per_query, reference)
        versus = f"{diff:+.4f} ({low:+.4f}..{high:+.4f})" if budget != stored else "reference"
        line = f"{budget:>12,}{rows:>12,}{seconds:>9.1f}{rounds:>8}{per_query.mean():>9.4f}"
        print(f"{line}  {versus}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
