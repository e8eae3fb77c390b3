"""Hourly availability DAG: wiring only; its one task is one call into ``ranking_jobs``.

Parsed constantly by the dag-processor, so nothing heavy is imported here.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import CronDataIntervalTimetable, dag, task

from ranking_jobs.alerts import on_task_failure
from ranking_jobs.settings import load_settings
from ranking_jobs.stages import AVAILABILITY, airflow_assets

DOC = """
### ranking_availability

Every hour (UTC), writes the items sold since the live lists were made (purchases
in `raw/events`, `sold_at` in the `raw/items` snapshots, from a margin before the
lists' as-of time) as one row of the Feast view `sold_items`. Serving drops those
items from personalised lists and from the popular fallback at read time.

The freshest lake partitions are always read, whatever the run's hour, so a late
or manual run is never stale; the run's day only names the audit partition
`sold_items/dt=`. A run costs seconds; no catch-up (an hour missed is fixed by the
next run). On the command line: `ranking-jobs availability`.
"""

DEFAULT_ARGS = {
    "owner": "ranking",
    "retries": load_settings().airflow.task_retries,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=10),
    "execution_timeout": dt.timedelta(minutes=20),
    "on_failure_callback": on_task_failure,
}


@dag(
    dag_id="ranking_availability",
    schedule=CronDataIntervalTimetable("5 * * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(minutes=50),
    default_args=DEFAULT_ARGS,
    tags=["ranking", "hourly", "feast", "serving"],
    doc_md=DOC,
)
def ranking_availability() -> None:
    @task(
        task_id=AVAILABILITY.name,
        doc_md=AVAILABILITY.doc,
        inlets=airflow_assets(AVAILABILITY.reads),
        outlets=airflow_assets(AVAILABILITY.writes),
    )
    def refresh_availability(**context: object) -> dict:
        from ranking_jobs.airflow_glue import run_from_airflow

        return run_from_airflow(AVAILABILITY.name, context)

    refresh_availability()


ranking_availability()
