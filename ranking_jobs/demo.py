"""``make demo``: a small marketplace through the real nightly DAG, then a look at it."""

from __future__ import annotations

import logging
import time

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext

log = logging.getLogger(__name__)


def run_demo(ctx: RunContext, sample_users: int = 3) -> int:
    from ranking_jobs.airflow_runner import run_dag_test
    from ranking_jobs.data import generate
    from ranking_jobs.serving import RecommendationClient

    # A demo should fail fast rather than sit in Airflow's retry back-off.
    settings = ctx.settings.replace(task_retries=0)
    started = time.perf_counter()
    summary = generate(ctx)
    log.info("generated marketplace: %s", summary)
    code = run_dag_test(settings, ctx.ds)
    if code != 0:
        print(
            f"\nThe DAG run for {ctx.ds_str} failed (exit {code}); see the task logs above "
            f"and {settings.paths.state_dir / 'airflow'}."
        )
        return code

    lists = lake.read_partition(settings, C.RECOMMENDATIONS, ctx.ds, ["user_id"])
    users = lists["user_id"].to_pylist()[:sample_users]
    client = RecommendationClient(settings)
    print("\n=== top-10 lists read back from the Feast online store ===")
    for user in [*users, -1]:
        rec = client.get(user, limit=10)
        kind = "personalised" if rec.personalised else "fallback (unknown user)"
        print(f"user {user}: {kind}, model {rec.model_version}, generated at {rec.generated_at}")
        for rank, (item, score) in enumerate(zip(rec.items, rec.scores, strict=True), 1):
            print(f"  {rank:2d}. item {item:>8d}  score {score: .4f}")
    report = settings.paths.reports_dir / ctx.ds_str / "report.html"
    print("\n=== where to look ===")
    print(f"report:        {report}")
    print(f"lake:          {settings.paths.data_root}")
    print(f"lists:         {lake.partition_uri(settings, C.RECOMMENDATIONS, ctx.ds)}")
    print(f"MLflow:        {settings.tracking_uri}  (mlflow ui --backend-store-uri ...)")
    print(f"Airflow home:  {settings.paths.state_dir / 'airflow'}")
    print(f"one user:      ranking-jobs recommend --user {users[0] if users else 1}")
    print(f"done in {time.perf_counter() - started:.0f}s")
    return 0
