"""Feast's online-store bytes for many rows at once, built with numpy.

Feast turns every value into a ``ValueProto`` one Python object at a time; for
1M lists of 100 items that conversion, not the store, is what makes its writers
slow. The encoders here produce the same bytes for a whole batch:

- list columns (``int64_list_val``, ``float_list_val``) are packed repeated
  fields, so a row is a few varint headers followed by the packed payload
  (varints for int64, little-endian float32 for floats), assembled for all rows
  of a batch in one buffer;
- scalar columns (strings, timestamps) repeat a handful of values per run, so
  each distinct value is converted once by Feast's own ``python_values_to_proto_values``;
- entity keys come from a template made by Feast's ``serialize_entity_key`` with
  the int64 value spliced in, re-checked against Feast on every batch.

``tests/integration/test_publish_encoding.py`` checks byte-equality with
Feast's own serialisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

# Value.proto field tags (field number << 3 | wire type 2), as varint bytes.
INT64_LIST_TAG = b"\x72"  # int64_list_val = 14
FLOAT_LIST_TAG = b"\x82\x01"  # float_list_val = 16
PACKED_VAL_TAG = 0x0A  # Int64List/FloatList.val = 1, packed


def varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Protobuf varints of ``values`` (int64, negatives as 10-byte two's complement).

    Returns the concatenated bytes (uint8) and the length of each varint. Works a
    byte column at a time in the narrowest dtype that holds the values.
    """
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.uint8), np.ones(0, dtype=np.int64)
    small = int(values.min()) >= 0 and int(values.max()) < 1 << 32
    u = values.astype(np.uint32 if small else np.uint64, copy=False)
    top = int(u.max())
    width = 1
    while width < 10 and top >= 1 << (7 * width):
        width += 1
    lengths = np.ones(n, dtype=np.int8)
    for j in range(1, width):
        lengths += u >= (1 << (7 * j))
    groups = np.empty((n, width), dtype=np.uint8)
    for j in range(width):
        byte = (u >> (7 * j)).astype(np.uint8) & np.uint8(0x7F)
        if j < width - 1:
            byte |= (lengths > j + 1).view(np.uint8) << np.uint8(7)
        groups[:, j] = byte
    if width == 1:
        return groups[:, 0], lengths.astype(np.int64)
    return groups[np.arange(width, dtype=np.int8) < lengths[:, None]], lengths.astype(np.int64)


