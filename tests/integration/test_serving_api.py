"""The HTTP API over a real Feast store on Redis with published lists."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from ranking_jobs.availability import refresh_availability
from ranking_jobs.context import RunContext
from ranking_jobs.serving.api import create_app
from tests.conftest import make_settings, redis_settings
from tests.integration.serving_data import AS_OF, DAY, MODEL, publish, write_sales
from tests.servers import free_port

LISTS = {u: [u * 1000 + k for k in range(100)] for u in range(1, 6)}
POPULAR = [50 + k for k in range(100)]


@pytest.fixture(autouse=True)
def process_local_metrics(monkeypatch):
    """Counters that belong to one app, as in a serving process.

    Importing ``feast.metrics`` (Feast does it lazily when it materialises or writes,
    which other tests in this process do) sets PROMETHEUS_MULTIPROC_DIR, and
    prometheus_client then keeps every value in per-process files shared by all
    metrics of the same name, so each test's app would count the others' requests.
    """
    from prometheus_client import values

    monkeypatch.setattr(values, "ValueClass", values.MutexValue)


@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory):
    """Settings of a Redis store with 5 users' 100-item lists, a fallback and a sold set."""
    settings = redis_settings(tmp_path_factory.mktemp("api"), redis_server)
    publish(settings, LISTS, POPULAR)
    nxt = DAY + dt.timedelta(days=1)
    sold = {1001: AS_OF + dt.timedelta(hours=2), 50: AS_OF + dt.timedelta(hours=3)}
    write_sales(settings, nxt, purchases=sold, sold_at={})
    refresh_availability(RunContext.create(nxt, settings))
    return settings


@pytest.fixture
def api(served):
    with TestClient(create_app(served)) as client:
        yield client


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if m and ",".join(sorted((m.group(1) or "").split(","))) == want:
            return float(m.group(2))
    raise AssertionError(f"{name}{{{want}}} not in metrics")


def test_a_known_user_gets_the_list_without_sold_items(api):
    r = api.get("/v1/users/1/recommendations")
    assert r.status_code == 200
    body = r.json()
    assert body["personalised"] is True and "surface" not in body
    assert body["model_version"] == MODEL and body["run_id"] == "run-1"
    assert body["generated_at"].startswith("2026-02-01T00:00:00")
    ids = [i["item_id"] for i in body["items"]]
    assert len(ids) == 20  # the default limit
    assert ids == [1000, *range(1002, 1021)] and body["removed_sold"] == 1
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == 1.0


def test_unknown_user_gets_the_fallback_minus_sold_items(api):
    r = api.get("/v1/users/-12345/recommendations", params={"limit": 100})
    assert r.status_code == 200
    body = r.json()
    assert body["personalised"] is False and body["model_version"] == "popularity"
    assert [i["item_id"] for i in body["items"]] == POPULAR[1:]


@pytest.mark.parametrize(
    ("query", "where", "says"),
    [
        ("limit=0", "limit", "greater than or equal to 1"),
        ("limit=101", "limit", "less than or equal to 100"),
        ("limit=ten", "limit", "valid integer"),
        ("surface=home", "surface", "unknown query parameter 'surface'"),
    ],
)
def test_bad_parameters_get_a_422_that_names_the_problem(api, query, where, says):
    r = api.get(f"/v1/users/1/recommendations?{query}")
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", where] and says in error["msg"]


def test_a_user_id_that_is_no_int64_is_a_422(api):
    for bad in ("abc", str(2**63)):
        r = api.get(f"/v1/users/{bad}/recommendations")
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["path", "user_id"]


def test_health_readiness_and_metrics(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["fallback_list"] is True
    for user, query in ((1, ""), (2, ""), (999, ""), (1, "?limit=0")):
        api.get(f"/v1/users/{user}/recommendations{query}")
    text = api.get("/metrics").text
    count = "ranking_serving_requests_total"
    counted = [line for line in text.splitlines() if line.startswith(count)]
    personalised = _metric(
        text, count, endpoint="recommendations", status="200", personalised="true"
    )
    assert personalised == 2, counted
    assert _metric(text, count, endpoint="recommendations", status="200", personalised="false") == 1
    assert _metric(text, count, endpoint="recommendations", status="422", personalised="none") == 1
    assert _metric(text, "ranking_serving_fallback_ratio") == pytest.approx(1 / 3)
    assert _metric(text, "ranking_serving_request_seconds_count", endpoint="recommendations") == 4
    assert _metric(text, "ranking_serving_list_age_seconds_count") == 3
    age_sum = _metric(text, "ranking_serving_list_age_seconds_sum")
    now = dt.datetime.now(dt.UTC)
    assert age_sum == pytest.approx(3 * (now - AS_OF).total_seconds(), rel=0.01)
    # user 1's list lost 1001, the fallback lost 50; user 2 lost nothing
    assert _metric(text, "ranking_serving_sold_items_removed_total") == 2


def test_readiness_is_503_when_the_store_is_down(tmp_path):
    down = make_settings(tmp_path, online_store="redis", redis_url=f"127.0.0.1:{free_port()}")
    with TestClient(create_app(down)) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert "unreachable" in r.json()["error"]
        r = client.get("/v1/users/1/recommendations")
        assert r.status_code == 503 and "unreachable" in r.json()["detail"]


def test_readiness_is_503_until_something_is_published(tmp_path):
    from ranking_jobs.feast_store import apply_definitions

    empty = make_settings(tmp_path)
    apply_definitions(empty)
    with TestClient(create_app(empty)) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "empty"
        assert r.json()["error"] == "nothing has been published yet"
        assert client.get("/v1/users/1/recommendations").json()["items"] == []


def test_openapi_documents_the_parameters(api):
    spec = api.get("/openapi.json").json()
    params = {
        p["name"]: p["schema"]
        for p in spec["paths"]["/v1/users/{user_id}/recommendations"]["get"]["parameters"]
    }
    assert params["limit"]["maximum"] == 100 and params["limit"]["default"] == 20
    assert set(params) == {"user_id", "limit"}  # one nightly list serves every surface


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?limit=5",
        "?limit=100",
        "?surface=search&limit=1",  # no such parameter: a 422 on both paths
        "?limit=020",  # not canonical: FastAPI's path
        "?limit=7&limit=8",  # repeated: FastAPI's path
        "?limit=3&debug=1",  # unknown parameter: FastAPI's path
        "?surface=home%20",  # encoded: FastAPI's path (a 422)
        "?limit=0",
    ],
)
@pytest.mark.parametrize("user", ["1", "3", "-9", "999999", "9223372036854775807", "0042"])
def test_the_fast_path_answers_exactly_like_the_fastapi_route(served, query, user):
    with (
        TestClient(create_app(served)) as fast,
        TestClient(create_app(served, fast_path=False)) as reference,
    ):
        url = f"/v1/users/{user}/recommendations{query}"
        a, b = fast.get(url), reference.get(url)
        fast_path = fast.app.middleware_stack.app.app  # ServerErrors > Metrics > FastPath
        canonical = query in (
            "",
            "?limit=5",
            "?limit=100",
        )
        assert fast_path.hits == int(canonical)
        assert a.status_code == b.status_code
        assert a.json() == b.json()
        assert a.headers["content-type"] == b.headers["content-type"]
