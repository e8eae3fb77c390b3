"""Benchmark of point-in-time training-set retrieval through Feast's offline stores.

    python -m bench.bench_training_set --rows 5000000 [--small-rows 100000] [--chunk-rows N]

Builds (once, reused) a Feast file-source lake under ``--root`` (default
/tmp/bench-training-set) shaped like the pipeline's: ``item_stats`` (the
pipeline's 29 item columns + padding to ``--item-features``) for ~``--items``
listings and ``user_stats`` (21 + padding to ``--user-features``) for
``--users`` users, ``--days`` daily snapshots ``dt=YYYY-MM-DD/part-0.parquet``
with ``event_timestamp`` = the day's end, TTL 2 days as in feature_repo.
An entity frame like the training set's (queries of ~100 candidates: user_id,
item_id, category, brand, size, style, event_timestamp = a midnight in the
window) is then joined, each run in a fresh child process:

- ``pipeline``: the pipeline's own retrieval
  (``ranking_jobs.feast_store.historical_features``): the ``duckdb`` offline
  store (the project default) over the ``dt=*`` globs, entity rows taken in
  as-of order in chunks of ``--chunk-rows``, features held as float32, input
  row order restored (included in its time);
- ``feast-duckdb``: one ``FeatureStore.get_historical_features(...).to_df()``
  call on the same store for all rows;
- ``feast-file``: the same with Feast's default dask ``file`` store, on
  ``--small-rows`` (default 100k: at 500k it passed 19 GiB and was killed); it
  reads one consolidated Parquet file per view (see ``--file-source``), and it
  drops entity rows that share (item_id, event_timestamp) (feast#6787), which
  the "rows out" column shows;
- ``asof``: a hand-written DuckDB ``ASOF LEFT JOIN`` with the same TTL rule, its
  right sides restricted to the entity keys and time range (``--asof-prefilter``),
  the lower-bound reference.

Wall time of the retrieval, rows/s and the sampled peak RSS of the child's
process tree are printed, with ratios. Checksums of two joined columns show
that the stores return the same values. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.bench_features import MIB, _self_peak_mib, run_child

DEFAULT_ROOT = Path("/tmp/bench-training-set")
END_DAY = dt.date(2026, 1, 31)
TTL = dt.timedelta(days=2)
CANDIDATES_PER_QUERY = 100
SEED = 11
TARGET_S, TARGET_GIB = 300, 8

N_CATEGORIES, N_BRANDS, N_SIZES, N_STYLES = 24, 1500, 12, 10


# --- the synthetic feature lake ---------------------------------------------------


def _columns(item_features: int, user_features: int) -> dict[str, dict[str, list[str]]]:
    from ranking_jobs import columns as cols

    item_floats = list(cols.ITEM_FLOATS)
    item_ints = list(cols.ITEM_COUNTS + cols.ITEM_INTS)
    item_floats += [
        f"item_extra_{i}" for i in range(item_features - len(item_ints) - len(item_floats))
    ]
    user_floats = list(cols.USER_FLOATS)
    user_ints = list(cols.USER_COUNTS + cols.USER_INTS)
    user_floats += [
        f"user_extra_{i}" for i in range(user_features - len(user_ints) - len(user_floats))
    ]
    return {
        "item_stats": {"ints": item_ints, "floats": item_floats},
        "user_stats": {"ints": user_ints, "floats": user_floats},
    }


def _days(n_days: int) -> list[dt.date]:
    return [END_DAY - dt.timedelta(days=i) for i in range(n_days - 1, -1, -1)]


def _end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def _new_items_per_day(n_items: int) -> int:
    return int(n_items * 0.015)  # listings sell and new ones arrive: ids slide each day


def _items_of_day(i: int, n_items: int) -> tuple[int, int]:
    start = i * _new_items_per_day(n_items)
    return start, start + n_items


def _snapshot(rng: Any, ids: Any, ints: list[str], floats: list[str], end: dt.datetime) -> Any:
    import numpy as np
    import pyarrow as pa

    n = len(ids)
    data: dict[str, Any] = {"entity": ids}
    act = rng.gamma(0.6, 1.0, n)  # how active the entity is: most are quiet
    for j, c in enumerate(ints):
        lam = act * (1 + (j % 6) * 0.5) * (30 if "30d" in c else 7 if "7d" in c else 1)
        data[c] = rng.poisson(lam).astype(np.int64)
    for c in floats:
        data[c] = rng.random(n)
    data["event_timestamp"] = pa.array(
        np.full(n, int(end.timestamp() * 1e6), dtype=np.int64), pa.timestamp("us", tz="UTC")
    )
    return data


def _child_prepare(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    root: Path = args.root
    lake = root / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    spec = _columns(args.item_features, args.user_features)
    t0 = time.perf_counter()
    rows = {"item_stats": 0, "user_stats": 0}
    for i, day in enumerate(_days(args.days)):
        rng = np.random.default_rng([SEED, i])
        lo, hi = _items_of_day(i, args.items)
        for view, ids, key in (
            ("item_stats", np.arange(lo, hi, dtype=np.int64), "item_id"),
            ("user_stats", np.arange(args.users, dtype=np.int64), "user_id"),
        ):
            data = _snapshot(rng, ids, spec[view]["ints"], spec[view]["floats"], _end(day))
            data[key] = data.pop("entity")
            table = pa.table({key: data.pop(key), **data})
            out = lake / view / f"dt={day.isoformat()}"
            out.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, out / "part-0.parquet", compression="zstd")
            rows[view] += table.num_rows
    disk = sum(p.stat().st_size for p in lake.rglob("*.parquet"))
    info = {
        "items": args.items,
        "users": args.users,
        "days": args.days,
        "item_features": args.item_features,
        "user_features": args.user_features,
        "rows": rows,
        "disk_mib": round(disk / MIB),
        "prepare_s": round(time.perf_counter() - t0, 1),
    }
    (root / "lake.json").write_text(json.dumps(info))
    return info


def _consolidated(root: Path, view: str) -> Path:
    """One Parquet file holding every snapshot of a view (for the dask ``file`` store)."""
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    target = root / "lake" / "consolidated" / f"{view}.parquet"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        ds = pads.dataset(str(root / "lake" / view), format="parquet", partitioning=None)
        tmp = target.with_suffix(".tmp")
        with pq.ParquetWriter(tmp, ds.schema, compression="zstd") as w:
            for batch in ds.to_batches():
                w.write_batch(batch)
        tmp.rename(target)
    return target


# --- the entity frame -------------------------------------------------------------


def entity_frame(n_rows: int, info: dict[str, Any]) -> Any:
    """Training-set-like rows: queries (user, as-of midnight) of ~100 candidate items."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng([SEED, n_rows])
    n_days = info["days"]
    q = -(-n_rows // CANDIDATES_PER_QUERY)
    q_user = rng.integers(0, info["users"], q)
    # as-of midnight = end of snapshot k (k = 0..n_days-2), so a snapshot always exists
    q_day = rng.integers(0, n_days - 1, q)
    q_idx = np.repeat(np.arange(q), CANDIDATES_PER_QUERY)[:n_rows]
    day = q_day[q_idx]
    new = _new_items_per_day(info["items"])
    item = day * new + rng.integers(0, info["items"], n_rows)  # listed in that snapshot
    first_end = pd.Timestamp(_end(_days(n_days)[0]))
    ts = first_end + pd.to_timedelta(day, unit="D")

    def labels(prefix: str, values: Any) -> Any:
        names = np.array([f"{prefix}_{i}" for i in range(values.max() + 1)], dtype=object)
        return names[values]

    return pd.DataFrame(
        {
            "user_id": q_user[q_idx].astype(np.int64),
            "item_id": item.astype(np.int64),
            "category": labels("cat", item % N_CATEGORIES),
            "brand": labels("brand", (item * 7) % N_BRANDS),
            "size": labels("size", (item * 3) % N_SIZES),
            "style": labels("style", (item * 5) % N_STYLES),
            "event_timestamp": ts,
            "_row": np.arange(n_rows, dtype=np.int64),
        }
    )


# --- retrievals -------------------------------------------------------------------


def _store(root: Path, offline: str, file_source: str, spec: dict[str, Any]) -> Any:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.data_format import ParquetFormat
    from feast.types import Float64, Int64

    state = root / "var" / f"{offline}-{file_source}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    config = RepoConfig(
        project="bench_training_set",
        provider="local",
        registry=str(state / "registry.db"),
        online_store={"type": "sqlite", "path": str(state / "online.db")},
        offline_store={"type": offline},
        repo_path=root,
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config)
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
    item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.INT64)
    views = []
    for name, entity in (("item_stats", item), ("user_stats", user)):
        if file_source == "glob":
            path = str(root / "lake" / name / "dt=*" / "*.parquet")
        else:
            path = str(_consolidated(root, name))
        views.append(
            FeatureView(
                name=name,
                entities=[entity],
                ttl=TTL,
                schema=[Field(name=c, dtype=Int64) for c in spec[name]["ints"]]
                + [Field(name=c, dtype=Float64) for c in spec[name]["floats"]],
                source=FileSource(
                    name=name,
                    path=path,
                    file_format=ParquetFormat(),
                    timestamp_field="event_timestamp",
                ),
                online=True,
            )
        )
    store.apply([user, item, *views])
    return store


