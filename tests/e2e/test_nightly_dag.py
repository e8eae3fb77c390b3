"""The nightly DAG on a tiny generated marketplace, through `airflow dags test`."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from tests.conftest import make_settings, redis_settings
from tests.servers import spark_cluster

pytestmark = pytest.mark.e2e

DS = dt.date(2026, 1, 31)
NIGHT = {"task_retries": 0, "history_days": 10, "min_gain_over_baseline": -1.0}
FIRST_LISTS: dict[str, pa.Table] = {}  # the first night's, before tests republish


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory):
    from ranking_jobs.airflow_runner import run_dag_test
    from ranking_jobs.data import generate

    # The gate is held open: these tests are about the plumbing around a champion, and a
    # 10-day tiny marketplace is too small for the model to beat every baseline surely
    # (the quality bar is bench.bench_quality's; the refused path has its own test).
    settings = make_settings(tmp_path_factory.mktemp("e2e"), **NIGHT)
    generate(RunContext.create(DS, settings))
    assert run_dag_test(settings, DS) == 0, "first DAG run failed"
    FIRST_LISTS["recommendations"] = lake.read_partition(settings, C.RECOMMENDATIONS, DS)
    return settings


def _lists(settings, users):
    from ranking_jobs.serving import RecommendationClient

    client = RecommendationClient(settings)
    return {u: client.get(u, limit=settings.lists.top_n) for u in users}


def test_three_users_read_back_from_the_online_store(night):
    settings = night
    published = lake.read_partition(settings, C.RECOMMENDATIONS, DS).to_pandas()
    users = published["user_id"].tolist()[:3]
    assert len(users) == 3
    items = lake.read_partition(settings, C.RAW_ITEMS, DS).to_pandas().set_index("item_id")
    sold = set(items.index[items["status"] == "sold"])
    bought = lake.read_days(
        settings,
        C.RAW_EVENTS,
        lake.day_range(DS, settings.generator.history_days),
        ["user_id", "item_id", "event_type"],
    )
    bought = bought.filter(pc.equal(bought["event_type"], "purchase")).to_pandas()

    for user, rec in _lists(settings, users).items():
        assert rec.personalised
        assert len(rec.items) == settings.lists.top_n
        assert np.all(np.diff(rec.scores) <= 0), "scores must be descending"
        assert len(set(rec.items)) == len(rec.items), "no duplicates"
        assert not sold & set(rec.items), "no sold listings"
        own = {i for i in rec.items if items.loc[i, "seller_id"] == user}
        assert not own, "no own listings"
        assert not set(bought.loc[bought.user_id == user, "item_id"]) & set(rec.items)
        assert rec.model_version.startswith(f"{settings.mlflow.registered_model}/v")
        assert rec.generated_at and rec.generated_at.startswith("2026-02-01")


def test_unknown_user_gets_the_popular_fallback(night):
    from ranking_jobs.serving import RecommendationClient
    from ranking_jobs.summaries import read_summary

    chosen = read_summary(RunContext.create(DS, night), "evaluate_model")["fallback"]
    assert chosen in ("popularity", "recent_popularity")
    rec = RecommendationClient(night).get(-42, limit=10)
    assert not rec.personalised
    assert len(rec.items) == 10 and rec.model_version == chosen


def test_report_and_stage_summaries_exist(night):
    """Every stage left its summary, and touched no lake table it does not declare."""
    import json

    from ranking_jobs.stages import NIGHTLY

    folder = night.paths.reports_dir / DS.isoformat()
    html = (folder / "report.html").read_text()
    assert "ndcg" in html.lower() and DS.isoformat() in html
    for stage in NIGHTLY:
        lineage = json.loads((folder / f"{stage.name}.json").read_text())["lineage"]
        assert lineage["undeclared"] == [], stage.name
        assert lineage["touched"], stage.name  # the record is on: every stage reads the lake
        assert stage.undeclared(set(lineage["touched"]), set()) == [], stage.name


def test_rerun_of_the_same_day_gives_identical_lists(night):
    from ranking_jobs.airflow_runner import run_dag_test

    settings = night
    users = lake.read_partition(settings, C.RECOMMENDATIONS, DS)["user_id"].to_pylist()[:3]
    before = _lists(settings, users)
    partition_before = lake.read_partition(settings, C.RECOMMENDATIONS, DS)
    assert run_dag_test(settings, DS) == 0, "rerun failed"
    after = _lists(settings, users)
    for u in users:
        assert after[u].items == before[u].items
        assert after[u].scores == before[u].scores
        assert after[u].model_version == before[u].model_version  # no duplicate model version
        assert after[u].run_id != before[u].run_id  # it really was republished
    partition_after = lake.read_partition(settings, C.RECOMMENDATIONS, DS)
    assert partition_after.num_rows == partition_before.num_rows  # nothing doubled
    cols = ["user_id", "item_ids", "scores", "model_version"]
    assert partition_after.select(cols).equals(partition_before.select(cols))


# A model that cannot rank: no leaf may hold less than an impossible hessian sum, so
# no tree ever splits and every candidate gets the same score. (A single stump was
# tried first: it still beat every baseline, 0.015 short of the champion.)
WORSE = {"min_child_weight": 1e9, "num_boost_round": 5}


def test_a_worse_model_is_refused_and_the_champion_keeps_publishing(night):
    from ranking_jobs import registry
    from ranking_jobs.runner import run_stage

    champion = registry.champion(night)
    assert champion is not None
    worse = night.replace(**WORSE, position_bias_ablation=False)
    ctx = RunContext.create(DS, worse, run_id="worse-model")
    trained = run_stage("train_model", ctx)
    assert trained["model_version"] != champion.version
    verdict = run_stage("evaluate_model", ctx)
    assert not verdict["promoted"]
    assert any("worse than champion" in r for r in verdict["reasons"]), verdict["reasons"]
    assert registry.champion(night) == champion  # the alias did not move
    run_stage("precompute_lists", ctx)
    run_stage("publish_lists", ctx)
    users = lake.read_partition(night, C.RECOMMENDATIONS, DS)["user_id"].to_pylist()[:3]
    for rec in _lists(night, users).values():
        assert rec.model_version == champion.label  # fresh lists, made by the champion
        assert rec.run_id == "worse-model"


def test_a_refused_model_without_champion_publishes_the_best_baselines_lists(night, tmp_path):
    """Never nothing: while no model has passed the gate, the night publishes the lists
    of the best baseline its evaluation found, labelled as such."""
    import shutil

    from ranking_jobs.feast_store import apply_definitions
    from ranking_jobs.runner import run_stage
    from ranking_jobs.serving import RecommendationClient

    lake_copy = tmp_path / "lake"
    shutil.copytree(night.paths.data_root, lake_copy)
    # A gain over the baselines above 1 NDCG is impossible: the gate must refuse
    # whatever the constant model's fixed order happens to score.
    fresh = night.replace(
        **WORSE,
        min_gain_over_baseline=1.0,
        data_root=str(lake_copy),
        state_dir=tmp_path / "var",
        position_bias_ablation=False,
    )
    ctx = RunContext.create(DS, fresh, run_id="no-champion")
    # The copied lake holds the night's features and training set; the new state folder
    # needs the Feast registry only.
    apply_definitions(fresh)
    for stage in ("profile_data", "train_model"):
        run_stage(stage, ctx)
    verdict = run_stage("evaluate_model", ctx)
    assert not verdict["promoted"]
    best = verdict["best_baseline"]
    assert best in verdict["baselines"] and verdict["publisher"] == f"baseline:{best}"
    assert any(f"best baseline, {best}" in r for r in verdict["reasons"]), verdict["reasons"]
    made = run_stage("precompute_lists", ctx)
    assert made["model_version"] == f"baseline:{best}"
    assert made["users"] == made["active_users"] > 100
    # made in batches of users, they are the lists one batch of every user gives
    from ranking_jobs.candidates.inputs import active_users
    from ranking_jobs.precompute import baseline_lists

    users = active_users(fresh, ctx.ds)
    whole = baseline_lists(ctx, users)[1]
    small = RunContext.create(DS, fresh.replace(precompute_shard_users=37), run_id="no-champion")
    assert baseline_lists(small, users)[1].equals(whole)
    assert whole.num_rows == made["users"]
    run_stage("validate_lists", ctx)
    run_stage("publish_lists", ctx)
    users = lake.read_partition(fresh, C.RECOMMENDATIONS, DS)["user_id"].to_pylist()[:3]
    for user in users:
        rec = RecommendationClient(fresh).get(user, limit=5)
        assert rec.personalised and rec.model_version == f"baseline:{best}"
        assert len(rec.items) == 5


def test_lists_do_not_depend_on_the_shards(night):
    """Spark's shards of users give exactly the lists that one shard in the driver
    gives, which is how the night made them (every tiny user fits one shard)."""
    from ranking_jobs import registry
    from ranking_jobs.candidates.inputs import active_users
    from ranking_jobs.precompute.scoring import in_one_process, lists_in_process, lists_in_spark

    ctx = RunContext.create(DS, night)
    users = active_users(night, DS)
    assert len(users) > 100 and in_one_process(night, users)
    sharded_settings = night.replace(precompute_shard_users=len(users) // 5)
    assert not in_one_process(sharded_settings, users)
    booster = registry.load_booster(night, registry.champion(night))
    as_of = pd.Timestamp(ctx.end)
    sharded = lists_in_spark(sharded_settings, booster, users, DS, as_of).to_pandas()
    whole = lists_in_process(night, booster, users, DS, as_of).to_pandas()
    published = FIRST_LISTS["recommendations"].sort_by("user_id")
    assert whole["user_id"].tolist() == published["user_id"].to_pylist()
    assert [list(x) for x in whole["item_ids"]] == published["item_ids"].to_pylist()

    sharded = sharded.sort_values("user_id", ignore_index=True)
    assert sharded["user_id"].tolist() == whole["user_id"].tolist()
    assert sharded["candidates"].tolist() == whole["candidates"].tolist()
    assert sharded["candidates"].min() >= night.lists.top_n  # every user had a full pool
    for got, want in zip(sharded.itertuples(), whole.itertuples(), strict=True):
        np.testing.assert_array_equal(got.item_ids, want.item_ids)
        np.testing.assert_array_equal(got.scores, want.scores)


def test_the_lists_job_finds_the_inputs_the_warm_up_loaded(night):
    """Spark keeps Python workers between jobs: tasks of a job after ``ListWorkers`` run
    in workers that already hold the night's inputs (the warm-up is not wasted); the
    driver's own error inside it is the one raised."""
    import pyarrow as pa

    from ranking_jobs.precompute import scoring
    from ranking_jobs.spark import get_spark

    with scoring.ListWorkers(night, DS) as workers:
        key = workers.wait()
    spark = get_spark(night, "precompute")
    slots = spark.sparkContext.defaultParallelism

    def probe(batches):
        for _ in batches:
            pass
        yield pa.record_batch({"loaded": pa.array([key in scoring._WORKER])})

    got = spark.range(0, slots, 1, slots).mapInArrow(probe, "loaded boolean").toArrow()
    assert got["loaded"].to_pylist() == [True] * slots

    with pytest.raises(LookupError, match="the driver failed"), scoring.ListWorkers(night, DS):
        raise LookupError("the driver failed")


