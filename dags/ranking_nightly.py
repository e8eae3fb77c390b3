"""Nightly ranking DAG: wiring only; every task is one call into ``ranking_jobs``.

Parsed constantly by the dag-processor, so nothing heavy is imported here:
``ranking_jobs.stages`` is a list of names, and each task imports its stage
module only when it runs.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import (
    AsyncCallback,
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    dag,
    task,
)

from ranking_jobs.alerts import on_deadline_missed, on_task_failure
from ranking_jobs.settings import load_settings
from ranking_jobs.stages import NIGHTLY, Stage, airflow_assets

DOC = """
### ranking_nightly

Processes the UTC day D of `data_interval_start` (partition `dt=D`); the run
for D starts at 02:00 UTC on D+1, when its interval `[D 02:00, D+1 02:00)` ends.
A manual trigger gets the last *complete* interval before its logical date, so
to (re)process day D by hand trigger with logical date D+1 02:00 UTC, or use a
backfill over D.

validate raw data → Spark features into Feast → point-in-time training set →
XGBoost `rank:ndcg` → evaluation gate (moves the `champion` alias) → top-N lists
with the champion → list validation → drift monitoring against the nights before →
publish to the Feast online store → HTML report.

*Reruns and backfills* replace the day's partitions whole; a backfill of an old
day never replaces fresher lists that are already live. A failed validation, gate
or drift check stops the run before anything is published, so the last good lists
stay live. Every task is `ranking-jobs <task_id> --ds D` on the command line.

*Alerts*: a failed task, and a night still running `RANKING_NIGHT_DEADLINE_MINUTES`
after it was queued (a Deadline Alert: 06:00 UTC for a night queued at 02:00), go to
the channels of `RANKING_ALERT_*` (webhook, Slack, e-mail).
"""

SETTINGS = load_settings()
DEFAULT_ARGS = {
    "owner": "ranking",
    "retries": SETTINGS.airflow.task_retries,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=20),
    "execution_timeout": dt.timedelta(minutes=SETTINGS.airflow.task_timeout_minutes),
    "on_failure_callback": on_task_failure,
}


def _stage_task(stage: Stage):
    def run(**context: object) -> dict:
        from ranking_jobs.airflow_glue import run_from_airflow

        return run_from_airflow(stage.name, context)

    run.__name__ = stage.name
    run.__doc__ = stage.doc
    return task(
        task_id=stage.name,
        doc_md=stage.doc,
        inlets=airflow_assets((*stage.reads, *stage.reads_earlier_nights)),
        outlets=airflow_assets(stage.writes),
    )(run)


@dag(
    dag_id="ranking_nightly",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=dt.timedelta(minutes=SETTINGS.airflow.night_deadline_minutes),
        callback=AsyncCallback(on_deadline_missed),
    )
    if SETTINGS.airflow.night_deadline_minutes
    else None,
    tags=["ranking", "nightly", "feast", "xgboost"],
    doc_md=DOC,
    params={
        "top_n": Param(None, type=["null", "integer"], minimum=1, description="List length."),
    },
)
def ranking_nightly() -> None:
    previous = None
    for stage in NIGHTLY:
        current = _stage_task(stage)()
        if previous is not None:
            previous >> current
        previous = current


ranking_nightly()
