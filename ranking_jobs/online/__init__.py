"""The online-store port: the one way lists go into a Feast online store and come out.

Publish writes through a ``ListWriter``; serving, the demo and the hourly
availability job read through a ``ListReader``. ``writer`` and ``reader`` pick the
implementation from ``RANKING_ONLINE_STORE``:

- ``redis`` and ``sqlite``: Feast's own layout written directly (``layout``), so a
  night's lists replace the old ones at publish speed and all at once (one HSET per
  user on Redis, one transaction on SQLite); on Redis, also read directly.
- ``feast``: any other Feast online store, configured by
  ``RANKING_ONLINE_STORE_CONFIG`` (the ``online_store`` block of
  ``feature_store.yaml``), through Feast's own ``write_to_online_store`` and
  ``get_online_features`` (``generic``). Slower, and a reader may see some users'
  new lists before others' while a publish runs; each list is still whole.

Whatever the store, every reader sees what every writer wrote: the layout is Feast's.
This module itself imports nothing heavy, so the Feast repository can name its views
from here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from feast import FeatureStore

    from ranking_jobs.settings import Settings

USER_VIEW = "user_recommendations"
POPULAR_VIEW = "popular_items"
SOLD_VIEW = "sold_items"
LIST_FIELDS = ("item_ids", "scores", "model_version", "run_id", "generated_at")
SOLD_FIELDS = ("item_ids", "since", "updated_at")
# The entity column of each view's rows: one list per user, one fallback and one sold
# set per segment.
JOIN_KEY = {USER_VIEW: "user_id", POPULAR_VIEW: "segment", SOLD_VIEW: "segment"}

AfterBatch = Callable[[int], None]
Batches = Iterable["pa.Table | pa.RecordBatch"]


class PublishError(RuntimeError):
    """The online store could not be written; the live lists were left as they were."""


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
    item_ids: frozenset[int] = frozenset()
    since: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class ListReader(Protocol):
    def read(self, user_id: int) -> tuple[StoredList | None, StoredList | None, SoldItems]:
        """(the user's list or None, the popular list or None, the sold items), one read."""
        ...

    def popular(self) -> StoredList | None:
        """The fallback list; a real read of the store (readiness)."""
        ...


class ListWriter(Protocol):
    """Replaces whole views of the online store; nothing is final before ``commit``
    where the store allows it (SQLite), and each row is written whole everywhere."""

    def connect(self, views: Sequence[str]) -> None:
        """Reach the store (raising ``PublishError`` before anything is written) and
        start replacing ``views``."""
        ...

    def row_order(self, keys: np.ndarray) -> np.ndarray | None:
        """The order in which to write rows of these int64 keys, or None for any."""
        ...

    def write(self, batches: Batches, view: str, after_batch: AfterBatch | None = None) -> None:
        """Write the rows of ``view`` (keyed by its ``JOIN_KEY``), calling ``after_batch``
        with each written batch's number."""
        ...

    def remove(self, view: str, keys: np.ndarray) -> int:
        """Remove the rows of these int64 keys from ``view``; how many were removed."""
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


def reader(settings: Settings) -> ListReader:
    """Redis read directly (``RANKING_SERVE_DIRECT_REDIS``), any other store through Feast."""
    if settings.feast.online_store == "redis" and settings.serving.direct_redis:
        from ranking_jobs.online.redis_store import RedisListReader

        return RedisListReader(settings)
    from ranking_jobs.online.generic import FeastListReader

    return FeastListReader(settings)


def live_marker_path(settings: Settings) -> Path:
    return settings.paths.feast_dir / "live.json"


def live_marker(settings: Settings) -> dict[str, Any] | None:
    """The day and run whose lists are live (written by publish after its last write),
    or None before the first publish."""
    path = live_marker_path(settings)
    return json.loads(path.read_text()) if path.exists() else None
