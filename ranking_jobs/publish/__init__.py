"""Publish stage: the night's lists into the Feast online store, safely.

The writing itself goes through the online-store port (``ranking_jobs.online``):
Feast's own layout written directly on Redis and SQLite, Feast's own API on any
other store. This stage decides what is written and keeps it safe.

What keeps it safe:

- **Fresher lists win.** A marker file records which logical day is live; a
  backfill of an older day writes its partitions but does not touch the online
  store.
- **Timestamp.** Rows carry the publish time as event timestamp (the day's
  as-of time stays in ``generated_at``), so a rerun of a day is newer than what
  it replaces, also for Feast's own writers (the ``feast`` store), which skip rows
  whose timestamp is not newer than the stored one.
- **One run per list.** Every row carries ``run_id`` and is written whole (on
  Redis one HSET of all fields). On SQLite the whole table is replaced in one
  transaction, so readers see the old lists until the commit; elsewhere each
  written batch is live at once.
- **Absent users lose their list by explicit removal**, not expiry. On SQLite the
  transaction deletes every old row first. Elsewhere the user ids of the live lists
  are kept beside the marker (``live_users.npy``) and users in them but not tonight
  lose their list: on Redis this view's fields are deleted (HDEL, not DEL: Feast keys
  the hash by entity, so other views of the same user share it); on any other store
  an empty list is written over theirs. A Redis expiry (``RANKING_LIST_TTL_DAYS``) is
  available as a backstop but off by default: it would expire the user's other views
  too, and a pipeline outage would empty every list instead of keeping the last good
  ones.
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
- **Store unreachable**: each batch is retried with exponential backoff
  (``RANKING_PUBLISH_ATTEMPTS``, ``RANKING_PUBLISH_BACKOFF_S``), then the task
  fails naming the store (Redis: its URL); the marker does not move.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ranking_jobs import contracts as C
from ranking_jobs import lake, online
from ranking_jobs.context import RunContext
from ranking_jobs.logs import timed
from ranking_jobs.online import AfterBatch, PublishError, live_marker
from ranking_jobs.settings import Settings

__all__ = ["exclusive", "journal", "publish", "publish_lists"]

log = logging.getLogger(__name__)


# --- state files: live marker, live user ids, journal -----------------------------


def journal_path(settings: Settings) -> Path:
    return settings.paths.feast_dir / "publish_journal.json"


def _users_path(settings: Settings, which: str) -> Path:
    return settings.paths.feast_dir / f"{which}_users.npy"


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
    order_of = online.key_order(settings)
    whole = None
    if order_of is None:  # streamed in batches while writing
        heads = lake.read_partition(
            settings, C.RECOMMENDATIONS, ctx.ds, ["user_id", "model_version"]
        )
    else:  # read before the store's write transaction starts, in one contiguous copy
        whole = lake.read_partition(settings, C.RECOMMENDATIONS, ctx.ds).combine_chunks()
        heads = whole.select(["user_id", "model_version"])
    users = heads.column("user_id").to_numpy().astype(np.int64, copy=False)
    if len(np.unique(users)) != len(users):
        raise ValueError(f"recommendations/dt={ctx.ds_str} has more than one list for a user")
    stamp = dt.datetime.now(dt.UTC)
    # Everyone an unfinished publish may have written stays a removal candidate.
    inflight = np.union1d(users, _load_users(settings, "publishing") if pending else [])
    views = [online.USER_VIEW, online.POPULAR_VIEW]
    with timed(log, "published lists", "lists") as t:
        # Connecting fails (after retries) before anything is written or journaled.
        with online.writing(settings, stamp, views) as writer:
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
            writer.write([popular], online.POPULAR_VIEW)
            if whole is None:
                streamed = lake.iter_partition(
                    settings, C.RECOMMENDATIONS, ctx.ds, settings.publish.batch_rows
                )
                batches = _same_users(streamed, users, ctx.ds_str)
            else:
                batches = _in_order(whole, order_of(users), settings.publish.batch_rows)
            writer.write(batches, online.USER_VIEW, after_batch=after_batch)
            stale = np.setdiff1d(
                np.union1d(_load_users(settings, "live"), inflight), users, assume_unique=True
            )
            removed = writer.remove(online.USER_VIEW, stale)
        t["count"] = len(users)
    _save_users(settings, "live", users)
    marker = {
        "ds": ctx.ds_str,
        "run_id": ctx.run_id,
        "model_version": str(heads.column("model_version")[0].as_py()) if len(heads) else "",
        "users": len(users),
        "published_at": stamp.isoformat(),
        "store": settings.feast.online_store,
    }
    _write_json(online.live_marker_path(settings), marker)
    journal_path(settings).unlink(missing_ok=True)
    _users_path(settings, "publishing").unlink(missing_ok=True)
    rate = round(len(users) / t["seconds"]) if t["seconds"] else None
    log.info("removed the lists of %s users absent tonight", f"{removed:,}")
    return {"published": True, **marker, "removed": removed, "lists_per_second": rate}


def _in_order(whole: pa.Table, order: np.ndarray, step: int) -> Iterator[pa.Table]:
    """``whole`` in batches of ``step`` rows taken in ``order`` (from one contiguous copy:
    taking rows from a list column's row-group chunks concatenates them on every call)."""
    return (whole.take(order[i : i + step]) for i in range(0, len(order), step))


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
