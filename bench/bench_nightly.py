"""One night of the nightly DAG at a preset scale: per stage, its seconds, the peak
memory of the whole process tree, rows in and out, and seconds per 1,000 users.

    python -m bench.bench_nightly --scale tiny|small|medium|large [--root DIR]
    python -m bench.bench_nightly --compare tiny,small,medium   # side by side
    python -m bench.bench_nightly --scale small --cluster       # local, then a cluster

For each scale the bench makes a fresh lake under ``--root/<scale>`` with the
product's defaults (every other ``RANKING_*`` variable removed), times
``ranking-jobs generate``, then runs ``ranking-jobs airflow-test``: the nightly DAG
through Airflow's test runner, as ``make demo`` does. A sampler reads the resident
memory of the runner and everything it started (Spark's JVM, its Python workers)
every half second. A stage's interval is read from its summary (written when it
finishes, with its seconds), and the stage's peak is the largest sample inside it.
Rows in and out are the rows of the night's partitions of the lake tables the stage
declares it reads and writes (``ranking_jobs.stages``); a read of several days (the
feature windows) counts its newest day only.

The night measured is a steady-state one, as in production: before it, the bench
runs the feature stage for the day before (``ranking-jobs build_features``), which on
the fresh lake reduces every raw day the calendar needs to its daily aggregates and
writes the earlier snapshots; that backfill is reported apart, with its own time and
memory. The night then reduces its one new day of events (the table shows Spark's
seconds per million new events) and writes the snapshots its calendar still lacks.
The ratio column of ``--compare`` divides each scale's
seconds per 1,000 users by the first scale's: a stage whose cost per user grows with
the population shows a ratio above 1.

With ``--cluster`` the same night runs a second time on the same raw data (copied,
byte for byte) with the lake on an S3 API server (moto, in this process), a standalone
Spark master with two 1-core workers, and Redis as the online store, all started here;
the bench then says whether the two nights published the same lists. On the cluster
the memory column covers the driver's process tree only (the workers' JVMs and their
Python workers are not its children).

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.process_tree import tree_memory

DS = dt.date(2026, 1, 31)
GIB = 2**30
SAMPLE_S = 0.5


@dataclass
class Run:
    """One child process: its wall time and (time, tree RSS) samples."""

    seconds: float
    samples: list[tuple[float, int]] = field(default_factory=list)
    returncode: int = 0

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)

    def peak_between(self, start: float, end: float) -> int:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside, default=0)


def sampled(args: list[str], env: dict[str, str], log: Path) -> Run:
    """``python -m ranking_jobs.cli ARGS`` with its process tree's memory sampled."""
    started = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ranking_jobs.cli", *args],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        run = Run(0.0)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                run.samples.append((time.time(), tree_memory(proc.pid, pss=False)[0]))
                done.wait(SAMPLE_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        run.returncode = proc.wait()
        done.set()
        sampler.join()
    run.seconds = time.perf_counter() - started
    return run


def scale_env(scale: str, folder: Path) -> dict[str, str]:
    """The product's defaults, with the lake and state under ``folder`` and the history
    the preset is meant for (30 days at medium and large: full 30-day windows)."""
    from ranking_jobs.data.presets import get_preset

    env = {k: v for k, v in os.environ.items() if not k.startswith("RANKING_")}
    env.update(
        RANKING_SCALE=scale,
        RANKING_HISTORY_DAYS=str(get_preset(scale).recommended_history_days),
        RANKING_DATA_ROOT=str(folder / "lake"),
        RANKING_STATE_DIR=str(folder / "var"),
        RANKING_TASK_RETRIES="0",
    )
    return env


def stage_rows(settings: Any, stores: tuple[str, ...], day: dt.date) -> int | None:
    """Rows of ``day``'s partitions of the lake tables among ``stores`` (None: none)."""
    from ranking_jobs import lake
    from ranking_jobs.stages import STORES

    tables = [t for t in stores if t not in STORES and lake.has_partition(settings, t, day)]
    if not tables:
        return None
    return sum(lake.partition_rows(settings, t, day) for t in tables)


@dataclass(frozen=True)
class Cluster:
    """Where a cluster night runs: its Spark master, S3 lake and Redis."""

    master: str
    lake: str
    s3_endpoint: str
    redis: str

    def env(self) -> dict[str, str]:
        return {
            "RANKING_SPARK_MASTER": self.master,
            "RANKING_DATA_ROOT": self.lake,
            "RANKING_S3_ENDPOINT_URL": self.s3_endpoint,
            "RANKING_ONLINE_STORE": "redis",
            "RANKING_REDIS_URL": self.redis,
        }


def measure(scale: str, root: Path, cluster: Cluster | None = None) -> dict[str, Any]:
    """Generate a fresh lake of ``scale`` and run one night on it; the figures. On a
    ``cluster``, the raw data of the local run's lake is copied to its S3 lake instead
    (the "generating" figure is then the copy)."""
    from ranking_jobs.data.presets import get_preset
    from ranking_jobs.settings import Settings
    from ranking_jobs.stages import NIGHTLY

    folder = root / (f"{scale}-cluster" if cluster else scale)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = scale_env(scale, folder)
    settings = Settings(data_root=str(folder / "lake"), state_dir=folder / "var", scale=scale)
    print(f"\n=== {scale} under {folder} {'on ' + cluster.master + ' ' if cluster else ''}===")
    if cluster:
        env.update(cluster.env())
        settings = settings.replace(data_root=cluster.lake, s3_endpoint_url=cluster.s3_endpoint)
        generate = Run(time.perf_counter())
        copy_raw(root / scale / "lake", settings)
        generate.seconds = time.perf_counter() - generate.seconds
    else:
        generate = sampled(["generate", "--ds", DS.isoformat()], env, folder / "generate.log")
        if generate.returncode:
            raise SystemExit(f"generate failed, see {folder / 'generate.log'}")
    eve = (DS - dt.timedelta(days=1)).isoformat()
    backfill = sampled(["build_features", "--ds", eve], env, folder / "backfill.log")
    if backfill.returncode:
        raise SystemExit(f"the backfill failed, see {folder / 'backfill.log'}")
    backfilled = _summary(folder, eve, "build_features")["daily_aggregates"]
    night = sampled(["airflow-test", "--ds", DS.isoformat()], env, folder / "night.log")
    if night.returncode:
        raise SystemExit(f"the night failed, see {folder / 'night.log'}")
    users = get_preset(scale).n_users
    reports = folder / "var" / "reports" / DS.isoformat()
    stages = []
    for stage in NIGHTLY:
        path = reports / f"{stage.name}.json"
        seconds = float(json.loads(path.read_text())["seconds"])
        end = path.stat().st_mtime
        stages.append(
            {
                "stage": stage.name,
                "seconds": seconds,
                "peak_gib": night.peak_between(end - seconds - SAMPLE_S, end + SAMPLE_S) / GIB,
                "rows_in": stage_rows(settings, stage.reads, DS),
                "rows_out": stage_rows(settings, stage.writes, DS),
                "s_per_1k_users": seconds / (users / 1000),
            }
        )
    return {
        "scale": scale + ("-cluster" if cluster else ""),
        "settings": settings,
        "users": users,
        "generate_s": generate.seconds,
        "generate_peak_gib": generate.peak / GIB,
        "backfill_s": backfill.seconds,
        "backfill_peak_gib": backfill.peak / GIB,
        "backfill_days": len(backfilled["days"]),
        "backfill_events": backfilled["events"],
        "new_events": _summary(folder, DS.isoformat(), "build_features")["daily_aggregates"],
        "night_s": night.seconds,
        "night_peak_gib": night.peak / GIB,
        "stages": stages,
    }


def _summary(folder: Path, day: str, stage: str) -> dict[str, Any]:
    return json.loads((folder / "var" / "reports" / day / f"{stage}.json").read_text())


def copy_raw(local_lake: Path, settings: Any) -> None:
    import pyarrow.fs as pafs

    from ranking_jobs import lake

    fs, root = lake.filesystem(settings.paths.data_root, settings.paths.s3_endpoint_url)
    pafs.copy_files(str(local_lake / "raw"), f"{root}/raw", destination_filesystem=fs)


def same_lists(a: Any, b: Any) -> str:
    """Whether two nights published the same lists (every column but the run id), and
    wrote the same training set (where lists differ, the first place to look)."""
    from ranking_jobs import contracts as C
    from ranking_jobs import lake

    said = []
    keyed = (
        (C.TRAINING, ["split", "as_of", "user_id", "item_id"]),
        (C.RECOMMENDATIONS, ["user_id"]),
        (C.POPULAR, ["segment"]),
    )
    for table, key in keyed:
        x, y = (
            lake.read_partition(s, table, DS).sort_by([(k, "ascending") for k in key])
            for s in (a, b)
        )
        x, y = (t.drop_columns([c for c in ("run_id",) if c in t.column_names]) for t in (x, y))
        verdict = "identical" if x.equals(y) else "DIFFERENT"
        said.append(f"{table}: {x.num_rows:,} and {y.num_rows:,} rows, {verdict}")
    return "; ".join(said)


@contextlib.contextmanager
def cluster_servers(root: Path) -> Iterator[Cluster]:
    """moto's S3 server (in this process), Redis and a 2-worker standalone cluster."""
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.servers import free_port, spark_cluster, start_redis

    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(name, value)  # before the cluster's JVMs start: they inherit it
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request
    port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench-lake")
    redis, address = start_redis(root / "redis")
    try:
        with spark_cluster(root / "spark", workers=2, cores=1) as (master, _):
            yield Cluster(master, "s3://bench-lake/lake", endpoint, address)
    finally:
        redis.terminate()
        s3.stop()


def _rows(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def print_scale(got: dict[str, Any]) -> None:
    new = got["new_events"]
    print(
        f"{got['scale']}: {got['users']:,} users, night of {DS} (steady state: the daily "
        f"aggregates of earlier days in the lake); {new['events']:,} new events reduced in "
        f"{new['seconds']:.1f} s of Spark, {new['seconds_per_million_events'] or 0:.1f} s "
        "per million"
    )
    head = f"{'stage':<22} {'seconds':>8} {'peak GiB':>9} {'rows in':>12} {'rows out':>12}"
    head += f" {'s / 1k users':>13}"
    print(head)
    print("-" * len(head))
    for s in got["stages"]:
        print(
            f"{s['stage']:<22} {s['seconds']:>8.1f} {s['peak_gib']:>9.2f} "
            f"{_rows(s['rows_in']):>12} {_rows(s['rows_out']):>12} {s['s_per_1k_users']:>13.3f}"
        )
    print(f"{'the night (airflow-test)':<22} {got['night_s']:>8.1f} {got['night_peak_gib']:>9.2f}")
    print(f"{'generating the lake':<22} {got['generate_s']:>8.1f} {got['generate_peak_gib']:>9.2f}")
    print(
        f"{'first night: features':<22} {got['backfill_s']:>8.1f} {got['backfill_peak_gib']:>9.2f}"
        f"  ({got['backfill_days']} raw days, {got['backfill_events']:,} events reduced once)"
    )


def print_compare(runs: list[dict[str, Any]]) -> None:
    """Seconds and seconds per 1,000 users per stage, side by side; the ratio of the
    per-user cost to the first scale's."""
    first = runs[0]
    head = f"{'stage':<22}" + "".join(
        f" {r['scale'] + ' s':>10} {'s/1k':>8} {'x ' + first['scale']:>8}" for r in runs
    )
    print("\n" + head)
    print("-" * len(head))
    for i, stage in enumerate(first["stages"]):
        line = f"{stage['stage']:<22}"
        for r in runs:
            s = r["stages"][i]
            base = first["stages"][i]["s_per_1k_users"]
            ratio = s["s_per_1k_users"] / base if base else float("nan")
            line += f" {s['seconds']:>10.1f} {s['s_per_1k_users']:>8.3f} {ratio:>8.2f}"
        print(line)
    for name, key in (
        ("the night", "night_s"),
        ("peak GiB (night)", "night_peak_gib"),
        ("first night: features", "backfill_s"),
        ("its peak GiB", "backfill_peak_gib"),
        ("generating the lake", "generate_s"),
    ):
        print(f"{name:<22}" + "".join(f" {r[key]:>10.1f} {'':>8} {'':>8}" for r in runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--scale", choices=("tiny", "small", "medium", "large"))
    group.add_argument("--compare", help="comma-separated scales, e.g. tiny,small,medium")
    parser.add_argument("--root", type=Path, default=None, help="where the lakes go")
    parser.add_argument(
        "--cluster", action="store_true", help="also on a standalone cluster with an S3 lake"
    )
    args = parser.parse_args(argv)
    if args.cluster and not args.scale:
        parser.error("--cluster runs one --scale")
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    scales = [args.scale] if args.scale else args.compare.split(",")
    runs = []
    for scale in scales:
        got = measure(scale, root)
        print_scale(got)
        runs.append(got)
    if args.cluster:
        with cluster_servers(root / "cluster") as cluster:
            got = measure(args.scale, root, cluster)
            print_scale(got)
            runs.append(got)
            print(
                "\nlists of the local and the cluster night:",
                same_lists(*(r["settings"] for r in runs)),
            )
    if len(runs) > 1:
        print_compare(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
