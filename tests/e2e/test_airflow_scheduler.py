"""The DAGs under a real Airflow 3 (api-server, scheduler, dag-processor, triggerer,
LocalExecutor on PostgreSQL), driven through its REST API v2 alone: a night, then a
backfill of the day before it while that night's lists are live, then the
hourly availability DAG; the alerts of a failed task and of a missed deadline arrive
on a local webhook."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake, online, registry
from ranking_jobs.airflow_local import LocalAirflow, local_airflow, trigger_night
from ranking_jobs.airflow_runner import DAG_ID
from ranking_jobs.context import RunContext
from ranking_jobs.stages import NIGHTLY
from tests.conftest import make_settings

# Two nights, each task its own process under the LocalExecutor.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(2400)]

DS = dt.date(2026, 1, 31)
# One day: a backfill of several days is the same request, and each night under this
# test costs about five minutes of the suite's twenty (runs one at a time is the DAG's
# own max_active_runs=1, which the first two runs here already wait on).
BACKFILLED = [DS - dt.timedelta(days=1)]
NO_DATA = DS + dt.timedelta(days=3)  # a day the lake has no events for
NIGHT_TIMEOUT_S = 900


def _wait_for_run(af: LocalAirflow, run_id: str) -> str:
    """The final state of one run of the nightly DAG."""
    deadline = time.monotonic() + NIGHT_TIMEOUT_S
    while time.monotonic() < deadline:
        state = af.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(3)
    pytest.fail(f"run {run_id} not finished in time (logs: {af.home})")


def _wait_for_runs(af: LocalAirflow, dag_id: str, query: str, count: int) -> list[dict]:
    """The ``count`` runs of ``dag_id`` matching ``query`` once all have finished;
    fails with every task's state as soon as one run failed."""
    deadline = time.monotonic() + NIGHT_TIMEOUT_S * count
    while time.monotonic() < deadline:
        runs = af.api("GET", f"/dags/{dag_id}/dagRuns?{query}&limit=100")["dag_runs"]
        failed = [r for r in runs if r["state"] == "failed"]
        if failed:
            tasks = af.api("GET", f"/dags/{dag_id}/dagRuns/{failed[0]['dag_run_id']}/taskInstances")
            states = {t["task_id"]: t["state"] for t in tasks["task_instances"]}
            pytest.fail(f"run {failed[0]['dag_run_id']} failed: {states} (logs: {af.home})")
        if len(runs) >= count and all(r["state"] == "success" for r in runs):
            return runs
        time.sleep(3)
    pytest.fail(f"{dag_id} runs {query} not finished in time (logs: {af.home})")


def _live_lists(settings) -> dict:
    """Every published user's list and the fallback, as the online store serves them."""
    from ranking_jobs.serving import RecommendationClient

    users = lake.read_partition(settings, C.RECOMMENDATIONS, DS)["user_id"].to_pylist()
    client = RecommendationClient(settings)
    return {u: client.get(u, limit=settings.lists.top_n).as_dict() for u in [*users, -1]}


def test_a_night_and_a_backfill_under_the_scheduler_through_the_rest_api(tmp_path, webhook):
    from ranking_jobs.data import generate

    # Gate held open, as in test_nightly_dag: this test is about the scheduler's plumbing.
    # A one-minute deadline: every night of the test is late.
    url, alerts = webhook
    settings = make_settings(
        tmp_path,
        task_retries=0,
        history_days=10,
        min_gain_over_baseline=-1.0,
        alert_webhook_url=url,
        night_deadline_minutes=1,
        position_bias_ablation=False,  # one model per night: the plumbing is what is tested
    )
    generate(RunContext.create(DS, settings))

    # The DAG files do not change during the test: parsed once at start, not every 30 s
    # beside the nights.
    with local_airflow(settings, dag_refresh_s=900) as af:
        af.login()
        deadline = time.monotonic() + 120
        while af.api("GET", "/dags")["total_entries"] < 2:
            assert time.monotonic() < deadline, "the dag-processor did not register the DAGs"
            time.sleep(2)

        # A day without data fails its first task; then the night of DS, triggered as a
        # person would from the UI.
        af.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
        failing = trigger_night(af, NO_DATA)
        run_id = trigger_night(af, DS)
        assert _wait_for_run(af, failing) == "failed"
        assert _wait_for_run(af, run_id) == "success"
        tasks = af.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")
        assert {t["state"] for t in tasks["task_instances"]} == {"success"}
        assert online.live_marker(settings)["ds"] == DS.isoformat()
        live_before = _live_lists(settings)
        champion_before = registry.champion(settings)
        assert champion_before is not None

        # The day before backfilled while DS's lists are live.
        backfill = af.api(
            "POST",
            "/backfills",
            {
                "dag_id": DAG_ID,
                "from_date": f"{BACKFILLED[0]}T02:00:00Z",
                "to_date": f"{BACKFILLED[-1]}T02:00:00Z",
                "max_active_runs": 1,
                "reprocess_behavior": "none",
            },
        )
        runs = _wait_for_runs(af, DAG_ID, "run_type=backfill", len(BACKFILLED))
        days = sorted(dt.datetime.fromisoformat(r["data_interval_start"]).date() for r in runs)
        assert days == BACKFILLED
        assert af.api("GET", f"/backfills/{backfill['id']}")["dag_id"] == DAG_ID

        for day in BACKFILLED:
            for table in (C.FEATURES_ITEM, C.FEATURES_USER, C.RECOMMENDATIONS):
                assert lake.has_partition(settings, table, day), (table, day)
        assert online.live_marker(settings)["ds"] == DS.isoformat()
        assert _live_lists(settings) == live_before  # not one list republished
        assert registry.champion(settings) == champion_before

        # The list the UI shows holds the night and the backfill's runs.
        listed = af.api("GET", f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
        shown = {r["dag_run_id"] for r in listed}
        assert run_id in shown and {r["dag_run_id"] for r in runs} <= shown

        # The hourly DAG: unpaused, the scheduler starts its latest interval by itself.
        af.api("PATCH", "/dags/ranking_availability", {"is_paused": False})
        hourly = _wait_for_runs(af, "ranking_availability", "run_type=scheduled", 1)
        assert hourly[0]["state"] == "success"

    failed = [a for a in alerts if a["kind"] == "task_failed"]
    assert any(
        a["dag_id"] == DAG_ID
        and a["task_id"] == "validate_raw"
        and a["ds"] == NO_DATA.isoformat()
        and a["run_id"] == failing
        and NO_DATA.isoformat() in a["error"]
        for a in failed
    ), alerts
    late = [a for a in alerts if a["kind"] == "deadline_missed" and a["run_id"] == run_id]
    assert late, alerts
    assert late[0]["dag_id"] == DAG_ID and late[0]["ds"] == DS.isoformat()
    assert late[0]["task_id"] in {stage.name for stage in NIGHTLY}
    assert "deadline" in late[0]["error"]
    # The backfilled nights are watched against the nights before them: stable data.
    assert not [a for a in alerts if a["kind"] == "drift_warning"], alerts
