"""The Feast store built from settings, and the one feature-assembly function.

``assemble_features`` is the only path from (user, item, as-of time) rows to a
model matrix: training, evaluation and precompute all call it, so the model is
scored on exactly what it was trained on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import sqlite3
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from ranking_jobs import columns as cols
from ranking_jobs import lake
from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore, RepoConfig

log = logging.getLogger(__name__)

FEATURE_REFS = (
    [f"item_stats:{c}" for c in cols.ITEM_COUNTS + cols.ITEM_FLOATS + cols.ITEM_INTS]
    + [f"user_stats:{c}" for c in cols.USER_COUNTS + cols.USER_FLOATS + cols.USER_INTS]
    + [f"user_{d}_affinity:{d}_affinity" for d in cols.AFFINITY_DIMENSIONS]
    + [f"user_item_stats:{c}" for c in cols.USER_ITEM_INTS + cols.USER_ITEM_FLOATS]
    + [f"user_profile:{c}" for c in cols.PROFILE_FLOATS + cols.PROFILE_LISTS]
)
LIST_FIELDS = ("item_ids", "scores", "model_version", "run_id", "generated_at")
FALLBACK_SEGMENT = "global"  # the key of the one non-personal list row (popular_items)
# More distinct as-of times than this go to Feast: each costs a read of the views' partitions.
AS_OF_TIMES = 32
ONLINE_DB_PAGE_BYTES = 16_384


def online_db_path(settings: Settings) -> Path:
    return settings.feast_dir / "online.db"


def repo_config(settings: Settings) -> RepoConfig:
    from feast import RepoConfig

    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    if settings.online_store == "redis":
        online: dict[str, Any] = {"type": "redis", "connection_string": settings.redis_url}
    else:
        online = {"type": "sqlite", "path": str(online_db_path(settings))}
    offline: dict[str, Any] = {"type": settings.offline_store}
    if settings.offline_store == "spark":
        offline["spark_conf"] = {
            "spark.master": settings.spark_master,
            "spark.sql.session.timeZone": "UTC",
        }
    return RepoConfig(
        project=settings.feast_project,
        provider="local",
        registry=str(settings.feast_dir / "registry.db"),
        online_store=online,
        offline_store=offline,
        repo_path=settings.feast_repo,
        entity_key_serialization_version=3,
    )


def feature_store(settings: Settings) -> FeatureStore:
    from feast import FeatureStore

    return FeatureStore(config=repo_config(settings))


@cache
def _definitions_module(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("ranking_feature_repo", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"Feast definitions not found at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply_definitions(settings: Settings) -> int:
    """`feast apply` for this run's lake: registers entities, sources and views."""
    module = _definitions_module(str(settings.feast_repo / "features.py"))
    objects = module.definitions(settings)
    if settings.online_store == "sqlite":
        _create_online_db(online_db_path(settings))
    feature_store(settings).apply(objects)
    log.info("applied %d Feast objects to %s", len(objects), settings.feast_dir)
    return len(objects)


