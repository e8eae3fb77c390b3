"""Feast's Redis online-store layout, written and read directly.

``RedisLists`` writes one hash per entity exactly as Feast's Redis store does
(keys and hash fields through ``feast_internals``, values encoded in bulk by
``encoding``, ``_ts:<view>`` stamps); ``RedisListReader`` reads a user's list in
one round trip. Feast's own readers read what this writes, and this reads what
Feast writes (tests hold both directions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from ranking_jobs import feast_internals, online
from ranking_jobs.online import SoldItems, StoredList, StoreUnavailableError

if TYPE_CHECKING:
    from redis import Redis

    from ranking_jobs.settings import Settings

T = TypeVar("T")


def client(url: str, **options: Any) -> Redis:
    """A client of the first node of Feast's ``host:port,key=value`` connection string,
    with ``options`` where the string does not set them."""
    from redis import Redis

    nodes, kwargs = feast_internals.redis_connection(url)
    return Redis(host=nodes[0]["host"], port=int(nodes[0]["port"]), **{**options, **kwargs})


def _down(exc: BaseException) -> bool:
    from redis.exceptions import ConnectionError, TimeoutError

    return isinstance(exc, ConnectionError | TimeoutError | OSError)


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def hset_commands(
    keys: Sequence[bytes], fields: Sequence[bytes], columns: Sequence[Any], ttl_seconds: int = 0
) -> bytes:
    """The Redis protocol bytes of one ``HSET keys[i] fields[j] columns[j][i] ...`` per
    row (plus ``EXPIRE keys[i] ttl_seconds`` when set), for a whole batch.

    A column is a list (one value per row) or a bytes constant. redis-py packs a
    command an argument at a time, which cost more than encoding the lists; here
    the constant parts are packed once and a row costs a few list slots, joined
    in C. Plain pipelined HSETs also let the server work while the next batch is
    packed, which a server-side script did not.
    """
    n = len(keys)
    varying = [(f, c) for f, c in zip(fields, columns, strict=True) if not isinstance(c, bytes)]
    fixed = [(f, c) for f, c in zip(fields, columns, strict=True) if isinstance(c, bytes)]
    tail = b"".join(_bulk(f) + _bulk(c) for f, c in fixed)
    head = b"*%d\r\n$4\r\nHSET\r\n" % (2 + 2 * len(fields))
    width = 3 + 2 * len(varying) + (3 if ttl_seconds else 0)
    pieces: list[bytes] = [b""] * (n * width)
    pieces[0::width] = [b"%b$%d\r\n" % (head, len(k)) for k in keys]
    pieces[1::width] = keys
    at = 2
    for field, column in varying:
        before = b"\r\n" + _bulk(field)
        pieces[at::width] = [b"%b$%d\r\n" % (before, len(v)) for v in column]
        pieces[at + 1 :: width] = column
        at += 2
    pieces[at::width] = [b"\r\n" + tail] * n
    if ttl_seconds:
        pieces[at + 1 :: width] = [b"*3\r\n$6\r\nEXPIRE\r\n$%d\r\n" % len(k) for k in keys]
        pieces[at + 2 :: width] = keys
        pieces[at + 3 :: width] = [b"\r\n" + _bulk(str(ttl_seconds).encode())] * n
    return b"".join(pieces)


class Packed(NamedTuple):
    """A batch of commands in the Redis protocol and how many replies they return."""

    data: bytes
    replies: int


class RedisLists:
    """One Redis hash per entity, laid out as Feast's Redis online store writes it.

    Each row is a single HSET of all the view's fields plus ``_ts:<view>``, so a
    reader sees either the whole old list or the whole new one. Connection errors
    are retried per batch (writes are idempotent) with exponential backoff.
    """

    def __init__(
        self, url: str, attempts: int, backoff_s: float, ttl_seconds: int | None = None
    ) -> None:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url, self.attempts, self.backoff_s = url, attempts, backoff_s
        self.ttl_seconds = ttl_seconds
        self.client = client(
            url,
            socket_connect_timeout=5,
            socket_timeout=60,
            retry=Retry(NoBackoff(), 0),  # our own retry loop, with backoff and a clear error
        )

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        return online.retrying(
            f"Redis at {self.url}",
            what,
            call,
            self.attempts,
            self.backoff_s,
            _down,
            self.client.connection_pool.disconnect,
        )

    def ping(self) -> None:
        self.retrying("connecting", self.client.ping)

    def pack(
        self, keys: Sequence[bytes], fields: Sequence[bytes], columns: Sequence[Any]
    ) -> Packed:
        """HSET ``keys[i]`` with ``fields[j] -> columns[j][i]``: one HSET of all the
        view's fields per row, so a reader sees the whole old list or the whole new one."""
        data = hset_commands(keys, fields, columns, self.ttl_seconds or 0)
        return Packed(data, len(keys) * (2 if self.ttl_seconds else 1))

    def send(self, packed: Packed) -> None:
        """Send a packed batch in one write and read its replies (an error reply raises)."""

        def send() -> None:
            conn = self.client.connection_pool.get_connection()
            try:
                conn.send_packed_command([packed.data], check_health=False)
                for _ in range(packed.replies):
                    conn.read_response()
            finally:
                self.client.connection_pool.release(conn)

        self.retrying(f"writing {packed.replies:,} commands", send)

    def remove(self, keys: Sequence[bytes], fields: Sequence[bytes], batch: int) -> None:
        """HDEL only this view's fields: other views of the same entity share the hash."""
        for start in range(0, len(keys), batch):
            chunk = keys[start : start + batch]

            def send(chunk: Sequence[bytes] = chunk) -> None:
                pipe = self.client.pipeline(transaction=False)
                for key in chunk:
                    pipe.execute_command("HDEL", key, *fields)
                pipe.execute()

            self.retrying(f"removing {len(chunk):,} rows", send)

    def close(self) -> None:
        self.client.close()


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
        timeout = settings.serving.redis_timeout_s
        # One immediate reconnect (a Redis restart drops pooled connections), then fail
        # fast: redis-py's default retries with backoff would hold a request for seconds.
        self.redis = client(
            settings.feast.redis_url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),
        )
        self._down = (redis.ConnectionError, redis.TimeoutError)

        def fields(view: str, names: tuple[str, ...]) -> list[bytes]:
            return [feast_internals.field_hash(view, n) for n in names]

        self._list_fields = {
            v: fields(v, online.LIST_FIELDS) for v in (online.USER_VIEW, online.POPULAR_VIEW)
        }
        self._sold_fields = fields(online.SOLD_VIEW, online.SOLD_FIELDS)
        self._segment_key = feast_internals.redis_key(
            self._project,
            EntityKey(
                join_keys=["segment"], entity_values=[Value(string_val=online.FALLBACK_SEGMENT)]
            ),
            feast_internals.ENTITY_KEY_VERSION,
        )
        self._stamps = [f"_ts:{online.POPULAR_VIEW}".encode(), f"_ts:{online.SOLD_VIEW}".encode()]
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
            raw = self._command("HMGET", self._segment_key, *self._list_fields[online.POPULAR_VIEW])
            self._popular = (popular_ts, self._decode_list(raw))
        if sold_ts != self._sold[0]:
            raw = self._command("HMGET", self._segment_key, *self._sold_fields)
            self._sold = (sold_ts, self._decode_sold(raw))

    def read(self, user_id: int) -> tuple[StoredList | None, StoredList | None, SoldItems]:
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self.user_key(user_id), self._list_fields[online.USER_VIEW])
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
