"""The DAG folder as Airflow's parser sees it: imports, task order, schedule, interval."""

from __future__ import annotations

import ast
import datetime as dt
import itertools
import os
from pathlib import Path

import pytest

from ranking_jobs.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"ranking_nightly", "ranking_availability"}


def test_tasks_follow_the_stage_order_one_chain(dagbag):
    from ranking_jobs.stages import NIGHTLY

    dag = dagbag.dags["ranking_nightly"]
    expected = [s.name for s in NIGHTLY]
    assert expected[0] == "validate_raw" and expected[-1] == "write_report"
    assert dag.task_ids == expected or sorted(dag.task_ids) == sorted(expected)
    for upstream, downstream in itertools.pairwise(expected):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    leaves = [t.task_id for t in dag.tasks if not t.downstream_task_ids]
    assert leaves == ["write_report"]  # no trailing all_done task can hide a failure


def test_dag_settings(dagbag):
    dag = dagbag.dags["ranking_nightly"]
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert {"ranking", "nightly"} <= set(dag.tags)
    assert dag.doc_md and "data_interval_start" in dag.doc_md
    for t in dag.tasks:
        assert t.retries >= 1 and t.retry_exponential_backoff
        assert t.execution_timeout == dt.timedelta(
            minutes=load_settings().airflow.task_timeout_minutes
        )


def test_schedule_gives_non_empty_daily_interval_at_two(dagbag):
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dagbag.dags["ranking_nightly"].timetable)
    manual = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2026, 2, 1, 2))
    assert manual.end - manual.start == dt.timedelta(days=1)
    assert manual.start == pendulum.datetime(2026, 1, 31, 2)
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(
            earliest=pendulum.datetime(2026, 1, 1), latest=None, catchup=True
        ),
    )
    assert info.data_interval.end > info.data_interval.start
    assert (info.data_interval.start.hour, info.data_interval.start.minute) == (2, 0)
    assert info.run_after == info.data_interval.end


def test_tasks_carry_their_declared_inputs_and_outputs_as_assets(dagbag):
    """The UI's lineage: the nightly publish writes the online store the hourly DAG reads."""
    from ranking_jobs.stages import NIGHTLY, ONLINE

    nightly = dagbag.dags["ranking_nightly"]
    for stage in NIGHTLY:
        t = nightly.get_task(stage.name)
        assert [a.name for a in t.outlets] == list(stage.writes), stage.name
        assert {a.name for a in t.inlets} == {*stage.reads, *stage.reads_earlier_nights}
    publish = {(a.name, a.uri) for a in nightly.get_task("publish_lists").outlets}
    hourly = dagbag.dags["ranking_availability"].get_task("refresh_availability")
    shared = publish & {(a.name, a.uri) for a in hourly.inlets}
    assert [name for name, _ in shared] == [ONLINE]


def test_dag_file_imports_nothing_heavy_at_module_level():
    tree = ast.parse((DAGS / "ranking_nightly.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = {getattr(n, "module", None) or n.names[0].name for n in top_level}
    heavy = {"pyspark", "feast", "xgboost", "great_expectations", "mlflow", "pandas"}
    assert not {m.split(".")[0] for m in modules} & heavy
    assert "ranking_jobs.stages" in modules


def test_airflow_context_maps_to_interval_start_day():
    import pendulum

    from ranking_jobs.airflow_glue import context_from_airflow
    from ranking_jobs.airflow_runner import logical_date_for

    ctx = context_from_airflow(
        {
            "data_interval_start": pendulum.datetime(2026, 1, 31, 2),
            "data_interval_end": pendulum.datetime(2026, 2, 1, 2),
            "run_id": "scheduled__x",
            "params": {"top_n": 7},
        }
    )
    assert ctx.ds == dt.date(2026, 1, 31) and ctx.run_id == "scheduled__x"
    assert ctx.settings.lists.top_n == 7
    assert logical_date_for(dt.date(2026, 1, 31)).startswith("2026-02-01T02:00")
    with pytest.raises(ValueError, match="empty data interval"):
        context_from_airflow(
            {
                "data_interval_start": pendulum.datetime(2026, 1, 31, 2),
                "data_interval_end": pendulum.datetime(2026, 1, 31, 2),
            }
        )


def test_a_corrupt_file_fails_its_task_without_retries(tmp_path, monkeypatch):
    """Airflow retries any error but AirflowFailException; a file that is not Parquet
    fails the same way every time, so its task fails at once, naming the file."""
    from airflow.sdk.exceptions import AirflowFailException

    from ranking_jobs import contracts as C
    from ranking_jobs.airflow_glue import run_from_airflow

    monkeypatch.setenv("RANKING_DATA_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("RANKING_STATE_DIR", str(tmp_path / "var"))
    day = tmp_path / "lake" / C.RAW_EVENTS / "dt=2026-01-31"
    day.mkdir(parents=True)
    (day / "part-0.parquet").write_bytes(b"a truncated upload")
    start = dt.datetime(2026, 1, 31, 2, tzinfo=dt.UTC)
    context = {"data_interval_start": start, "data_interval_end": start + dt.timedelta(days=1)}
    with pytest.raises(AirflowFailException, match=r"raw/events/dt=2026-01-31/part-0\.parquet"):
        run_from_airflow("validate_raw", context)
