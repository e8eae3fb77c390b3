"""Spark's lake reads and writes give the same frames on an S3 lake (moto in server
mode, through the Python data source) as on a local one (Spark's own Parquet)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import boto3
import pyarrow as pa
import pytest

from ranking_jobs import lake, spark_lake
from tests.conftest import make_settings

DAYS = [dt.date(2026, 1, 29), dt.date(2026, 1, 30), dt.date(2026, 1, 31)]
TABLE = "features/some_view"


def rows() -> pa.Table:
    n = 50
    return pa.table(
        {
            "user_id": pa.array(range(n), pa.int64()),
            "score": pa.array([i / 7 if i % 9 else None for i in range(n)], pa.float64()),
            "label": [f"u{i}" if i % 5 else None for i in range(n)],
            "items": [[i, i + 1] if i % 4 else [] for i in range(n)],
            "ts": pa.array(
                [dt.datetime(2026, 1, 29, i % 24, tzinfo=dt.UTC) for i in range(n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "dt": pa.array([DAYS[i % 2] for i in range(n)], pa.date32()),  # none on DAYS[2]
        }
    )


@pytest.fixture
def lakes(s3_server: str, tmp_path: Path):
    bucket = f"spark-lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    remote = make_settings(tmp_path, data_root=f"s3://{bucket}/lake", s3_endpoint_url=s3_server)
    return make_settings(tmp_path), remote


def written_and_read(spark, settings) -> tuple[pa.Table, pa.Table]:
    frame = spark.createDataFrame(rows().to_pandas()).repartition(3, "dt")
    empty = rows().drop_columns(["dt"]).schema
    with lake.staged_partitions(settings, TABLE, DAYS, empty) as staging:
        spark_lake.write_days(frame, settings, staging)
    read = spark_lake.read_days(spark, settings, TABLE, DAYS).toArrow()
    picked = spark_lake.read_days(spark, settings, TABLE, DAYS, ("user_id", "dt")).toArrow()
    return read.sort_by("user_id"), picked.sort_by("user_id")


def test_an_s3_lake_round_trips_the_same_frames_as_a_local_one(spark, lakes):
    local, remote = lakes
    want, want_picked = written_and_read(spark, local)
    got, got_picked = written_and_read(spark, remote)
    assert want.num_rows == rows().num_rows
    assert got.equals(want), (got.schema, want.schema)
    assert got_picked.column_names == ["user_id", "dt"] and got_picked.equals(want_picked)
    source = rows().sort_by("user_id")
    for name in ("user_id", "score", "label", "items", "dt"):
        assert got[name].to_pylist() == source[name].to_pylist(), name
    # the day without rows is a written, empty partition on both
    for settings in lakes:
        assert lake.partition_rows(settings, TABLE, DAYS[2]) == 0
        assert lake.partition_rows(settings, TABLE, DAYS[0]) == 25


def test_reading_days_none_of_which_exist_names_the_table(spark, lakes):
    for settings in lakes:
        with pytest.raises(lake.MissingPartitionError, match="raw/events: none of the 2"):
            spark_lake.read_days(spark, settings, "raw/events", DAYS[:2])


def test_a_column_an_older_s3_partition_lacks_reads_as_nulls(spark, lakes):
    _, remote = lakes
    newer = pa.table({"user_id": pa.array([1, 2], pa.int64()), "score": [0.5, 0.25]})
    lake.write_partition(remote, TABLE, DAYS[0], newer.drop_columns(["score"]))
    lake.write_partition(remote, TABLE, DAYS[1], newer)
    got = spark_lake.read_days(spark, remote, TABLE, DAYS[1:2] + DAYS[:1]).toArrow()
    got = got.sort_by([("dt", "ascending"), ("user_id", "ascending")])
    assert got["score"].to_pylist() == [None, None, 0.5, 0.25]
    assert got["dt"].to_pylist() == [DAYS[0]] * 2 + [DAYS[1]] * 2
