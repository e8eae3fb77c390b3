"""Publish safety on real stores: absent users removed, a kill -9 mid-publish finished
by the next run, an unreachable Redis retried then reported, the live lists kept."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import redis

from ranking_jobs.context import RunContext
from ranking_jobs.feast_store import apply_definitions, feature_store, online_db_path
from ranking_jobs.online import PublishError, live_marker
from ranking_jobs.publish import journal, publish_lists
from ranking_jobs.serving import RecommendationClient
from tests.conftest import REPO, make_settings, redis_settings
from tests.integration.serving_data import DAY, write_lists
from tests.servers import free_port, start_redis


def _client(settings) -> redis.Redis:
    host, port = settings.feast.redis_url.split(":")
    return redis.Redis(host=host, port=int(port))


def _read_all(settings, users: range) -> dict[int, tuple[list[int] | None, str | None]]:
    rows = (
        feature_store(settings)
        .get_online_features(
            features=["user_recommendations:item_ids", "user_recommendations:run_id"],
            entity_rows=[{"user_id": u} for u in users],
        )
        .to_dict()
    )
    return {
        u: (items or None, run)
        for u, items, run in zip(rows["user_id"], rows["item_ids"], rows["run_id"], strict=True)
    }


def _stored_lists(settings) -> int:
    """How many users the store holds a list for (each counted once)."""
    if settings.feast.online_store == "redis":
        field = b"_ts:user_recommendations"
        return sum(bool(_client(settings).hexists(k, field)) for k in _client(settings).scan_iter())
    conn = sqlite3.connect(online_db_path(settings))
    (n,) = conn.execute(
        "SELECT COUNT(DISTINCT entity_key) FROM marketplace_ranking_user_recommendations"
    ).fetchone()
    conn.close()
    return n


def test_users_absent_tonight_lose_their_list(direct_store_settings):
    settings = direct_store_settings
    write_lists(settings, DAY, {1: [10, 11], 2: [20], 3: [30]}, "d1")
    publish_lists(RunContext.create(DAY, settings, "d1"))
    if settings.feast.online_store == "redis":  # another view of user 1 shares Feast's hash
        keys = [
            k
            for k in _client(settings).scan_iter()
            if _client(settings).hexists(k, b"_ts:user_recommendations")
        ]
        assert len(keys) == 3
        for k in keys:
            _client(settings).hset(k, b"_ts:other_view", b"kept")
    next_day = DAY + dt.timedelta(days=1)
    write_lists(settings, next_day, {2: [21], 3: [31], 4: [41]}, "d2")
    result = publish_lists(RunContext.create(next_day, settings, "d2"))
    assert result["removed"] == 1
    got = _read_all(settings, range(1, 5))
    assert got == {1: (None, None), 2: ([21], "d2"), 3: ([31], "d2"), 4: ([41], "d2")}
    assert not RecommendationClient(settings).get(1).personalised
    assert _stored_lists(settings) == 3
    if settings.feast.online_store == "redis":  # only this view's fields were deleted
        assert sum(_client(settings).hexists(k, b"_ts:other_view") for k in keys) == 3


def test_redis_key_expiry_when_configured(redis_server, tmp_path):
    settings = redis_settings(tmp_path, redis_server, list_ttl_days=1.5)
    apply_definitions(settings)
    write_lists(settings, DAY, {5: [50]}, "ttl")
    publish_lists(RunContext.create(DAY, settings, "ttl"))
    ttls = [
        _client(settings).ttl(k)
        for k in _client(settings).scan_iter()
        if _client(settings).hexists(k, b"_ts:user_recommendations") and b"user_id" in k
    ]
    assert len(ttls) == 1 and 1.4 * 86400 < ttls[0] <= 1.5 * 86400


KILL_SCRIPT = """
import sys, time
from ranking_jobs.context import RunContext
from ranking_jobs.publish import publish
from ranking_jobs.settings import load_settings

stop_after = int(sys.argv[1])

def hook(batch):
    if batch == stop_after:
        print("KILL-ME", flush=True)
        time.sleep(600)

