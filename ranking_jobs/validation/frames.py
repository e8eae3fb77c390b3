"""Arrow -> pandas conversion that keeps every column kind checkable by GX 1.x."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

_NULLABLE_INTS: dict[pa.DataType, pd.api.extensions.ExtensionDtype] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
}


def _arrow_backed(arrow_type: pa.DataType) -> pd.ArrowDtype | None:
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
    ):
        return pd.ArrowDtype(arrow_type)
    return None


def to_frame(table: pa.Table) -> pd.DataFrame:
    """A pandas frame of ``table`` for validation.

    - list and string columns stay Arrow-backed (``pd.ArrowDtype``): no per-row
      Python objects, and the kind check reads the dtype's scalar type (``list``,
      ``str``) instead of testing every value;
    - integer columns that contain nulls become pandas nullable integers
      instead of float64, so a nullable integer column still reads as integer;
    - timestamps keep their time zone (tz-aware ``datetime64``).
    """
    df = table.to_pandas(types_mapper=_arrow_backed, ignore_metadata=True)
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_integer(column.type) and column.null_count:
            df[name] = column.to_pandas(types_mapper=_NULLABLE_INTS.get)
    return df
