"""Benchmark of the Spark feature stage against a DuckDB reference on the same Parquet files.

    python -m bench.bench_features --scales small medium [--modes backfill incremental]

For each scale the synthetic marketplace is generated once under ``--root``
(default /tmp/bench-features; history 14 days for small/tiny, 30 for
medium/large) and reused by later runs. Then, each in a fresh child process:

- ``backfill``: ``build_features`` on a lake with no feature partitions, so the
  first run also writes the earlier snapshots the night reads
  (``train_days + 3`` of them);
- ``incremental``: ``build_features`` again for the last day with the earlier
  snapshots present, so exactly one snapshot is computed (the nightly case);
  afterwards, in the same warm session, Spark computes only the 1/7/30-day
  item counts of that snapshot (the like-for-like reference);
- ``duckdb``: the same 1/7/30-day item counts of that snapshot with DuckDB.

Peak RSS is the sampled RSS sum of the child's whole process tree (for Spark
that includes the JVM). Figures are printed, never asserted.

    python -m bench.bench_features --long-history [--snapshots 60] [--batch-rows N]

builds the last ``--snapshots`` daily snapshots of a long, small log instead: a
synthetic interaction log shaped like an imported shop log (``LONG``: a few
hundred users, baskets of log-normal size, 100 days) is written and imported with
``import_interactions`` once under ``--root``; then, each in a fresh child, the
feature stage's ``write_daily`` reduces every raw day once to its daily aggregates,
and ``write_snapshots`` rolls the snapshots from them all in one pass (the
reference: one batch) and in the batches its row budget gives. Each run prints
wall seconds, the process tree's peak RSS/PSS (the JVM grows its heap towards
``-Xmx`` whatever it holds, so this moves little), the peak heap left after a
garbage collection and the full collections (from the JVM's GC log: how close the
heap came to running out) and the
``OutOfMemoryError`` lines it logged; the features of both runs are compared.
``--driver-memory`` runs both with a smaller heap, where the difference shows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.process_tree import tree_memory

DS = "2026-01-31"
SEED = 7
DEFAULT_ROOT = Path("/tmp/bench-features")
HISTORY_DAYS = {"tiny": 14, "small": 14, "medium": 30, "large": 30}
GIB = 2**30
MIB = 2**20


# --- child-process runner with process-tree peak RSS ------------------------------


def run_child(
    args: list[str],
    *,
    timeout_s: float = 3600,
    rss_limit_gib: float | None = None,
    interval_s: float = 0.2,
    pss_every_s: float = 5.0,
    stderr_path: Path | None = None,
) -> dict[str, Any]:
    """Run ``python -m <args>`` in a child; return its last stdout JSON line plus
    ``tree_peak_rss_mib`` (sampled every ``interval_s``) / ``tree_peak_pss_mib``
    (every ``pss_every_s``: reading it every 0.2 s slowed a pandas-heavy child by
    about a tenth) and ``child_wall_s``. ``stderr_path``: the child's stderr (its
    JVM's included) goes to that file instead of ours.
    A child that exceeds ``timeout_s`` or ``rss_limit_gib`` is killed and
    reported, not raised."""
    cmd = [sys.executable, "-m", *args]
    started = time.perf_counter()
    stderr = stderr_path.open("w") if stderr_path else None
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True
    )
    peak = peak_pss = 0
    killed: str | None = None
    stdout_chunks: list[str] = []
    reader = threading.Thread(target=lambda: stdout_chunks.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    pss_at = started
    while proc.poll() is None:
        read_pss = time.perf_counter() >= pss_at
        if read_pss:
            pss_at += pss_every_s
        rss, pss = tree_memory(proc.pid, pss=read_pss)
        peak, peak_pss = max(peak, rss), max(peak_pss, pss)
        elapsed = time.perf_counter() - started
        if rss_limit_gib and peak > rss_limit_gib * GIB:
            killed = f"killed: process tree RSS passed {rss_limit_gib:g} GiB after {elapsed:.0f}s"
        elif elapsed > timeout_s:
            killed = f"killed: still running after {timeout_s:.0f}s"
        if killed:
            os.killpg(proc.pid, 9)  # the child's own session: it and its JVM/workers only
            proc.wait()
            break
        time.sleep(interval_s)
    reader.join()
    if stderr:
        stderr.close()
    wall = time.perf_counter() - started
    lines = "".join(stdout_chunks).strip().splitlines()
    result: dict[str, Any] = {}
    if not killed:
        if proc.returncode != 0 or not lines:
            result["error"] = f"child exited with {proc.returncode}"
        else:
            result = json.loads(lines[-1])
    else:
        result["error"] = killed
    result["tree_peak_rss_mib"] = round(peak / MIB)
    result["tree_peak_pss_mib"] = round(peak_pss / MIB)
    result["child_wall_s"] = round(wall, 1)
    return result


def _self_peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


# --- lake -------------------------------------------------------------------------


def _settings(scale: str, root: Path) -> Any:
    from ranking_jobs.settings import Settings

    base = root / f"{scale}-{HISTORY_DAYS[scale]}d"
    extra: dict[str, Any] = {}
    if os.environ.get("BENCH_FEAST_REPO"):  # set by --feast-repo
        extra["feast_repo"] = Path(os.environ["BENCH_FEAST_REPO"])
    return Settings(
        data_root=str(base / "lake"),
        state_dir=base / "var",
        scale=scale,
        seed=SEED,
        history_days=HISTORY_DAYS[scale],
        **extra,
    )


def _child_generate(scale: str, root: Path) -> dict[str, Any]:
    from ranking_jobs.context import RunContext
    from ranking_jobs.data import generate

    settings = _settings(scale, root)
    started = time.perf_counter()
    summary = generate(RunContext.create(DS, settings))
    rows = summary["rows"]
    assert isinstance(rows, dict)
    out = {
        "events": rows["raw/events"],
        "users": summary["users"],
        "wall_s": time.perf_counter() - started,
    }
    (Path(settings.paths.data_root) / "generated.json").write_text(json.dumps(out))
    return out


def ensure_lake(scale: str, root: Path) -> dict[str, Any]:
    return _ensure(_settings(scale, root), ["generate", "--scales", scale], f"{scale}: generating")


def _ensure(settings: Any, child: list[str], what: str) -> dict[str, Any]:
    """The lake's ``generated.json``, after running ``--child <child>`` to make the
    lake unless an earlier run did."""
    marker = Path(settings.paths.data_root) / "generated.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        info["reused"] = True
        return info
    shutil.rmtree(Path(settings.paths.data_root).parent, ignore_errors=True)
    print(
        f"{what} {settings.generator.history_days} days under "
        f"{Path(settings.paths.data_root).parent} ...",
        flush=True,
    )
    root = Path(settings.paths.data_root).parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_features", "--child", *child, "--root", str(root)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    info = json.loads(out.strip().splitlines()[-1])
    info["reused"] = False
    return info


def _snapshot_end(ds: dt.date) -> dt.datetime:
    return dt.datetime.combine(ds + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def _duckdb_counts_sql(events_glob: str, ds: dt.date) -> str:
    from ranking_jobs.columns import WINDOWS
    from ranking_jobs.features.common import COUNTED

    end = _snapshot_end(ds).strftime("%Y-%m-%d %H:%M:%S+00")
    aggs = []
    for w in WINDOWS:
        for event_type, name in COUNTED.items():
            aggs.append(
                f"count(*) FILTER (WHERE event_type = '{event_type}' AND "
                f"ts >= TIMESTAMPTZ '{end}' - INTERVAL {w} DAY) AS {name}_{w}d"
            )
    return (
        f"SELECT item_id, {', '.join(aggs)} FROM read_parquet('{events_glob}') "
        f"WHERE ts < TIMESTAMPTZ '{end}' "
        f"AND ts >= TIMESTAMPTZ '{end}' - INTERVAL {max(WINDOWS)} DAY "
        f"GROUP BY item_id"
    )


def _checksum(path: str) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    rows, clicks, imps = con.execute(
        f"SELECT count(*), sum(clicks_30d), sum(impressions_1d) FROM read_parquet('{path}')"
    ).fetchone()
    return {"item_rows": int(rows), "sum_clicks_30d": int(clicks), "sum_impressions_1d": int(imps)}


# --- children ---------------------------------------------------------------------


class _TimedTables(logging.Handler):
    """Collects the feature stage's per-table ``timed`` log lines, summed over its
    batches, and counts the batches."""

    PATTERN = re.compile(r"^(\S+) x (\d+) snapshots: ([\d,]+) rows in ([\d.]+)s")
    BATCH = re.compile(r"^batch \d+ of (\d+):")  # logged only when there are several

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.tables: dict[str, dict[str, float]] = {}
        self.batches = 1

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if m := self.BATCH.match(message):
            self.batches = int(m.group(1))
        elif m := self.PATTERN.match(message):
            table = self.tables.setdefault(m.group(1), {"rows": 0, "s": 0.0})
            table["rows"] += int(m.group(3).replace(",", ""))
            table["s"] = round(table["s"] + float(m.group(4)), 1)

    @classmethod
    def attached(cls) -> _TimedTables:
        """A collector listening to the feature stage's log."""
        handler = cls()
        feat_log = logging.getLogger("ranking_jobs.features")
        feat_log.setLevel(logging.INFO)
        feat_log.addHandler(handler)
        return handler


