"""The lake: Parquet tables partitioned by ``dt=YYYY-MM-DD`` under one root.

A partition is always replaced whole and never visible half-written: writers
fill a staging folder beside the table (``<table>/.staging/``, which readers
never list because they only match ``dt=*``) and swap it in with one atomic step:
an exchange of folders on a local lake, the copy of the partition's single object
on S3. A reader, or a writer killed at any instant, sees the old partition or the
new one whole.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import datetime as dt
import errno
import functools
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from ranking_jobs.settings import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)

PART_FILE = "part-0.parquet"
PARTITION_FILES = "dt=*/*.parquet"  # below a table's folder: every committed file


class MissingPartitionError(FileNotFoundError):
    """A stage needs a partition that no earlier step has written."""


class CorruptPartitionError(ValueError):
    """A partition's files are there but are not readable Parquet."""


def on_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def filesystem(uri: str, s3_endpoint: str | None = None) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding ``uri`` (local, or S3 at ``s3_endpoint``) and its path there."""
    if on_s3(uri):
        return pafs.S3FileSystem(endpoint_override=s3_endpoint), uri.removeprefix("s3://")
    return pafs.LocalFileSystem(), uri


def _filesystem(settings: Settings, uri: str) -> tuple[pafs.FileSystem, str]:
    return filesystem(uri, settings.paths.s3_endpoint_url)


@dataclass
class Access:
    """The tables a block of code located (to read, list or write) and those it wrote."""

    touched: set[str] = field(default_factory=set)
    wrote: set[str] = field(default_factory=set)


_ACCESS: contextvars.ContextVar[Access | None] = contextvars.ContextVar("lake_access", default=None)


@contextlib.contextmanager
def recording() -> Iterator[Access]:
    """Record the tables this process touches inside the block, so a stage's declared
    inputs and outputs can be checked against what it really did."""
    access = Access()
    token = _ACCESS.set(access)
    try:
        yield access
    finally:
        _ACCESS.reset(token)


def _touch(table: str, wrote: bool = False) -> None:
    access = _ACCESS.get()
    if access is not None:
        access.touched.add(table)
        if wrote:
            access.wrote.add(table)


def table_uri(settings: Settings, table: str) -> str:
    return f"{settings.paths.data_root}/{table}"


def partition_uri(settings: Settings, table: str, ds: dt.date) -> str:
    """Where one partition is; every read, check and listing of partitions goes
    through here or ``list_partitions`` (naming a table, as Feast's sources do, does not)."""
    _touch(table)
    return f"{table_uri(settings, table)}/dt={ds.isoformat()}"


def partition_glob(settings: Settings, table: str) -> str:
    """Glob of every committed file of a table (what Feast's file sources point at)."""
    return f"{table_uri(settings, table)}/{PARTITION_FILES}"


def list_partitions(settings: Settings, table: str) -> list[dt.date]:
    _touch(table)
    return partition_days(*_filesystem(settings, table_uri(settings, table)))


def partition_days(fs: pafs.FileSystem, path: str) -> list[dt.date]:
    """The days of the ``dt=`` partitions in the table folder ``path``, oldest first."""
    info = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    days = []
    for entry in info:
        name = entry.base_name
        if entry.type == pafs.FileType.Directory and name.startswith("dt="):
            days.append(dt.date.fromisoformat(name[3:]))
    return sorted(days)


def partition_files(fs: pafs.FileSystem, path: str) -> list[str]:
    """The Parquet files of the partition folder ``path`` (what ``PARTITION_FILES`` matches)."""
    return sorted(
        f.path
        for f in fs.get_file_info(pafs.FileSelector(path))
        if f.type == pafs.FileType.File and f.base_name.endswith(".parquet")
    )


def has_partition(settings: Settings, table: str, ds: dt.date) -> bool:
    fs, path = _filesystem(settings, partition_uri(settings, table, ds))
    return fs.get_file_info(path).type == pafs.FileType.Directory


def partition_schema(settings: Settings, table: str, ds: dt.date) -> pa.Schema:
    """The schema of a partition, from its Parquet footers (no data read)."""
    return _consistent_read(settings, table, ds, lambda data: data.schema)


@contextlib.contextmanager
def staged_partition(settings: Settings, table: str, ds: dt.date) -> Iterator[str]:
    """Yield a staging folder to write ``dt=ds`` into; swap it in when the block succeeds."""
    with staged_partitions(settings, table, [ds]) as root:
        part = f"{root}/dt={ds.isoformat()}"
        fs, path = _filesystem(settings, part)
        fs.create_dir(path, recursive=True)
        yield part


@contextlib.contextmanager
def staged_partitions(
    settings: Settings, table: str, days: list[dt.date], empty: pa.Schema | None = None
) -> Iterator[str]:
    """Yield a staging root to write ``dt=YYYY-MM-DD`` sub-folders into (e.g. Spark's
    ``partitionBy("dt")``); each of ``days`` is swapped in when the block succeeds.

    A day the block wrote no rows for (Spark writes no folder for it) is still a
    written day: with ``empty``, it gets a Parquet file of no rows in that schema, so
    readers asking for columns find them."""
    _touch(table, wrote=True)
    token = uuid.uuid4().hex[:12]
    staging = f"{table_uri(settings, table)}/.staging/multi-{token}"
    fs, staging_path = _filesystem(settings, staging)
    fs.create_dir(staging_path, recursive=True)
    try:
        yield staging
        for day in days:
            part = f"{staging}/dt={day.isoformat()}"
            _, part_path = _filesystem(settings, part)
            if fs.get_file_info(part_path).type != pafs.FileType.Directory:
                fs.create_dir(part_path)  # an empty day is still a written day
                if empty is not None:
                    pq.write_table(empty.empty_table(), f"{part_path}/{PART_FILE}", filesystem=fs)
            _swap_in(settings, part, partition_uri(settings, table, day), token)
    finally:
        if fs.get_file_info(staging_path).type == pafs.FileType.Directory:
            fs.delete_dir(staging_path)


def staged_rows(settings: Settings, staging: str) -> int:
    """Rows written under a staging root of ``staged_partitions``, from the Parquet
    footers (no data read)."""
    fs, path = _filesystem(settings, staging)
    return pads.dataset(path, filesystem=fs, format="parquet", partitioning=None).count_rows()


def _swap_in(settings: Settings, staging: str, final: str, token: str) -> None:
    fs, final_path = _filesystem(settings, final)
    _, staging_path = _filesystem(settings, staging)
    if isinstance(fs, pafs.LocalFileSystem):
        final_p, staging_p = Path(final_path), Path(staging_path)
        if final_p.exists() and _exchange(staging_p, final_p):
            shutil.rmtree(staging_p, ignore_errors=True)  # it now holds the old partition
            return
        # No atomic exchange here: two renames, with a moment in between where the
        # partition is absent (a writer killed there leaves the old one in .trash).
        trash = final_p.parent / ".trash" / f"{final_p.name}-{token}"
        if final_p.exists():
            trash.parent.mkdir(parents=True, exist_ok=True)
            final_p.rename(trash)
        try:
            staging_p.rename(final_p)
        except OSError:
            if trash.exists() and not final_p.exists():
                trash.rename(final_p)  # put the previous partition back
            raise
        shutil.rmtree(trash, ignore_errors=True)
        return
    _commit_object(fs, staging_path, final_path)


def _commit_object(fs: pafs.FileSystem, staging_path: str, final_path: str) -> None:
    """Swap a partition in on an object store, where the only atomic step is writing
    one object: the partition is always the single object ``PART_FILE``, so a reader
    (Spark, DuckDB, Feast, this module), or a writer killed at any instant, sees the
    whole old version or the whole new one. A manifest would give the same commit
    point, but every reader that lists ``dt=*/*.parquet`` would also have to learn to
    read it; one object per partition needs nothing from them.

    Several staged files (Spark writes one per task) are first streamed into one, a
    row group at a time, beside them in the staging folder."""
    fs.create_dir(final_path, recursive=True)  # an empty day is still a written day
    committed = f"{final_path}/{PART_FILE}"
    staged = partition_files(fs, staging_path)
    if len(staged) > 1:
        merged = f"{staging_path}/.merged-{PART_FILE}"
        first = pq.ParquetFile(staged[0], filesystem=fs)
        with pq.ParquetWriter(merged, first.schema_arrow, filesystem=fs, compression="zstd") as out:
            for path in staged:  # row group by row group, so memory stays one group's
                part = pq.ParquetFile(path, filesystem=fs)
                for group in range(part.num_row_groups):
                    out.write_table(part.read_row_group(group))
        staged = [merged]
    if staged:
        fs.copy_file(staged[0], committed)  # the commit point
    for stale in partition_files(fs, final_path):
        if not staged or stale != committed:
            # a day rewritten with no rows, or a lake from before single-object partitions
            fs.delete_file(stale)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``): a reader, or a
    writer killed at any instant, sees the old partition or the new one, never none.
    False where the C library or the file system cannot; then the caller renames twice."""
    rename = getattr(_libc(), "renameat2", None)
    if rename is None:
        return False
    if rename(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), f"{a} <-> {b}")


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def write_partition(
    settings: Settings,
    table: str,
    ds: dt.date,
    data: pa.Table,
    *,
    sort_by: Iterable[str] = (),
    row_group_rows: int | None = None,
) -> str:
    """Replace partition ``dt=ds`` of ``table`` with ``data``; return its URI.

    ``row_group_rows`` below pyarrow's default (1Mi rows) lets readers split the
    partition: parallel decoding, streaming (``iter_partition``), Spark tasks."""
    sort_keys = [(c, "ascending") for c in sort_by]
    if sort_keys:
        data = data.sort_by(sort_keys)
    with staged_partition(settings, table, ds) as staging:
        fs, path = _filesystem(settings, staging)
        pq.write_table(
            data,
            f"{path}/{PART_FILE}",
            filesystem=fs,
            compression="zstd",
            row_group_size=row_group_rows,
        )
    uri = partition_uri(settings, table, ds)
    log.info("wrote %s rows to %s", f"{data.num_rows:,}", uri)
    return uri


_READ_ATTEMPTS = 5


def _folder_identity(fs: pafs.FileSystem, path: str) -> object | None:
    """What is at ``path`` now, None when absent: the folder's inode locally (a swap
    exchanges folders), its files' sizes and times on an object store (a swap
    replaces the one object)."""
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return None
    if isinstance(fs, pafs.LocalFileSystem):
        try:
            return os.stat(path).st_ino
        except FileNotFoundError:
            return None
    files = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted((f.path, f.size, f.mtime_ns) for f in files if f.type == pafs.FileType.File)


def _consistent_read(
    settings: Settings, table: str, ds: dt.date, read: Callable[[pads.Dataset], T]
) -> T:
    """``read`` of partition ``dt=ds``, retried when it raced a swap, never returned torn."""
    uri = partition_uri(settings, table, ds)
    fs, path = _filesystem(settings, uri)
    for _ in range(_READ_ATTEMPTS):
        before = _folder_identity(fs, path)
        if before is None:
            break
        try:
            data = read(pads.dataset(path, filesystem=fs, format="parquet", partitioning=None))
        except FileNotFoundError:
            continue  # swapped while listing or opening: read the new version
        except (pa.ArrowInvalid, OSError) as exc:
            if _folder_identity(fs, path) != before:
                continue  # an object replaced between two of its reads: read it again
            if not isinstance(exc, pa.ArrowInvalid) and not isinstance(fs, pafs.LocalFileSystem):
                raise  # an object store's I/O error is not the file's fault
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorruptPartitionError(
                f"partition {table}/dt={ds.isoformat()} ({uri}) is not readable Parquet: "
                f"{first}; rewrite it (re-import the day or rerun the step that writes it)"
            ) from exc
        if _folder_identity(fs, path) == before:
            return data
    raise MissingPartitionError(
        f"partition {table}/dt={ds.isoformat()} does not exist under {settings.paths.data_root}; "
        f"run the step that writes it for {ds.isoformat()} first"
    )


def read_partition(
    settings: Settings,
    table: str,
    ds: dt.date,
    columns: list[str] | None = None,
    where: pads.Expression | None = None,
) -> pa.Table:
    """Read one partition, or only its rows that match ``where`` (filtered while the
    row groups are decoded, so the rows left out are never held)."""
    return _consistent_read(
        settings, table, ds, lambda data: data.to_table(columns=columns, filter=where)
    )


def partition_rows(settings: Settings, table: str, ds: dt.date) -> int:
    """Rows of one partition, from its Parquet footers (no data read): 0 for a written
    day without rows, such as a shop's closed day."""
    return _consistent_read(settings, table, ds, lambda data: data.count_rows())


