"""The publish path's bytes equal Feast's own: value protos, entity keys, whole rows."""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
import pyarrow as pa
import pytest
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType

from ranking_jobs.context import RunContext
from ranking_jobs.feast_store import feature_store, online_db_path
from ranking_jobs.online import encoding
from ranking_jobs.publish import publish_lists
from tests.conftest import flush_redis
from tests.integration.serving_data import DAY, write_lists


def _feast(values: list, vtype: ValueType) -> list[bytes]:
    return [p.SerializeToString() for p in python_values_to_proto_values(values, vtype)]


def test_int64_lists_encode_byte_for_byte_like_feast():
    rng = np.random.default_rng(1)
    lists = [rng.integers(0, 2**40, size=rng.integers(0, 120)).tolist() for _ in range(300)]
    lists += [[], [0], [127, 128, 16383, 16384], [2**62, -1, -(2**63)], [7] * 300]
    got = encoding.int64_list_values(pa.array(lists, pa.list_(pa.int64())))
    assert got == _feast(lists, ValueType.INT64_LIST)
    # a slice of a larger array (offsets not starting at zero) encodes the same
    sliced = pa.array(lists, pa.list_(pa.int64())).slice(100, 50)
    assert encoding.int64_list_values(sliced) == _feast(lists[100:150], ValueType.INT64_LIST)


def test_float_lists_and_scalars_encode_like_feast():
    rng = np.random.default_rng(2)
    lists = [rng.normal(size=rng.integers(0, 120)).astype(np.float32).tolist() for _ in range(200)]
    lists += [[], [float("inf"), -0.0]]
    got = encoding.float_list_values(pa.array(lists, pa.list_(pa.float32())))
    assert got == _feast(lists, ValueType.FLOAT_LIST)

    names = ["run-a", "run-b", "run-a", "ünïcode"]
    rows, protos = encoding.scalar_values(pa.array(names), ValueType.STRING)
    assert rows == _feast(names, ValueType.STRING) and len(protos) == 3
    when = [dt.datetime(2026, 2, 1, 3, 4, 5, tzinfo=dt.UTC)] * 2
    rows, _ = encoding.scalar_values(
        pa.array(when, pa.timestamp("us", tz="UTC")), ValueType.UNIX_TIMESTAMP
    )
    assert rows == _feast(when, ValueType.UNIX_TIMESTAMP)


def test_entity_keys_equal_feasts_serialization():
    ids = np.array([0, 1, 255, 256, 2**40, -5], dtype=np.int64)
    keys = encoding.Int64EntityKeys("user_id", 3, b"proj").keys(ids)
    for i, key in zip(ids, keys, strict=True):
        ek = EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=int(i))])
        assert key == serialize_entity_key(ek, entity_key_serialization_version=3) + b"proj"


def _stored(settings) -> dict:
    """Everything the online store holds for user_recommendations, minus the timestamps."""
    if settings.feast.online_store == "redis":
        import redis

        host, port = settings.feast.redis_url.split(":")
        client = redis.Redis(host=host, port=int(port))
        out = {}
        for key in client.scan_iter(count=1000):
            fields = client.hgetall(key)
            out[key] = {f: v for f, v in fields.items() if not f.startswith(b"_ts:")}
        return out
    conn = sqlite3.connect(online_db_path(settings))
    rows = conn.execute(
        "SELECT entity_key, feature_name, value, value_text, created_ts "
        "FROM marketplace_ranking_user_recommendations ORDER BY entity_key, feature_name"
    ).fetchall()
    conn.close()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_published_rows_equal_what_feasts_own_writer_stores(direct_store_settings):
    settings = direct_store_settings
    items = {u: [u * 1000 + k for k in range(u % 7)] for u in range(1, 60)}
    write_lists(settings, DAY, items, "run-x")
    publish_lists(RunContext.create(DAY, settings, "run-x"))
    ours = _stored(settings)
    assert len(ours) == (59 * 5 if settings.feast.online_store == "sqlite" else 60)

    # Clear the store, then let Feast write the same partition its own way.
    from ranking_jobs import contracts as C
    from ranking_jobs import lake

    store = feature_store(settings)
    if settings.feast.online_store == "redis":
        flush_redis(settings.feast.redis_url)
    else:
        conn = sqlite3.connect(online_db_path(settings))
        with conn:
            conn.execute("DELETE FROM marketplace_ranking_user_recommendations")
        conn.close()
    df = lake.read_partition(settings, C.RECOMMENDATIONS, DAY).to_pandas()
    store.write_to_online_store("user_recommendations", df)
    popular = lake.read_partition(settings, C.POPULAR, DAY).to_pandas()
    store.write_to_online_store("popular_items", popular)
    feasts = _stored(settings)
    assert ours == feasts


@pytest.mark.parametrize("n", [0, 1, 5])
def test_empty_and_small_batches(n):
    arr = pa.array([[1, 2, 3]] * n, pa.list_(pa.int64()))
    assert encoding.int64_list_values(arr) == _feast([[1, 2, 3]] * n, ValueType.INT64_LIST)
