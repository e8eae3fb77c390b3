"""Spark's reads and writes of lake partitions, on a local lake or an S3 one.

On a local lake Spark's own Parquet reader and writer do the work. The pyspark wheel
has no S3 connector (hadoop-aws and the AWS SDK are separate Maven downloads, which a
cluster's machines may not be allowed to fetch), so on ``s3://`` the same frames go
through a Python data source instead: each executor task reads or writes its files
with pyarrow's S3 filesystem, the one every other stage already uses. The frames, and
so the features, are the same either way (``tests/integration/test_spark_lake.py``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyspark.sql.datasource import (
    DataSource,
    DataSourceArrowWriter,
    DataSourceReader,
    InputPartition,
    WriterCommitMessage,
)

from ranking_jobs import lake
from ranking_jobs.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

SOURCE = "ranking_lake"


def read_days(
    spark: SparkSession,
    settings: Settings,
    table: str,
    days: Sequence[dt.date],
    columns: Sequence[str] | None = None,
) -> DataFrame:
    """The existing partitions of ``table`` among ``days``: ``columns`` of them, or all
    with ``dt`` as a date column."""
    from pyspark.sql import functions as F

    present = [d for d in days if lake.has_partition(settings, table, d)]
    if not present:
        raise lake.MissingPartitionError(
            f"{table}: none of the {len(days)} partitions {days[0]}..{days[-1]} exist"
        )
    if not lake.on_s3(settings.paths.data_root):
        frame = (
            spark.read.option("basePath", lake.table_uri(settings, table))
            .parquet(*(lake.partition_uri(settings, table, d) for d in present))
            .withColumn("dt", F.col("dt").cast("date"))
        )
        return frame.select(*columns) if columns else frame
    from pyspark.sql.pandas.types import from_arrow_schema

    files = []
    for day in present:
        fs, path = lake.filesystem(
            lake.partition_uri(settings, table, day), settings.paths.s3_endpoint_url
        )
        files += [(f, day.isoformat()) for f in lake.partition_files(fs, path)]
    if not files:
        raise lake.MissingPartitionError(f"{table}: no Parquet file in {present[0]}..{present[-1]}")
    first = pq.read_schema(files[0][0], filesystem=fs)
    names = [n for n in (columns or first.names) if n != "dt"]
    schema = pa.schema([first.field(n) for n in names]).append(pa.field("dt", pa.date32()))
    spark.dataSource.register(LakeSource)
    frame = (
        spark.read.format(SOURCE)
        .schema(from_arrow_schema(schema))
        .option("files", json.dumps(files))
        .option("endpoint", settings.paths.s3_endpoint_url or "")
        .option("arrow_schema", schema.serialize().to_pybytes().hex())
        .load()
    )
    return frame.select(*columns) if columns else frame


def write_days(frame: DataFrame, settings: Settings, root: str) -> None:
    """Write ``frame`` under ``root`` as ``dt=YYYY-MM-DD`` folders of Parquet files
    without the ``dt`` column (what Spark's ``partitionBy("dt")`` writes); ``root`` is
    a staging folder of ``lake.staged_partitions``, whose swap is the commit."""
    if not lake.on_s3(settings.paths.data_root):
        frame.write.partitionBy("dt").mode("overwrite").parquet(root)
        return
    frame.sparkSession.dataSource.register(LakeSource)
    (
        frame.write.format(SOURCE)
        .option("root", root)
        .option("endpoint", settings.paths.s3_endpoint_url or "")
        .mode("append")
        .save()
    )


class LakeSource(DataSource):
    """Lake files read and written by executors through pyarrow: ``files`` (JSON list
    of [path, day]) to read, ``root`` to write under; ``endpoint`` the S3 API's URL."""

    @classmethod
    def name(cls) -> str:
        return SOURCE

    def reader(self, schema: Any) -> DataSourceReader:
        return _Reader(dict(self.options))

    def writer(self, schema: Any, overwrite: bool) -> DataSourceArrowWriter:
        return _Writer(dict(self.options))


def _fs(options: dict[str, str], uri: str) -> tuple[Any, str]:
    """The S3 filesystem and the path there of ``uri``, from inside an executor."""
    return lake.filesystem(uri, options.get("endpoint") or None)


class _Reader(DataSourceReader):
    def __init__(self, options: dict[str, str]) -> None:
        self.options = options
        self.files = json.loads(options["files"])
        self.schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(options["arrow_schema"])))

    def partitions(self) -> Sequence[InputPartition]:
        return [InputPartition(i) for i in range(len(self.files))]  # a task per file

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        path, day = self.files[partition.value]
        fs, path = _fs(self.options, f"s3://{path}")
        names = [n for n in self.schema.names if n != "dt"]
        stored = pq.ParquetFile(path, filesystem=fs)
        # a column an older partition lacks reads as nulls, as with Spark's own reader
        has = [n for n in names if n in stored.schema_arrow.names]
        for batch in stored.iter_batches(columns=has):
            n = batch.num_rows
            columns = {
                name: batch.column(name)
                if name in has
                else pa.nulls(n, self.schema.field(name).type)
                for name in names
            }
            columns["dt"] = pa.array([dt.date.fromisoformat(day)] * n, pa.date32())
            yield from pa.table(columns).cast(self.schema).to_batches()


@dataclass
class _Written(WriterCommitMessage):
    files: list[str]


class _Writer(DataSourceArrowWriter):
    def __init__(self, options: dict[str, str]) -> None:
        self.options = options

    def write(self, iterator: Iterator[pa.RecordBatch]) -> _Written:
        from pyspark import TaskContext

        fs, root = _fs(self.options, self.options["root"])
        # Named by the task's partition: a retried or speculative attempt overwrites its
        # predecessor's file instead of adding a second copy of the rows.
        task = f"{TaskContext.get().partitionId():05d}"
        writers: dict[str, pq.ParquetWriter] = {}
        try:
            for batch in iterator:
                table = pa.Table.from_batches([batch])
                days = table["dt"].cast(pa.string())
                rows = table.drop_columns(["dt"])
                for day in days.unique().to_pylist():
                    if day not in writers:
                        path = f"{root}/dt={day}/part-{task}.parquet"
                        fs.create_dir(f"{root}/dt={day}", recursive=True)
                        writers[day] = pq.ParquetWriter(
                            path, rows.schema, filesystem=fs, compression="zstd"
                        )
                    writers[day].write_table(rows.filter(pc.equal(days, day)))
        finally:
            for writer in writers.values():
                writer.close()
        return _Written(files=sorted(writers))
