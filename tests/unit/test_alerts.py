"""Alerts: what a failed task and a missed deadline say, and where they go."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from types import SimpleNamespace

import pytest

from ranking_jobs import alerts
from ranking_jobs.airflow_runner import settings_env
from ranking_jobs.context import RunContext
from ranking_jobs.summaries import write_summary
from tests.conftest import make_settings
from tests.servers import free_port


@pytest.fixture
def env_settings(tmp_path, webhook, monkeypatch):
    """Settings that the callbacks (which load their own) see through RANKING_* variables."""
    url, _ = webhook
    settings = make_settings(tmp_path, alert_webhook_url=url)
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    return settings


def test_a_failed_task_posts_the_dag_task_day_and_first_line_of_the_error(env_settings, webhook):
    _, received = webhook
    context = {
        "ti": SimpleNamespace(dag_id="ranking_nightly", task_id="validate_raw", run_id="r1"),
        "run_id": "manual__2026-02-03",
        "data_interval_start": dt.datetime(2026, 2, 3, 2, tzinfo=dt.UTC),
        "exception": ValueError("raw/events has no partition dt=2026-02-03\nsecond line"),
    }
    alerts.on_task_failure(context)
    assert received == [
        {
            "kind": "task_failed",
            "dag_id": "ranking_nightly",
            "task_id": "validate_raw",
            "ds": "2026-02-03",
            "run_id": "manual__2026-02-03",
            "error": "raw/events has no partition dt=2026-02-03",
            "text": "[ranking_nightly] validate_raw for 2026-02-03 failed: raw/events has no "
            "partition dt=2026-02-03 (run manual__2026-02-03)",
        }
    ]


def test_a_missed_deadline_names_the_first_stage_not_finished_since_the_run_started(
    env_settings, webhook
):
    _, received = webhook
    ctx = RunContext.create(dt.date(2026, 1, 31), env_settings)
    write_summary(ctx, "validate_raw", {"old": True})  # an earlier run's summary
    started = dt.datetime.now(dt.UTC)
    old = time.time() - 3600
    os.utime(env_settings.paths.reports_dir / "2026-01-31" / "validate_raw.json", (old, old))
    write_summary(ctx, "profile_data", {})  # written after the start, yet validate_raw is not
    context = {
        "dag_run": {
            "dag_id": "ranking_nightly",
            "dag_run_id": "scheduled__2026-02-01T02:00:00+00:00",
            "data_interval_start": "2026-01-31T02:00:00Z",
            "start_date": started.isoformat(),
        },
        "deadline": {"deadline_time": "2026-02-01T06:00:00+00:00"},
    }
    asyncio.run(alerts.on_deadline_missed(context=context))
    (alert,) = received
    assert alert["kind"] == "deadline_missed"
    assert (alert["dag_id"], alert["task_id"], alert["ds"]) == (
        "ranking_nightly",
        "validate_raw",
        "2026-01-31",
    )
    assert "2026-02-01T06:00:00" in alert["error"]

    write_summary(ctx, "validate_raw", {})
    assert alerts.current_stage(env_settings, "2026-01-31", started.isoformat()) == "build_features"


def test_an_unreachable_channel_is_logged_not_raised(tmp_path, caplog):
    settings = make_settings(tmp_path, alert_webhook_url=f"http://127.0.0.1:{free_port()}/x")
    alert = alerts.Alert("task_failed", "d", "t", "2026-01-31", "r", "boom")
    assert alerts.send(settings, alert) == []
    assert "could not be sent through webhook" in caplog.text
    assert "ALERT [d] t for 2026-01-31 failed: boom" in caplog.text


def test_no_channel_configured_still_logs_the_alert(tmp_path, caplog):
    alert = alerts.Alert("deadline_missed", "d", "t", "2026-01-31", "r", "late")
    assert alerts.send(make_settings(tmp_path), alert) == []
    assert "missed its deadline: late" in caplog.text and "no channel" in caplog.text
