"""Precompute speed: the whole stage against raw XGBoost ``inplace_predict`` on its rows.

    python -m bench.bench_precompute [--scale medium] [--root DIR] [--skip-prepare]
                                     [--repeat N]

Reuses (or generates) the marketplace of ``bench_features`` for ``--scale``,
then, each in a fresh child process:

- ``prepare``: the night's own stages up to ``train_model``, with the model's
  shape fixed (300 trees of depth 6, no early stop), its version promoted;
- ``precompute``: the ``precompute_lists`` stage as the night runs it (Spark
  tasks of user shards: candidates, Feast feature assembly, scoring, business
  rules; then the writes), with the stage's own step timings;
  (``--skip-prepare`` reuses an earlier run's snapshots and champion: only when
  the feature code has not changed since);
- ``raw``: the same candidate rows, assembled in one process by the stage's own
  functions into one float32 matrix, scored by ``inplace_predict`` on every core:
  the reference (only the predict is timed).

Peak RSS is the sampled RSS sum of the child's process tree (Spark's JVM
included). Figures are printed, never asserted; the target is a stage rate of at
least 0.5x the raw figure. With ``--repeat N`` the stage runs N times (a fresh child
each) and the raw predict N times on its one matrix; every run is printed, and the
ratio is given for the best of each and for the slowest stage run: on a shared
2-core machine the same stage varied from 132 s to 154 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from bench.bench_features import DEFAULT_ROOT, DS, _settings, ensure_lake, run_child

TARGET = 0.5
TREES, DEPTH = 300, 6


def _ctx(args: argparse.Namespace, run_id: str) -> Any:
    from ranking_jobs.context import RunContext

    settings = _settings(args.scale, args.root).replace(train_days=1, task_retries=0)
    return RunContext.create(dt.date.fromisoformat(DS), settings, run_id)


def _child_prepare(args: argparse.Namespace) -> dict[str, Any]:
    """The night's own stages up to training, with the model's shape fixed (``TREES``
    trees of depth ``DEPTH``, no early stop) so that runs compare; the trained version
    is promoted without the gate (quality is not measured here)."""
    import dataclasses

    from ranking_jobs import registry
    from ranking_jobs.runner import run_stage

    ctx = _ctx(args, "bench-prepare")
    fixed = ctx.settings.replace(
        num_boost_round=TREES, early_stopping_rounds=TREES, max_depth=DEPTH
    )
    ctx = dataclasses.replace(ctx, settings=fixed)
    run_stage("profile_data", ctx)
    started = time.perf_counter()
    run_stage("build_features", ctx)
    features_s = time.perf_counter() - started
    run_stage("build_training_set", ctx)
    trained = run_stage("train_model", ctx)
    ref = registry.ModelRef(
        fixed.mlflow.registered_model, trained["model_version"], trained["mlflow_run_id"]
    )
    registry.promote(fixed, ref, ["bench_precompute stand-in champion"])
    return {
        "features_s": round(features_s, 1),
        "champion": ref.label,
        "trees": trained["rounds"],
    }


class _Steps(logging.Handler):
    """Collects the stage's ``timed`` log lines: step name -> seconds."""

    pattern = re.compile(r"^(?P<what>.+?)(?:: [\d,]+ \w+)? in (?P<s>[\d.]+)s")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.steps: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        found = self.pattern.match(record.getMessage())
        if found and record.name.startswith("ranking_jobs"):
            self.steps[found["what"]] = float(found["s"])


def _child_precompute(args: argparse.Namespace) -> dict[str, Any]:
    from ranking_jobs.runner import run_stage

    steps = _Steps()
    logging.getLogger("ranking_jobs").addHandler(steps)
    logging.getLogger("ranking_jobs").setLevel(logging.INFO)
    ctx = _ctx(args, "bench-precompute")
    started = time.perf_counter()
    result = run_stage("precompute_lists", ctx)
    wall = time.perf_counter() - started
    return {
        "wall_s": round(wall, 1),
        "users": result["users"],
        "candidates": result["candidates"],
        "steps": steps.steps,
    }


