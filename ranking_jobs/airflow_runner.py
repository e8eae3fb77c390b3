"""Runs the nightly DAG through Airflow's own test runner (``airflow dags test``).

Airflow gets its own home under the state folder with a SQLite metadata DB, and
the pipeline settings travel to it as RANKING_* environment variables.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ranking_jobs.settings import FIELDS, Settings, env_name

log = logging.getLogger(__name__)

DAG_ID = "ranking_nightly"


# Paths (flat names) travel even when defaulted: a relative default resolves against the
# child's folder.
_PINNED = {"data_root", "state_dir", "feast_repo", "dags_folder"}


def settings_env(settings: Settings) -> dict[str, str]:
    """The fields set explicitly (and the paths) as RANKING_* variables, so a child process
    sees the same settings and, like the parent, lets the data profile choose the rest."""
    env = {}
    for name in sorted(settings.explicit() | _PINNED):
        section, attr = FIELDS[name]
        value = getattr(settings, section).model_dump(mode="json", include={attr})[attr]
        if value is not None:
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            env[env_name(name)] = text
    return env


def airflow_env(settings: Settings) -> dict[str, str]:
    home = settings.paths.state_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(settings_env(settings))
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.paths.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "SPARK_LOCAL_IP": env.get("SPARK_LOCAL_IP", "127.0.0.1"),
            "PYSPARK_PYTHON": env.get("PYSPARK_PYTHON", sys.executable),
        }
    )
    return env


def airflow_bin() -> str:
    local = Path(sys.executable).with_name("airflow")
    return str(local) if local.exists() else (shutil.which("airflow") or "airflow")


def logical_date_for(ds: dt.date) -> str:
    """The logical date whose inferred data interval is the run for day ``ds``.

    A manual run (``dags test``, the UI's trigger) gets the last *complete* interval
    before its logical date, so processing day D means triggering at D+1 02:00 UTC.
    """
    return f"{ds + dt.timedelta(days=1)}T02:00:00+00:00"


def run_dag_test(settings: Settings, ds: dt.date) -> int:
    """Migrate Airflow's DB if needed, then run one DAG run for ``ds``; return the exit code."""
    env = airflow_env(settings)
    # No scheduler watches deadlines here, and Airflow 3.3's `dags test` fails after the
    # last task of a DAG that has a Deadline Alert (it looks the alert up by the object).
    env[env_name("night_deadline_minutes")] = "0"
    airflow = airflow_bin()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    log.info("airflow dags test %s %s (AIRFLOW_HOME=%s)", DAG_ID, ds, env["AIRFLOW_HOME"])
    proc = subprocess.run([airflow, "dags", "test", DAG_ID, logical_date_for(ds)], env=env)
    return proc.returncode
