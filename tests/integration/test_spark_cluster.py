"""Precompute scoring on a real Spark standalone cluster: a master and a worker JVM
started here, the driver in a child process with only ``RANKING_SPARK_MASTER`` set
differently from local mode. Scores must equal ``predict``'s, and the worker's
work folder must show that an executor of the job ran there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyspark
import pytest

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.training.model import predict
from tests.integration.test_precompute_scoring import DAY, _booster, candidate_rows
from tests.servers import free_port, wait_for_port

SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} in {log}:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """spark://127.0.0.1:<port> of a standalone master with one 2-core worker."""
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    port = free_port()
    work = tmp_path / "worker-work"
    procs: list[subprocess.Popen] = []
    logs = [tmp_path / "master.log", tmp_path / "worker.log"]
    try:
        with logs[0].open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(SPARK_CLASS), "org.apache.spark.deploy.master.Master", "--host",
                     "127.0.0.1", "--port", str(port), "--webui-port", str(free_port())],
                    env=env, stdout=out, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        wait_for_port(port, timeout=90, proc=procs[0])
        with logs[1].open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(SPARK_CLASS), "org.apache.spark.deploy.worker.Worker",
                     f"spark://127.0.0.1:{port}", "--host", "127.0.0.1", "--cores", "2",
                     "--memory", "2g", "--webui-port", str(free_port()), "--work-dir", str(work)],
                    env=env, stdout=out, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        _wait_for_line(logs[0], "Registering worker", procs[1])
        yield f"spark://127.0.0.1:{port}", env, work
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_scoring_runs_unchanged_on_a_standalone_cluster(cluster, settings, tmp_path) -> None:
    master, env, work = cluster
    rng = np.random.default_rng(5)
    booster = _booster(rng)
    rows = candidate_rows(rng, users=40)
    n = len(rows)
    # Several row groups: several tasks for the worker's two cores.
    uri = lake.write_partition(
        settings, C.CANDIDATES, DAY, pa.Table.from_pandas(rows), row_group_rows=1_000
    )
    model = tmp_path / "model.ubj"
    booster.save_model(str(model))
    out = tmp_path / "scored.parquet"
    child_env = {
        **env,
        "RANKING_SPARK_MASTER": master,
        "RANKING_DATA_ROOT": settings.data_root,
        "RANKING_STATE_DIR": str(settings.state_dir),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_spark_cluster", str(model), uri, str(out)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == master

    scored = pq.read_table(out).to_pandas()
    assert len(scored) == n and not scored.duplicated(["user_id", "item_id"]).any()
    got = rows.merge(scored, on=["user_id", "item_id"], validate="one_to_one")
    np.testing.assert_array_equal(got["score"].to_numpy(np.float32), predict(booster, got))
    # The executor ran on the worker: its application folder holds the executor's log.
    assert any(work.glob("app-*/*/stderr")), sorted(p.name for p in work.glob("*"))


def _child(model: str, uri: str, out: str) -> None:
    """The driver: settings from the environment, exactly as a DAG task gets them."""
    import xgboost as xgb

    from ranking_jobs.precompute.scoring import score_in_spark
    from ranking_jobs.settings import Settings
    from ranking_jobs.spark import get_spark

    settings = Settings()
    pq.write_table(score_in_spark(settings, xgb.Booster(model_file=model), uri), out)
    print(get_spark(settings).sparkContext.master)


if __name__ == "__main__":
    _child(*sys.argv[1:4])
