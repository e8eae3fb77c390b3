"""Shared fixtures: isolated settings per test, and real servers started on loopback."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ranking_jobs.binaries import MissingBinaryError
from ranking_jobs.settings import Settings
from tests.servers import free_port, start_redis

# A pytest-xdist worker runs under a bare __main__ (no __spec__, no __file__), which
# pyspark.sql.connect, imported by Great Expectations, takes for a doctest run and
# answers with sys.exit(0). The worker's __main__ is given the file it lacks.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "pytest-xdist-worker"

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# The moto server's credentials, set before any Spark JVM starts: its executors read
# and write an S3 lake with the environment they inherited from it.
for _name, _value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("AWS_REGION", "us-east-1"),
):
    os.environ.setdefault(_name, _value)

REPO = Path(__file__).resolve().parents[1]


def make_settings(root: Path, **overrides: object) -> Settings:
    overrides = {"data_root": str(root / "lake"), "state_dir": root / "var", **overrides}
    return Settings(**overrides)


def flush_redis(url: str) -> None:
    """Empty the shared test Redis (``host:port``): each test starts from no lists."""
    import redis

    host, port = url.split(":")
    redis.Redis(host=host, port=int(port)).flushall()


def redis_settings(root: Path, url: str, **overrides: object) -> Settings:
    """Settings of a lake under ``root`` whose online store is the emptied Redis ``url``."""
    flush_redis(url)
    return make_settings(root, online_store="redis", redis_url=url, **overrides)


# Every online store the port serves: Feast's layout written directly (sqlite, redis)
# and the generic path through Feast's own API, here on the same two stores.
ONLINE_STORES = ["sqlite", "redis", "feast-sqlite", "feast-redis"]


def store_settings_for(kind: str, root: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings of a lake under ``root`` whose online store is ``kind`` (emptied), with
    the Feast definitions applied."""
    from ranking_jobs.feast_store import apply_definitions

    url = request.getfixturevalue("redis_server") if kind.endswith("redis") else ""
    if kind == "sqlite":
        settings = make_settings(root)
    elif kind == "redis":
        settings = redis_settings(root, url)
    else:
        if url:
            flush_redis(url)
            config: dict[str, str] = {"type": "redis", "connection_string": url}
        else:
            config = {"type": "sqlite", "path": str(root / "var" / "feast" / "generic.db")}
        settings = make_settings(root, online_store="feast", online_store_config=config)
    apply_definitions(settings)
    return settings


@pytest.fixture(params=ONLINE_STORES)
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return store_settings_for(request.param, tmp_path, request)


@pytest.fixture(params=ONLINE_STORES[:2])
def direct_store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The stores whose layout the port writes itself."""
    return store_settings_for(request.param, tmp_path, request)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture(scope="session")
def spark():
    from ranking_jobs.spark import get_spark

    session = get_spark(Settings(spark_shuffle_partitions=2), "tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port; `host:port`."""
    try:
        proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    except MissingBinaryError as exc:
        pytest.fail(str(exc))
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 API server on a free loopback port; its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A local HTTP receiver for alerts: its URL and the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/alerts", received
    finally:
        server.shutdown()


# The two longest files first, one per xdist worker (`make test` runs two, a file whole
# in one, in collection order; each worker starts with two files): the real-scheduler
# test (11 minutes, mostly waiting on Airflow's processes) then, on the other worker,
# the nightly DAG's module (5 minutes); everything else fills in behind them.
_FIRST = ("tests/e2e/test_airflow_scheduler.py", "tests/e2e/test_nightly_dag.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return _FIRST.index(path) if path in _FIRST else len(_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order
