"""The Spark offline store, selected by setting, retrieves what the DuckDB one does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from ranking_jobs import families, feast_store
from tests.conftest import make_settings
from tests.integration.test_feast_point_in_time import (
    D1,
    D,
    day_end,
    entity_rows,
    write_feature_lake,
)

pytestmark = pytest.mark.spark


def _lake(root: Path, engine: str):
    settings = make_settings(root, offline_store=engine)
    write_feature_lake(settings)
    return settings


def test_spark_and_duckdb_offline_stores_agree(
    tmp_path: Path, spark, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = entity_rows([
        (100, 1, "tops", day_end(D1) + dt.timedelta(hours=3)),
        (100, 1, "tops", day_end(D)),
        (101, 2, "tops", day_end(D)),
        (102, 3, "shoes", day_end(D)),
        (999, 99, "bags", day_end(D)),
    ])  # fmt: skip
    got, snapshot = {}, {}
    for engine in ("duckdb", "spark"):
        settings = _lake(tmp_path / engine, engine)
        snapshot[engine] = feast_store.assemble_features(settings, rows)[
            families.ASSEMBLED_FEATURES
        ]
        with monkeypatch.context() as m:
            m.setattr(feast_store, "_snapshot_views", lambda *_: None)  # the engine's own join
            got[engine] = feast_store.assemble_features(settings, rows)[families.ASSEMBLED_FEATURES]
    pd.testing.assert_frame_equal(got["spark"], got["duckdb"], check_exact=False, rtol=1e-6)
    # the snapshot path reads either engine's view of the lake as that engine joins it
    for engine in ("duckdb", "spark"):
        pd.testing.assert_frame_equal(snapshot[engine], got[engine], check_exact=False, rtol=1e-6)
    assert got["spark"]["clicks_7d"].tolist()[:2] == [1.0, 50.0]  # point in time, not latest
    unknown = got["spark"].iloc[-1]
    assert pd.isna(unknown["clicks_7d"]) and pd.isna(unknown["user_clicks_7d"])
    assert pd.isna(unknown["category_affinity"])
    assert got["spark"]["ui_engagements"].tolist()[:3] == [1.0, 2.0, 2.0]
