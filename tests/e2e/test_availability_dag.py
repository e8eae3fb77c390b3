"""The hourly ranking_availability DAG through Airflow's own `airflow dags test`."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest

from ranking_jobs.serving import RecommendationClient
from tests.conftest import make_settings
from tests.integration.serving_data import AS_OF, DAY, publish, write_sales

pytestmark = pytest.mark.e2e


def test_an_hourly_run_filters_what_sold_since_the_night(tmp_path):
    from ranking_jobs.airflow_runner import airflow_bin, airflow_env

    settings = make_settings(tmp_path, task_retries=0)
    publish(settings, {1: [10, 11, 12]}, popular=[11, 30])
    nxt = DAY + dt.timedelta(days=1)
    write_sales(settings, nxt, purchases={11: AS_OF + dt.timedelta(hours=1)}, sold_at={})
    client = RecommendationClient(settings)
    assert client.get(1).items == [10, 11, 12]

    env = airflow_env(settings)
    airflow = airflow_bin()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    run = subprocess.run(
        [airflow, "dags", "test", "ranking_availability", "2026-02-01T03:05:00+00:00"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert client.get(1).items == [10, 12]
    assert client.get(-1).items == [30]
    summary = settings.paths.reports_dir / "2026-02-01" / "refresh_availability.json"
    assert '"sold_items": 1' in summary.read_text()
