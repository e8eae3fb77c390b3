"""The lake on a local root: round trips, whole-partition replacement, staging, swaps."""

from __future__ import annotations

import datetime as dt
import glob
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ranking_jobs import lake
from ranking_jobs.lake import MissingPartitionError
from ranking_jobs.settings import Settings

DAY = dt.date(2026, 1, 31)
TABLE = "features/item_stats"

SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.int64(), nullable=False),
        pa.field("score", pa.float32()),
        pa.field("brand", pa.string()),
        pa.field("category", pa.dictionary(pa.int32(), pa.string())),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("sold", pa.bool_()),
    ]
)


def sample(n: int = 5, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "item_id": pa.array(range(offset, offset + n), pa.int64()),
            "score": pa.array([i / 2 for i in range(n)], pa.float32()),
            "brand": pa.array([None if i % 3 == 0 else f"b{i}" for i in range(n)], pa.string()),
            "category": pa.array(
                ["tops" if i % 2 else "shoes" for i in range(n)]
            ).dictionary_encode(),
            "ts": pa.array(
                [dt.datetime(2026, 1, 31, i % 24, tzinfo=dt.UTC) for i in range(n)],
                pa.timestamp("us", tz="UTC"),
            ),
            "tags": pa.array([["vintage", f"t{i}"] for i in range(n)], pa.list_(pa.string())),
            "sold": pa.array([i % 2 == 0 for i in range(n)]),
        },
        schema=SCHEMA,
    )


def table_dir(settings: Settings, table: str = TABLE) -> Path:
    return Path(lake.table_uri(settings, table))


def part_dir(settings: Settings, day: dt.date = DAY, table: str = TABLE) -> Path:
    return Path(lake.partition_uri(settings, table, day))


def leftovers(settings: Settings, table: str = TABLE) -> list[str]:
    """Everything left in the table's hidden staging / trash folders."""
    found = []
    for hidden in (".staging", ".trash"):
        folder = table_dir(settings, table) / hidden
        if folder.exists():
            found += [str(p) for p in folder.rglob("*")]
    return found


# --- round trip ------------------------------------------------------------


def test_round_trip_keeps_exact_schema_and_rows(settings: Settings) -> None:
    data = sample(7)
    uri = lake.write_partition(settings, TABLE, DAY, data)

    assert uri == f"{settings.paths.data_root}/{TABLE}/dt=2026-01-31"
    assert lake.has_partition(settings, TABLE, DAY)
    back = lake.read_partition(settings, TABLE, DAY)
    assert back.schema == SCHEMA  # types, tz, dictionary, nullability; no partition column
    assert "dt" not in back.column_names
    assert back.equals(data)
    assert sorted(p.name for p in part_dir(settings).iterdir()) == [lake.PART_FILE]
    assert leftovers(settings) == []


def test_round_trip_of_column_subset_and_sort(settings: Settings) -> None:
    data = sample(6).take([5, 2, 0, 4, 1, 3])
    lake.write_partition(settings, TABLE, DAY, data, sort_by=["item_id"])

    back = lake.read_partition(settings, TABLE, DAY, columns=["item_id", "brand"])
    assert back.column_names == ["item_id", "brand"]
    assert back["item_id"].to_pylist() == [0, 1, 2, 3, 4, 5]
    assert back.schema.field("item_id").nullable is False


def test_empty_table_round_trips_with_its_schema(settings: Settings) -> None:
    lake.write_partition(settings, TABLE, DAY, SCHEMA.empty_table())

    back = lake.read_partition(settings, TABLE, DAY)
    assert back.num_rows == 0
    assert back.schema == SCHEMA


# --- replace whole ---------------------------------------------------------


