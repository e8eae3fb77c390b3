"""Benchmark of publishing precomputed lists to the online store (Redis and SQLite).

    python -m bench.bench_publish --users 1000000 --items 100 [--stores redis sqlite]

Writes ``--users`` lists of ``--items`` item ids (with float32 scores) as the
``recommendations`` partition of a bench lake under ``--root``, starts its own
redis-server on a free loopback port, then measures, each in a fresh child
process (peak RSS = sampled RSS of the child's process tree; redis-server is not
in it):

- ``project``: ``publish_lists`` end to end (Parquet read, encoding, writes,
  removal bookkeeping), into an empty store; ``project_sub`` the same on the
  lists ``materialize`` gets, for a like-for-like ratio;
- ``raw``: the same payload bytes, encoded beforehand outside the timer, written
  by plain redis-py pipelines of HSET (Redis) or ``sqlite3.executemany`` in one
  transaction (SQLite): the store's own floor;
- ``feast_write``: Feast's ``write_to_online_store`` of a pandas frame of the
  first ``--feast-write-users`` lists (frame built outside the timer);
- ``materialize``: Feast's stock ``materialize`` of the ``user_recommendations``
  view from a lake holding only the first ``--materialize-users`` lists (the
  offline read through the DuckDB offline store is inside the timer).

Feast's paths run on subsets because at 13-17k and ~5k lists/s a million lists
take minutes and their pandas/proto conversion needs many GiB; the table says
which subset each row used. Rates are lists/s measured in this run; ratios are
between rows of the same run. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_features import run_child
from tests.servers import start_redis

DAY = dt.date(2026, 1, 31)
DEFAULT_ROOT = Path("/tmp/bench-publish")
SEED = 11


# --- redis-server ------------------------------------------------------------------


# --- lakes and settings --------------------------------------------------------------


def _settings(root: Path, store: str, redis_url: str, lake: str = "lake") -> Any:
    from ranking_jobs.settings import Settings

    return Settings(
        data_root=str(root / lake),
        state_dir=root / f"var-{lake}-{store}",
        online_store=store,
        redis_url=redis_url,
    )


def _lists_table(first: int, users: int, items: int) -> Any:
    import numpy as np
    import pyarrow as pa

    from ranking_jobs import contracts as C

    rng = np.random.default_rng(SEED + first)
    ids = rng.integers(0, 5_000_000, size=users * items, dtype=np.int64)
    base = np.linspace(1.0, 0.01, items, dtype=np.float32)
    scores = (base[None, :] * rng.uniform(0.5, 1.0, (users, 1)).astype(np.float32)).ravel()
    offsets = pa.array(np.arange(0, users * items + 1, items, dtype=np.int32))
    end = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return pa.table(
        {
            "user_id": pa.array(np.arange(first, first + users, dtype=np.int64)),
            "item_ids": pa.ListArray.from_arrays(offsets, pa.array(ids)),
            "scores": pa.ListArray.from_arrays(offsets, pa.array(scores)),
            "model_version": pa.array(["marketplace_ranker/v7"] * users),
            "run_id": pa.array(["bench"] * users),
            "generated_at": pa.array([end] * users, C.TS),
            "event_timestamp": pa.array([end] * users, C.TS),
        },
        schema=C.RECOMMENDATIONS_SCHEMA,
    )


def _write_lake(settings: Any, table: Any) -> None:
    import pyarrow as pa

    from ranking_jobs import contracts as C
    from ranking_jobs import lake

    lake.write_partition(
        settings, C.RECOMMENDATIONS, DAY, table, row_group_rows=C.LISTS_ROW_GROUP_ROWS
    )
    popular = table.slice(0, 1).drop(["user_id"]).append_column("segment", pa.array(["global"]))
    lake.write_partition(settings, C.POPULAR, DAY, popular)


def ensure_lakes(root: Path, users: int, items: int, subset: int) -> dict[str, Any]:
    marker = root / "generated.json"
    from ranking_jobs import contracts as C

    want = {"users": users, "items": items, "subset": subset, "rows": C.LISTS_ROW_GROUP_ROWS}
    if marker.exists() and json.loads(marker.read_text()) == want:
        return {**want, "reused": True}
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    table = _lists_table(0, users, items)
    _write_lake(_settings(root, "sqlite", ""), table)
    _write_lake(_settings(root, "sqlite", "", lake=f"lake-sub{subset}"), table.slice(0, subset))
    marker.write_text(json.dumps(want))
    return {**want, "reused": False, "wall_s": round(time.perf_counter() - started, 1)}


def _fresh_store(settings: Any) -> None:
    """An empty online store with the definitions applied."""
    from ranking_jobs.feast_store import apply_definitions

    shutil.rmtree(settings.paths.state_dir, ignore_errors=True)
    if settings.feast.online_store == "redis":
        import redis

        host, port = settings.feast.redis_url.split(":")
        redis.Redis(host=host, port=int(port)).flushall()
    apply_definitions(settings)


# --- children -------------------------------------------------------------------------


def _child_project(settings: Any) -> dict[str, Any]:
    from ranking_jobs.context import RunContext
    from ranking_jobs.publish import publish_lists

    _fresh_store(settings)
    started = time.perf_counter()
    out = publish_lists(RunContext.create(DAY, settings, "bench"))
    wall = time.perf_counter() - started
    return {"lists": out["users"], "seconds": wall, "stage_lists_per_s": out["lists_per_second"]}


def _child_raw(settings: Any) -> dict[str, Any]:
    """The same bytes the project path writes, encoded outside the timer."""
    from ranking_jobs import contracts as C
    from ranking_jobs import lake
    from ranking_jobs.feast_store import feature_store
    from ranking_jobs.online.layout import LayoutWriter
    from ranking_jobs.online.sqlite_store import SqliteLists, sqlite_key_order

    _fresh_store(settings)
    table = lake.read_partition(settings, C.RECOMMENDATIONS, DAY)
    store = feature_store(settings)
    writer = LayoutWriter(settings, store, dt.datetime.now(dt.UTC))
    timed = 0.0
    n = table.num_rows
    batch_rows = settings.publish.batch_rows
    if settings.feast.online_store == "redis":
        import redis

        host, port = settings.feast.redis_url.split(":")
        client = redis.Redis(host=host, port=int(port))
        captured: list[tuple[list[bytes], list[bytes], list[Any]]] = []

        class Capture:  # stands in for the Redis writer: keeps the bytes, writes nothing
            def pack(self, keys: Any, fields: Any, columns: Any) -> Any:
                return keys, fields, columns

            def send(self, packed: Any) -> None:
                captured.append(packed)

        writer.redis = Capture()  # type: ignore[assignment]
        for start in range(0, n, batch_rows):
            captured.clear()
            writer.write([table.slice(start, batch_rows)], "user_recommendations")
            keys, fields, columns = captured[0]
            ts_field, ts_value = fields[-1], columns[-1]
            t0 = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for key, *values in zip(keys, *columns[:-1], strict=True):
                args: list[bytes] = []
                for f, v in zip(fields, values, strict=False):
                    args += (f, v)
                pipe.execute_command("HSET", key, *args, ts_field, ts_value)
            pipe.execute()
            timed += time.perf_counter() - t0
    else:
        users = table.column("user_id").to_numpy()
        table = table.take(sqlite_key_order(users))  # the order the project path inserts in
        tbl = SqliteLists.table(store, "user_recommendations")
        conn = sqlite3.connect(SqliteLists(store).path, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-262144")
        rows_of: list[list[tuple[Any, ...]]] = []

        width = len(SqliteLists.COLUMNS)

        class CaptureSqlite:  # keeps the rows as tuples, writes nothing
            def write(self, table: str, cells: Any) -> None:
                rows_of.append([tuple(cells[i : i + width]) for i in range(0, len(cells), width)])

        writer.sqlite = CaptureSqlite()  # type: ignore[assignment]
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        timed += time.perf_counter() - t0
        for start in range(0, n, batch_rows):
            rows_of.clear()
            writer.write([table.slice(start, batch_rows)], "user_recommendations")
            t0 = time.perf_counter()
            conn.executemany(
                f'INSERT INTO "{tbl}" (entity_key, feature_name, value, value_text, event_ts, '
                "created_ts) VALUES (?, ?, ?, ?, ?, NULL)",
                rows_of[0],
            )
            timed += time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("COMMIT")
        timed += time.perf_counter() - t0
        conn.close()
    return {"lists": n, "seconds": timed}


def _child_feast_write(settings: Any, users: int) -> dict[str, Any]:
    import pandas as pd

    from ranking_jobs import contracts as C
    from ranking_jobs import lake
    from ranking_jobs.feast_store import feature_store

    _fresh_store(settings)
    df = lake.read_partition(settings, C.RECOMMENDATIONS, DAY).slice(0, users).to_pandas()
    df["event_timestamp"] = pd.Timestamp(dt.datetime.now(dt.UTC))
    store = feature_store(settings)
    started = time.perf_counter()
    store.write_to_online_store("user_recommendations", df)
    return {"lists": len(df), "seconds": time.perf_counter() - started}


def _child_materialize(settings: Any) -> dict[str, Any]:
    from ranking_jobs.feast_store import feature_store

    _fresh_store(settings)
    store = feature_store(settings)
    start = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC)
    started = time.perf_counter()
    store.materialize(start, start + dt.timedelta(days=2), ["user_recommendations"])
    wall = time.perf_counter() - started
    lists = settings_lists(settings)
    return {"lists": lists, "seconds": wall}


def settings_lists(settings: Any) -> int:
    from ranking_jobs import contracts as C
    from ranking_jobs import lake

    return lake.read_partition(settings, C.RECOMMENDATIONS, DAY, columns=["user_id"]).num_rows


def _check_sample(settings: Any, users: int) -> bool:
    """Feast reads back a few lists the child wrote (sanity, not timed)."""
    from ranking_jobs.feast_store import feature_store

    sample = [0, users // 2, users - 1]
    got = (
        feature_store(settings)
        .get_online_features(
            features=["user_recommendations:item_ids"], entity_rows=[{"user_id": u} for u in sample]
        )
        .to_dict()
    )
    return all(items is not None and len(items) > 0 for items in got["item_ids"])


# --- main -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument(
        "--stores", nargs="+", default=["redis", "sqlite"], choices=["redis", "sqlite"]
    )
    parser.add_argument("--materialize-users", type=int, default=100_000)
    parser.add_argument("--feast-write-users", type=int, default=200_000)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--timeout", type=float, default=3600, help="per child, seconds")
    parser.add_argument(
        "--child",
        choices=["project", "project_sub", "raw", "feast_write", "materialize"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--store", default="sqlite", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    subset = min(args.materialize_users, args.users)

    if args.child:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        if args.child in ("materialize", "project_sub"):
            settings = _settings(args.root, args.store, args.redis_url, lake=f"lake-sub{subset}")
            if args.child == "materialize":
                out = _child_materialize(settings)
            else:
                out = _child_project(settings)
        else:
            settings = _settings(args.root, args.store, args.redis_url)
            if args.child == "project":
                out = _child_project(settings)
            elif args.child == "raw":
                out = _child_raw(settings)
            else:
                out = _child_feast_write(settings, min(args.feast_write_users, args.users))
        out["read_back_ok"] = _check_sample(settings, out["lists"])
        print(json.dumps(out))
        return

    gen = ensure_lakes(args.root, args.users, args.items, subset)
    print(f"lake: {json.dumps(gen)}", flush=True)
    redis_proc, url = start_redis(Path(tempfile.mkdtemp(prefix="bench-redis-")))
    results: dict[str, dict[str, Any]] = {}
    try:
        for store in args.stores:
            base = ["bench.bench_publish", "--root", str(args.root), "--users", str(args.users)]
            base += ["--items", str(args.items), "--materialize-users", str(args.materialize_users)]
            base += ["--feast-write-users", str(args.feast_write_users)]
            base += ["--store", store, "--redis-url", url]
            for mode in MODES:
                r = run_child([*base, "--child", mode], timeout_s=args.timeout)
                if store == "redis" and mode == "project":
                    import redis

                    host, port = url.split(":")
                    info = redis.Redis(host=host, port=int(port)).info("memory")
                    r["redis_used_memory_mib"] = round(info["used_memory"] / 2**20)
                results[f"{store}/{mode}"] = r
                print(f"  {store}/{mode}: {json.dumps(r)}", flush=True)
    finally:
        redis_proc.terminate()
        redis_proc.wait(timeout=20)
    _print_table(results, args)


MODES = ("materialize", "feast_write", "project_sub", "project", "raw")
LABELS = {
    "materialize": "Feast materialize (stock)",
    "project_sub": "project, materialize's subset",
    "feast_write": "Feast write_to_online_store",
    "project": "project publish_lists",
    "raw": "raw write of same bytes",
}


def _rate(r: dict[str, Any]) -> float | None:
    if "error" in r or not r.get("seconds"):
        return None
    return r["lists"] / r["seconds"]


def _print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(f"Publishing lists of {args.items} items; project and raw on {args.users:,} lists")
    header = f"{'store':<7} {'path':<30} {'lists':>10} {'seconds':>8} {'lists/s':>10} " + (
        f"{'vs stock':>9} {'vs raw':>7} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    for store in args.stores:
        stock = _rate(results.get(f"{store}/materialize", {}))
        raw = _rate(results.get(f"{store}/raw", {}))
        for mode in MODES:
            r = results.get(f"{store}/{mode}", {})
            rate = _rate(r)
            if rate is None:
                print(f"{store:<7} {LABELS[mode]:<30} {r.get('error', 'not run')}")
                continue
            vs_stock = f"{rate / stock:.1f}x" if stock else "-"
            vs_raw = f"{rate / raw:.2f}x" if raw else "-"
            print(
                f"{store:<7} {LABELS[mode]:<30} {r['lists']:>10,} {r['seconds']:>8.1f} "
                f"{rate:>10,.0f} {vs_stock:>9} {vs_raw:>7} {r['tree_peak_rss_mib']:>6} MiB"
            )
        project = results.get(f"{store}/project", {})
        if project.get("stage_lists_per_s"):
            print(
                f"{'':<7} (project: {project['stage_lists_per_s']:,} lists/s inside the stage's "
                "write phase, without the Parquet read)"
            )
        if project.get("redis_used_memory_mib"):
            print(
                f"{'':<7} (redis-server used_memory after it: "
                f"{project['redis_used_memory_mib']:,} MiB)"
            )
    print(
        f"Feast materialize ran on the first {min(args.materialize_users, args.users):,} lists, "
        f"write_to_online_store on the first {min(args.feast_write_users, args.users):,} "
        "(at their rates and memory a full million is impractical); lists/s compare rates."
    )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
