"""The serving client over real Feast stores (SQLite, Redis): availability filter, fallback."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from fastapi.testclient import TestClient

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.availability import refresh_availability
from ranking_jobs.context import RunContext
from ranking_jobs.online import StoreUnavailableError
from ranking_jobs.online.generic import FeastListReader
from ranking_jobs.online.redis_store import RedisListReader
from ranking_jobs.serving import RecommendationClient
from ranking_jobs.serving import client as client_module
from ranking_jobs.serving.api import create_app
from tests.conftest import make_settings, redis_settings
from tests.integration.serving_data import AS_OF, DAY, MODEL, publish, write_sales
from tests.servers import free_port

NEXT = DAY + dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def test_items_sold_after_the_lists_were_made_are_dropped(store_settings):
    settings = store_settings
    publish(settings, {1: [10, 11, 12, 13, 14, 15], 2: [20, 21]}, popular=[11, 30, 31, 32])
    client = RecommendationClient(settings)
    before = client.get(1, limit=3)
    assert before.items == [10, 11, 12] and before.removed_sold == 0
    assert before.personalised and before.model_version == MODEL and before.run_id == "run-1"
    assert before.generated_at == AS_OF.isoformat()

    # 11 bought (events), 12 sold (snapshot), 14 sold long before the lists' as-of
    # (outside the 48 h margin: not in the set), 13 still listed.
    write_sales(
        settings,
        NEXT,
        purchases={11: AS_OF + 3 * HOUR},
        sold_at={12: AS_OF + 5 * HOUR, 13: None, 14: AS_OF - 60 * HOUR},
    )
    result = refresh_availability(RunContext.create(NEXT, settings, "hourly"))
    assert result["sold_items"] == 2
    assert result["live_lists_as_of"] == AS_OF.isoformat()
    assert result["since"] == (AS_OF - 48 * HOUR).isoformat()

    after = client.get(1, limit=3)  # the same client: its cached segment row must refresh
    assert after.items == [10, 13, 14] and after.removed_sold == 2
    assert after.scores == before.scores[:1] + [pytest.approx(s) for s in after.scores[1:]]
    fallback = client.get(404, limit=3)
    assert not fallback.personalised and fallback.model_version == "popularity"
    assert fallback.items == [30, 31, 32] and fallback.removed_sold == 1
    stored = lake.read_partition(settings, C.SOLD_ITEMS, NEXT).to_pylist()
    assert stored[0]["item_ids"] == [11, 12] and stored[0]["segment"] == "global"


def test_a_list_that_sold_out_falls_back_to_popular(store_settings):
    settings = store_settings
    publish(settings, {2: [20, 21]}, popular=[30, 31])
    write_sales(settings, NEXT, purchases={20: AS_OF + HOUR, 21: AS_OF + 2 * HOUR}, sold_at={})
    refresh_availability(RunContext.create(NEXT, settings))
    rec = RecommendationClient(settings).get(2)
    assert not rec.personalised and rec.items == [30, 31] and rec.model_version == "popularity"


def test_an_hourly_rerun_replaces_the_sold_set_on_redis_too(store_settings):
    settings = store_settings
    publish(settings, {1: [10, 11, 12]}, popular=[30])
    client = RecommendationClient(settings)
    write_sales(settings, NEXT, purchases={10: AS_OF + HOUR, 11: AS_OF + HOUR}, sold_at={})
    refresh_availability(RunContext.create(NEXT, settings))
    assert client.get(1).items == [12]
    # A corrected raw partition (10 was a test purchase): the next run must win.
    write_sales(settings, NEXT, purchases={11: AS_OF + HOUR}, sold_at={})
    assert refresh_availability(RunContext.create(NEXT, settings))["sold_items"] == 1
    assert client.get(1).items == [10, 12]


def test_nothing_published_yet_serves_an_empty_fallback_not_an_error(store_settings):
    from ranking_jobs.feast_store import apply_definitions

    apply_definitions(store_settings)
    rec = RecommendationClient(store_settings).get(5, limit=3)
    assert rec.items == [] and not rec.personalised and rec.generated_at is None
    assert RecommendationClient(store_settings).check() == {
        "fallback_list": False,
        "model_version": None,
    }


def test_direct_redis_reads_equal_feast_get_online_features(redis_server, tmp_path):
    settings = redis_settings(tmp_path, redis_server)
    lists = {u: [u * 100 + k for k in range(30)] for u in (1, 2, 3, 2**40)}
    publish(settings, lists, popular=[101, 102, 900, 901])
    write_sales(settings, NEXT, purchases={101: AS_OF + HOUR, 205: AS_OF + HOUR}, sold_at={})
    refresh_availability(RunContext.create(NEXT, settings))
    direct = RecommendationClient(settings)
    via_feast = RecommendationClient(settings, FeastListReader(settings))
    assert isinstance(direct.reader, RedisListReader)
    for user in (1, 2, 3, 2**40, 404, -7):
        for limit in (1, 5, 100):
            a, b = direct.get(user, limit), via_feast.get(user, limit)
            assert a == b, (user, limit)
    assert direct.get(1, 2).items == [100, 102]  # 101 sold
    assert direct.get(2, 30).removed_sold == 1


def test_unreachable_store_raises_a_clear_error_and_bad_ids_are_refused(tmp_path):
    down = make_settings(tmp_path, online_store="redis", redis_url=f"127.0.0.1:{free_port()}")
    client = RecommendationClient(down)
    with pytest.raises(StoreUnavailableError, match="unreachable"):
        client.get(1)
    with pytest.raises(StoreUnavailableError):
        client.check()
    with pytest.raises(ValueError, match="64 bits"):
        client.get(2**63)
    with pytest.raises(ValueError, match="limit"):
        client.get(1, limit=0)


def test_redis_down_serves_the_last_popular_list_and_recovers(tmp_path):
    from tests.servers import start_redis

    port = free_port()
    server, url = start_redis(tmp_path / "redis", port)
    try:
        settings = redis_settings(tmp_path, url)
        publish(settings, {1: [10, 11, 12]}, popular=[30, 31, 32])
        client = RecommendationClient(settings)
        assert client.get(1).personalised and not client.get(1).degraded
        server.terminate()
        server.wait(timeout=10)

        reads = []
        real_read = client.reader.read
        client.reader.read = lambda user: reads.append(user) or real_read(user)  # counts tries
        down = client.get(1, limit=2)
        assert down.degraded and not down.personalised
        assert [client.get(u).degraded for u in (1, 2, 3)] == [True] * 3
        assert reads == [1]  # only the first waited on the store; a thread probes it
        assert down.items == [30, 31] and down.model_version == "popularity"
        with TestClient(create_app(settings, client)) as api:  # the API over the same client
            started = time.monotonic()
            served = api.get("/v1/users/1/recommendations?limit=2")
            assert time.monotonic() - started < settings.serving.redis_timeout_s  # no waiting
            assert served.status_code == 200 and served.json()["degraded"] is True
            metrics = api.get("/metrics").text
            assert 'ranking_serving_lists_total{source="degraded"} 1.0' in metrics
        assert client.get(2**40).items == [30, 31, 32]  # unknown users alike
        fresh = RecommendationClient(settings)  # never read a fallback: nothing to serve
        with pytest.raises(StoreUnavailableError, match="unreachable"):
            fresh.get(1)

        server = start_redis(tmp_path / "redis", port)[0]
        publish(settings, {1: [10, 11, 12]}, popular=[30, 31, 32])  # a restart lost the data
        deadline = time.monotonic() + 10 * client_module.PROBE_EVERY_S
        while client.get(1).degraded:
            assert time.monotonic() < deadline, "the probe never saw the store come back"
            time.sleep(0.05)
        back = client.get(1)
        assert back.personalised and not back.degraded and back.items == [10, 11, 12]
        assert reads[1:] == [1, 1]  # no read reached the store while it was down
    finally:
        server.terminate()
        server.wait(timeout=10)
