"""Writers of Feast's own online-store layout: Redis hashes and SQLite rows.

Both take rows already encoded by ``ranking_jobs.publish.encoding`` and reuse
Feast's helpers for every name (``_mmh3`` hash fields, ``_ts:<view>``,
``compute_versioned_name``, ``compute_table_id``, the SQLite datetime adapter),
so Feast's readers (``get_online_features``, ``feast serve``) read them as if
Feast had written them.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class PublishError(RuntimeError):
    """The online store could not be written; the live lists were left as they were."""


def view_names(store: Any, view: str) -> tuple[str, list[str], list[Any]]:
    """(online name of the view, its feature names, their Feast ValueTypes)."""
    from feast.infra.online_stores.helpers import compute_versioned_name

    fv = store.get_feature_view(view)
    name = compute_versioned_name(fv, store.config.registry.enable_online_feature_view_versioning)
    return name, [f.name for f in fv.features], [f.dtype.to_value_type() for f in fv.features]


# One HSET per row (KEYS[i]; ARGV: fields per row, TTL seconds, then the rows'
# field/value pairs), optionally followed by EXPIRE.
HSET_ROWS = """
local n, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local width = 2 * n
for i = 1, #KEYS do
  local first = 3 + (i - 1) * width
  redis.call('HSET', KEYS[i], unpack(ARGV, first, first + width - 1))
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return #KEYS
"""


class RedisLists:
    """One Redis hash per entity, laid out as Feast's Redis online store writes it.

    Each row is a single HSET of all the view's fields plus ``_ts:<view>``, so a
    reader sees either the whole old list or the whole new one. Connection errors
    are retried per batch (writes are idempotent) with exponential backoff.
    """

    def __init__(
        self, url: str, attempts: int, backoff_s: float, ttl_seconds: int | None = None
    ) -> None:
        from feast.infra.online_stores.redis import RedisOnlineStore
        from redis import Redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        nodes, kwargs = RedisOnlineStore._parse_connection_string(url)
        kwargs.setdefault("socket_connect_timeout", 5)
        kwargs.setdefault("socket_timeout", 60)
        self.url, self.attempts, self.backoff_s = url, attempts, backoff_s
        self.ttl_seconds = ttl_seconds
        self.client = Redis(
            host=nodes[0]["host"],
            port=int(nodes[0]["port"]),
            retry=Retry(NoBackoff(), 0),  # our own retry loop, with backoff and a clear error
            **kwargs,
        )
        # redis-py's Script runs EVALSHA and reloads the script after a server restart.
        self.script = self.client.register_script(HSET_ROWS)

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        from redis.exceptions import ConnectionError, TimeoutError

        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except (ConnectionError, TimeoutError, OSError) as exc:
                if attempt == self.attempts:
                    raise PublishError(
                        f"Redis at {self.url} unreachable while {what}: {self.attempts} "
                        f"attempts failed, last error: {exc}. The live lists and the live "
                        "marker were left unchanged."
                    ) from exc
                wait = self.backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "Redis at %s: %s failed (attempt %d/%d: %s); retrying in %.2fs",
                    self.url,
                    what,
                    attempt,
                    self.attempts,
                    exc,
                    wait,
                )
                self.client.connection_pool.disconnect()
                time.sleep(wait)
        raise AssertionError("unreachable")

    def ping(self) -> None:
        self.retrying("connecting", self.client.ping)

    def write(self, keys: Sequence[bytes], fields: Sequence[bytes], columns: Sequence[Any]) -> None:
        """HSET ``keys[i]`` with ``fields[j] -> columns[j][i]`` for a batch of rows.

        A column may be a list (one value per row) or a bytes constant. The batch
        goes as one call of a server-side script (``HSET_ROWS``): one command packed
        in C and one reply per batch, instead of redis-py's per-command packing and
        reply parsing, which cost more than the encoding. Each row is still its own
        HSET of all fields (a script also runs atomically, so a reader sees a whole
        batch or none of it; a batch blocks the server for a few milliseconds).
        """
        n, width = len(keys), 2 * len(fields)
        args: list[Any] = [None] * (n * width)
        for j, (field, column) in enumerate(zip(fields, columns, strict=True)):
            args[2 * j :: width] = [field] * n
            args[2 * j + 1 :: width] = [column] * n if isinstance(column, bytes) else column
        head = [len(fields), self.ttl_seconds or 0]

        def send() -> None:
            self.script(keys=keys, args=[*head, *args])

        self.retrying(f"writing {n:,} rows", send)

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


class SqliteLists:
    """Feast's SQLite online-store table of a view, replaced whole in one transaction.

    ``begin`` deletes every row of the table and ``write`` inserts the new ones;
    nothing is visible to readers until ``commit``. A killed publish leaves
    SQLite's rollback journal, so the next open rolls back to the old lists.
    """

    def __init__(self, store: Any) -> None:
        from feast.infra.online_stores.sqlite import SqliteOnlineStore

        self.path = SqliteOnlineStore._get_db_path(store.config)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: the b-tree pages of a night

    @staticmethod
    def table(store: Any, view: str) -> str:
        from feast.infra.online_stores.helpers import compute_table_id

        fv = store.get_feature_view(view)
        return compute_table_id(
            store.config.project, fv, store.config.registry.enable_online_feature_view_versioning
        )

    @staticmethod
    def stamp(ts: dt.datetime) -> Any:
        """The event_ts value Feast's SQLite store writes for ``ts`` (its own adapter)."""
        from feast.infra.online_stores.sqlite import adapt_datetime_epoch
        from feast.utils import to_naive_utc

        return adapt_datetime_epoch(to_naive_utc(ts))

    def begin(self, tables: Sequence[str]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        for table in tables:
            self.conn.execute(f'DELETE FROM "{table}"')

    def write(self, table: str, rows: Any) -> None:
        self.conn.executemany(
            f'INSERT INTO "{table}" (entity_key, feature_name, value, value_text, event_ts, '
            "created_ts) VALUES (?, ?, ?, ?, ?, NULL)",
            rows,
        )

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def close(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.close()