def test_rewrite_replaces_the_partition_whole(settings: Settings) -> None:
    lake.write_partition(settings, TABLE, DAY, sample(10))
    first = part_dir(settings) / lake.PART_FILE
    first_inode = first.stat().st_ino

    lake.write_partition(settings, TABLE, DAY, sample(4, offset=100))

    back = lake.read_partition(settings, TABLE, DAY)
    assert back.num_rows == 4  # not 14: nothing doubled
    assert back["item_id"].to_pylist() == [100, 101, 102, 103]
    assert first.stat().st_ino != first_inode  # a new file, not the old one appended to
    assert leftovers(settings) == []


def test_rewrite_drops_files_the_new_version_does_not_have(settings: Settings) -> None:
    """A rerun that writes fewer / differently named files leaves no stale file behind."""
    with lake.staged_partition(settings, TABLE, DAY) as staging:
        pq.write_table(sample(3), f"{staging}/part-0.parquet")
        pq.write_table(sample(3, offset=3), f"{staging}/part-1.parquet")
        pq.write_table(sample(3, offset=6), f"{staging}/old-name.parquet")
    assert lake.read_partition(settings, TABLE, DAY).num_rows == 9

    lake.write_partition(settings, TABLE, DAY, sample(2, offset=50))

    assert sorted(p.name for p in part_dir(settings).iterdir()) == [lake.PART_FILE]
    assert lake.read_partition(settings, TABLE, DAY)["item_id"].to_pylist() == [50, 51]
    assert glob.glob(lake.partition_glob(settings, TABLE)) == [
        str(part_dir(settings) / lake.PART_FILE)
    ]


def test_rewrite_of_one_day_leaves_other_days_alone(settings: Settings) -> None:
    other = DAY - dt.timedelta(days=1)
    lake.write_partition(settings, TABLE, other, sample(3, offset=900))
    lake.write_partition(settings, TABLE, DAY, sample(5))
    lake.write_partition(settings, TABLE, DAY, sample(2))

    assert lake.read_partition(settings, TABLE, other)["item_id"].to_pylist() == [900, 901, 902]
    assert lake.list_partitions(settings, TABLE) == [other, DAY]


# --- failures leave the previous partition ------------------------------------


def test_failure_inside_staged_partition_keeps_previous_and_cleans_staging(
    settings: Settings,
) -> None:
    before = sample(5)
    lake.write_partition(settings, TABLE, DAY, before)

    with (
        pytest.raises(RuntimeError, match="boom"),
        lake.staged_partition(settings, TABLE, DAY) as staging,
    ):
        pq.write_table(sample(99, offset=1000), f"{staging}/{lake.PART_FILE}")
        raise RuntimeError("boom")

    assert lake.read_partition(settings, TABLE, DAY).equals(before)
    assert leftovers(settings) == []
    assert lake.list_partitions(settings, TABLE) == [DAY]


def test_failure_of_a_first_write_leaves_no_partition(settings: Settings) -> None:
    with pytest.raises(KeyboardInterrupt), lake.staged_partition(settings, TABLE, DAY) as staging:
        pq.write_table(sample(3), f"{staging}/{lake.PART_FILE}")
        raise KeyboardInterrupt  # BaseException too: a killed task cleans up

    assert not lake.has_partition(settings, TABLE, DAY)
    assert lake.list_partitions(settings, TABLE) == []
    assert leftovers(settings) == []
    with pytest.raises(MissingPartitionError):
        lake.read_partition(settings, TABLE, DAY)


def test_failure_inside_staged_partitions_swaps_no_day(settings: Settings) -> None:
    days = lake.day_range(DAY, 3)
    for day in days:
        lake.write_partition(settings, TABLE, day, sample(2, offset=day.day))

    with pytest.raises(ValueError), lake.staged_partitions(settings, TABLE, days) as root:
        for day in days:
            Path(root, f"dt={day}").mkdir()
            pq.write_table(sample(50), f"{root}/dt={day}/part-0.parquet")
        raise ValueError("spark job died")

    for day in days:
        assert lake.read_partition(settings, TABLE, day)["item_id"].to_pylist() == [
            day.day,
            day.day + 1,
        ]
    assert leftovers(settings) == []