def test_the_night_on_a_spark_cluster_with_an_s3_lake_publishes_local_modes_lists(
    night, s3_server, redis_server, tmp_path
):
    """The same raw data on a moto S3 server, the whole DAG with a standalone master and
    two workers and Redis as the online store: the features are extracted and the lists
    scored by executors on the workers, and every list equals local mode's."""
    import boto3
    import pyarrow.fs as pafs

    from ranking_jobs.airflow_runner import run_dag_test
    from ranking_jobs.serving import RecommendationClient

    bucket = f"cluster-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    with spark_cluster(tmp_path, workers=2, cores=1) as (master, work):
        remote = redis_settings(
            tmp_path,
            redis_server,
            data_root=f"s3://{bucket}/lake",
            s3_endpoint_url=s3_server,
            spark_master=master,
            **NIGHT,
        )
        s3, root = lake.filesystem(remote.paths.data_root, s3_server)
        # the generator's output, byte for byte
        pafs.copy_files(f"{night.paths.data_root}/raw", f"{root}/raw", destination_filesystem=s3)
        assert run_dag_test(remote, DS) == 0, "the night on the cluster failed"
        # both Spark stages ran executors on both workers: their logs are in the work folders
        apps = {p.parent.parent.name for p in work.glob("*/app-*/*/stderr")}
        assert len(apps) == 2, sorted(str(p) for p in work.glob("*/*"))
        assert {p.parts[-4] for p in work.glob("*/app-*/*/stderr")} == {"0", "1"}
    assert not (tmp_path / "lake").exists()  # nothing went to a local lake
    got = lake.read_partition(remote, C.RECOMMENDATIONS, DS)
    cols = ["user_id", "item_ids", "scores", "model_version"]
    want = FIRST_LISTS["recommendations"]
    assert got.num_rows == want.num_rows > 0
    assert got.sort_by("user_id").select(cols).equals(want.sort_by("user_id").select(cols))
    client = RecommendationClient(remote)
    for row in want.sort_by("user_id").slice(0, 5).to_pylist():
        rec = client.get(row["user_id"], limit=remote.lists.top_n)
        assert rec.personalised and rec.items == row["item_ids"], row["user_id"]


