"""The online-store port: the one way lists go into a Feast online store and come out.

Publish writes through a ``ListWriter``; serving, the demo and the hourly
availability job read through a ``ListReader``. ``writer`` and ``reader`` pick the
implementation from ``RANKING_ONLINE_STORE``:

- ``sqlite`` and ``redis``: Feast's own layout written directly (``layout``), at
  publish speed. SQLite replaces a night's lists in one transaction; Redis writes each
  user's list whole (one HSET), batch after batch. On Redis, serving also reads the
  layout directly.
- ``feast``: any other Feast online store, configured by
  ``RANKING_ONLINE_STORE_CONFIG`` (the ``online_store`` block of
  ``feature_store.yaml``), through Feast's own ``write_to_online_store`` and
  ``get_online_features`` (``generic``): slower, each list written whole, batch after
  batch, and an absent user's list overwritten by an empty one (Feast has no delete of
  one entity), which the client serves as no list.

Whatever the store, every reader sees what every writer wrote: the layout is Feast's.
This module itself imports nothing heavy, so the Feast repository can name its views
from here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from feast import FeatureStore

    from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

USER_VIEW = "user_recommendations"
POPULAR_VIEW = "popular_items"
SOLD_VIEW = "sold_items"
LIST_FIELDS = ("item_ids", "scores", "model_version", "run_id", "generated_at")
SOLD_FIELDS = ("item_ids", "since", "updated_at")
# The entity column of each view's rows: one list per user, one fallback and one sold
# set per segment.
JOIN_KEY = {USER_VIEW: "user_id", POPULAR_VIEW: "segment", SOLD_VIEW: "segment"}
FALLBACK_SEGMENT = "global"  # the key of the one non-personal row (popular, sold items)

AfterBatch = Callable[[int], None]
Batches = Iterable["pa.Table | pa.RecordBatch"]


class PublishError(RuntimeError):
    """The online store could not be written: a publish leaves the live marker where it was."""


class StoreUnavailableError(RuntimeError):
    """The online store could not be read (connection refused, timeout)."""


@dataclass(frozen=True)
class StoredList:
    """One list as the online store holds it (user_recommendations / popular_items)."""

    item_ids: tuple[int, ...]
    scores: tuple[float, ...]
    model_version: str
    run_id: str
    generated_at: dt.datetime | None


@dataclass(frozen=True)
class SoldItems:
    """Items sold since the live lists were made: serving drops them from every list."""

    item_ids: frozenset[int] = frozenset()
    since: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class ListReader(Protocol):
    """Reads what a surface needs for one request."""

    def read(self, user_id: int) -> tuple[StoredList | None, StoredList | None, SoldItems]:
        """(the user's list or None, the popular list or None, the sold items), one read."""
        ...

    def popular(self) -> StoredList | None:
        """The fallback list; a real read of the store (readiness)."""
        ...


class ListWriter(Protocol):
    """Writes rows of the list views, each row whole. Where the store has transactions
    (SQLite) ``connect`` empties the views and nothing is visible before ``commit``;
    elsewhere each batch is live once written, and rows not rewritten stay until
    removed."""

    def connect(self, views: Sequence[str]) -> None:
        """Reach the store (raising ``PublishError`` before anything is written)."""
        ...

    def write(self, batches: Batches, view: str, after_batch: AfterBatch | None = None) -> None:
        """Write the rows of ``view`` (keyed by its ``JOIN_KEY``), calling ``after_batch``
        with each written batch's number."""
        ...

    def remove(self, view: str, users: np.ndarray) -> int:
        """Remove the lists of ``users`` from the user view ``view``; how many."""
        ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


def writer(settings: Settings, stamp: dt.datetime, store: FeatureStore | None = None) -> ListWriter:
    """The writer of ``settings.feast.online_store``; rows carry ``stamp`` as their event time."""
    from ranking_jobs.feast_store import feature_store

    store = store or feature_store(settings)
    if settings.feast.online_store == "feast":
        from ranking_jobs.online.generic import FeastWriter

        return FeastWriter(settings, store, stamp)
    from ranking_jobs.online.layout import LayoutWriter

    return LayoutWriter(settings, store, stamp)


def key_order(settings: Settings) -> Callable[[np.ndarray], np.ndarray] | None:
    """How the store wants a view's int64 keys ordered, or None for any order: SQLite
    appends every insert to its b-trees when rows come in key order."""
    if settings.feast.online_store == "sqlite":
        from ranking_jobs.online.sqlite_store import sqlite_key_order

        return sqlite_key_order
    return None


def retrying(
    store: str,
    what: str,
    call: Callable[[], T],
    attempts: int,
    backoff_s: float,
    transient: Callable[[BaseException], bool],
    on_retry: Callable[[], None] = lambda: None,
) -> T:
    """``call``, retried with exponential backoff while it fails ``transient``-ly (writes
    are idempotent); the last failure raises ``PublishError`` naming ``store`` and
    ``what``."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if not transient(exc):
                raise
            if attempt == attempts:
                raise PublishError(
                    f"{store} unreachable while {what}: {attempts} attempts failed, "
                    f"last error: {exc}"
                ) from exc
            wait = backoff_s * 2 ** (attempt - 1)
            log.warning(
                "%s: %s failed (attempt %d/%d: %s); retrying in %.2fs",
                store,
                what,
                attempt,
                attempts,
                exc,
                wait,
            )
            on_retry()
            time.sleep(wait)
    raise AssertionError("unreachable")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the store could not be reached, for any
    store Feast supports: name lookups, and the drivers' connection, timeout and
    unavailability errors, recognised by their class names (Redis' ``ConnectionError``,
    botocore's ``EndpointConnectionError``, psycopg's ``OperationalError``, Cassandra's
    ``NoHostAvailable``...). A SQLite database is unavailable only when locked or
    unopenable: its other operational errors (no such table) are the caller's."""
    import socket
    import sqlite3

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.OperationalError):
            text = str(seen).lower()
            if "locked" in text or "unable to open" in text or "busy" in text:
                return True
        elif (
            isinstance(seen, socket.gaierror)
            or any(
                word in cls.__name__
                for cls in type(seen).__mro__
                for word in ("Connection", "Timeout", "Unavailable", "NoHostAvailable")
            )
            or type(seen).__name__ == "OperationalError"
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def writing(
    settings: Settings,
    stamp: dt.datetime,
    views: Sequence[str],
    store: FeatureStore | None = None,
) -> Iterator[ListWriter]:
    """A connected writer replacing ``views``, committed when the block ends without error
    (rolled back where the store can, otherwise left as written) and always closed."""
    out = writer(settings, stamp, store)
    try:
        out.connect(views)
        yield out
        out.commit()
    finally:
        out.close()


def reader(settings: Settings, direct: bool = True) -> ListReader:
    """Redis read directly (``RANKING_SERVE_DIRECT_REDIS``, with serving's short
    timeouts), any other store, or a batch job (``direct=False``), through Feast."""
    if direct and settings.feast.online_store == "redis" and settings.serving.direct_redis:
        from ranking_jobs.online.redis_store import RedisListReader

        return RedisListReader(settings)
    from ranking_jobs.online.generic import FeastListReader

    return FeastListReader(settings)


def live_marker_path(settings: Settings) -> Path:
    """Written by publish after its last write: which night's lists are live."""
    return settings.paths.feast_dir / "live.json"


def live_marker(settings: Settings) -> dict[str, Any] | None:
    """The day and run whose lists are live (written by publish after its last write),
    or None before the first publish."""
    path = live_marker_path(settings)
    return json.loads(path.read_text()) if path.exists() else None