# --- several days at once ------------------------------------------------------


def test_staged_partitions_swaps_several_days_and_writes_empty_day(settings: Settings) -> None:
    days = lake.day_range(DAY, 3)
    stale = days[0]
    lake.write_partition(settings, TABLE, stale, sample(40, offset=500))  # to be replaced
    quiet = days[1]  # no data that day: still a written (empty) partition

    with lake.staged_partitions(settings, TABLE, days) as root:
        for day in (days[0], days[2]):  # what Spark's partitionBy("dt") would leave
            Path(root, f"dt={day}").mkdir()
            folder = f"{root}/dt={day}"
            pq.write_table(sample(3, offset=day.day * 10), f"{folder}/part-00000.parquet")
            pq.write_table(sample(2, offset=day.day * 10 + 3), f"{folder}/part-00001.parquet")
        assert lake.list_partitions(settings, TABLE) == [stale]  # nothing visible before the swap

    assert lake.list_partitions(settings, TABLE) == days
    for day in (days[0], days[2]):
        ids = sorted(lake.read_partition(settings, TABLE, day)["item_id"].to_pylist())
        assert ids == list(range(day.day * 10, day.day * 10 + 5))
    assert lake.has_partition(settings, TABLE, quiet)
    assert list(part_dir(settings, quiet).iterdir()) == []
    assert sorted(p.name for p in part_dir(settings, stale).iterdir()) == [
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert leftovers(settings) == []


def test_read_days_concatenates_and_can_skip_missing(settings: Settings) -> None:
    days = lake.day_range(DAY, 3)
    lake.write_partition(settings, TABLE, days[0], sample(2, offset=0))
    lake.write_partition(settings, TABLE, days[2], sample(3, offset=10))

    both = lake.read_days(settings, TABLE, days, missing_ok=True)
    assert both["item_id"].to_pylist() == [0, 1, 10, 11, 12]
    with pytest.raises(MissingPartitionError, match=f"dt={days[1]}"):
        lake.read_days(settings, TABLE, days)
    with pytest.raises(MissingPartitionError, match=TABLE):
        lake.read_days(settings, TABLE, [DAY + dt.timedelta(days=5)], missing_ok=True)


# --- readers never see hidden folders ---------------------------------------


def test_readers_never_list_staging_or_trash(settings: Settings) -> None:
    lake.write_partition(settings, TABLE, DAY, sample(3))
    root = table_dir(settings)
    # What a crashed writer could leave behind: files in both hidden folders.
    for hidden in (f".staging/dt={DAY}-deadbeef0000", f".trash/dt={DAY}-deadbeef0000"):
        Path(root, hidden).mkdir(parents=True)
        pq.write_table(sample(50, offset=7000), f"{root}/{hidden}/{lake.PART_FILE}")

    assert lake.list_partitions(settings, TABLE) == [DAY]
    files = glob.glob(lake.partition_glob(settings, TABLE))
    assert files == [str(part_dir(settings) / lake.PART_FILE)]
    assert all(".staging" not in f and ".trash" not in f for f in files)
    assert lake.read_partition(settings, TABLE, DAY).num_rows == 3


def test_list_partitions_of_unknown_table_is_empty(settings: Settings) -> None:
    assert lake.list_partitions(settings, "never/written") == []
    assert not lake.has_partition(settings, "never/written", DAY)


def test_partition_glob_points_at_committed_files(settings: Settings) -> None:
    assert lake.partition_glob(settings, TABLE) == (
        f"{settings.paths.data_root}/{TABLE}/dt=*/*.parquet"
    )


# --- missing partitions --------------------------------------------------------


def test_missing_partition_error_names_table_day_and_root(settings: Settings) -> None:
    lake.write_partition(settings, TABLE, DAY, sample(1))  # the table exists, not the day
    missing = DAY + dt.timedelta(days=1)

    with pytest.raises(MissingPartitionError) as info:
        lake.read_partition(settings, TABLE, missing)

    message = str(info.value)
    assert f"{TABLE}/dt=2026-02-01" in message
    assert settings.paths.data_root in message
    assert "2026-02-01" in message
    assert isinstance(info.value, FileNotFoundError)  # callers catching OS errors still work


def test_missing_table_raises_missing_partition_error(settings: Settings) -> None:
    with pytest.raises(MissingPartitionError, match="raw/events/dt=2026-01-31"):
        lake.read_partition(settings, "raw/events", DAY)


# --- day_range -------------------------------------------------------------------


def test_day_range_is_oldest_first_and_ends_on_end() -> None:
    assert lake.day_range(dt.date(2026, 3, 2), 4) == [
        dt.date(2026, 2, 27),
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 1),
        dt.date(2026, 3, 2),
    ]
    assert lake.day_range(DAY, 1) == [DAY]
    assert lake.day_range(DAY, 0) == []
    days = lake.day_range(dt.date(2024, 3, 1), 30)
    assert len(days) == 30 and days == sorted(days) and len(set(days)) == 30
    assert dt.date(2024, 2, 29) in days  # leap day