def test_monitoring_is_quiet_on_stable_nights_and_names_a_shifted_feature(night, webhook):
    """Two earlier nights are the reference; the night of DS is stable; then prices x10
    in DS's item features: a warning names the feature, and over the fail threshold the
    stage stops the night before publish, naming it too."""
    from ranking_jobs.monitoring import MonitoringError
    from ranking_jobs.report import monitoring_history
    from ranking_jobs.runner import run_stage

    url, alerts = webhook
    watched = night.replace(alert_webhook_url=url)
    for day in (DS - dt.timedelta(days=2), DS - dt.timedelta(days=1)):
        run_stage("profile_data", RunContext.create(day, watched, run_id="reference"))
        run_stage("monitor_night", RunContext.create(day, watched, run_id="reference"))
    stable = run_stage("monitor_night", RunContext.create(DS, watched, run_id="stable"))
    assert stable["status"] == "ok", stable["psi_top"]
    assert len(stable["reference_nights"]) == 2
    assert stable["drifted"] == [] and stable["psi_max"] is not None
    assert alerts == []
    textfile = Path(stable["textfile"]).read_text()  # what a textfile collector reads
    assert 'ranking_monitor_psi{name="price"}' in textfile
    assert 'ranking_monitor_age_days{name="champion"}' in textfile
    record = monitoring_history(watched, DS)
    tonight = record[record["ds"] == DS.isoformat()]
    assert {"psi", "null_share", "night", "age_days"} <= set(tonight["metric"])
    assert tonight.loc[tonight["name"] == "live_lists", "value"].item() == 0  # DS is live

    items = lake.read_partition(watched, C.FEATURES_ITEM, DS)
    shifted = items.set_column(
        items.schema.get_field_index("price"), "price", pc.multiply(items["price"], 10.0)
    )
    lake.write_partition(watched, C.FEATURES_ITEM, DS, shifted)
    try:
        lenient = watched.replace(monitor_psi_fail=1e6)
        warned = run_stage("monitor_night", RunContext.create(DS, lenient, run_id="warned"))
        assert warned["status"] == "warn" and "price" in warned["psi_top"]
        (alert,) = alerts
        assert alert["kind"] == "drift_warning" and alert["ds"] == DS.isoformat()
        assert "price (PSI" in alert["error"]
        with pytest.raises(MonitoringError, match=r"price \(PSI [0-9.]+, mean moved [0-9.]+ sd\)"):
            run_stage("monitor_night", RunContext.create(DS, watched, run_id="stopped"))
    finally:
        lake.write_partition(watched, C.FEATURES_ITEM, DS, items)
