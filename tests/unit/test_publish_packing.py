"""The publish stage's own Redis protocol packing and its streamed-partition check."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from redis.connection import PythonRespSerializer

from ranking_jobs.online.redis_store import hset_commands
from ranking_jobs.publish import _same_users


def _redis_py(*args: bytes | int) -> bytes:
    """redis-py's own packing of one command (the reference)."""
    return b"".join(PythonRespSerializer(6000, lambda v: v).pack(*args))


@pytest.mark.parametrize("ttl", [0, 86_400])
def test_hset_commands_are_what_redis_py_sends(ttl: int) -> None:
    keys = [b"user-1", b"u2", b"a-longer-key\r\nwith-crlf"]
    fields = [b"f1", b"field-two", b"_ts:view"]
    columns = [[b"", b"x" * 300, b"\x00\r\n"], [b"a", b"bb", b"ccc"], b"stamp"]
    expected = b""
    for i, key in enumerate(keys):
        expected += _redis_py(
            b"HSET", key, b"f1", columns[0][i], b"field-two", columns[1][i], b"_ts:view", b"stamp"
        )
        if ttl:
            expected += _redis_py(b"EXPIRE", key, str(ttl).encode())
    assert hset_commands(keys, fields, columns, ttl) == expected


def test_a_partition_that_changes_while_streamed_is_refused() -> None:
    def batch(ids: list[int]) -> pa.RecordBatch:
        return pa.record_batch({"user_id": pa.array(ids, pa.int64())})

    users = np.array([1, 2, 3, 4], dtype=np.int64)
    same = list(_same_users(iter([batch([1, 2]), batch([3, 4])]), users, "2026-02-01"))
    assert [b.num_rows for b in same] == [2, 2]
    with pytest.raises(RuntimeError, match=r"dt=2026-02-01 changed .*rows 2 onwards"):
        list(_same_users(iter([batch([1, 2]), batch([3, 5])]), users, "2026-02-01"))
    with pytest.raises(RuntimeError, match="3 rows streamed, 4 expected"):
        list(_same_users(iter([batch([1, 2, 3])]), users, "2026-02-01"))
