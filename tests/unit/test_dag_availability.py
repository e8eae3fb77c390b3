"""The hourly ranking_availability DAG as Airflow's parser sees it."""

from __future__ import annotations

import ast
import datetime as dt
import os
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS / "ranking_availability.py"))
    assert bag.import_errors == {}
    return bag.dags["ranking_availability"]


def test_one_task_that_runs_the_availability_stage(dag):
    from ranking_jobs.stages import STAGES

    assert dag.task_ids == ["refresh_availability"]
    stage = STAGES["refresh_availability"]
    assert stage.load().__name__ == "refresh_availability"
    task = dag.get_task("refresh_availability")
    assert task.retries >= 1 and task.retry_exponential_backoff
    assert task.execution_timeout == dt.timedelta(minutes=20)
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert {"ranking", "hourly"} <= set(dag.tags) and "sold_items" in dag.doc_md


def test_hourly_utc_schedule_with_non_empty_intervals(dag):
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    manual = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2026, 2, 1, 3, 30))
    assert manual.start == pendulum.datetime(2026, 2, 1, 2, 5)
    assert manual.end - manual.start == dt.timedelta(hours=1)
    first = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(
            earliest=pendulum.datetime(2026, 1, 1), latest=None, catchup=True
        ),
    )
    assert first.data_interval.end - first.data_interval.start == dt.timedelta(hours=1)
    assert first.run_after == first.data_interval.end
    later = timetable.next_dagrun_info(
        last_automated_data_interval=first.data_interval,
        restriction=TimeRestriction(
            earliest=pendulum.datetime(2026, 1, 1), latest=None, catchup=True
        ),
    )
    assert later.data_interval.start == first.data_interval.end  # no gaps, no overlap
    assert str(later.data_interval.start.tzinfo) in {"UTC", "+00:00"}


def test_airflow_context_of_an_hour_maps_to_its_day():
    import pendulum

    from ranking_jobs.airflow_glue import context_from_airflow

    ctx = context_from_airflow(
        {
            "data_interval_start": pendulum.datetime(2026, 2, 1, 23, 5),
            "data_interval_end": pendulum.datetime(2026, 2, 2, 0, 5),
            "run_id": "scheduled__h",
        }
    )
    assert ctx.ds == dt.date(2026, 2, 1) and ctx.run_id == "scheduled__h"


def test_dag_file_imports_nothing_heavy_at_module_level():
    tree = ast.parse((DAGS / "ranking_availability.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {getattr(n, "module", None) or n.names[0].name for n in top_level}
    heavy = {"pyspark", "feast", "xgboost", "great_expectations", "mlflow", "pandas", "redis"}
    assert not {m.split(".")[0] for m in modules} & heavy
    assert "ranking_jobs.stages" in modules
