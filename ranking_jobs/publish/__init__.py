"""Publish stage: the night's lists into the Feast online store, fast and safely.

Feast's own writers (``materialize``, ``write_to_online_store``) spend their time
building one ``ValueProto`` per value in Python. This stage writes Feast's own
online-store layout directly instead (Redis: one hash per user keyed by Feast's
serialized entity key + project, fields ``mmh3("view:feature")`` and
``_ts:<view>``; SQLite: Feast's table of one row per entity and feature), with
the value bytes built in bulk by numpy (``encoding``). Feast's readers
(``get_online_features``, ``feast serve``) read the result unchanged.

What keeps it safe:

- **Fresher lists win.** A marker file records which logical day is live; a
  backfill of an older day writes its partitions but does not touch the online
  store.
- **Timestamp.** Rows carry the publish time as event timestamp (the day's
  as-of time stays in ``generated_at``), so a rerun of a day is newer than what
  it replaces even for Feast's Redis writer, which skips rows whose timestamp is
  not newer than the stored one (this writer replaces unconditionally).
- **One run per list.** Every row carries ``run_id``. On Redis each user's list
  is one HSET of all fields, packed a batch at a time by ``stores.hset_commands``
  and pipelined (redis-py's own packing cost more than the encoding); on SQLite
  the whole table is replaced in one transaction, so readers see the old lists
  until the commit.
- **Absent users lose their list by explicit removal**, not expiry: on SQLite
  the transaction deletes every old row first; on Redis the user ids of the live
  lists are kept beside the marker (``live_users.npy``) and users in them but not
  tonight get this view's fields deleted (HDEL, not DEL: Feast keys the hash by
  entity, so other views of the same user share it). An expiry
  (``RANKING_LIST_TTL_DAYS``) is available as a backstop but off by default:
  it would expire the user's other views too, and a pipeline outage would empty
  every list instead of keeping the last good ones.
- **Interrupted publishes are finished.** A journal (``publish_journal.json``,
  plus the user ids the run may write) is written before the first write and
  removed after the marker moves. The next run that finds it either supersedes
  it (same or later day: it rewrites every user and also removes users only the
  interrupted run wrote) or, if it is a backfill of an older day, first
  republishes the interrupted day.
- **One publish at a time.** A publish holds an exclusive lock on
  ``publish.lock`` in the state folder, waiting up to ``RANKING_PUBLISH_LOCK_WAIT_S``
  for another to finish. The OS drops the lock of a process that dies, so a journal
  found while holding it is a crashed publish's, never a running one's. (The lock
  is per host: workers on several hosts sharing a state folder need a store-side
  lock.)
- **Redis unreachable**: each batch is retried with exponential backoff
  (``RANKING_PUBLISH_ATTEMPTS``, ``RANKING_PUBLISH_BACKOFF_S``), then the task
  fails naming the Redis URL; the marker does not move.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ranking_jobs import contracts as C
from ranking_jobs import feast_internals, lake
from ranking_jobs.context import RunContext
from ranking_jobs.logs import timed
from ranking_jobs.publish import encoding
from ranking_jobs.publish.stores import PublishError, RedisLists, SqliteLists, view_names
from ranking_jobs.settings import Settings

__all__ = [
    "OnlineWriter",
    "PublishError",
    "journal",
    "live_marker",
    "publish",
    "publish_lists",
    "sqlite_key_order",
]

log = logging.getLogger(__name__)

LISTS_VIEW = "user_recommendations"
POPULAR_VIEW = "popular_items"

AfterBatch = Callable[[int], None]


# --- state files: live marker, live user ids, journal -----------------------------


def live_marker_path(settings: Settings) -> Path:
    return settings.paths.feast_dir / "live.json"


def journal_path(settings: Settings) -> Path:
    return settings.paths.feast_dir / "publish_journal.json"


def _users_path(settings: Settings, which: str) -> Path:
    return settings.paths.feast_dir / f"{which}_users.npy"


def live_marker(settings: Settings) -> dict[str, Any] | None:
    """The day and run whose lists are live, or None before the first publish."""
    path = live_marker_path(settings)
    return json.loads(path.read_text()) if path.exists() else None


def journal(settings: Settings) -> dict[str, Any] | None:
    """The journal of a publish that started and has not finished, or None."""
    path = journal_path(settings)
    return json.loads(path.read_text()) if path.exists() else None


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _load_users(settings: Settings, which: str) -> np.ndarray:
    path = _users_path(settings, which)
    return np.load(path) if path.exists() else np.empty(0, dtype=np.int64)


def _save_users(settings: Settings, which: str, users: np.ndarray) -> None:
    path = _users_path(settings, which)
    tmp = path.with_name(f"{path.stem}.tmp.npy")
    np.save(tmp, users)
    os.replace(tmp, path)


# --- entry point ------------------------------------------------------------------


def publish_lists(ctx: RunContext) -> dict[str, Any]:
    """The stage entry point (DAG and CLI): publish ``ctx.ds``'s lists if no fresher
    day is live, one publish at a time; returns counts and lists/s."""
    with exclusive(ctx.settings, ctx.run_id):
        return publish(ctx)


@contextlib.contextmanager
def exclusive(settings: Settings, holder: str) -> Iterator[None]:
    """The publish lock of the state folder, held by ``holder`` (a run id) until exit."""
    path = settings.paths.feast_dir / "publish.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        deadline = time.monotonic() + settings.publish.lock_wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    raise PublishError(
                        f"another publish holds {path} ({fh.read().strip() or 'unknown'}) "
                        f"after {settings.publish.lock_wait_s:g}s; the live lists are unchanged"
                    ) from None
                time.sleep(min(0.5, settings.publish.lock_wait_s))
        fh.seek(0)
        fh.truncate()
        fh.write(f"run {holder}, pid {os.getpid()}, since {dt.datetime.now(dt.UTC).isoformat()}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def publish(ctx: RunContext, after_batch: AfterBatch | None = None) -> dict[str, Any]:
    """``publish_lists`` with a hook called after each written batch (tests kill there)."""
    settings = ctx.settings
    pending = journal(settings)
    live = live_marker(settings)
    if pending and live and pending["started_at"] == live.get("published_at"):
        journal_path(settings).unlink()  # finished; only the journal's removal was lost
        pending = None
    if pending and pending["ds"] > ctx.ds_str:
        log.warning(
            "publish of %s (run %s) was interrupted; finishing it before %s",
            pending["ds"],
            pending["run_id"],
            ctx.ds_str,
        )
        publish(RunContext.create(pending["ds"], settings, pending["run_id"]))
        live = live_marker(settings)
    elif pending:
        log.warning(
            "publish of %s (run %s) was interrupted; this publish of %s replaces it",
            pending["ds"],
            pending["run_id"],
            ctx.ds_str,
        )
    if live is not None and live["ds"] > ctx.ds_str:
        log.warning("lists of %s are live; backfill of %s is not published", live["ds"], ctx.ds_str)
        return {
            "published": False,
            "reason": f"fresher lists of {live['ds']} are live",
            "live": live,
        }

    popular = lake.read_partition(settings, C.POPULAR, ctx.ds)
    batch_rows = settings.publish.batch_rows
    if settings.feast.online_store == "sqlite":
        # One contiguous copy: taking rows from the 20-odd row-group chunks of a list
        # column concatenates them on every call.
        whole = lake.read_partition(settings, C.RECOMMENDATIONS, ctx.ds).combine_chunks()
        heads = whole.select(["user_id", "model_version"])
    else:
        heads = lake.read_partition(
            settings, C.RECOMMENDATIONS, ctx.ds, ["user_id", "model_version"]
        )
    users = heads.column("user_id").to_numpy().astype(np.int64, copy=False)
    if len(np.unique(users)) != len(users):
        raise ValueError(f"recommendations/dt={ctx.ds_str} has more than one list for a user")
    batch_rows = settings.publish.batch_rows
    if settings.feast.online_store == "sqlite":
        order = sqlite_key_order(users)
        batches: Iterator[Any] = (
            whole.take(order[i : i + batch_rows]) for i in range(0, len(order), batch_rows)
        )
    else:
        batches = _same_users(
            lake.iter_partition(settings, C.RECOMMENDATIONS, ctx.ds, batch_rows), users, ctx.ds_str
        )
    stamp = dt.datetime.now(dt.UTC)
    from ranking_jobs.feast_store import feature_store

    store = feature_store(settings)
    writer = OnlineWriter(settings, store, stamp)
    try:
        writer.connect()  # fails (after retries) before anything is written or journaled
        # Everyone an unfinished publish may have written stays a removal candidate.
        inflight = np.union1d(users, _load_users(settings, "publishing") if pending else [])
        _save_users(settings, "publishing", inflight.astype(np.int64))
        _write_json(
            journal_path(settings),
            {
                "ds": ctx.ds_str,
                "run_id": ctx.run_id,
                "started_at": stamp.isoformat(),
                "store": settings.feast.online_store,
                "users": len(users),
                "state": "writing",
            },
        )
        with timed(log, "published lists", "lists") as t:
            writer.write([popular], POPULAR_VIEW, "segment")
            writer.write(batches, LISTS_VIEW, "user_id", after_batch=after_batch)
            stale = np.setdiff1d(
                np.union1d(_load_users(settings, "live"), inflight), users, assume_unique=True
            )
            removed = writer.remove(LISTS_VIEW, stale)
            writer.commit()
            t["count"] = len(users)
    finally:
        writer.close()
    _save_users(settings, "live", users)
    marker = {
        "ds": ctx.ds_str,
        "run_id": ctx.run_id,
        "model_version": str(heads.column("model_version")[0].as_py()) if len(heads) else "",
        "users": len(users),
        "published_at": stamp.isoformat(),
        "store": settings.feast.online_store,
    }
    _write_json(live_marker_path(settings), marker)
    journal_path(settings).unlink(missing_ok=True)
    _users_path(settings, "publishing").unlink(missing_ok=True)
    rate = round(len(users) / t["seconds"]) if t["seconds"] else None
    log.info("removed the lists of %s users absent tonight", f"{removed:,}")
    return {"published": True, **marker, "removed": removed, "lists_per_second": rate}


# --- the writer -------------------------------------------------------------------


class OnlineWriter:
    """Encodes Arrow rows in batches and writes them in Feast's layout of the store."""

    def __init__(self, settings: Settings, store: Any, stamp: dt.datetime) -> None:
        self.settings, self.store, self.stamp = settings, store, stamp
        self.redis: RedisLists | None = None
        self.sqlite: SqliteLists | None = None

    def connect(self) -> None:
        s = self.settings
        if s.feast.online_store == "redis":
            ttl = round(s.publish.list_ttl_days * 86400) or None
            self.redis = RedisLists(s.feast.redis_url, s.publish.attempts, s.publish.backoff_s, ttl)
            self.redis.ping()
        else:
            self.sqlite = SqliteLists(self.store)
            self.sqlite.begin(
                [SqliteLists.table(self.store, v) for v in (LISTS_VIEW, POPULAR_VIEW)]
            )

    def _keys(self, ids: pa.Array, join_key: str) -> list[bytes]:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        version = self.store.config.entity_key_serialization_version
        project = self.store.config.project
        if pa.types.is_integer(ids.type):
            suffix = project.encode() if self.redis else b""
            return encoding.Int64EntityKeys(join_key, version, suffix).keys(
                ids.to_numpy(zero_copy_only=False).astype(np.int64)
            )
        keys = [
            EntityKey(join_keys=[join_key], entity_values=[Value(string_val=v)])
            for v in ids.to_pylist()
        ]
        if self.redis:
            return [feast_internals.redis_key(project, k, version) for k in keys]
        return [serialize_entity_key(k, entity_key_serialization_version=version) for k in keys]

    def write(
        self,
        batches: Iterable[pa.Table | pa.RecordBatch],
        view: str,
        join_key: str,
        after_batch: AfterBatch | None = None,
    ) -> None:
        """Write ``batches`` in turn. A helper thread reads and encodes (and, for Redis,
        packs) the next batch while the current one is written: Parquet decoding,
        numpy, the socket and SQLite release the GIL, and the Redis server works in
        its own process."""
        from concurrent.futures import ThreadPoolExecutor

        from google.protobuf.timestamp_pb2 import Timestamp

        name, features, types = view_names(self.store, view)
        ts = Timestamp()
        ts.FromDatetime(self.stamp)
        stamp = ts.SerializeToString()
        fields = [feast_internals.field_hash(name, f) for f in features] + [f"_ts:{name}".encode()]
        table = SqliteLists.table(self.store, view) if self.sqlite else ""
        event_ts = SqliteLists.stamp(self.stamp)
        pending = iter(batches)

        def prepare() -> Any:
            """The next non-empty batch, ready for the store; None after the last."""
            for batch in pending:
                if not batch.num_rows:
                    continue
                if isinstance(batch, pa.RecordBatch):
                    batch = pa.Table.from_batches([batch])
                keys, columns, texts = self._encode(batch, join_key, features, types)
                if self.redis:
                    return self.redis.pack(keys, fields, [*columns, stamp])
                return _sqlite_rows(keys, features, columns, texts, event_ts)
            return None

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="publish-encode") as pool:
            upcoming = pool.submit(prepare)
            number = 0
            while (payload := upcoming.result()) is not None:
                upcoming = pool.submit(prepare)
                if self.redis:
                    self.redis.send(payload)
                else:
                    assert self.sqlite is not None
                    self.sqlite.write(table, payload)
                if after_batch is not None:
                    after_batch(number)
                number += 1

    def _encode(
        self, batch: pa.Table, join_key: str, features: list[str], types: list[Any]
    ) -> tuple[list[bytes], list[list[bytes]], list[list[str | None]]]:
        """Entity keys, value bytes per feature and (SQLite) value_text per feature."""
        from feast.value_type import ValueType

        keys = self._keys(batch.column(join_key).combine_chunks(), join_key)
        columns: list[list[bytes]] = []
        texts: list[list[str | None]] = []
        for feature, vtype in zip(features, types, strict=True):
            column = batch.column(feature).combine_chunks()
            if vtype == ValueType.INT64_LIST:
                columns.append(encoding.int64_list_values(column))
                texts.append([])
            elif vtype == ValueType.FLOAT_LIST:
                columns.append(encoding.float_list_values(column))
                texts.append([])
            else:
                values, protos = encoding.scalar_values(column, vtype)
                columns.append(values)
                texts.append(self._texts(values, protos))
        return keys, columns, texts

    @staticmethod
    def _texts(values: list[bytes], protos: dict[bytes, Any]) -> list[str | None]:
        """``value_text`` of Feast's SQLite rows, from Feast's own helper."""
        from feast.infra.online_stores.helpers import extract_text_and_num

        text = {b: extract_text_and_num(p, False)[0] for b, p in protos.items()}
        return [text[v] for v in values]

    def remove(self, view: str, users: np.ndarray) -> int:
        """Remove the lists of ``users`` (SQLite: already done by replacing the table)."""
        if self.redis is None or not len(users):
            return len(users)
        name, features, _ = view_names(self.store, view)
        fields = [feast_internals.field_hash(name, f) for f in features] + [f"_ts:{name}".encode()]
        keys = self._keys(pa.array(users, pa.int64()), "user_id")
        self.redis.remove(keys, fields, self.settings.publish.batch_rows)
        return len(users)

    def commit(self) -> None:
        if self.sqlite is not None:
            self.sqlite.commit()

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()
        if self.sqlite is not None:
            self.sqlite.close()