publish(RunContext.create(sys.argv[2], load_settings(), "run-b"), after_batch=hook)
print("FINISHED", flush=True)
"""


def test_publish_killed_mid_run_is_finished_by_the_next_run(direct_store_settings):
    settings = direct_store_settings
    a = {u: [u * 10 + 1, u * 10 + 2] for u in range(0, 2000)}
    b = {u: [u * 10 + 3] for u in range(2000, 4000)}
    c = {u: [u * 10 + 5, u * 10 + 6, u * 10 + 7] for u in range(1000, 2200)}
    write_lists(settings, DAY, a, "run-a")
    publish_lists(RunContext.create(DAY, settings, "run-a"))

    write_lists(settings, DAY, b, "run-b")
    stop_after = random.randint(1, 8)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "RANKING_DATA_ROOT": settings.paths.data_root,
        "RANKING_STATE_DIR": str(settings.paths.state_dir),
        "RANKING_ONLINE_STORE": settings.feast.online_store,
        "RANKING_REDIS_URL": settings.feast.redis_url,
        "RANKING_PUBLISH_BATCH_ROWS": "100",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(stop_after), DAY.isoformat()],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().strip()
    assert line == "KILL-ME", f"publish subprocess said {line!r} (stop after {stop_after})"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=20)

    # The journal shows an unfinished publish; the marker still names run-a.
    pending = journal(settings)
    assert pending is not None and pending["run_id"] == "run-b" and pending["state"] == "writing"
    assert live_marker(settings)["run_id"] == "run-a"
    mid = _read_all(settings, range(0, 4000))
    written = (stop_after + 1) * 100
    assert mid[0] == ([1, 2], "run-a")
    if settings.feast.online_store == "redis":  # the first batches of run-b are live, the rest not
        assert mid[2000] == ([20003], "run-b") and mid[2000 + written - 1][1] == "run-b"
        assert mid[2000 + written] == (None, None)
    else:  # the whole SQLite transaction rolled back
        assert all(run == "run-a" for u, (_, run) in mid.items() if u < 2000)
        assert mid[2000] == (None, None)
    # No list is ever made of two runs.
    for u, (items, run) in mid.items():
        if run == "run-a":
            assert items == a[u]
        elif run == "run-b":
            assert items == b[u]

    # The next run (tonight's lists recomputed) finishes the job.
    write_lists(settings, DAY, c, "run-c")
    result = publish_lists(RunContext.create(DAY, settings, "run-c"))
    assert result["published"] and journal(settings) is None
    assert live_marker(settings)["run_id"] == "run-c"
    final = _read_all(settings, range(0, 4000))
    expected = {u: (c[u], "run-c") if u in c else (None, None) for u in range(0, 4000)}
    assert final == expected
    assert _stored_lists(settings) == len(c)


def test_unreachable_redis_fails_clearly_and_keeps_the_live_lists(redis_server, tmp_path):
    live = redis_settings(tmp_path, redis_server)
    apply_definitions(live)
    write_lists(live, DAY, {1: [10, 11]}, "good")
    publish_lists(RunContext.create(DAY, live, "good"))

    closed = f"127.0.0.1:{free_port()}"
    broken = make_settings(
        tmp_path, online_store="redis", redis_url=closed, publish_attempts=3, publish_backoff_s=0.01
    )
    next_day = DAY + dt.timedelta(days=1)
    write_lists(broken, next_day, {1: [99]}, "bad")
    with pytest.raises(PublishError, match=closed) as err:
        publish_lists(RunContext.create(next_day, broken, "bad"))
    assert "3 attempts" in str(err.value)
    marker = live_marker(live)
    assert marker["ds"] == DAY.isoformat() and marker["run_id"] == "good"
    assert journal(live) is None
    assert RecommendationClient(live).get(1).items == [10, 11]


def test_publish_rides_out_a_redis_restart(tmp_path):
    port = free_port()
    server = start_redis(tmp_path, port)[0]
    settings = make_settings(
        tmp_path,
        online_store="redis",
        redis_url=f"127.0.0.1:{port}",
        publish_attempts=8,
        publish_backoff_s=0.2,
    )
    apply_definitions(settings)
    restarted: list[subprocess.Popen] = []
    try:
        write_lists(settings, DAY, {1: [10]}, "first")
        publish_lists(RunContext.create(DAY, settings, "first"))
        server.terminate()
        server.wait(timeout=10)

        def restart() -> None:
            time.sleep(1.0)
            restarted.append(start_redis(tmp_path, port)[0])

        thread = threading.Thread(target=restart)
        thread.start()
        next_day = DAY + dt.timedelta(days=1)
        write_lists(settings, next_day, {1: [11], 2: [21]}, "second")
        result = publish_lists(RunContext.create(next_day, settings, "second"))
        thread.join()
        assert result["published"] and live_marker(settings)["run_id"] == "second"
        assert _read_all(settings, range(1, 3)) == {1: ([11], "second"), 2: ([21], "second")}
    finally:
        for proc in [server, *restarted]:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


def test_a_second_publish_waits_for_the_first_then_fails_by_name(tmp_path):
    from ranking_jobs.publish import exclusive

    settings = make_settings(tmp_path, publish_lock_wait_s=1.0)
    apply_definitions(settings)
    write_lists(settings, DAY, {1: [10, 11]}, "first")
    publish_lists(RunContext.create(DAY, settings, "first"))
    next_day = DAY + dt.timedelta(days=1)
    write_lists(settings, next_day, {1: [12]}, "second")

    with exclusive(settings, "backfill-7"):  # a publish in progress (another process alike)
        started = time.monotonic()
        with pytest.raises(PublishError, match=r"another publish holds .*run backfill-7"):
            publish_lists(RunContext.create(next_day, settings, "second"))
        assert time.monotonic() - started >= 1.0  # it waited its turn first
        assert live_marker(settings)["run_id"] == "first" and journal(settings) is None
        assert RecommendationClient(settings).get(1).items == [10, 11]

    # the lock is free again: the same publish goes through
    assert publish_lists(RunContext.create(next_day, settings, "second"))["published"]
    assert RecommendationClient(settings).get(1).items == [12]


def test_the_lock_of_a_killed_publisher_is_released(tmp_path):
    from ranking_jobs.airflow_runner import settings_env

    settings = make_settings(tmp_path, publish_lock_wait_s=5.0)
    apply_definitions(settings)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from ranking_jobs.publish import exclusive\n"
            "from ranking_jobs.settings import load_settings\n"
            "with exclusive(load_settings(), 'killed'):\n"
            "    print('held', flush=True); time.sleep(60)\n",
        ],
        env={**os.environ, **settings_env(settings)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    from ranking_jobs.publish import exclusive

    no_wait = settings.replace(publish_lock_wait_s=0)
    with pytest.raises(PublishError, match="run killed"), exclusive(no_wait, "probe"):
        pass  # the child holds this very lock
    holder.kill()
    holder.wait(timeout=10)
    write_lists(settings, DAY, {1: [10]}, "after")
    assert publish_lists(RunContext.create(DAY, settings, "after"))["published"]
