"""The lake on an s3:// root, against a real S3 API server (moto in server mode)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ranking_jobs import lake
from ranking_jobs.lake import MissingPartitionError
from ranking_jobs.settings import Settings

DAY = dt.date(2026, 1, 31)
TABLE = "recommendations"

SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("item_ids", pa.list_(pa.int64())),
        pa.field("scores", pa.list_(pa.float32())),
        pa.field("model_version", pa.string()),
        pa.field("generated_at", pa.timestamp("us", tz="UTC")),
    ]
)


def lists(n: int, offset: int = 0, version: str = "1") -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(range(offset, offset + n), pa.int64()),
            "item_ids": [[u * 10 + k for k in range(3)] for u in range(offset, offset + n)],
            "scores": pa.array([[0.9, 0.5, 0.1]] * n, pa.list_(pa.float32())),
            "model_version": [version] * n,
            "generated_at": pa.array(
                [dt.datetime(2026, 2, 1, 3, tzinfo=dt.UTC)] * n, pa.timestamp("us", tz="UTC")
            ),
        },
        schema=SCHEMA,
    )


@pytest.fixture
def bucket(s3_server: str) -> str:
    name = f"lake-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_settings(s3_server: str, bucket: str, tmp_path: Path) -> Settings:
    return Settings(
        data_root=f"s3://{bucket}/lake/", s3_endpoint_url=s3_server, state_dir=tmp_path / "var"
    )


def keys(s3_server: str, bucket: str, prefix: str = "") -> list[str]:
    s3 = boto3.client("s3", endpoint_url=s3_server)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def data_keys(s3_server: str, bucket: str) -> list[str]:
    """Object keys holding data (directory markers end with '/')."""
    return [k for k in keys(s3_server, bucket) if not k.endswith("/")]


def test_settings_keep_the_s3_root(s3_settings: Settings, bucket: str) -> None:
    assert (
        s3_settings.paths.data_root == f"s3://{bucket}/lake"
    )  # trailing slash dropped, not resolved
    assert (
        lake.partition_uri(s3_settings, TABLE, DAY) == f"s3://{bucket}/lake/{TABLE}/dt=2026-01-31"
    )


def test_round_trip_keeps_exact_schema(s3_settings: Settings, s3_server: str, bucket: str) -> None:
    data = lists(5)
    uri = lake.write_partition(s3_settings, TABLE, DAY, data)

    assert uri == f"s3://{bucket}/lake/{TABLE}/dt=2026-01-31"
    assert lake.has_partition(s3_settings, TABLE, DAY)
    back = lake.read_partition(s3_settings, TABLE, DAY)
    assert back.schema == SCHEMA
    assert back.equals(data)
    assert data_keys(s3_server, bucket) == [f"lake/{TABLE}/dt=2026-01-31/{lake.PART_FILE}"]
    # read back with boto3 alone: a plain Parquet object, readable by anything
    body = boto3.client("s3", endpoint_url=s3_server).get_object(
        Bucket=bucket, Key=f"lake/{TABLE}/dt=2026-01-31/{lake.PART_FILE}"
    )["Body"]
    assert pq.read_table(pa.BufferReader(body.read())).equals(data)


def test_rewrite_replaces_partition_whole(
    s3_settings: Settings, s3_server: str, bucket: str
) -> None:
    with lake.staged_partition(s3_settings, TABLE, DAY) as staging:
        fs, path = lake._filesystem(s3_settings, staging)
        pq.write_table(lists(4), f"{path}/part-0.parquet", filesystem=fs)
        pq.write_table(lists(4, offset=4), f"{path}/part-1.parquet", filesystem=fs)
    assert lake.read_partition(s3_settings, TABLE, DAY)["user_id"].to_pylist() == list(range(8))
    # two staged files became the partition's one object: its commit was one copy
    assert data_keys(s3_server, bucket) == [f"lake/{TABLE}/dt=2026-01-31/{lake.PART_FILE}"]

    lake.write_partition(s3_settings, TABLE, DAY, lists(3, offset=100, version="2"))

    back = lake.read_partition(s3_settings, TABLE, DAY)
    assert back.num_rows == 3  # no rows doubled
    assert back["user_id"].to_pylist() == [100, 101, 102]
    assert set(back["model_version"].to_pylist()) == {"2"}
    # no staging object is left
    assert data_keys(s3_server, bucket) == [f"lake/{TABLE}/dt=2026-01-31/{lake.PART_FILE}"]
    assert all("/.staging/" not in k or k.endswith(".staging/") for k in keys(s3_server, bucket))


def test_failure_inside_staged_partition_keeps_previous(
    s3_settings: Settings, s3_server: str, bucket: str
) -> None:
    before = lists(2)
    lake.write_partition(s3_settings, TABLE, DAY, before)

    with (
        pytest.raises(RuntimeError, match="boom"),
        lake.staged_partition(s3_settings, TABLE, DAY) as staging,
    ):
        fs, path = lake._filesystem(s3_settings, staging)
        pq.write_table(lists(50, offset=900), f"{path}/{lake.PART_FILE}", filesystem=fs)
        raise RuntimeError("boom")

    assert lake.read_partition(s3_settings, TABLE, DAY).equals(before)
    assert data_keys(s3_server, bucket) == [f"lake/{TABLE}/dt=2026-01-31/{lake.PART_FILE}"]


def test_list_partitions_ignores_staging(
    s3_settings: Settings, s3_server: str, bucket: str
) -> None:
    days = lake.day_range(DAY, 3)
    for day in days:
        lake.write_partition(s3_settings, TABLE, day, lists(1, offset=day.day))
    # a crashed writer's leftovers in the hidden folder
    boto3.client("s3", endpoint_url=s3_server).put_object(
        Bucket=bucket,
        Key=f"lake/{TABLE}/.staging/dt=2026-02-01-0123456789ab/part-0.parquet",
        Body=b"x",
    )

    assert lake.list_partitions(s3_settings, TABLE) == days
    assert lake.list_partitions(s3_settings, "never/written") == []
    assert lake.partition_glob(s3_settings, TABLE) == f"s3://{bucket}/lake/{TABLE}/dt=*/*.parquet"


def test_staged_partitions_swaps_several_days(s3_settings: Settings) -> None:
    days = [DAY, DAY + dt.timedelta(days=1)]
    with lake.staged_partitions(s3_settings, TABLE, days) as root:
        fs, path = lake._filesystem(s3_settings, root)
        for day in days:
            pq.write_table(
                lists(2, offset=day.day), f"{path}/dt={day}/part-0.parquet", filesystem=fs
            )

    assert lake.list_partitions(s3_settings, TABLE) == days
    for day in days:
        assert lake.read_partition(s3_settings, TABLE, day)["user_id"].to_pylist() == [
            day.day,
            day.day + 1,
        ]


def test_staged_partitions_writes_empty_day_on_s3(s3_settings: Settings) -> None:
    days = [DAY, DAY + dt.timedelta(days=1)]
    with lake.staged_partitions(s3_settings, TABLE, days) as root:
        fs, path = lake._filesystem(s3_settings, root)
        pq.write_table(lists(2), f"{path}/dt={DAY}/part-0.parquet", filesystem=fs)

    assert lake.has_partition(s3_settings, TABLE, days[1])


def test_missing_partition_names_table_day_and_root(s3_settings: Settings, bucket: str) -> None:
    lake.write_partition(s3_settings, TABLE, DAY, lists(1))

    with pytest.raises(MissingPartitionError) as info:
        lake.read_partition(s3_settings, TABLE, DAY + dt.timedelta(days=1))
    message = str(info.value)
    assert f"{TABLE}/dt=2026-02-01" in message
    assert f"s3://{bucket}/lake" in message

    with pytest.raises(MissingPartitionError, match="raw/events/dt=2026-01-31"):
        lake.read_partition(s3_settings, "raw/events", DAY)