def _create_online_db(path: Path) -> None:
    """A new SQLite online store gets 16 KiB pages before Feast creates its tables: a
    list row is about 1 KB, and on a million lists bigger pages cut the nightly
    load's inserts by about a quarter. An existing store keeps its pages."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA page_size={ONLINE_DB_PAGE_BYTES}")
        conn.execute("VACUUM")  # writes the header: the page size is fixed from here on


def assemble_features(
    settings: Settings, entity_df: pd.DataFrame, views: list[SnapshotView] | None = None
) -> pd.DataFrame:
    """Point-in-time features for rows of user_id, item_id, the item's attributes
    (``cols.AFFINITY_DIMENSIONS``) and event_timestamp.

    Returns the input columns plus ``cols.ASSEMBLED_FEATURES`` as float32, in the
    input's row order. ``views`` (from ``snapshot_views``) lets a caller that
    assembles many frames at the same as-of time read each table once, and without
    importing Feast (a Spark worker is sent the driver's).
    """
    needed = {"user_id", "item_id", *cols.AFFINITY_DIMENSIONS, "event_timestamp"}
    missing = needed - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity rows lack columns {sorted(missing)}")
    return historical_features(
        feature_store(settings) if views is None else None,
        entity_df,
        list(FEATURE_REFS),
        chunk_rows=settings.retrieval_chunk_rows,
        finish=add_cross_features,
        views=views,
    )


def snapshot_views(settings: Settings) -> list[SnapshotView] | None:
    """The snapshot views of ``FEATURE_REFS`` (None when one is not a plain lake table),
    to keep across ``assemble_features`` calls."""
    return _snapshot_views(feature_store(settings), list(FEATURE_REFS))


def historical_features(
    store: FeatureStore | None,
    entity_df: pd.DataFrame,
    refs: list[str],
    chunk_rows: int,
    finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    views: list[SnapshotView] | None = None,
) -> pd.DataFrame:
    """``get_historical_features`` in chunks of at most ``chunk_rows`` entity rows.

    One retrieval of 5M rows peaked at 15 GiB: the offline store's join, the result
    as Arrow and as pandas, and the copies a concat and a re-sort make. Here each
    chunk (rows in as-of order) is retrieved, passed through ``finish`` (e.g. cross
    features), and its feature columns copied as float32 straight into their final
    rows; the entity columns are never copied per chunk. Returns ``entity_df``'s
    columns plus the features (float32), in the input's row order.

    Rows come in few distinct as-of times (precompute: one; training: one per day),
    so when every view reads lake partitions, chunks never span two times and each
    is served by ``SnapshotView`` instead of Feast's general join. A caller that keeps
    the views (``snapshot_views``) passes them, and then needs no ``store``.
    """
    rows = entity_df.reset_index(drop=True)
    times = pd.to_datetime(rows["event_timestamp"], utc=True).to_numpy("datetime64[ns]")
    order = np.argsort(times, kind="stable")
    times = times[order]
    distinct = np.count_nonzero(times[1:] != times[:-1]) + 1 if len(times) else 0
    if not 0 < distinct <= AS_OF_TIMES:
        views = None
    elif views is None and store is not None:
        views = _snapshot_views(store, refs)
    if views is None and store is None:
        raise ValueError(
            f"rows at {distinct} as-of times need Feast's own join, and no store was given"
        )
    names: list[str] = []
    block = np.empty((len(rows), 0), dtype=np.float32)
    with timed(log, "point-in-time feature retrieval") as t:
        for start, stop in _chunks(times, chunk_rows, by_time=views is not None):
            take = order[start:stop]
            # our own lookup only reads the chunk: a slice's rows are not copied for it
            chunk = rows.iloc[_as_slice(take)].copy(deep=views is None)
            chunk["_row"] = take
            if views is None:
                assert store is not None
                got = store.get_historical_features(entity_df=chunk, features=refs).to_df()
            else:
                got = _snapshot_features(views, chunk, pd.Timestamp(times[start], tz="UTC"))
            if len(got) != len(chunk):
                raise RuntimeError(
                    f"the offline store returned {len(got):,} rows for {len(chunk):,} entity "
                    "rows: rows would silently lose their features"
                )
            if finish is not None:
                got = finish(got)
            if not names:
                names = list(got.columns.difference([*rows.columns, "_row"], sort=False))
                block = np.full((len(rows), len(names)), np.nan, dtype=np.float32, order="F")
            at = _as_slice(got["_row"].to_numpy())
            for j, c in enumerate(names):
                block[at, j] = _float32(got[c])
            del got
            if len(rows) > chunk_rows:
                log.info("retrieved %s of %s rows", f"{stop:,}", f"{len(rows):,}")
        t["count"] = len(rows)
    # The block (Fortran order: pandas' own layout) becomes the frame without a copy,
    # and the entity columns are inserted before it: a concat would consolidate it with
    # any float32 entity column, copying every feature (1.7 s per 2M rows).
    out = pd.DataFrame(block, columns=names, copy=False)
    for position, column in enumerate(rows.columns):
        out.insert(position, column, rows[column])
    return out


def _as_slice(rows: np.ndarray) -> np.ndarray | slice:
    """``rows`` as a slice when they are consecutive (rows at one as-of time): reading or
    writing a slice copies memory, where an index array gathers element by element."""
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and (np.diff(rows) == 1).all():
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _chunks(times: np.ndarray, chunk_rows: int, by_time: bool) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of the as-of-sorted ``times``; with ``by_time`` no
    chunk spans two as-of times. An empty frame still gets one (empty) chunk."""
    if not by_time:
        return [
            (s, min(s + chunk_rows, len(times))) for s in range(0, max(len(times), 1), chunk_rows)
        ]
    edges = [*np.flatnonzero(times[1:] != times[:-1]) + 1, len(times)]
    bounds, first = [], 0
    for last in edges:
        bounds += [(s, min(s + chunk_rows, last)) for s in range(first, last, chunk_rows)]
        first = last
    return bounds


class SnapshotView:
    """A feature view over a lake table (``lake.partition_glob``), read straight from
    the partitions that can hold a row visible at an as-of time.

    Why: at medium scale (16.0M precompute rows, one as-of time) Feast's general
    point-in-time join took 175 s of the 555 s stage; at small (1.4M rows) this path
    takes 3.3 s where Feast took 25 s. For one as-of time ``t`` the
    join reduces to a lookup: per entity the latest row with ``t - ttl <= timestamp
    <= t`` (ttl 0: no lower bound), exactly Feast's rule (its ties are arbitrary;
    snapshots have none). Partition ``dt=X`` holds the snapshot at the end of ``X``
    (event timestamps within day ``X`` or at its end), so only the days from
    ``t - ttl`` minus one to ``t`` are read. tests/integration/test_feast_point_in_time.py
    holds this path equal to ``get_historical_features``.
    """

    def __init__(self, view: Any, features: list[str], uri: str, endpoint: str | None) -> None:
        self.fs, self.path = lake.filesystem(uri, endpoint)
        self.ts = view.batch_source.timestamp_field
        self.ttl = view.ttl
        # feature-table column -> entity-row column
        self.keys = view.projection.join_key_map or {e.name: e.name for e in view.entity_columns}
        self.features = features
        self._cached: tuple[pd.Timestamp, pd.Index, pa.Table] | None = None

    def latest(self, as_of: pd.Timestamp) -> tuple[pd.Index, pa.Table]:
        """Join keys of each entity's latest visible row, and that row's features."""
        if self._cached is None or self._cached[0] != as_of:
            self._cached = (as_of, *self._read(as_of))
        return self._cached[1], self._cached[2]

    def _read(self, as_of: pd.Timestamp) -> tuple[pd.Index, pa.Table]:
        low = as_of - self.ttl if self.ttl else None
        first = low.date() - dt.timedelta(days=1) if low is not None else dt.date.min
        files = [
            file
            for day in lake.partition_days(self.fs, self.path)
            if first <= day <= as_of.date()
            for file in lake.partition_files(self.fs, f"{self.path}/dt={day}")
        ]
        keys = list(self.keys)
        if not files:  # nothing visible yet: every row's features are missing
            return pd.Index([]), pa.table({f: pa.nulls(0) for f in self.features})
        when = pc.field(self.ts) <= as_of.to_pydatetime()
        if low is not None:
            when &= pc.field(self.ts) >= low.to_pydatetime()
        for k in keys:  # a null key never equals an entity row's key
            when &= pc.field(k).is_valid()
        data = pads.dataset(files, filesystem=self.fs, format="parquet").to_table(
            columns=[*keys, self.ts, *self.features], filter=when
        )
        newest = np.argsort(data[self.ts].cast(pa.int64()).to_numpy(), kind="stable")[::-1]
        frame = data.select(keys).take(newest).to_pandas()
        first_seen = ~frame.duplicated(keys).to_numpy()
        frame, newest = frame[first_seen], newest[first_seen]
        index = pd.MultiIndex.from_frame(frame) if len(keys) > 1 else pd.Index(frame[keys[0]])
        return index, data.select(self.features).take(newest)


def _snapshot_views(store: FeatureStore, refs: list[str]) -> list[SnapshotView] | None:
    """The refs' views as ``SnapshotView``s, or None when one is not a plain lake table."""
    from feast.errors import FeatureViewNotFoundException
    from feast.infra.offline_stores.file_source import FileSource

    wanted: dict[str, list[str]] = {}
    for ref in refs:
        view, feature = ref.split(":")
        wanted.setdefault(view, []).append(feature)
    views = []
    for name, features in wanted.items():
        try:
            view = store.get_feature_view(name)
        except FeatureViewNotFoundException:
            return None
        source = view.batch_source
        if source.field_mapping or source.created_timestamp_column:
            return None
        if type(source) is FileSource and source.path.endswith("/" + lake.PARTITION_FILES):
            uri = source.path.removesuffix("/" + lake.PARTITION_FILES)
            endpoint = source.s3_endpoint_override
        elif (
            type(source).__name__ == "SparkSource"
            and source.file_format == "parquet"
            and source.path
            and not (source.query or source.table)
        ):
            # the Spark engine's view of the same table (its folder of dt= partitions)
            uri, endpoint = source.path, None
        else:
            return None
        views.append(SnapshotView(view, features, uri, endpoint))
    return views


def _snapshot_features(
    views: list[SnapshotView], chunk: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """``chunk`` (rows at ``as_of``) plus every view's features, as Feast returns them."""
    found: dict[str, pa.ChunkedArray] = {}
    for view in views:
        index, values = view.latest(as_of)
        entity = list(view.keys.values())
        wanted = (
            pd.MultiIndex.from_frame(chunk[entity])
            if len(entity) > 1
            else pd.Index(chunk[entity[0]])
        )
        at = index.get_indexer(wanted)
        taken = values.take(pa.array(at, mask=at < 0))
        found.update(zip(taken.column_names, taken.columns, strict=True))
    # One conversion of every view's features, then the chunk's own columns inserted in
    # front: no copy of the whole chunk per view (``assign`` copied it).
    out = pa.table(found).to_pandas(split_blocks=True)
    out.index = chunk.index
    for position, column in enumerate(chunk.columns.difference(found, sort=False)):
        out.insert(position, column, chunk[column])
    return out


# Every charted size; its chart (index into cols.USER_SIZE_FLOATS) and position, each
# with a trailing "no chart" entry that get_indexer's -1 picks.
_SIZES = pd.Index(list(cols.SIZE_POSITION))
_SIZE_CHART = np.array(
    [list(cols.USER_SIZE_FLOATS).index(c) for c, _ in cols.SIZE_POSITION.values()] + [-1]
)
_SIZE_RANK = np.array([r for _, r in cols.SIZE_POSITION.values()] + [np.nan])


def add_cross_features(df: pd.DataFrame) -> pd.DataFrame:
    """Pair features computed from the joined user and item features and the item's
    own size and style; the declared styles list is read here and dropped."""
    price = df["price"].astype("float64")
    level = df["user_price_level"].astype("float64")
    df["price_distance"] = np.abs(np.log1p(price) - np.log1p(level))
    rel = pd.to_numeric(df["price_rel_category"], errors="coerce").astype("float64")
    rel = np.log(rel.where(rel > 0))  # a free listing has no log price: NaN, not -inf
    df["price_rel_gap"] = rel - df["user_price_rel_level"].astype("float64")
    at = _SIZES.get_indexer(df["size"])  # -1 (no chart) picks the trailing entries
    chart, rank = _SIZE_CHART[at], _SIZE_RANK[at]
    worn = np.full(len(df), np.nan)
    for k, column in enumerate(cols.USER_SIZE_FLOATS.values()):
        here = chart == k
        worn[here] = df[column].to_numpy("float64", na_value=np.nan)[here]
    df["size_distance"] = np.abs(rank - worn)
    declared = df["declared_size_rank"].to_numpy("float64", na_value=np.nan)
    letter = chart == list(cols.USER_SIZE_FLOATS).index("letter")
    df["declared_size_distance"] = np.where(letter, np.abs(rank - declared), np.nan)
    df["declared_style_match"] = _declared_style_match(df, df.pop("declared_styles").to_numpy())
    return df  # historical_features makes every feature float32


def _float32(values: pd.Series) -> np.ndarray:
    """``values`` as float32, NaN where missing or not a number. A numpy number column
    is cast as it is: NaN already marks its missing values (a coercion pass per column
    and chunk was a third of the feature assembly)."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "biuf":
        return values.to_numpy().astype(np.float32, copy=False)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)


def _declared_style_match(df: pd.DataFrame, styles: np.ndarray) -> np.ndarray:
    """1.0 when the row's style is one its user declared, 0.0 when not, NaN when the user
    declared none. A profile is one per (user, as-of time), so the lists are read once
    per group: exploding every row's list took 2 s per million rows."""
    group = df.groupby(["user_id", "event_timestamp"], sort=False).ngroup().to_numpy()
    # ngroup numbers groups by first appearance: their first rows, in group order.
    first = pd.Series(group).drop_duplicates().index.to_numpy()
    declared = pd.Series(styles[first]).explode().dropna()  # index: the group
    vocab = pd.Index(pd.unique(declared.to_numpy()))
    width = len(vocab) + 1
    pairs = declared.index.to_numpy() * width + vocab.get_indexer(declared.to_numpy())
    code = vocab.get_indexer(df["style"])
    hit = (code >= 0) & np.isin(group * width + code, pairs)
    declared_any = np.bincount(declared.index.to_numpy(), minlength=len(first)) > 0
    return np.where(declared_any[group], hit.astype("float64"), np.nan)
