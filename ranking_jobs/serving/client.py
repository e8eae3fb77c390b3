"""Reading a user's list from the online store: availability filter, popular fallback.

Two readers give the same answer (a test holds them to it):

- ``RedisListReader`` reads Feast's own Redis layout directly: the user's hash and
  the segment hash's two timestamps in one pipelined round trip. The popular list
  and the sold-items set are decoded only when their Feast write timestamp moves,
  so a request costs one round trip and one small decode. Keys, hash fields and
  values are built and parsed with Feast's own helpers and protos, so whatever
  ``get_online_features`` reads, this reads.
- ``FeastListReader`` goes through ``FeatureStore.get_online_features``: the path
  for SQLite and the reference for the direct one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from ranking_jobs import feast_internals
from ranking_jobs.feast_store import FALLBACK_SEGMENT, LIST_FIELDS
from ranking_jobs.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore

log = logging.getLogger(__name__)

USER_VIEW = "user_recommendations"
POPULAR_VIEW = "popular_items"
SOLD_VIEW = "sold_items"
SOLD_FIELDS = ("item_ids", "since", "updated_at")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# While the store is down, a background thread tries it this often; requests get the
# degraded list at once instead of waiting out the store's timeout (which would hold
# the API's event loop).
PROBE_EVERY_S = 1.0


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


@dataclass
class Recommendations:
    """What a surface shows: the list after the availability filter, and its provenance."""

    user_id: int
    items: list[int]
    scores: list[float]
    model_version: str
    generated_at: str | None
    personalised: bool
    run_id: str = ""
    removed_sold: int = 0
    generated_ts: float | None = field(default=None, repr=False)
    degraded: bool = False  # the store was unreachable: the last popular list read

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("generated_ts")
        return out

    @property
    def age_seconds(self) -> float | None:
        """How old the served list is (now minus its as-of time)."""
        return None if self.generated_ts is None else time.time() - self.generated_ts


class ListReader(Protocol):
    def read(self, user_id: int) -> tuple[StoredList | None, StoredList | None, SoldItems]:
        """(the user's list or None, the popular list or None, the sold items), one read."""
        ...

    def popular(self) -> StoredList | None:
        """The fallback list; a real read of the store (readiness)."""
        ...


_NULL_TIMESTAMP: list[int] = []  # Feast's null marker, looked up once


def _timestamp(seconds: int | None) -> dt.datetime | None:
    if not _NULL_TIMESTAMP:
        from feast.type_map import NULL_TIMESTAMP_INT_VALUE

        _NULL_TIMESTAMP.append(NULL_TIMESTAMP_INT_VALUE)
    if seconds is None or seconds == _NULL_TIMESTAMP[0]:
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


class RedisListReader:
    """Feast's Redis online-store layout read directly (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        import redis
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._value = Value
        self._entity_key = EntityKey
        self._project = settings.feast.project
        nodes, kwargs = feast_internals.redis_connection(settings.feast.redis_url)
        kwargs.setdefault("socket_timeout", settings.serving.redis_timeout_s)
        kwargs.setdefault("socket_connect_timeout", settings.serving.redis_timeout_s)
        # One immediate reconnect (a Redis restart drops pooled connections), then fail
        # fast: redis-py's default retries with backoff would hold a request for seconds.
        kwargs.setdefault("retry", Retry(NoBackoff(), 1))
        self.redis = redis.Redis(host=nodes[0]["host"], port=int(nodes[0]["port"]), **kwargs)
        self._down = (redis.ConnectionError, redis.TimeoutError)

        def fields(view: str, names: tuple[str, ...]) -> list[bytes]:
            return [feast_internals.field_hash(view, n) for n in names]

        self._list_fields = {v: fields(v, LIST_FIELDS) for v in (USER_VIEW, POPULAR_VIEW)}
        self._sold_fields = fields(SOLD_VIEW, SOLD_FIELDS)
        self._segment_key = feast_internals.redis_key(
            self._project,
            EntityKey(join_keys=["segment"], entity_values=[Value(string_val=FALLBACK_SEGMENT)]),
            feast_internals.ENTITY_KEY_VERSION,
        )
        self._stamps = [f"_ts:{POPULAR_VIEW}".encode(), f"_ts:{SOLD_VIEW}".encode()]
        # (write timestamp bytes, decoded value) of the segment rows, refreshed on change.
        self._popular: tuple[bytes | None, StoredList | None] = (None, None)
        self._sold: tuple[bytes | None, SoldItems] = (None, SoldItems())

    def user_key(self, user_id: int) -> bytes:
        entity = self._entity_key(
            join_keys=["user_id"], entity_values=[self._value(int64_val=user_id)]
        )
        return feast_internals.redis_key(self._project, entity, feast_internals.ENTITY_KEY_VERSION)

    def _decode_list(self, raw: list[bytes | None]) -> StoredList | None:
        if not raw[0]:
            return None
        parse = self._value.FromString
        ids, scores, version, run, generated = (parse(b) if b else self._value() for b in raw)
        return StoredList(
            item_ids=tuple(ids.int64_list_val.val),
            scores=tuple(scores.float_list_val.val),
            model_version=version.string_val,
            run_id=run.string_val,
            generated_at=_timestamp(generated.unix_timestamp_val)
            if generated.HasField("unix_timestamp_val")
            else None,
        )

    def _command(self, *args: Any) -> Any:
        try:
            return self.redis.execute_command(*args)
        except self._down as exc:
            raise StoreUnavailableError(f"online store (Redis) unreachable: {exc}") from exc

    def _decode_sold(self, raw: list[bytes | None]) -> SoldItems:
        if not raw[0]:
            return SoldItems()
        parse = self._value.FromString
        ids, since, updated = (parse(b) if b else self._value() for b in raw)
        return SoldItems(
            frozenset(ids.int64_list_val.val),
            _timestamp(since.unix_timestamp_val),
            _timestamp(updated.unix_timestamp_val),
        )

    def _segment(self, popular_ts: bytes | None, sold_ts: bytes | None) -> None:
        """Re-read the popular list and the sold set when their write stamp moved."""
        if popular_ts != self._popular[0]:
            raw = self._command("HMGET", self._segment_key, *self._list_fields[POPULAR_VIEW])
            self._popular = (popular_ts, self._decode_list(raw))
        if sold_ts != self._sold[0]:
            raw = self._command("HMGET", self._segment_key, *self._sold_fields)
            self._sold = (sold_ts, self._decode_sold(raw))

    def read(self, user_id: int) -> tuple[StoredList | None, StoredList | None, SoldItems]:
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self.user_key(user_id), self._list_fields[USER_VIEW])
                pipe.hmget(self._segment_key, self._stamps)
                user_raw, stamps = pipe.execute()
        except self._down as exc:
            raise StoreUnavailableError(f"online store (Redis) unreachable: {exc}") from exc
        self._segment(*stamps)
        return self._decode_list(user_raw), self._popular[1], self._sold[1]

    def popular(self) -> StoredList | None:
        stamps = self._command("HMGET", self._segment_key, *self._stamps)
        self._segment(*stamps)
        return self._popular[1]


class FeastListReader:
    """Everything through ``get_online_features`` (SQLite, or Redis on request)."""

    def __init__(self, settings: Settings, store: FeatureStore | None = None) -> None:
        from ranking_jobs.feast_store import feature_store

        self.store = store or feature_store(settings)

    def _row(self, view: str, fields: tuple[str, ...], key: str, value: object) -> dict[str, Any]:
        try:
            got = self.store.get_online_features(
                features=[f"{view}:{f}" for f in fields], entity_rows=[{key: value}]
            ).to_dict()
        except Exception as exc:  # Feast wraps store errors in many types
            if _is_connection_error(exc):
                raise StoreUnavailableError(f"online store unreachable: {exc}") from exc
            raise
        return {k: v[0] for k, v in got.items()}

    def _list(self, view: str, key: str, value: object) -> StoredList | None:
        row = self._row(view, LIST_FIELDS, key, value)
        if not row.get("item_ids"):
            return None
        generated = row.get("generated_at")
        return StoredList(
            item_ids=tuple(int(i) for i in row["item_ids"]),
            scores=tuple(float(s) for s in row.get("scores") or ()),
            model_version=str(row.get("model_version") or ""),
            run_id=str(row.get("run_id") or ""),
            generated_at=generated if isinstance(generated, dt.datetime) else None,
        )

    def sold(self) -> SoldItems:
        from feast.errors import FeatureViewNotFoundException

        try:
            row = self._row(SOLD_VIEW, SOLD_FIELDS, "segment", FALLBACK_SEGMENT)
        except FeatureViewNotFoundException:  # a registry applied before the view existed
            return SoldItems()
        if row.get("item_ids") is None:
            return SoldItems()
        return SoldItems(
            frozenset(int(i) for i in row["item_ids"]), row.get("since"), row.get("updated_at")
        )

    def popular(self) -> StoredList | None:
        return self._list(POPULAR_VIEW, "segment", FALLBACK_SEGMENT)

    def read(self, user_id: int) -> tuple[StoredList | None, StoredList | None, SoldItems]:
        user = self._list(USER_VIEW, "user_id", user_id)
        return user, (None if user is not None else self.popular()), self.sold()


def _is_connection_error(exc: BaseException) -> bool:
    import sqlite3

    import redis

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, redis.ConnectionError | redis.TimeoutError | sqlite3.OperationalError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _select(stored: StoredList, sold: frozenset[int], limit: int) -> tuple[list, list, int]:
    """The first ``limit`` items still for sale, their scores, and how many sold were dropped."""
    items: list[int] = []
    scores: list[float] = []
    removed = 0
    for item, score in zip(stored.item_ids, stored.scores, strict=False):
        if item in sold:
            removed += 1
            continue
        items.append(item)
        scores.append(score)
        if len(items) == limit:
            break
    return items, scores, removed


class RecommendationClient:
    """A user's list for a surface; one instance per process (it caches segment rows).

    Unknown users, and users whose whole list has sold, get the popular fallback;
    sold items are dropped from both. While the store is unreachable, every user
    gets the last popular list this process read (``degraded``); only a process
    that never read one raises ``StoreUnavailableError``.
    """

    def __init__(self, settings: Settings, reader: ListReader | None = None) -> None:
        self.settings = settings
        if reader is None:
            direct = settings.feast.online_store == "redis" and settings.serving.direct_redis
            reader = RedisListReader(settings) if direct else FeastListReader(settings)
        self.reader = reader
        self._last: tuple[StoredList | None, SoldItems] = (None, SoldItems())
        self._down = False  # set on the first failed read; a probe thread clears it
        with contextlib.suppress(StoreUnavailableError):
            self.check()  # a process started while the store is up holds a fallback

    def get(self, user_id: int, limit: int = 20) -> Recommendations:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        user_id = int(user_id)
        if not INT64_MIN <= user_id <= INT64_MAX:
            raise ValueError(f"user_id must fit in 64 bits, got {user_id}")
        popular, sold = self._last
        if self._down and popular is not None:
            return replace(self._finish(user_id, limit, None, popular, sold), degraded=True)
        try:
            stored, popular, sold = self.reader.read(user_id)
        except StoreUnavailableError as exc:
            popular, sold = self._last
            if popular is None:
                raise
            if not self._down:
                log.warning("%s; serving the last popular list read until it is back", exc)
                self._down = True
                threading.Thread(target=self._probe, name="store-probe", daemon=True).start()
            return replace(self._finish(user_id, limit, None, popular, sold), degraded=True)
        self._last = (popular or self._last[0], sold)
        return self._finish(user_id, limit, stored, popular, sold)

    def _probe(self) -> None:
        """While the store is down, try it every ``PROBE_EVERY_S`` from this thread:
        requests meanwhile never wait on a dead store's timeout (an async server's
        event loop stays free)."""
        while True:
            time.sleep(PROBE_EVERY_S)
            try:
                self.check()
            except StoreUnavailableError:
                continue
            log.warning("online store reachable again: personal lists are served")
            self._down = False
            return

    def _finish(
        self,
        user_id: int,
        limit: int,
        stored: StoredList | None,
        popular: StoredList | None,
        sold: SoldItems,
    ) -> Recommendations:
        personalised = False
        items: list[int] = []
        scores: list[float] = []
        removed = 0
        if stored is not None:
            items, scores, removed = _select(stored, sold.item_ids, limit)
            personalised = bool(items)
        if not personalised:
            if popular is None and stored is not None:
                popular = self.reader.popular()  # the Feast reader skips it for known users
            stored = popular
            items, scores, removed = (
                _select(popular, sold.item_ids, limit) if popular is not None else ([], [], 0)
            )
        generated = stored.generated_at if stored is not None else None
        return Recommendations(
            user_id=user_id,
            items=items,
            scores=scores,
            model_version=stored.model_version if stored is not None else "",
            generated_at=generated.isoformat() if generated is not None else None,
            personalised=personalised,
            run_id=stored.run_id if stored is not None else "",
            removed_sold=removed,
            generated_ts=generated.timestamp() if generated is not None else None,
        )

    def check(self) -> dict[str, Any]:
        """A real read of the fallback list: raises StoreUnavailableError when unreachable."""
        popular = self.reader.popular()
        if popular is not None:
            self._last = (popular, self._last[1])
        return {
            "fallback_list": popular is not None,
            "model_version": popular.model_version if popular is not None else None,
        }


def recommend(settings: Settings, user_id: int, limit: int = 20) -> Recommendations:
    return RecommendationClient(settings).get(user_id, limit)