def _child_raw(args: argparse.Namespace) -> dict[str, Any]:
    """The stage's candidate rows for every active user, assembled in this one process
    with the stage's own functions, as one float32 matrix; only the predict is timed."""
    import pandas as pd

    from ranking_jobs import registry
    from ranking_jobs.candidates import inputs
    from ranking_jobs.lists import candidate_features
    from ranking_jobs.model import booster_vocabulary, feature_matrix

    ctx = _ctx(args, "bench-raw")
    settings = ctx.settings
    booster = registry.load_booster(settings, registry.champion(settings))
    booster.set_param({"nthread": 2})
    names = list(booster.feature_names)
    source = inputs.candidate_inputs(settings, ctx.ds)
    users = inputs.active_users(settings, ctx.ds)
    frame = candidate_features(settings, source, users, pd.Timestamp(ctx.end))
    del source
    matrix = feature_matrix(frame, names, booster_vocabulary(booster))
    del frame
    runs = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        scores = booster.inplace_predict(matrix, validate_features=False)
        runs.append(round(time.perf_counter() - started, 2))
    return {"rows": len(scores), "seconds": min(runs), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="medium", choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--child", choices=["prepare", "precompute", "raw"])
    parser.add_argument("--timeout", type=float, default=7200)
    parser.add_argument(
        "--repeat", type=int, default=1, help="stage runs and raw predicts; the best counts"
    )
    parser.add_argument(
        "--skip-prepare", action="store_true", help="reuse the snapshots and champion of a run"
    )
    args = parser.parse_args(argv)
    if args.child:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        out = {
            "prepare": lambda: _child_prepare(args),
            "precompute": lambda: _child_precompute(args),
            "raw": lambda: _child_raw(args),
        }[args.child]()
        print(json.dumps(out))
        return 0

    lake_info = ensure_lake(args.scale, args.root)
    base = ["bench.bench_precompute", "--scale", args.scale, "--root", str(args.root)]
    if args.skip_prepare:
        prep = json.loads((args.root / f"prepared-{args.scale}.json").read_text())
    else:
        prep = run_child([*base, "--child", "prepare"], timeout_s=args.timeout)
        if "error" not in prep:
            (args.root / f"prepared-{args.scale}.json").write_text(json.dumps(prep))
    if "error" in prep:
        print("prepare failed:", prep["error"])
        return 1
    stages = []
    for _ in range(args.repeat):
        stages.append(run_child([*base, "--child", "precompute"], timeout_s=args.timeout))
        if "error" in stages[-1]:
            print("precompute failed:", stages[-1]["error"])
            return 1
    raw = run_child([*base, "--child", "raw", "--repeat", str(args.repeat)], timeout_s=args.timeout)

    stage = min(stages, key=lambda run: run["wall_s"])
    slowest = max(run["wall_s"] for run in stages)
    rate = stage["candidates"] / stage["wall_s"]
    print(
        f"\nprecompute at {args.scale}: {lake_info['users']:,} users, "
        f"{lake_info['events']:,} events"
    )
    print(f"stand-in champion {prep['champion']}: {prep['trees']} trees, depth {DEPTH}")
    print(f"{'path':<34}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'users/s':>10}{'peak MiB':>10}")
    print(
        f"{'precompute_lists (whole stage)':<34}{stage['candidates']:>12,}{stage['wall_s']:>10.1f}"
        f"{rate:>12,.0f}{stage['users'] / stage['wall_s']:>10,.0f}{stage['tree_peak_rss_mib']:>10,}"
    )
    if "error" not in raw:
        raw_rate = raw["rows"] / raw["seconds"]
        print(
            f"{'raw inplace_predict (2 threads)':<34}{raw['rows']:>12,}{raw['seconds']:>10.2f}"
            f"{raw_rate:>12,.0f}{'':>10}{raw['tree_peak_rss_mib']:>10,}"
        )
        if raw["rows"] != stage["candidates"]:
            print(f"WARNING: raw scored {raw['rows']:,} rows, the stage {stage['candidates']:,}")
        if args.repeat > 1:
            print(f"stage runs (s): {', '.join(str(run['wall_s']) for run in stages)}")
            print(f"raw predict runs (s): {', '.join(map(str, raw['runs']))}")
        ratio = rate / raw_rate
        verdict = "ok" if ratio >= TARGET else "MISS"
        print(f"stage / raw: {ratio:.3f}x (target {TARGET}x: {verdict})")
        if args.repeat > 1:
            worst = stage["candidates"] / slowest / raw_rate
            print(f"slowest stage run / raw: {worst:.3f}x")
    print("stage steps (seconds):")
    for what, seconds in stage["steps"].items():
        print(f"  {what:<60}{seconds:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