# --- concurrent reader -------------------------------------------------------------


def versioned(n: int, tag: str, offset: int) -> pa.Table:
    """A table whose every row says which version it belongs to (built fast, no Python loops)."""
    return pa.table(
        {
            "item_id": pa.array(np.arange(offset, offset + n, dtype=np.int64)),
            "score": pa.array(np.random.default_rng(offset).random(n, dtype=np.float32)),
            "version": pa.array([tag]).take(pa.array(np.zeros(n, dtype=np.int32))),
        }
    )


def swap_mid_read_is_handled(settings: Settings) -> bool:
    """Whether read_partition survives its partition being swapped between the existence
    check and the file listing (the first rename of ``_swap_in`` has happened, the second
    not yet). The contract allows MissingPartitionError there, nothing else."""
    table = "probe/swap_race"
    lake.write_partition(settings, table, DAY, versioned(10, "a", 0))
    final = part_dir(settings, DAY, table)
    real_dataset = lake.pads.dataset

    def dataset_after_first_rename(*args: object, **kwargs: object) -> object:
        final.rename(final.with_name("moved-away"))
        return real_dataset(*args, **kwargs)

    lake.pads.dataset = dataset_after_first_rename  # type: ignore[assignment]
    try:
        lake.read_partition(settings, table, DAY)
    except MissingPartitionError:
        return True
    except FileNotFoundError:
        return False
    finally:
        lake.pads.dataset = real_dataset
    return True  # a retry that found the partition back is fine too


def test_read_during_swap_raises_missing_partition_error_only(settings: Settings) -> None:
    assert swap_mid_read_is_handled(settings)


