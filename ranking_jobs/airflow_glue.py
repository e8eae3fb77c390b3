"""Turns an Airflow task context into a RunContext and runs one stage."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ranking_jobs.context import RunContext
from ranking_jobs.lake import CorruptPartitionError
from ranking_jobs.runner import run_stage
from ranking_jobs.settings import load_settings, warn_unknown_variables


def context_from_airflow(context: Mapping[str, Any]) -> RunContext:
    """The processed day is the date of the data interval start (02:00 UTC of ``ds``)."""
    start = context.get("data_interval_start") or context["logical_date"]
    end = context.get("data_interval_end")
    if end is not None and start is not None and end <= start:
        raise ValueError(
            f"empty data interval {start}..{end}: the DAG needs a data-interval timetable"
        )
    params = {k: v for k, v in (context.get("params") or {}).items() if v is not None}
    settings = load_settings(**params)
    run_id = str(context.get("run_id") or f"airflow__{start:%Y-%m-%d}")
    return RunContext.create(start, settings, run_id)


def run_from_airflow(name: str, context: Mapping[str, Any]) -> dict[str, Any]:
    from ranking_jobs.logs import setup_logging

    setup_logging()
    warn_unknown_variables(logging.getLogger(__name__))
    try:
        # `airflow dags test` runs every task in one process
        return run_stage(name, context_from_airflow(context), end_spark=True)
    except CorruptPartitionError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        # The same bytes fail the same way on every try: fail now, without the retries
        # meant for what may pass on its own (a busy store, a lost worker).
        raise AirflowFailException(str(exc)) from exc