def iter_partition(
    settings: Settings, table: str, ds: dt.date, batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """Stream one partition in batches of at most ``batch_rows`` rows.

    The first batch is read under the same swap check as ``read_partition``: from
    then on the (local) files are open, and open files outlive a rename, so a
    partition swapped mid-stream is still read whole in its old version.
    """

    def first(data: pads.Dataset) -> tuple[pa.RecordBatch | None, Iterator[pa.RecordBatch]]:
        batches = iter(data.to_batches(batch_size=batch_rows))
        return next(batches, None), batches

    head, rest = _consistent_read(settings, table, ds, first)
    if head is not None:
        yield head
        yield from rest


def read_days(
    settings: Settings,
    table: str,
    days: Iterable[dt.date],
    columns: list[str] | None = None,
    *,
    missing_ok: bool = False,
) -> pa.Table:
    """Concatenate several day partitions, adding no partition column."""
    parts = []
    for day in days:
        try:
            parts.append(read_partition(settings, table, day, columns))
        except MissingPartitionError:
            if not missing_ok:
                raise
    if not parts:
        raise MissingPartitionError(f"no partitions of {table} for the requested days")
    return pa.concat_tables(parts, promote_options="permissive")


def day_range(end: dt.date, days: int) -> list[dt.date]:
    """The ``days`` days ending with ``end`` (inclusive), oldest first."""
    return [end - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