def test_concurrent_reader_sees_old_or_new_whole_table(
    settings: Settings, record_property: pytest.RecordProperty, capsys: pytest.CaptureFixture
) -> None:
    """A reader looping while another thread rewrites the partition 20 times sees either
    version whole; during the swap it may briefly find the partition absent, which the
    lake documents as "not yet written" (MissingPartitionError)."""
    n = 20_000
    versions = {"a": versioned(n, "a", 0), "b": versioned(n, "b", n)}
    lake.write_partition(settings, TABLE, DAY, versions["a"])

    stop = threading.Event()
    stats = {"reads": 0, "a": 0, "b": 0, "missing": 0, "raw_not_found": 0, "empty_no_columns": 0}
    mixed: list[str] = []
    other: list[str] = []

    def reader() -> None:
        while not stop.is_set() or stats["reads"] == 0:
            stats["reads"] += 1
            try:
                got = lake.read_partition(settings, TABLE, DAY)
            except MissingPartitionError:
                stats["missing"] += 1
                continue
            except FileNotFoundError:
                stats["raw_not_found"] += 1
                continue
            except Exception as exc:
                other.append(f"{type(exc).__name__}: {exc}")
                continue
            if got.num_columns == 0:  # listed the old folder after it was moved and emptied
                stats["empty_no_columns"] += 1
                continue
            tags = pc.unique(got["version"]).to_pylist()
            if len(tags) == 1 and got.equals(versions[tags[0]]):
                stats[tags[0]] += 1
            else:
                mixed.append(f"{got.num_rows} rows of versions {tags}")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    for i in range(20):
        lake.write_partition(settings, TABLE, DAY, versions["b" if i % 2 == 0 else "a"])
    stop.set()
    thread.join(timeout=120)
    assert not thread.is_alive()

    with capsys.disabled():
        print(f"\nconcurrent reader over 20 rewrites: {stats}")
    for key, value in stats.items():
        record_property(key, value)

    # Never mixed or partial data, never an unexpected error.
    assert mixed == [], mixed[:5]
    assert other == [], other[:5]
    assert stats["a"] + stats["b"] > 0
    assert lake.read_partition(settings, TABLE, DAY).equals(versions["a"])  # last write wins
    assert leftovers(settings) == []
    torn = stats["raw_not_found"] + stats["empty_no_columns"]
    assert torn == 0, f"a read during a swap neither succeeded nor said 'missing': {stats}"


def test_a_snapshot_missing_a_new_feature_column_is_not_current(settings) -> None:
    """Snapshots written before a feature was added are rewritten, not fed to Feast."""
    from ranking_jobs import contracts as C
    from ranking_jobs.families import FEATURE_COLUMNS
    from ranking_jobs.features import is_current

    day = dt.date(2026, 1, 30)
    assert not is_current(settings, day)
    for table, columns in FEATURE_COLUMNS.items():
        lake.write_partition(settings, table, day, pa.table({c: [1.0] for c in columns}))
    assert is_current(settings, day)
    older = FEATURE_COLUMNS[C.FEATURES_ITEM][:-1]
    lake.write_partition(settings, C.FEATURES_ITEM, day, pa.table({c: [1.0] for c in older}))
    assert not is_current(settings, day)


@pytest.mark.parametrize("garbage", [b"not parquet at all", b"PAR1" + b"\x00" * 64 + b"PAR1"])
def test_a_corrupt_file_is_named_with_its_partition(settings: Settings, garbage: bytes) -> None:
    lake.write_partition(settings, TABLE, DAY, sample(3))
    (part,) = glob.glob(f"{lake.partition_uri(settings, TABLE, DAY)}/*.parquet")
    Path(part).write_bytes(garbage)

    with pytest.raises(lake.CorruptPartitionError, match=f"{TABLE}/dt={DAY}.*not readable"):
        lake.read_partition(settings, TABLE, DAY)
    with pytest.raises(lake.CorruptPartitionError):
        lake.read_days(settings, TABLE, [DAY], missing_ok=True)  # missing is not corrupt


def test_a_day_written_without_rows_reads_as_an_empty_table_of_its_columns(
    settings: Settings,
) -> None:
    days = lake.day_range(DAY, 2)
    schema = pa.schema([("user_id", pa.int64()), ("score", pa.float64())])
    with lake.staged_partitions(settings, TABLE, days, empty=schema) as staging:
        # only the first day has rows, as Spark's partitionBy writes no folder for the other
        first = Path(f"{staging}/dt={days[0].isoformat()}")
        first.mkdir(parents=True)
        pq.write_table(pa.table({"user_id": [1], "score": [0.5]}), first / "part.parquet")

    quiet = lake.read_partition(settings, TABLE, days[1], ["user_id", "score"])
    assert quiet.num_rows == 0 and quiet.schema == schema
    assert lake.read_partition(settings, TABLE, days[0])["user_id"].to_pylist() == [1]
    assert lake.partition_rows(settings, TABLE, days[1]) == 0
