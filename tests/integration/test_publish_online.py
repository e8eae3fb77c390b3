"""Publishing lists to the Feast online store (SQLite and a real Redis) and reading them."""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
import pyarrow as pa
import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.feast_store import apply_definitions, online_db_path
from ranking_jobs.publish import live_marker, publish_lists
from ranking_jobs.serving import RecommendationClient
from tests.conftest import make_settings

DAY = dt.date(2026, 1, 31)


def _write_lists(settings, day: dt.date, items_of: dict[int, list[int]], run: str) -> None:
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    users = sorted(items_of)
    table = pa.table(
        {
            "user_id": users,
            "item_ids": [items_of[u] for u in users],
            "scores": [
                list(np.linspace(1.0, 0.1, len(items_of[u]), dtype=np.float32)) for u in users
            ],
            "model_version": ["marketplace_ranker/v1"] * len(users),
            "run_id": [run] * len(users),
            "generated_at": [end] * len(users),
            "event_timestamp": [end] * len(users),
        },
        schema=C.RECOMMENDATIONS_SCHEMA,
    )
    lake.write_partition(settings, C.RECOMMENDATIONS, day, table)
    popular = (
        table.slice(0, 1)
        .drop(["user_id"])
        .append_column("segment", pa.array(["global"], pa.string()))
    )
    lake.write_partition(settings, C.POPULAR, day, popular)


@pytest.fixture(params=["sqlite", "redis"])
def store_settings(request, tmp_path):
    if request.param == "redis":
        url = request.getfixturevalue("redis_server")
        import redis

        host, port = url.split(":")
        redis.Redis(host=host, port=int(port)).flushall()
        settings = make_settings(tmp_path, online_store="redis", redis_url=url)
    else:
        settings = make_settings(tmp_path)
    apply_definitions(settings)
    return settings


def test_rerun_of_a_day_really_replaces_its_lists(store_settings):
    settings = store_settings
    _write_lists(settings, DAY, {1: [10, 11, 12], 2: [20, 21]}, "run-a")
    publish_lists(RunContext.create(DAY, settings, "run-a"))
    client = RecommendationClient(settings)
    assert client.get(1).items == [10, 11, 12]

    # The same logical day recomputed (e.g. after a data fix) must win, on Redis too.
    _write_lists(settings, DAY, {1: [13, 14], 2: [20, 21]}, "run-b")
    publish_lists(RunContext.create(DAY, settings, "run-b"))
    rec = client.get(1)
    assert rec.items == [13, 14] and rec.run_id == "run-b"
    assert rec.model_version == "marketplace_ranker/v1" and rec.personalised
    assert rec.generated_at.startswith("2026-02-01")


def test_sqlite_tables_keep_feasts_indexes(tmp_path):
    """The store is created with 16 KiB pages; the publish drops the secondary index for
    the load and rebuilds it in the same transaction: afterwards the schema is exactly
    what ``feast apply`` made."""
    settings = make_settings(tmp_path)
    apply_definitions(settings)
    db = online_db_path(settings)

    def schema() -> list[tuple[str, str, str]]:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
            ).fetchall()

    applied = schema()
    assert any(t == "index" and n.endswith("_ek") for t, n, _ in applied)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA page_size").fetchone() == (16_384,)
    # 13 lists x 5 features: one full multi-row insert of 50 rows and one of 15.
    lists = {u: [100 + u, 200 + u] for u in range(1, 14)}
    _write_lists(settings, DAY, lists, "r")
    publish_lists(RunContext.create(DAY, settings, "r"))
    assert schema() == applied
    client = RecommendationClient(settings)
    assert {u: client.get(u).items for u in lists} == lists


def test_backfill_of_an_older_day_never_replaces_fresher_live_lists(store_settings):
    settings = store_settings
    _write_lists(settings, DAY, {1: [10, 11]}, "fresh")
    publish_lists(RunContext.create(DAY, settings, "fresh"))
    old = DAY - dt.timedelta(days=5)
    _write_lists(settings, old, {1: [99, 98]}, "backfill")
    result = publish_lists(RunContext.create(old, settings, "backfill"))
    assert result["published"] is False and "fresher" in result["reason"]
    assert RecommendationClient(settings).get(1).items == [10, 11]
    assert live_marker(settings)["ds"] == DAY.isoformat()


def test_unknown_user_gets_fallback_and_limit_applies(store_settings):
    settings = store_settings
    _write_lists(settings, DAY, {1: [10, 11, 12, 13]}, "r")
    publish_lists(RunContext.create(DAY, settings, "r"))
    client = RecommendationClient(settings)
    assert client.get(1, limit=2).items == [10, 11]
    fallback = client.get(404)
    assert not fallback.personalised and fallback.items == [10, 11, 12, 13]
    with pytest.raises(ValueError, match="limit"):
        client.get(1, limit=0)
