"""The Feast store built from settings, and the one feature-assembly function.

``assemble_features`` is the only path from (user, item, as-of time) rows to a
model matrix: training, evaluation and precompute all call it, so the model is
scored on exactly what it was trained on.
"""

from __future__ import annotations

import contextlib
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

from ranking_jobs.features import columns as cols
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
)
LIST_FIELDS = ("item_ids", "scores", "model_version", "run_id", "generated_at")
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


def assemble_features(settings: Settings, entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time features for rows of user_id, item_id, the item's attributes
    (``cols.AFFINITY_DIMENSIONS``) and event_timestamp.

    Returns the input columns plus ``cols.ASSEMBLED_FEATURES`` as float32, in the
    input's row order.
    """
    needed = {"user_id", "item_id", *cols.AFFINITY_DIMENSIONS, "event_timestamp"}
    missing = needed - set(entity_df.columns)
    if missing:
        raise ValueError(f"entity rows lack columns {sorted(missing)}")
    return historical_features(
        feature_store(settings),
        entity_df,
        list(FEATURE_REFS),
        chunk_rows=settings.retrieval_chunk_rows,
        finish=add_cross_features,
    )


def historical_features(
    store: FeatureStore,
    entity_df: pd.DataFrame,
    refs: list[str],
    chunk_rows: int,
    finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """``get_historical_features`` in chunks of at most ``chunk_rows`` entity rows.

    One retrieval of 5M rows peaked at 15 GiB: the offline store's join, the result
    as Arrow and as pandas, and the copies a concat and a re-sort make. Here each
    chunk (rows in as-of order) is retrieved, passed through ``finish`` (e.g. cross
    features), and its feature columns copied as float32 straight into their final
    rows; the entity columns are never copied per chunk. Returns ``entity_df``'s
    columns plus the features (float32), in the input's row order.
    """
    rows = entity_df.reset_index(drop=True)
    times = pd.to_datetime(rows["event_timestamp"], utc=True).to_numpy("datetime64[ns]")
    order = np.argsort(times, kind="stable")
    features: dict[str, np.ndarray] = {}
    with timed(log, "point-in-time feature retrieval") as t:
        for start in range(0, max(len(rows), 1), chunk_rows):  # an empty frame: one call
            take = order[start : start + chunk_rows]
            chunk = rows.iloc[take].assign(_row=take)
            got = store.get_historical_features(entity_df=chunk, features=refs).to_df()
            if len(got) != len(chunk):
                raise RuntimeError(
                    f"the offline store returned {len(got):,} rows for {len(chunk):,} entity "
                    "rows: rows would silently lose their features"
                )
            if finish is not None:
                got = finish(got)
            at = got["_row"].to_numpy()
            for c in got.columns.difference([*rows.columns, "_row"], sort=False):
                if c not in features:
                    features[c] = np.full(len(rows), np.nan, dtype=np.float32)
                features[c][at] = pd.to_numeric(got[c], errors="coerce").to_numpy(
                    dtype=np.float32, na_value=np.nan
                )
            del got
            if len(rows) > chunk_rows:
                log.info("retrieved %s of %s rows", f"{start + len(take):,}", f"{len(rows):,}")
        t["count"] = len(rows)
    return pd.concat([rows, pd.DataFrame(features, copy=False)], axis=1, copy=False)


def add_cross_features(df: pd.DataFrame) -> pd.DataFrame:
    """Pair features computed from the joined user and item features."""
    price = df["price"].astype("float64")
    level = df["user_price_level"].astype("float64")
    df["price_distance"] = np.abs(np.log1p(price) - np.log1p(level))
    for c in cols.ASSEMBLED_FEATURES:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float32")
    return df
