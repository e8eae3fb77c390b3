"""Writing Feast's own online layout (Redis hashes, SQLite rows) directly.

Feast's writers (``materialize``, ``write_to_online_store``) build one ``ValueProto``
per value in Python; this writer builds the value bytes of a whole batch with numpy
(``encoding``) and names keys, hash fields, tables and timestamps with Feast's own
helpers, so ``get_online_features`` and ``feast serve`` read the result unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from ranking_jobs import feast_internals
from ranking_jobs.online import JOIN_KEY, AfterBatch, Batches, encoding
from ranking_jobs.online.redis_store import RedisLists
from ranking_jobs.online.sqlite_store import SqliteLists, sqlite_rows

if TYPE_CHECKING:
    from feast import FeatureStore

    from ranking_jobs.settings import Settings


def view_names(store: FeatureStore, view: str) -> tuple[str, list[str], list[Any]]:
    """(online name of the view, its feature names, their Feast ValueTypes)."""
    from feast.infra.online_stores.helpers import compute_versioned_name

    fv = store.get_feature_view(view)
    name = compute_versioned_name(fv, store.config.registry.enable_online_feature_view_versioning)
    return name, [f.name for f in fv.features], [f.dtype.to_value_type() for f in fv.features]


def _hash_fields(view: str, features: list[str]) -> list[bytes]:
    """The Redis hash fields of a view's row: one per feature, then its write stamp."""
    return [feast_internals.field_hash(view, f) for f in features] + [f"_ts:{view}".encode()]


class LayoutWriter:
    """Encodes Arrow rows in batches and writes them in Feast's layout of the store."""

    def __init__(self, settings: Settings, store: FeatureStore, stamp: dt.datetime) -> None:
        self.settings, self.store, self.stamp = settings, store, stamp
        self.redis: RedisLists | None = None
        self.sqlite: SqliteLists | None = None

    def connect(self, views: Sequence[str]) -> None:
        s = self.settings
        if s.feast.online_store == "redis":
            ttl = round(s.publish.list_ttl_days * 86400) or None
            self.redis = RedisLists(s.feast.redis_url, s.publish.attempts, s.publish.backoff_s, ttl)
            self.redis.ping()
        else:
            self.sqlite = SqliteLists(self.store)
            self.sqlite.begin([SqliteLists.table(self.store, v) for v in views])

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

    def write(self, batches: Batches, view: str, after_batch: AfterBatch | None = None) -> None:
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
        fields = _hash_fields(name, features)
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
                keys, columns, texts = self._encode(batch, JOIN_KEY[view], features, types)
                if self.redis:
                    return self.redis.pack(keys, fields, [*columns, stamp])
                return sqlite_rows(keys, features, columns, texts, event_ts)
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
        fields = _hash_fields(name, features)
        keys = self._keys(pa.array(users, pa.int64()), JOIN_KEY[view])
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