def _checks(df: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(df)}
    for c in ("ctr_30d", "user_clicks_30d"):
        col = df[c].astype("float64")
        # 6 significant digits: the chunked path holds features as float32
        out[c] = {"nulls": int(col.isna().sum()), "sum": float(f"{col.sum():.6g}")}
    return out


def _child_feast(args: argparse.Namespace, run: str) -> dict[str, Any]:
    from ranking_jobs.feast_store import historical_features

    offline = "file" if run == "feast-file" else "duckdb"
    info = json.loads((args.root / "lake.json").read_text())
    spec = _columns(info["item_features"], info["user_features"])
    t0 = time.perf_counter()
    store = _store(args.root, offline, args.file_source if offline == "file" else "glob", spec)
    apply_s = time.perf_counter() - t0
    rows = entity_frame(args.n, info)
    entity_mib = round(rows.memory_usage(deep=True).sum() / MIB)
    refs = [f"{v}:{c}" for v in spec for c in spec[v]["ints"] + spec[v]["floats"]]
    t1 = time.perf_counter()
    sort_s = 0.0
    if run == "pipeline":
        # the pipeline's own path: chunks in as-of order, float32, input row order
        df = historical_features(store, rows.drop(columns="_row"), refs, args.chunk_rows)
        seconds = time.perf_counter() - t1
    else:
        df = store.get_historical_features(entity_df=rows, features=refs).to_df()
        seconds = time.perf_counter() - t1
        t2 = time.perf_counter()
        df = df.sort_values("_row").reset_index(drop=True)  # as the pipeline's path does
        sort_s = time.perf_counter() - t2
    return {
        "n": args.n,
        "store": run,
        "retrieval_s": round(seconds, 2),
        "sort_s": round(sort_s, 2),
        "apply_s": round(apply_s, 2),
        "entity_mib": entity_mib,
        "result_mib": round(df.memory_usage(deep=True).sum() / MIB),
        "columns": len(df.columns),
        "checks": _checks(df),
        "self_peak_rss_mib": _self_peak_mib(),
    }