def _concat_rows(parts: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> list[bytes]:
    """Row ``i`` is part0[i] + part1[i] + ...; each part is (stream, per-row lengths)."""
    row_len = np.zeros(n, dtype=np.int64)
    for _, lens in parts:
        row_len += lens
    ends = np.cumsum(row_len)
    starts = ends - row_len
    out = np.empty(int(ends[-1]) if n else 0, dtype=np.uint8)
    offset = starts.copy()
    for stream, lens in parts:
        if len(stream):
            seg_start = np.cumsum(lens) - lens
            dest = np.repeat(offset - seg_start, lens) + np.arange(len(stream), dtype=np.int64)
            out[dest] = stream
        offset += lens
    buf = out.tobytes()
    return [buf[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def _constant(tag: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.tile(np.frombuffer(tag, dtype=np.uint8), n),
        np.full(n, len(tag), dtype=np.int64),
    )


def _packed_rows(outer_tag: bytes, payload: np.ndarray, payload_len: np.ndarray) -> list[bytes]:
    """ValueProto bytes of a packed-list oneof per row, given each row's payload bytes.

    The few header bytes per row are assembled in numpy; each row is then its header
    plus a slice of the batch's payload buffer (no per-byte scatter).
    """
    n = len(payload_len)
    has = payload_len > 0
    inner_len_v, inner_len_l = varints(payload_len[has])
    inner_hdr_len = np.zeros(n, dtype=np.int64)
    inner_hdr_len[has] = 1 + inner_len_l
    # The packed field is omitted entirely for an empty list (proto3).
    message_len = np.where(has, inner_hdr_len + payload_len, 0)
    msg_v, msg_l = varints(message_len)
    key_stream = np.full(int(has.sum()), PACKED_VAL_TAG, dtype=np.uint8)
    len_l = np.zeros(n, dtype=np.int64)
    len_l[has] = inner_len_l
    headers = _concat_rows(
        [
            _constant(outer_tag, n),
            (msg_v, msg_l),
            (key_stream, has.astype(np.int64)),
            (inner_len_v, len_l),
        ],
        n,
    )
    buf = payload.tobytes()
    ends = np.cumsum(payload_len).tolist()
    starts = [0, *ends[:-1]] if n else []
    return [h + buf[a:b] for h, a, b in zip(headers, starts, ends, strict=True)]


def _list_parts(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    if column.null_count:
        raise ValueError(f"{column.null_count} null lists in a column that must not have nulls")
    lengths = column.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64)
    return column.flatten(), lengths


def int64_list_values(column: pa.Array) -> list[bytes]:
    """``ValueProto(int64_list_val=...)`` bytes of each row of a list<int64> array."""
    flat, counts = _list_parts(column)
    values = flat.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    stream, lens = varints(values)
    byte_ends = np.concatenate([[0], np.cumsum(lens)])
    row_ends = np.concatenate([[0], np.cumsum(counts)])
    payload_len = byte_ends[row_ends[1:]] - byte_ends[row_ends[:-1]]
    return _packed_rows(INT64_LIST_TAG, stream, payload_len)


def float_list_values(column: pa.Array) -> list[bytes]:
    """``ValueProto(float_list_val=...)`` bytes of each row of a list<float32> array."""
    flat, counts = _list_parts(column)
    values = flat.to_numpy(zero_copy_only=False).astype("<f4", copy=False)
    return _packed_rows(FLOAT_LIST_TAG, values.view(np.uint8), counts * 4)


def scalar_values(column: pa.Array, value_type: object) -> tuple[list[bytes], dict[bytes, object]]:
    """ValueProto bytes per row of a scalar column, each distinct value converted once
    by Feast. Returns the row bytes and, per distinct bytes, Feast's ValueProto."""
    from feast.type_map import python_values_to_proto_values

    if column.null_count:
        raise ValueError(f"{column.null_count} nulls in a column that must not have nulls")
    encoded = column.dictionary_encode()
    protos = python_values_to_proto_values(encoded.dictionary.to_pylist(), value_type)
    distinct = [p.SerializeToString() for p in protos]
    table = np.empty(len(distinct), dtype=object)
    table[:] = distinct
    rows = table[encoded.indices.to_numpy(zero_copy_only=False)].tolist()
    return rows, dict(zip(distinct, protos, strict=True))


class Int64EntityKeys:
    """Feast's serialized entity key (``serialize_entity_key``, version 3) of a
    one-column int64 entity, for many ids at once, plus an optional suffix
    (Redis appends the project name)."""

    def __init__(self, join_key: str, version: int, suffix: bytes = b"") -> None:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self.join_key, self.version, self.suffix = join_key, version, suffix
        template = self.entity_key(0)
        if not template.endswith(b"\x00" * 8):
            raise RuntimeError("Feast's int64 entity key no longer ends with the 8-byte value")
        self.prefix = template[:-8]
        self._proto = (EntityKey, Value)

    def entity_key(self, entity_id: int) -> bytes:
        """The key exactly as Feast serializes it (the reference)."""
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        key = EntityKey(join_keys=[self.join_key], entity_values=[Value(int64_val=int(entity_id))])
        return serialize_entity_key(key, entity_key_serialization_version=self.version)

    def keys(self, ids: np.ndarray) -> list[bytes]:
        n = len(ids)
        head = np.frombuffer(self.prefix, dtype=np.uint8)
        tail = np.frombuffer(self.suffix, dtype=np.uint8)
        width = len(head) + 8 + len(tail)
        rows = np.empty((n, width), dtype=np.uint8)
        rows[:, : len(head)] = head
        rows[:, len(head) : len(head) + 8] = (
            np.ascontiguousarray(ids, dtype="<i8").view(np.uint8).reshape(n, 8)
        )
        rows[:, len(head) + 8 :] = tail
        buf = rows.tobytes()
        out = [buf[i : i + width] for i in range(0, n * width, width)]
        if n and out[0] != self.entity_key(int(ids[0])) + self.suffix:
            raise RuntimeError("entity key bytes differ from Feast's serialize_entity_key")
        return out