def _child_spark(mode: str, scale: str, root: Path) -> dict[str, Any]:
    from ranking_jobs.context import RunContext
    from ranking_jobs.features import build_features
    from ranking_jobs.spark import get_spark

    settings = _settings(scale, root)
    handler = _TimedTables.attached()
    ctx = RunContext.create(DS, settings)

    # Time the Feast registration inside build_features separately (same call, timed).
    import ranking_jobs.feast_store as feast_store

    apply_s: list[float] = []
    apply = feast_store.apply_definitions

    def timed_apply(s: Any) -> int:
        started = time.perf_counter()
        try:
            return apply(s)
        finally:
            apply_s.append(time.perf_counter() - started)

    feast_store.apply_definitions = timed_apply  # type: ignore[assignment]

    t0 = time.perf_counter()
    spark = get_spark(settings, "bench_features")
    session_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    summary = build_features(ctx)
    build_s = time.perf_counter() - t1
    out: dict[str, Any] = {
        "mode": mode,
        "snapshots": len(summary["snapshots"]),
        "session_s": round(session_s, 2),
        "build_s": round(build_s, 2),
        "tables_s": {k.split("/")[-1]: v["s"] for k, v in handler.tables.items()},
        "feast_apply_s": round(sum(apply_s), 2),
        "rows": summary["rows"],
    }
    if mode == "incremental":
        # Like-for-like with DuckDB: only the 1/7/30-day item counts of one snapshot.
        from ranking_jobs import contracts as C
        from ranking_jobs import lake
        from ranking_jobs.columns import WINDOWS
        from ranking_jobs.features import common, daily
        from ranking_jobs.spark_lake import read_days

        window = lake.day_range(ctx.ds, max(WINDOWS))
        target = str(Path(settings.paths.data_root).parent / "bench" / "spark_item_counts")
        t2 = time.perf_counter()
        events = read_days(spark, settings, C.RAW_EVENTS, window)
        snapshots = common.snapshot_frame(spark, [ctx.ds])
        rolled = daily.rolled(daily.item_days(events), snapshots, max(WINDOWS))
        counts = daily.window_counts(rolled, ["item_id"]).drop("dt", common.END)
        counts.write.mode("overwrite").parquet(target)
        out["item_counts_s"] = round(time.perf_counter() - t2, 2)
        out["item_counts_check"] = _checksum(f"{target}/*.parquet")
    spark.stop()
    out["self_peak_rss_mib"] = _self_peak_mib()
    return out


