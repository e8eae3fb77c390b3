"""Benchmark of the recommendation API at a fixed open-loop request rate.

    python -m bench.bench_serving --rate 500 --seconds 30 [--users 100000]

In one run, on this machine:

1. starts its own ``redis-server`` on a free loopback port (none is assumed);
2. writes 100-item lists for ``--users`` users plus the popular fallback to the
   lake and publishes them with the project's ``publish_lists`` into a Feast repo
   on that Redis; writes ``--sold`` purchases made after the lists' as-of time and
   runs ``refresh_availability``, so every read really filters a sold set;
3. starts the API (``ranking-jobs serve``: uvicorn, one worker) as a subprocess;
4. drives it open-loop: request i is due at ``start + i / rate`` whatever happened
   before, and its latency is counted from that due time (not from when a
   connection was free), so a stall shows up in every request it delays and is
   not hidden by coordinated omission. Raw asyncio sockets with keep-alive, a
   pool of ``--connections``; user ids random, ``--unknown`` of them unknown;
5. drives ``/healthz`` at the same rate for ``--floor-seconds``: the floor that
   uvicorn, FastAPI and this machine set before any store read;
6. with the server idle, measures in this process the same reads without HTTP:
   the raw redis-py round trip the client makes (HMGET of the user's hash plus the
   segment stamps, pipelined), a plain redis-py HGET of one field, the client's
   ``get()`` (decode, filter) and Feast's ``get_online_features``.

Prints one table; ratios are to the raw redis-py round trip of the same run.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.servers import free_port, start_redis, wait_for_port

DAY = dt.date(2026, 1, 31)
AS_OF = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
LIST_LEN = 100


# --- data: lists, fallback and sales through the project's own stages ---------------


def publish(settings: Any, users: int, catalogue: int, sold: int, seed: int) -> dict[str, float]:
    """Lists for ``users`` users published with ``publish_lists``; ``sold`` items sold since."""
    import pyarrow as pa

    from ranking_jobs import contracts as C
    from ranking_jobs import lake
    from ranking_jobs.availability import refresh_availability
    from ranking_jobs.context import RunContext
    from ranking_jobs.feast_store import apply_definitions
    from ranking_jobs.publish import publish_lists

    rng = np.random.default_rng(seed)
    offsets = pa.array(np.arange(users + 1, dtype=np.int32) * LIST_LEN)
    items = rng.integers(0, catalogue, users * LIST_LEN, dtype=np.int64)
    scores = np.tile(np.linspace(1.0, 0.01, LIST_LEN, dtype=np.float32), users)
    lists = pa.table(
        {
            "user_id": pa.array(np.arange(users, dtype=np.int64)),
            "item_ids": pa.ListArray.from_arrays(offsets, pa.array(items)),
            "scores": pa.ListArray.from_arrays(offsets, pa.array(scores)),
            "model_version": pa.array(["marketplace_ranker/v1"] * users),
            "run_id": pa.array(["bench"] * users),
            "generated_at": pa.array([AS_OF] * users, C.TS),
            "event_timestamp": pa.array([AS_OF] * users, C.TS),
        },
        schema=C.RECOMMENDATIONS_SCHEMA,
    )
    popular = pa.table(
        {
            "item_ids": [list(range(LIST_LEN))],
            "scores": [list(np.linspace(1.0, 0.01, LIST_LEN, dtype=np.float32))],
            "model_version": ["popularity"],
            "run_id": ["bench"],
            "generated_at": [AS_OF],
            "event_timestamp": [AS_OF],
            "segment": ["global"],
        },
        schema=pa.schema([*C.RECOMMENDATIONS_SCHEMA.remove(0), pa.field("segment", pa.string())]),
    )
    lake.write_partition(settings, C.RECOMMENDATIONS, DAY, lists)
    lake.write_partition(settings, C.POPULAR, DAY, popular)
    apply_definitions(settings)
    started = time.perf_counter()
    publish_lists(RunContext.create(DAY, settings, "bench"))
    publish_s = time.perf_counter() - started

    nxt = DAY + dt.timedelta(days=1)
    bought = rng.choice(catalogue, sold, replace=False).astype(np.int64)
    events = pa.table(
        {
            "event_id": [f"b{i}" for i in range(sold)],
            "ts": pa.array([AS_OF + dt.timedelta(seconds=int(s)) for s in range(sold)], C.TS),
            "user_id": pa.array(rng.integers(0, users, sold, dtype=np.int64)),
            "item_id": pa.array(bought),
            "event_type": ["purchase"] * sold,
            "surface": ["home"] * sold,
            "query": pa.nulls(sold, pa.string()),
            "position": pa.array(np.zeros(sold, dtype=np.int32)),
            "session_id": ["s"] * sold,
        },
        schema=C.EVENTS_SCHEMA,
    )
    lake.write_partition(settings, C.RAW_EVENTS, nxt, events)
    started = time.perf_counter()
    refresh_availability(RunContext.create(nxt, settings, "bench-hourly"))
    return {"publish_s": publish_s, "availability_s": time.perf_counter() - started}


# --- the open-loop HTTP driver ------------------------------------------------------


class _Pool:
    """Keep-alive connections; a request waits for a free one (and that wait counts)."""

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.free: asyncio.Queue = asyncio.Queue()
        self.size = size

    async def open(self) -> None:
        for _ in range(self.size):
            self.free.put_nowait(await asyncio.open_connection("127.0.0.1", self.port))


async def _one(pool: _Pool, request: bytes) -> int:
    reader, writer = await pool.free.get()
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await reader.readexactly(length)
        if status == 200 and not body.startswith((b'{"user_id"', b'{"status":"ok"')):
            status = -1
    except Exception:
        writer.close()
        pool.free.put_nowait(await asyncio.open_connection("127.0.0.1", pool.port))
        raise
    pool.free.put_nowait((reader, writer))
    return status


async def drive(
    port: int,
    rate: float,
    seconds: float,
    users: int,
    unknown: float,
    connections: int,
    seed: int,
    path: str = "/v1/users/{user}/recommendations?limit=20",
) -> tuple[np.ndarray, np.ndarray, int, dict[int, int]]:
    """Latencies (s, from each request's due time), send lags (s), error count, statuses."""
    pool = _Pool(port, connections)
    await pool.open()
    rnd = random.Random(seed)
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    lags = np.full(n, np.nan)
    statuses: dict[int, int] = {}
    errors = 0
    clock = time.perf_counter  # uvloop's loop.time() only ticks in whole milliseconds
    tasks = []

    async def request(i: int, due: float, user: int) -> None:
        nonlocal errors
        req = f"GET {path.format(user=user)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        lags[i] = clock() - due
        try:
            status = await _one(pool, req)
        except Exception:
            status = 0
        latencies[i] = clock() - due
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            errors += 1

    start = clock() + 0.05
    for i in range(n):
        due = start + i / rate
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        known = rnd.random() >= unknown
        user = rnd.randrange(users) if known else users + rnd.randrange(10 * users)
        tasks.append(asyncio.ensure_future(request(i, due, user)))
    await asyncio.gather(*tasks)
    for _, writer in [pool.free.get_nowait() for _ in range(pool.free.qsize())]:
        writer.close()
    return latencies, lags, errors, statuses


def _run_async(coro: Any) -> Any:
    """The stock asyncio loop: its timers use the monotonic clock, not whole milliseconds."""
    return asyncio.run(coro)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- in-process reads without HTTP ----------------------------------------------------


def _timed(fn: Any, args: list[Any]) -> np.ndarray:
    out = np.empty(len(args))
    for i, a in enumerate(args):
        t = time.perf_counter()
        fn(a)
        out[i] = time.perf_counter() - t
    return out


def direct_reads(settings: Any, users: int, n: int, unknown: float, seed: int) -> dict[str, Any]:
    from ranking_jobs.feast_store import feature_store
    from ranking_jobs.online import LIST_FIELDS
    from ranking_jobs.online.redis_store import RedisListReader
    from ranking_jobs.serving import RecommendationClient

    rnd = random.Random(seed + 1)
    ids = [
        rnd.randrange(users) if rnd.random() >= unknown else users + rnd.randrange(users)
        for _ in range(n)
    ]
    client = RecommendationClient(settings)
    reader = client.reader
    assert isinstance(reader, RedisListReader)
    r = reader.redis
    fields = reader._list_fields["user_recommendations"]
    stamps = reader._stamps
    keys = [reader.user_key(u) for u in ids]
    seg = reader._segment_key

    def raw_pipeline(key: bytes) -> None:
        with r.pipeline(transaction=False) as pipe:
            pipe.hmget(key, fields)
            pipe.hmget(seg, stamps)
            pipe.execute()

    def raw_hget(key: bytes) -> None:
        r.hget(key, fields[0])

    store = feature_store(settings)
    refs = [f"user_recommendations:{f}" for f in LIST_FIELDS]

    def feast(u: int) -> None:
        store.get_online_features(features=refs, entity_rows=[{"user_id": u}]).to_dict()

    for fn, args in ((raw_pipeline, keys), (raw_hget, keys), (client.get, ids), (feast, ids)):
        _timed(fn, args[:200])  # warm connections and caches
    return {
        "redis-py HMGET user + segment stamps (pipelined)": _timed(raw_pipeline, keys),
        "redis-py HGET one field": _timed(raw_hget, keys),
        "client.get() direct Redis (decode + filter)": _timed(client.get, ids),
        "Feast get_online_features (user list only)": _timed(feast, ids[: n // 4]),
    }


# --- report -------------------------------------------------------------------------


def _row(name: str, lat: np.ndarray, errors: int | str, base: float | None) -> str:
    ms = lat[~np.isnan(lat)] * 1e3
    p50, p99, p999 = np.percentile(ms, [50, 99, 99.9])
    ratio = f"{p99 / base:6.1f}x" if base else "     -"
    return (
        f"{name:<52} {len(ms):>7,} {p50:>8.3f} {p99:>8.3f} {p999:>8.3f} {ms.max():>8.2f} "
        f"{errors!s:>6} {ratio:>8}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500, help="requests per second (open loop)")
    parser.add_argument("--seconds", type=float, default=30, help="measured duration")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds first")
    parser.add_argument(
        "--floor-seconds", type=float, default=10, help="seconds of /healthz at the same rate"
    )
    parser.add_argument("--users", type=int, default=100_000, help="users with a list")
    parser.add_argument("--catalogue", type=int, default=1_000_000, help="distinct item ids")
    parser.add_argument("--sold", type=int, default=5_000, help="items sold since the lists")
    parser.add_argument("--unknown", type=float, default=0.2, help="share of unknown users")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--direct-reads", type=int, default=20_000, help="in-process reads")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args(argv)

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    root = args.root or Path(tempfile.mkdtemp(prefix="bench-serving-"))
    root.mkdir(parents=True, exist_ok=True)
    redis_proc, redis_url = start_redis(root)
    server = None
    try:
        from ranking_jobs.airflow_runner import settings_env
        from ranking_jobs.settings import Settings

        settings = Settings(
            data_root=str(root / "lake"),
            state_dir=root / "var",
            online_store="redis",
            redis_url=redis_url,
        )
        t = publish(settings, args.users, args.catalogue, args.sold, args.seed)
        print(
            f"published {args.users:,} lists of {LIST_LEN} with publish_lists in "
            f"{t['publish_s']:.1f}s ({args.users / t['publish_s']:,.0f} lists/s); "
            f"refresh_availability ({args.sold:,} sold) in {t['availability_s']:.2f}s",
            flush=True,
        )
        port = free_port()
        env = {**os.environ, **settings_env(settings)}
        cli = [sys.executable, "-m", "ranking_jobs.cli", "--log-level", "WARNING"]
        server = subprocess.Popen(
            [*cli, "serve", "--port", str(port)],
            env=env,
        )
        wait_for_port(port, timeout=60, proc=server)
        common = (port, args.rate)
        _run_async(drive(*common, args.warmup, args.users, args.unknown, args.connections, 1))
        load_before = os.getloadavg()[0]
        server_cpu = _cpu_seconds(server.pid)
        client_cpu = time.process_time()
        lat, lags, errors, statuses = _run_async(
            drive(*common, args.seconds, args.users, args.unknown, args.connections, args.seed)
        )
        served = args.rate * args.seconds
        server_us = (_cpu_seconds(server.pid) - server_cpu) / served * 1e6
        client_us = (time.process_time() - client_cpu) / served * 1e6
        load_after = os.getloadavg()[0]
        # The framework's floor at the same rate: uvicorn + FastAPI with no store read.
        floor, _, floor_errors, _ = _run_async(
            drive(*common, args.floor_seconds, 1, 0.0, args.connections, 2, path="/healthz")
        )
        direct = direct_reads(settings, args.users, args.direct_reads, args.unknown, args.seed)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        redis_proc.terminate()
        redis_proc.wait(timeout=10)

    base = float(np.percentile(direct["redis-py HMGET user + segment stamps (pipelined)"], 99))
    base *= 1e3
    print()
    print(
        f"open loop {args.rate:g} req/s for {args.seconds:g}s, {args.connections} keep-alive "
        f"connections, {args.unknown:.0%} unknown users, limit=20; latency from due time"
    )
    print(
        f"{'path':<52} {'n':>7} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>8} {'max ms':>8} "
        f"{'errors':>6} {'p99/raw':>8}"
    )
    print(_row("HTTP GET /v1/users/{id}/recommendations", lat, errors, base))
    print(_row("  of which: load generator late to send", lags, "-", None))
    print(_row("HTTP GET /healthz (no store read), same rate", floor, floor_errors, base))
    for name, values in direct.items():
        print(_row(name, values, "-", base))
    print(
        f"\nstatuses: {dict(sorted(statuses.items()))}; target p99 < 5 ms, 0 errors\n"
        f"CPU per request: API server {server_us:.0f} us, load generator {client_us:.0f} us; "
        f"1-min load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores "
        "(other processes on the machine share them)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