def _child_asof(args: argparse.Namespace) -> dict[str, Any]:
    import duckdb
    import pyarrow as pa

    info = json.loads((args.root / "lake.json").read_text())
    spec = _columns(info["item_features"], info["user_features"])
    rows = entity_frame(args.n, info)
    con = duckdb.connect()
    con.execute(f"SET threads = {args.duckdb_threads}")
    con.execute("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    con.register("e", pa.Table.from_pandas(rows, preserve_index=False))
    select, joins = ["e.*"], []
    for alias, (view, key) in {
        "i": ("item_stats", "item_id"),
        "u": ("user_stats", "user_id"),
    }.items():
        glob = args.root / "lake" / view / "dt=*" / "*.parquet"
        fresh = f"{alias}.event_timestamp >= e.event_timestamp - INTERVAL {TTL.days} DAY"
        select += [
            f"CASE WHEN {fresh} THEN {alias}.{c} END AS {c}"
            for c in spec[view]["ints"] + spec[view]["floats"]
        ]
        source = f"read_parquet('{glob}')"
        if args.asof_prefilter:
            # Only the snapshots and keys the entity rows can reach: ASOF materialises
            # and sorts its right side, so an unfiltered 30M-row view costs GiBs.
            source = (
                f"(SELECT * FROM {source} WHERE {key} IN (SELECT {key} FROM e) "
                f"AND event_timestamp <= (SELECT max(event_timestamp) FROM e) "
                f"AND event_timestamp >= (SELECT min(event_timestamp) FROM e) "
                f"- INTERVAL {TTL.days} DAY)"
            )
        joins.append(
            f"ASOF LEFT JOIN {source} {alias} ON e.{key} = {alias}.{key} "
            f"AND e.event_timestamp >= {alias}.event_timestamp"
        )
    sql = f"SELECT {', '.join(select)} FROM e {' '.join(joins)}"
    df = con.execute(sql).to_arrow_table().to_pandas()
    seconds = time.perf_counter() - t0
    df = df.sort_values("_row").reset_index(drop=True)  # untimed, as for Feast
    return {
        "n": args.n,
        "store": "duckdb-asof",
        "retrieval_s": round(seconds, 2),
        "result_mib": round(df.memory_usage(deep=True).sum() / MIB),
        "columns": len(df.columns),
        "checks": _checks(df),
        "self_peak_rss_mib": _self_peak_mib(),
    }


# --- parent -----------------------------------------------------------------------


def _ensure_lake(args: argparse.Namespace) -> dict[str, Any]:
    marker = args.root / "lake.json"
    want = {
        "items": args.items,
        "users": args.users,
        "days": args.days,
        "item_features": args.item_features,
        "user_features": args.user_features,
    }
    if marker.exists():
        info = json.loads(marker.read_text())
        if all(info.get(k) == v for k, v in want.items()):
            info["reused"] = True
            return info
    print(f"preparing the feature lake under {args.root} ...", flush=True)
    res = run_child(
        ["bench.bench_training_set", "--child", "prepare", *_lake_args(args)],
        timeout_s=args.timeout,
    )
    if "error" in res:
        raise SystemExit(f"preparing the lake failed: {res['error']}")
    res["reused"] = False
    return res


def _lake_args(args: argparse.Namespace) -> list[str]:
    return [
        "--root",
        str(args.root),
        "--items",
        str(args.items),
        "--users",
        str(args.users),
        "--days",
        str(args.days),
        "--item-features",
        str(args.item_features),
        "--user-features",
        str(args.user_features),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="*",
        default=[5_000_000],
        help="entity rows for the duckdb offline store and the ASOF reference; none to skip",
    )
    parser.add_argument(
        "--small-rows",
        type=int,
        nargs="*",
        default=[100_000],
        help="entity rows for the dask file store (also run on duckdb/asof "
        "for same-N ratios); none to skip",
    )
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["pipeline", "feast-duckdb", "asof", "feast-file"],
        choices=["pipeline", "feast-duckdb", "asof", "feast-file"],
    )
    parser.add_argument(
        "--chunk-rows",
        type=int,
        default=1_000_000,
        help="entity rows per retrieval on the pipeline's chunked path "
        "(RANKING_RETRIEVAL_CHUNK_ROWS)",
    )
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--item-features", type=int, default=30)
    parser.add_argument("--user-features", type=int, default=25)
    parser.add_argument(
        "--file-source",
        choices=["single", "glob"],
        default="single",
        help="what the dask file store reads: one consolidated file per view "
        "or the dt=*/*.parquet glob",
    )
    parser.add_argument("--duckdb-threads", type=int, default=2)
    parser.add_argument(
        "--asof-prefilter",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restrict the ASOF reference's right sides to the entity keys and time range",
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--timeout", type=float, default=900, help="per child, seconds")
    parser.add_argument(
        "--rss-limit-gib",
        type=float,
        default=19,
        help="kill a child whose process tree passes this (machine safety)",
    )
    parser.add_argument(
        "--child",
        choices=["prepare", "pipeline", "feast-duckdb", "feast-file", "asof"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        if args.child == "prepare":
            out = _child_prepare(args)
        elif args.child == "asof":
            out = _child_asof(args)
        else:
            out = _child_feast(args, args.child)
        print(json.dumps(out))
        return

    info = _ensure_lake(args)
    print(
        f"lake: {info['rows']['item_stats']:,} item_stats rows ({info['item_features']} features), "
        f"{info['rows']['user_stats']:,} user_stats rows ({info['user_features']} features), "
        f"{info['days']} snapshots, {info['disk_mib']:,} MiB Parquet"
        + (" (reused)" if info.get("reused") else f", prepared in {info['prepare_s']}s"),
        flush=True,
    )
    if "feast-file" in args.runs and args.small_rows:
        for view in ("item_stats", "user_stats"):
            if args.file_source == "single":
                _consolidated(args.root, view)

    plan: list[tuple[str, int]] = []
    for n in args.rows:
        plan += [(r, n) for r in ("pipeline", "feast-duckdb", "asof") if r in args.runs]
    for n in args.small_rows or []:
        plan += [
            (r, n) for r in ("feast-file", "pipeline", "feast-duckdb", "asof") if r in args.runs
        ]
    results = []
    for run, n in plan:
        res = run_child(
            [
                "bench.bench_training_set",
                "--child",
                run,
                "--n",
                str(n),
                "--file-source",
                args.file_source,
                "--duckdb-threads",
                str(args.duckdb_threads),
                "--chunk-rows",
                str(args.chunk_rows),
                "--asof-prefilter" if args.asof_prefilter else "--no-asof-prefilter",
                *_lake_args(args),
            ],
            timeout_s=args.timeout,
            rss_limit_gib=args.rss_limit_gib,
        )
        res.setdefault("store", run)
        res.setdefault("n", n)
        results.append(res)
        print(f"  {run} n={n:,}: {json.dumps(res)}", flush=True)
    _print_table(results, args)
    print(json.dumps(results, indent=1))


def _print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"Point-in-time retrieval, 2 views ({args.item_features}+{args.user_features} features), "
        f"TTL {TTL.days}d; target {TARGET_S}s and {TARGET_GIB} GiB at 5M rows"
    )
    head = (
        f"{'store':>13} {'rows in':>10} {'rows out':>10} {'retrieval s':>11} {'rows/s':>10} "
        f"{'peak RSS':>10} {'peak PSS':>10} {'x asof time':>11} {'x asof RSS':>10} "
        f"{'target':>7}"
    )
    print(head)
    print("-" * len(head))
    asof = {r["n"]: r for r in results if r["store"] == "duckdb-asof" and "error" not in r}
    for r in results:
        if "error" in r:
            print(
                f"{r['store']:>13} {r['n']:>10,} {r['error']} (peak {r['tree_peak_rss_mib']:,} MiB)"
            )
            continue
        ref = asof.get(r["n"])
        t_ratio = f"{r['retrieval_s'] / ref['retrieval_s']:.1f}" if ref else "-"
        m_ratio = f"{r['tree_peak_rss_mib'] / ref['tree_peak_rss_mib']:.1f}" if ref else "-"
        ok = r["retrieval_s"] <= TARGET_S and r["tree_peak_rss_mib"] <= TARGET_GIB * 1024
        print(
            f"{r['store']:>13} {r['n']:>10,} {r['checks']['rows']:>10,} "
            f"{r['retrieval_s']:>11.1f} {r['n'] / r['retrieval_s']:>10,.0f} "
            f"{r['tree_peak_rss_mib']:>6,} MiB {r['tree_peak_pss_mib']:>6,} MiB "
            f"{t_ratio:>11} {m_ratio:>10} {'ok' if ok else 'MISS':>7}"
        )
    print()
    by_n: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        if "checks" in r:
            by_n.setdefault(r["n"], []).append(r)
    for n, rs in by_n.items():
        same = all(x["checks"] == rs[0]["checks"] for x in rs)
        print(
            f"checks at {n:,} rows: {'identical' if same else 'DIFFER'} across "
            f"{', '.join(x['store'] for x in rs)}: {rs[0]['checks']}"
        )
        if not same:
            for x in rs:
                print(f"   {x['store']}: {x['checks']}")
    for r in results:
        if r["store"] != "duckdb-asof" and "error" not in r:
            print(
                f"{r['store']} n={r['n']:,}: entity frame {r['entity_mib']:,} MiB, result "
                f"{r['result_mib']:,} MiB, apply {r['apply_s']}s (not timed), sort by _row "
                f"{r['sort_s']}s (not timed; timed inside the pipeline run), "
                f"child self peak {r['self_peak_rss_mib']:,} MiB"
            )


if __name__ == "__main__":
    main()