def _child_duckdb(scale: str, root: Path, threads: int) -> dict[str, Any]:
    import duckdb

    from ranking_jobs import contracts as C
    from ranking_jobs import lake
    from ranking_jobs.context import parse_ds

    settings = _settings(scale, root)
    ds = parse_ds(DS)
    events_glob = lake.partition_glob(settings, C.RAW_EVENTS)
    target_dir = Path(settings.paths.data_root).parent / "bench"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "duckdb_item_counts.parquet"
    end = _snapshot_end(ds).strftime("%Y-%m-%d %H:%M:%S+00")

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    con.execute(f"COPY ({_duckdb_counts_sql(events_glob, ds)}) TO '{target}' (FORMAT parquet)")
    seconds = time.perf_counter() - t0
    (events_in_window,) = con.execute(
        f"SELECT count(*) FROM read_parquet('{events_glob}') "
        f"WHERE ts < TIMESTAMPTZ '{end}' AND ts >= TIMESTAMPTZ '{end}' - INTERVAL 30 DAY"
    ).fetchone()
    return {
        "duckdb_s": round(seconds, 2),
        "events_in_window": int(events_in_window),
        "item_counts_check": _checksum(str(target)),
        "self_peak_rss_mib": _self_peak_mib(),
    }


# --- long history: many snapshots of a small, long log ----------------------------