def sqlite_key_order(users: np.ndarray) -> np.ndarray:
    """Row order in which Feast's little-endian int64 entity keys sort as blobs, so
    every insert appends to the primary-key and entity-key b-trees."""
    return np.argsort(users.astype("<i8").view("<u8").byteswap(), kind="stable")


def _same_users(
    batches: Iterator[pa.RecordBatch], users: np.ndarray, ds: str
) -> Iterator[pa.RecordBatch]:
    """``batches`` checked against the user ids read before streaming them: the journal
    and the removal of absent users rely on that list."""
    at = 0
    for batch in batches:
        ids = batch.column("user_id").to_numpy()
        if not np.array_equal(ids, users[at : at + len(ids)]):
            raise RuntimeError(
                f"recommendations/dt={ds} changed while it was being published "
                f"(rows {at:,} onwards differ); publish it again"
            )
        at += len(ids)
        yield batch
    if at != len(users):
        raise RuntimeError(
            f"recommendations/dt={ds} changed while it was being published "
            f"({at:,} rows streamed, {len(users):,} expected); publish it again"
        )


def _sqlite_rows(
    keys: list[bytes],
    features: list[str],
    columns: list[list[bytes]],
    texts: list[list[str | None]],
    event_ts: Any,
) -> list[Any]:
    """Rows of Feast's SQLite table in primary-key order (entity key, feature name),
    flattened to ``SqliteLists.COLUMNS`` values one row after another and built by
    slice assignment rather than a Python loop per row."""
    order = sorted(range(len(features)), key=features.__getitem__)
    n, width = len(keys), len(order)
    stride = width * len(SqliteLists.COLUMNS)
    cells: list[Any] = [None] * (n * stride)
    cells[4 :: len(SqliteLists.COLUMNS)] = [event_ts] * (n * width)
    for at, j in enumerate(order):
        first = at * len(SqliteLists.COLUMNS)
        cells[first::stride] = keys
        cells[first + 1 :: stride] = [features[j]] * n
        cells[first + 2 :: stride] = columns[j]
        if texts[j]:
            cells[first + 3 :: stride] = texts[j]
    return cells