# A shop's interaction log: a few hundred users over 100 days.
LONG = {"users": 700, "items": 4_000, "days": 100, "events": 100_000}
ENGAGEMENT = {"click": 0.7, "like": 0.08, "save": 0.04, "add_to_bag": 0.11, "purchase": 0.07}
ALL_AT_ONCE = 10**15  # a batch budget no log reaches: every snapshot in one pass
LONG_RUNS = ("all-at-once", "batched")
GC_PAUSE = re.compile(r"GC\(\d+\) (Pause \w+).* (\d+)([BKMG])->(\d+)([BKMG])\((\d+)([BKMG])\)")
UNIT = {"B": 1 / MIB, "K": 1 / 1024, "M": 1, "G": 1024}


def _long_settings(root: Path) -> Any:
    from ranking_jobs.settings import Settings

    base = root / f"long-{LONG['days']}d"
    return Settings(data_root=str(base / "lake"), state_dir=base / "var", history_days=LONG["days"])


def _write_long_log(folder: Path) -> tuple[Path, Path]:
    """A synthetic interaction log shaped like an imported shop log, and its items table.

    Users of very unequal activity; sessions are baskets of log-normal size, so a
    few hold hundreds of items and their co-visitation pairs outnumber the events,
    as in real basket logs; items of Zipf-like popularity; engagement only (a shop
    logs no impressions) and nothing sold (an import never sells a listing).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    mean_log, sigma = 1.5, 1.2
    drawn = int(LONG["events"] / np.exp(mean_log + sigma**2 / 2) * 1.2)
    sizes = np.maximum(1, np.round(rng.lognormal(mean_log, sigma, drawn))).astype(np.int64)
    sizes = sizes[np.cumsum(sizes) <= LONG["events"]]
    basket = np.repeat(np.arange(len(sizes)), sizes)
    place = np.arange(len(basket)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    activity = rng.pareto(1.2, LONG["users"]) + 1
    buyer = rng.choice(LONG["users"], len(sizes), p=activity / activity.sum()) + 1
    first = pd.Timestamp(DS, tz="UTC") - pd.Timedelta(days=LONG["days"] - 1)
    start = first + pd.to_timedelta(rng.uniform(0, LONG["days"] * 86400, len(sizes)), unit="s")
    popularity = 1.0 / (np.arange(LONG["items"]) + 20.0) ** 0.9
    events = pd.DataFrame(
        {
            "user_id": buyer[basket],
            "item_id": rng.choice(LONG["items"], len(basket), p=popularity / popularity.sum()) + 1,
            "timestamp": start[basket] + pd.to_timedelta(place * 40, unit="s"),
            "event_type": rng.choice(list(ENGAGEMENT), len(basket), p=list(ENGAGEMENT.values())),
            "session_id": [f"b{b}" for b in basket],
        }
    )
    n = LONG["items"]
    items = pd.DataFrame(
        {
            "item_id": np.arange(1, n + 1),
            "category": rng.choice([f"category{i}" for i in range(12)], n),
            "brand": rng.choice([f"brand{i}" for i in range(150)], n),
            "size": rng.choice(["XS", "S", "M", "L", "XL"], n),
            "style": rng.choice([f"style{i}" for i in range(8)], n),
            "price": np.round(rng.lognormal(3.0, 0.7, n), 2),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "interactions.parquet", folder / "items.parquet"
    events.to_parquet(paths[0])
    items.to_parquet(paths[1])
    return paths


def _child_long_generate(root: Path) -> dict[str, Any]:
    from ranking_jobs.context import RunContext
    from ranking_jobs.data.adapters import import_interactions

    settings = _long_settings(root)
    started = time.perf_counter()
    interactions, items = _write_long_log(Path(settings.paths.data_root).parent / "source")
    first = dt.date.fromisoformat(DS) - dt.timedelta(days=LONG["days"] - 1)
    summary = import_interactions(
        RunContext.create(DS, settings), interactions, items, start=first, end=DS
    )
    out = {
        "events": summary["kept"],
        "users": summary["users"],
        "items": summary["items"],
        "days": summary["days"],
        "wall_s": round(time.perf_counter() - started, 1),
    }
    (Path(settings.paths.data_root) / "generated.json").write_text(json.dumps(out))
    return out


def _child_long(run: str, root: Path, snapshots: int, batch_rows: int | None) -> dict[str, Any]:
    from ranking_jobs import lake
    from ranking_jobs.context import RunContext
    from ranking_jobs.features import write_daily, write_snapshots
    from ranking_jobs.spark import get_spark

    settings = _long_settings(root)
    handler = _TimedTables.attached()
    ctx = RunContext.create(DS, settings)
    t0 = time.perf_counter()
    spark = get_spark(settings, "bench_features")
    session_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    days = lake.day_range(ctx.ds, snapshots)
    reduced = write_daily(spark, ctx, days)
    rows = write_snapshots(spark, ctx, days, ALL_AT_ONCE if run == "all-at-once" else batch_rows)
    build_s = time.perf_counter() - t1
    spark.stop()
    return {
        "run": run,
        "snapshots": len(days),
        "daily_days": len(reduced["days"]),
        "daily_s": reduced["seconds"],
        "batches": handler.batches,
        "session_s": round(session_s, 2),
        "build_s": round(build_s, 2),
        "tables_s": {k.split("/")[-1]: v["s"] for k, v in handler.tables.items()},
        "rows": rows,
        "driver_memory": settings.spark.driver_memory,
        "self_peak_rss_mib": _self_peak_mib(),
    }


def _jvm_figures(gc_log: Path, stderr_log: Path) -> dict[str, Any]:
    """From the child's JVM GC log: the peak heap left after a collection (what the
    heap holds beyond the young garbage; when it nears ``-Xmx`` the collector turns
    to full collections, then throws OutOfMemoryError), the peak committed heap and
    the full collections; from its stderr: the lines naming an ``OutOfMemoryError``."""
    after = size = 0.0
    full = 0
    text = gc_log.read_text() if gc_log.exists() else ""
    for m in GC_PAUSE.finditer(text):
        after = max(after, int(m.group(4)) * UNIT[m.group(5)])
        size = max(size, int(m.group(6)) * UNIT[m.group(7)])
        full += m.group(1) == "Pause Full"
    oom = sum("OutOfMemoryError" in line for line in stderr_log.read_text().splitlines())
    return {
        "heap_after_gc_peak_mib": round(after),
        "heap_committed_mib": round(size),
        "full_gcs": full,
        "oom_lines": oom,
    }


def feature_frames(
    settings: Any, days: list[dt.date], tables: list[str] | None = None
) -> dict[str, Any]:
    """Each table's partitions of ``days`` (default: every feature table) as one pandas
    frame, rows in key order, so two builds of the same days compare frame by frame."""
    import pandas as pd

    from ranking_jobs import lake
    from ranking_jobs.columns import AFFINITY_DIMENSIONS
    from ranking_jobs.families import FEATURE_COLUMNS

    out = {}
    for table in tables or FEATURE_COLUMNS:
        frames = [lake.read_partition(settings, table, d).to_pandas().assign(dt=d) for d in days]
        frame = pd.concat(frames, ignore_index=True)
        keyed = ("user_id", "item_id", "neighbour_id", *AFFINITY_DIMENSIONS)
        keys = ["dt", *[c for c in keyed if c in frame]]
        out[table] = frame.sort_values(keys).reset_index(drop=True)
    return out


def _compare_features(reference: Any, settings: Any, days: list[dt.date]) -> dict[str, str]:
    """Per feature table: ``identical``, ``equal within 1e-12`` (a float sum added up
    in another order), or what differs."""
    import pandas as pd

    want, got = feature_frames(reference, days), feature_frames(settings, days)
    verdicts = {}
    for table, frame in want.items():
        name = table.split("/")[-1]
        if frame.equals(got[table]):
            verdicts[name] = "identical"
            continue
        try:
            pd.testing.assert_frame_equal(got[table], frame, check_exact=False, rtol=1e-12)
            verdicts[name] = "equal within 1e-12"
        except AssertionError as exc:
            first = str(exc).strip().splitlines()[0]
            verdicts[name] = _float_difference(frame, got[table]) or f"DIFFERENT: {first}"
    return verdicts


def _float_difference(want: Any, got: Any) -> str:
    """The float columns that differ beyond 1e-12 (relative): in how many rows and by
    how much at most; empty unless everything else (keys, rows, other columns) is equal."""
    import numpy as np

    floats = [c for c in want.columns if want[c].dtype.kind == "f"]
    if want.shape != got.shape or not want.drop(columns=floats).equals(got.drop(columns=floats)):
        return ""
    parts = []
    for c in floats:
        x, y = want[c].to_numpy(), got[c].to_numpy()
        off = ~np.isclose(y, x, rtol=1e-12, atol=0, equal_nan=True)
        if off.any():
            worst = np.max(np.abs(y[off] - x[off]) / np.abs(x[off]))
            parts.append(f"{c} differs in {off.sum()} of {len(x)} rows, by up to {worst:.2g}")
    return "; ".join(parts)


def long_history(root: Path, snapshots: int, batch_rows: int | None, timeout_s: float) -> None:
    """Both runs of the long-history comparison, each in a fresh child, then their
    features compared and the figures printed."""
    from ranking_jobs import lake
    from ranking_jobs.settings import Settings

    settings = _long_settings(root)
    info = _ensure(settings, ["long-generate"], "long history: writing and importing")
    base = Path(settings.paths.data_root).parent
    logs = base / "logs"
    logs.mkdir(exist_ok=True)
    features = Path(settings.paths.data_root) / "features"
    reference = base / "reference"
    runs: dict[str, dict[str, Any]] = {}
    for run in LONG_RUNS:
        shutil.rmtree(features, ignore_errors=True)
        gc_log, stderr_log = logs / f"{run}.gc.log", logs / f"{run}.stderr.log"
        child = ["bench.bench_features", "--root", str(root), "--snapshots", str(snapshots)]
        child += ["--gc-log", str(gc_log), "--child", f"long-{run}"]
        if batch_rows:
            child += ["--batch-rows", str(batch_rows)]
        runs[run] = run_child(child, timeout_s=timeout_s, stderr_path=stderr_log)
        runs[run].update(_jvm_figures(gc_log, stderr_log))
        print(f"  {run}: {json.dumps(runs[run])}", flush=True)
        if run == LONG_RUNS[0] and "error" not in runs[run]:
            shutil.rmtree(reference, ignore_errors=True)
            reference.mkdir()
            features.rename(reference / "features")
    same: dict[str, str] = {}
    if not any("error" in r for r in runs.values()):
        days = lake.day_range(dt.date.fromisoformat(DS), snapshots)
        same = _compare_features(Settings(data_root=str(reference)), settings, days)
    _print_long(info, runs, same)
    print(json.dumps({"log": info, "runs": runs, "features": same}, indent=1))


def _print_long(
    info: dict[str, Any], runs: dict[str, dict[str, Any]], same: dict[str, str]
) -> None:
    print()
    print(
        f"Feature snapshots of a long log: {info['events']:,} events, {info['users']:,} users, "
        f"{info['items']:,} items over {info['days']} days (synthetic, imported), ds {DS}, "
        f"Spark local, driver memory {next(iter(runs.values())).get('driver_memory', '?')}"
    )
    head = (
        f"{'run':>12} {'snaps':>5} {'batches':>7} {'wall s':>7} {'build s':>7} "
        f"{'tree RSS':>10} {'tree PSS':>10} {'heap after GC':>13} {'committed':>10} "
        f"{'full GCs':>8} {'OOM lines':>9}"
    )
    print(head)
    print("-" * len(head))
    for run, r in runs.items():
        if "error" in r:
            print(f"{run:>12} {r['error']} (OOM lines {r['oom_lines']})")
            continue
        print(
            f"{run:>12} {r['snapshots']:>5} {r['batches']:>7} {r['child_wall_s']:>7.1f} "
            f"{r['build_s']:>7.1f} {_mib(r['tree_peak_rss_mib']):>10} "
            f"{_mib(r['tree_peak_pss_mib']):>10} {_mib(r['heap_after_gc_peak_mib']):>13} "
            f"{_mib(r['heap_committed_mib']):>10} {r['full_gcs']:>8} {r['oom_lines']:>9}"
        )
        tables = ", ".join(f"{k} {v:.1f}s" for k, v in r["tables_s"].items())
        print(f"{'':>13}per table (count+write, all batches): {tables}")
    ref, new = (runs[run] for run in LONG_RUNS)
    if "error" not in ref and "error" not in new:

        def ratio(key: str) -> str:
            return f"x{new[key] / max(ref[key], 1e-9):.2f}"

        print(
            f"batched / all-at-once: wall {ratio('child_wall_s')}, build {ratio('build_s')}, "
            f"tree RSS {ratio('tree_peak_rss_mib')}, tree PSS {ratio('tree_peak_pss_mib')}, "
            f"heap after GC {ratio('heap_after_gc_peak_mib')}"
        )
    if same:
        print("features, batched vs all-at-once: " + ", ".join(f"{k} {v}" for k, v in same.items()))


# --- parent -----------------------------------------------------------------------


def _fresh_features(scale: str, root: Path) -> None:
    """Remove every feature partition and the Feast state: the next run is a first run."""
    settings = _settings(scale, root)
    shutil.rmtree(Path(settings.paths.data_root) / "features", ignore_errors=True)
    shutil.rmtree(settings.paths.state_dir, ignore_errors=True)


def _placeholder_snapshots(scale: str, root: Path) -> int:
    """Without a backfill run, mark the earlier snapshots as present (partitions with
    no rows but today's columns), so ``build_features`` computes only the last day."""
    import pyarrow as pa

    from ranking_jobs import lake
    from ranking_jobs.context import RunContext
    from ranking_jobs.families import FEATURE_COLUMNS
    from ranking_jobs.features import snapshots_needed

    settings = _settings(scale, root)
    ctx = RunContext.create(DS, settings)
    made = 0
    for d in snapshots_needed(ctx):
        if d == ctx.ds:
            continue
        for table, columns in FEATURE_COLUMNS.items():
            if not lake.has_partition(settings, table, d):
                empty = pa.table({c: pa.array([], pa.float64()) for c in columns})
                lake.write_partition(settings, table, d, empty)
                made += 1
    return made


def _mib(v: Any) -> str:
    return f"{v:,} MiB" if isinstance(v, int) else str(v)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales", nargs="+", default=["small", "medium"], choices=list(HISTORY_DAYS)
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["backfill", "incremental"],
        choices=["backfill", "incremental"],
        help="backfill: first run on a fresh lake; incremental: one snapshot",
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--duckdb-threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3600, help="per child, seconds")
    parser.add_argument(
        "--feast-repo",
        type=Path,
        default=None,
        help="Feast definitions folder build_features applies (default: the project's)",
    )
    parser.add_argument(
        "--long-history",
        action="store_true",
        help="instead: --snapshots daily snapshots of a long, small log, all in one pass "
        "and in batches",
    )
    parser.add_argument("--snapshots", type=int, default=60, help="with --long-history")
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=None,
        help="with --long-history: the batched run's row budget (default: the stage's)",
    )
    parser.add_argument(
        "--driver-memory",
        default=None,
        help="with --long-history: spark.driver.memory of both runs (default: the settings')",
    )
    parser.add_argument("--gc-log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--child",
        choices=[
            "generate",
            "backfill",
            "incremental",
            "duckdb",
            "long-generate",
            *[f"long-{run}" for run in LONG_RUNS],
        ],
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)

    if args.child:
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s"
        )
        logging.getLogger("ranking_jobs.lake").setLevel(logging.WARNING)
        if args.gc_log:  # read by the java launcher of the child's JVM
            os.environ["JDK_JAVA_OPTIONS"] = f"-Xlog:gc:file={args.gc_log}::filecount=0"
        scale = args.scales[0]
        if args.child == "generate":
            out = _child_generate(scale, args.root)
        elif args.child == "duckdb":
            out = _child_duckdb(scale, args.root, args.duckdb_threads)
        elif args.child == "long-generate":
            out = _child_long_generate(args.root)
        elif args.child.startswith("long-"):
            out = _child_long(args.child[5:], args.root, args.snapshots, args.batch_rows)
        else:
            out = _child_spark(args.child, scale, args.root)
        print(json.dumps(out))
        return

    if args.long_history:
        if args.driver_memory:
            os.environ["RANKING_SPARK_DRIVER_MEMORY"] = args.driver_memory  # children inherit it
        long_history(args.root, args.snapshots, args.batch_rows, args.timeout)
        return
    if args.feast_repo:
        os.environ["BENCH_FEAST_REPO"] = str(args.feast_repo.resolve())  # children inherit it
    results: list[dict[str, Any]] = []
    for scale in args.scales:
        gen = ensure_lake(scale, args.root)
        r: dict[str, Any] = {
            "scale": scale,
            "history_days": HISTORY_DAYS[scale],
            "events_total": gen["events"],
            "lake_reused": gen["reused"],
        }
        print(
            f"{scale}: lake {'reused' if gen['reused'] else 'generated'} "
            f"({gen['events']:,} events in {HISTORY_DAYS[scale]} days)",
            flush=True,
        )
        base = ["bench.bench_features", "--scales", scale, "--root", str(args.root)]
        if "backfill" in args.modes:
            _fresh_features(scale, args.root)
            r["backfill"] = run_child([*base, "--child", "backfill"], timeout_s=args.timeout)
            print(f"  backfill: {json.dumps(r['backfill'])}", flush=True)
        if "incremental" in args.modes:
            if "backfill" not in args.modes:
                _fresh_features(scale, args.root)
                r["placeholders"] = _placeholder_snapshots(scale, args.root)
            r["incremental"] = run_child([*base, "--child", "incremental"], timeout_s=args.timeout)
            print(f"  incremental: {json.dumps(r['incremental'])}", flush=True)
        r["duckdb"] = run_child(
            [*base, "--child", "duckdb", "--duckdb-threads", str(args.duckdb_threads)],
            timeout_s=args.timeout,
        )
        print(f"  duckdb: {json.dumps(r['duckdb'])}", flush=True)
        results.append(r)

    _print_table(results)
    print(json.dumps(results, indent=1))


def _print_table(results: list[dict[str, Any]]) -> None:
    print()
    print("Feature stage (Spark local[2], build_features) vs DuckDB item counts, ds", DS)
    head = (
        f"{'scale':>6} {'run':>11} {'snaps':>5} {'events/30d':>11} {'wall s':>8} "
        f"{'session s':>9} {'build s':>8} {'events/s':>10} {'tree RSS':>10} {'tree PSS':>10}"
    )
    print(head)
    print("-" * len(head))
    print(
        "(peak memory sampled every 0.2 s over the child's process tree, JVM and workers "
        "included; RSS sums count shared pages once per process, PSS splits them)"
    )
    for r in results:
        ev = r["duckdb"].get("events_in_window")
        for mode in ("backfill", "incremental"):
            m = r.get(mode)
            if not m:
                continue
            if "error" in m:
                print(f"{r['scale']:>6} {mode:>11} {m['error']}")
                continue
            rate = f"{ev / m['build_s']:,.0f}" if ev else "?"
            print(
                f"{r['scale']:>6} {mode:>11} {m['snapshots']:>5} {ev or 0:>11,} "
                f"{m['child_wall_s']:>8.1f} {m['session_s']:>9.1f} {m['build_s']:>8.1f} "
                f"{rate:>10} {_mib(m['tree_peak_rss_mib']):>10} {_mib(m['tree_peak_pss_mib']):>10}"
            )
            tables = ", ".join(f"{k} {v:.1f}s" for k, v in m["tables_s"].items())
            print(f"{'':>18} per table (count+write): {tables}; Feast apply {m['feast_apply_s']}s")
        d = r["duckdb"]
        if "error" in d:
            print(f"{r['scale']:>6} {'duckdb':>11} {d['error']}")
            continue
        print(
            f"{r['scale']:>6} {'duckdb cnt':>11} {1:>5} {ev:>11,} {d['child_wall_s']:>8.1f} "
            f"{'-':>9} {d['duckdb_s']:>8.2f} {ev / max(d['duckdb_s'], 1e-9):>10,.0f} "
            f"{_mib(d['tree_peak_rss_mib']):>10} {_mib(d['tree_peak_pss_mib']):>10}"
        )
        inc = r.get("incremental")
        if inc and "error" not in inc:
            same = inc["item_counts_check"] == d["item_counts_check"]
            print(
                f"{'':>18} item counts only: Spark {inc['item_counts_s']:.2f}s (warm session) vs "
                f"DuckDB {d['duckdb_s']:.2f}s = {inc['item_counts_s'] / d['duckdb_s']:.1f}x; "
                f"whole stage/DuckDB counts {inc['build_s'] / d['duckdb_s']:.0f}x "
                f"(build) {inc['child_wall_s'] / d['child_wall_s']:.0f}x (child wall); "
                f"results identical: {same} {d['item_counts_check']}"
            )
    if len(results) > 1:
        print()
        for a, b in itertools.pairwise(results):
            ev_a = a["duckdb"].get("events_in_window")
            ev_b = b["duckdb"].get("events_in_window")
            if not (ev_a and ev_b):
                continue
            ev_ratio = ev_b / ev_a
            parts = [f"{a['scale']} -> {b['scale']}: events x{ev_ratio:.2f}"]
            for mode in ("backfill", "incremental"):
                ma, mb = a.get(mode), b.get(mode)
                if ma and mb and "error" not in ma and "error" not in mb:
                    t = mb["build_s"] / ma["build_s"]
                    parts.append(
                        f"{mode} build time x{t:.2f} (time/events growth {t / ev_ratio:.2f})"
                    )
            da, db = a["duckdb"], b["duckdb"]
            if "error" not in da and "error" not in db:
                t = db["duckdb_s"] / da["duckdb_s"]
                parts.append(f"duckdb x{t:.2f} ({t / ev_ratio:.2f})")
            print("; ".join(parts))


if __name__ == "__main__":
    main()
