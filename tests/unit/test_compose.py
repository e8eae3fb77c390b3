"""docker-compose.yml and docker/Dockerfile, checked by parsing (no Docker engine needed).

Each check is a function returning a list of problems, so the same code is run on
the real file (must be clean) and on deliberately broken copies (must complain):
a check that cannot fail would prove nothing.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import ValidationError

from ranking_jobs.settings import ENV_PREFIX, FIELDS, Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKER_DIR = ROOT / "docker"
DOCKERFILE = DOCKER_DIR / "Dockerfile"

AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
RANKING_SERVICES = ("ranking-bootstrap", "ranking-api")
REQUIRED_SERVICES = {
    *AIRFLOW_SERVICES,
    *RANKING_SERVICES,
    "prometheus",
    "node-exporter",
    "postgres",
    "redis",
    "minio",
    "minio-init",
    "mlflow",
    "spark-master",
    "spark-worker",
}
# Services that must run the project image (same Python, Spark and pinned deps).
PROJECT_IMAGE_SERVICES = (*AIRFLOW_SERVICES, *RANKING_SERVICES, "mlflow", "spark-worker")
ENV_EXAMPLE = ROOT / ".env.example"


def env_example() -> dict[str, str]:
    """The variables of ``.env.example``, as a user's ``.env`` starts out."""
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


Doc = dict[str, Any]


# --- helpers -----------------------------------------------------------------


def load_compose() -> Doc:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose() -> Doc:
    return load_compose()


_VAR = re.compile(
    r"\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)


def interpolate(value: Any, dotenv: dict[str, str] | None = None) -> str:
    """A compose value as a user's stack sees it with ``dotenv`` as its ``.env`` (by
    default ``.env.example`` copied): a variable ``dotenv`` sets wins, else
    ``${X:-d}`` -> d; ``$$`` -> ``$``."""
    text = str(value)
    dotenv = env_example() if dotenv is None else dotenv

    def sub(m: re.Match[str]) -> str:
        name = m.group("name") or m.group("bare")
        if name in dotenv:
            return dotenv[name]
        if m.group("op") in (":-", "-"):
            return m.group("arg")
        raise ValueError(f"${{{name}}} is set nowhere: not in .env.example and no default")

    return "$".join(_VAR.sub(sub, part) for part in text.split("$$"))


def env_of(service: Doc) -> dict[str, str | None]:
    """A service's environment, in either the mapping or the ``KEY=VALUE`` list form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {k: v for k, v in pairs}
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def ranking_assignments(node: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every RANKING_* variable set anywhere in the document: (where, NAME, value)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and key.upper().startswith(ENV_PREFIX):
                yield where, key, value
            else:
                yield from ranking_assignments(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if isinstance(item, str) and re.match(rf"(?i){ENV_PREFIX}\w*=", item):
                name, value = item.split("=", 1)
                yield f"{where}[{i}]", name, value
            else:
                yield from ranking_assignments(item, f"{where}[{i}]")


def settings_env_names() -> dict[str, str]:
    """Env var name (upper case) -> flat name of its Settings field (the settings' table)."""
    return {env_name(flat): flat for flat in FIELDS}


def ranking_env(env: dict[str, str | None]) -> dict[str, str | None]:
    return {k: v for k, v in env.items() if k.upper().startswith(ENV_PREFIX)}


# --- checks (each returns a list of problems) ----------------------------------


def check_required_services(doc: Doc) -> list[str]:
    missing = REQUIRED_SERVICES - set(doc.get("services", {}))
    return [f"missing service {name!r}" for name in sorted(missing)]


def check_ranking_names(doc: Doc) -> list[str]:
    known = settings_env_names()
    return [
        f"{where}: {name} is not a Settings field (known: {', '.join(sorted(known))})"
        for where, name, _ in ranking_assignments(doc)
        if name.upper() not in known
    ]


def check_ranking_values(doc: Doc, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Build Settings from each service's RANKING_* variables (and the x-ranking-env
    anchor on its own): every value must validate and must actually be read."""
    known = settings_env_names()
    envs = {f"service {name}": env_of(svc) for name, svc in doc["services"].items()}
    envs["x-ranking-env"] = {k: str(v) for k, v in (doc.get("x-ranking-env") or {}).items()}
    problems = []
    for where, env in envs.items():
        wanted = ranking_env(env)
        if not wanted:
            continue
        try:
            values = {k: interpolate(v) for k, v in wanted.items() if v is not None}
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        with monkeypatch.context() as mp:
            for key in list(os.environ):
                if key.upper().startswith(ENV_PREFIX):
                    mp.delenv(key)
            for key, value in values.items():
                mp.setenv(key, value)
            try:
                settings = Settings()
            except ValidationError as exc:
                problems.append(f"{where}: Settings rejects its RANKING_* values: {exc}")
                continue
        for key in values:
            field = known.get(key.upper())
            if field and field not in settings.explicit():
                problems.append(f"{where}: {key} was set but Settings did not read it")
    return problems


def check_ranking_targets(doc: Doc) -> list[str]:
    """Hosts named in RANKING_* values are services of this file; s3 buckets are created."""
    services = doc["services"]
    hostnames = set(services) | {s["hostname"] for s in services.values() if "hostname" in s}
    bucket_init = " ".join(map(str, services.get("minio-init", {}).get("command") or []))
    problems = []
    for where, name, value in ranking_assignments(doc):
        text = str(value)
        if text.startswith("s3://"):
            bucket = urlparse(text).netloc
            if f"/{bucket}" not in bucket_init:
                problems.append(f"{where}: {name}: bucket {bucket!r} is not created by minio-init")
            continue
        if "://" in text:
            host = urlparse(text).hostname
        elif m := re.fullmatch(r"([A-Za-z][\w.-]*):\d+", text):
            host = m.group(1)
        else:
            continue
        if host not in hostnames:
            problems.append(f"{where}: {name}={text}: host {host!r} is not a service here")
    return problems


def check_depends_on(doc: Doc) -> list[str]:
    services = doc["services"]
    problems = []
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        items = deps.items() if isinstance(deps, dict) else ((d, {}) for d in deps)
        for target, spec in items:
            if target not in services:
                problems.append(f"{name} depends on undefined service {target!r}")
                continue
            condition = (spec or {}).get("condition", "service_started")
            if condition == "service_healthy" and "healthcheck" not in services[target]:
                problems.append(f"{name} waits for {target} to be healthy; it has no healthcheck")
            if condition == "service_completed_successfully" and services[target].get(
                "restart", "no"
            ) not in ("no", False):
                problems.append(f"{name} waits for {target} to exit, but {target} restarts")
    return problems


def check_airflow_common(doc: Doc) -> list[str]:
    """Airflow services: one project image, one environment (the anchors), and the DAGs of
    that image (a bind mount of ./dags would run other code than the image's)."""
    services = doc["services"]
    project = doc.get("x-project-image") or {}
    airflow_env = {k: str(v) for k, v in (doc.get("x-airflow-env") or {}).items()}
    stack_env = {k: str(v) for k, v in (doc.get("x-ranking-env") or {}).items()}
    problems = []
    if not stack_env:
        problems.append("no x-ranking-env anchor")
    if not airflow_env:
        problems.append("no x-airflow-env anchor")
    for name in PROJECT_IMAGE_SERVICES:
        svc = services.get(name, {})
        if svc.get("image") != project.get("image") or svc.get("build") != project.get("build"):
            problems.append(f"{name} does not use the project image {project.get('image')!r}")
    for name in AIRFLOW_SERVICES:
        env = env_of(services.get(name, {}))
        different = sorted(k for k, v in airflow_env.items() if env.get(k) != v)
        if different:
            problems.append(f"{name}: environment differs from x-airflow-env in {different}")
        if ranking_env(env) != stack_env:
            problems.append(f"{name}: RANKING_* variables are not exactly x-ranking-env")
        if any(str(v).startswith("./") for v in services.get(name, {}).get("volumes", [])):
            problems.append(f"{name}: mounts host files over the image's code or DAGs")
    return problems


def _host_ports(entry: Any) -> list[tuple[int, str]]:
    if isinstance(entry, dict):
        if entry.get("published") is None:
            return []
        spec, proto = interpolate(entry["published"]), entry.get("protocol", "tcp")
    else:
        text, _, proto = interpolate(entry).partition("/")
        parts = text.rsplit(":", 2)
        if len(parts) == 1:  # container port only: Docker picks the host port
            return []
        spec, proto = parts[-2], proto or "tcp"
    first, _, last = spec.partition("-")
    return [(p, proto) for p in range(int(first), int(last or first) + 1)]


def check_ports(doc: Doc) -> list[str]:
    seen: dict[tuple[int, str], str] = {}
    problems = []
    for name, svc in doc["services"].items():
        for entry in svc.get("ports") or []:
            for port in _host_ports(entry):
                if port in seen:
                    problems.append(f"host port {port[0]}/{port[1]}: {seen[port]} and {name}")
                seen[port] = name
    return problems


# Keys of the Compose Specification (compose-spec/compose-go schema/compose-spec.json):
# no Docker here to run `docker compose config`, so at least a misspelt key is caught.
TOP_LEVEL_KEYS = {
    "version",
    "name",
    "include",
    "services",
    "models",
    "networks",
    "volumes",
    "secrets",
    "configs",
}
# fmt: off
SERVICE_KEYS = {
    "develop", "deploy", "annotations", "attach", "build", "blkio_config", "cap_add", "cap_drop",
    "cgroup", "cgroup_parent", "command", "configs", "container_name", "cpu_count", "cpu_percent",
    "cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_period", "cpu_rt_runtime", "cpus", "cpuset",
    "credential_spec", "depends_on", "device_cgroup_rules", "devices", "dns", "dns_opt",
    "dns_search", "domainname", "entrypoint", "env_file", "label_file", "environment", "expose",
    "extends", "provider", "external_links", "extra_hosts", "gpus", "group_add", "healthcheck",
    "hostname", "image", "init", "ipc", "isolation", "labels", "links", "logging", "mac_address",
    "mem_limit", "mem_reservation", "mem_swappiness", "memswap_limit", "network_mode", "models",
    "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
    "post_start", "pre_stop", "privileged", "profiles", "pull_policy", "pull_refresh_after",
    "read_only", "restart", "runtime", "scale", "security_opt", "shm_size", "secrets", "sysctls",
    "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "tmpfs", "tty", "ulimits",
    "use_api_socket", "user", "uts", "userns_mode", "volumes", "volumes_from", "working_dir",
}
# fmt: on
HEALTHCHECK_KEYS = {
    "disable",
    "interval",
    "retries",
    "test",
    "timeout",
    "start_period",
    "start_interval",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
RESTARTS = {"no", "always", "on-failure", "unless-stopped"}


def check_compose_spec(doc: Doc) -> list[str]:
    problems = [
        f"unknown top-level key {k!r}"
        for k in doc
        if k not in TOP_LEVEL_KEYS and not k.startswith("x-")
    ]
    volumes = set(doc.get("volumes") or {})
    for name, svc in doc.get("services", {}).items():
        if "image" not in svc and "build" not in svc:
            problems.append(f"{name}: neither image nor build")
        for key in svc:
            if key not in SERVICE_KEYS and not key.startswith("x-"):
                problems.append(f"{name}: unknown service key {key!r}")
        for key in svc.get("healthcheck") or {}:
            if key not in HEALTHCHECK_KEYS:
                problems.append(f"{name}: unknown healthcheck key {key!r}")
        test = (svc.get("healthcheck") or {}).get("test", ["CMD"])
        if isinstance(test, list) and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            problems.append(f"{name}: healthcheck test must start with CMD or CMD-SHELL")
        deps = svc.get("depends_on") or {}
        for target, spec in deps.items() if isinstance(deps, dict) else ():
            if (spec or {}).get("condition") not in CONDITIONS:
                problems.append(f"{name}: depends_on {target} needs a valid condition")
        if str(svc.get("restart", "no")).split(":")[0] not in RESTARTS:
            problems.append(f"{name}: restart {svc['restart']!r}")
        env = svc.get("environment") or {}
        for key, value in env.items() if isinstance(env, dict) else ():
            if isinstance(value, (dict, list)):
                problems.append(f"{name}: environment {key} is not a scalar")
        for command_key in ("command", "entrypoint"):
            command = svc.get(command_key)
            if isinstance(command, list) and not all(isinstance(c, str) for c in command):
                problems.append(f"{name}: {command_key} items must be strings (quote numbers)")
        for mount in svc.get("volumes") or []:
            source = str(mount).split(":")[0] if isinstance(mount, str) else mount.get("source")
            if source.startswith((".", "/")):
                if not (ROOT / source).exists():
                    problems.append(f"{name}: bind mount source {source} does not exist")
            elif source not in volumes:
                problems.append(f"{name}: volume {source!r} is not declared at the top level")
    return problems


@functools.cache
def airflow_options() -> frozenset[tuple[str, str]]:
    """(section, key) of Airflow's own config template, read without importing airflow
    (importing it writes an airflow.cfg into AIRFLOW_HOME)."""
    spec = importlib.util.find_spec("airflow")
    assert spec and spec.submodule_search_locations
    for location in spec.submodule_search_locations:
        template = Path(location) / "config_templates" / "config.yml"
        if template.exists():
            sections = yaml.safe_load(template.read_text())
            return frozenset(
                (s, k) for s, body in sections.items() for k in body.get("options", {})
            )
    raise FileNotFoundError("airflow/config_templates/config.yml")


def check_airflow_options(doc: Doc) -> list[str]:
    known = airflow_options()
    problems = []
    for name, svc in doc["services"].items():
        for key in env_of(svc):
            if key.startswith("AIRFLOW__"):
                section, _, option = key[len("AIRFLOW__") :].lower().partition("__")
                # AIRFLOW__S__K_CMD / _SECRET are the indirect forms of option K
                base = re.sub(r"_(cmd|secret)$", "", option)
                if (section, option) not in known and (section, base) not in known:
                    problems.append(f"{name}: {key} is not an Airflow config option")
    return sorted(set(problems))


def all_problems(doc: Doc, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return [
        *check_required_services(doc),
        *check_compose_spec(doc),
        *check_ranking_names(doc),
        *check_ranking_values(doc, monkeypatch),
        *check_ranking_targets(doc),
        *check_depends_on(doc),
        *check_airflow_common(doc),
        *check_airflow_options(doc),
        *check_ports(doc),
    ]


# --- the real file -------------------------------------------------------------


def test_required_services_exist(compose: Doc) -> None:
    assert check_required_services(compose) == []


def test_keys_follow_the_compose_spec(compose: Doc) -> None:
    assert check_compose_spec(compose) == []


def test_every_ranking_variable_is_a_settings_field(compose: Doc) -> None:
    assert check_ranking_names(compose) == []
    names = {name.upper() for _, name, _ in ranking_assignments(compose)}
    # the stack is wired through settings, not by accident of defaults
    for required in (
        "DATA_ROOT",
        "S3_ENDPOINT_URL",
        "ONLINE_STORE",
        "REDIS_URL",
        "MLFLOW_TRACKING_URI",
        "SPARK_MASTER",
        "STATE_DIR",
    ):
        assert f"{ENV_PREFIX}{required}" in names


def test_ranking_values_validate_in_settings(compose: Doc, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_ranking_values(compose, monkeypatch) == []


def test_stack_settings_point_at_the_stack(compose: Doc, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_ranking_targets(compose) == []
    for key, value in compose["x-ranking-env"].items():
        monkeypatch.setenv(key, interpolate(value))
    s = Settings()
    assert s.paths.data_root.startswith("s3://") and s.paths.s3_endpoint_url, (
        "an s3 lake needs the MinIO URL"
    )
    assert s.feast.online_store == "redis"
    assert s.tracking_uri.startswith("http://")
    assert s.spark.master.startswith("spark://")


def test_depends_on_targets_exist(compose: Doc) -> None:
    assert check_depends_on(compose) == []


def test_airflow_services_share_image_and_env(compose: Doc) -> None:
    assert check_airflow_common(compose) == []
    commands = {n: compose["services"][n]["command"] for n in AIRFLOW_SERVICES}
    assert commands["airflow-api-server"][:2] == ["airflow", "api-server"]
    assert commands["airflow-scheduler"][:2] == ["airflow", "scheduler"]
    assert commands["airflow-dag-processor"][:2] == ["airflow", "dag-processor"]
    env = env_of(compose["services"]["airflow-scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"


def test_airflow_variables_are_airflow_options(compose: Doc) -> None:
    assert check_airflow_options(compose) == []


def test_host_ports_are_unique(compose: Doc) -> None:
    assert check_ports(compose) == []


def test_long_running_services_have_healthchecks(compose: Doc) -> None:
    for name, svc in compose["services"].items():
        if svc.get("restart", "no") != "no":
            assert "healthcheck" in svc, name


def test_spark_defaults_endpoint_matches_settings(compose: Doc) -> None:
    conf = dict(
        line.split(None, 1)
        for line in (DOCKER_DIR / "spark-defaults.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert conf["spark.hadoop.fs.s3a.endpoint"].strip() == interpolate(
        compose["x-ranking-env"]["RANKING_S3_ENDPOINT_URL"]
    )


def test_airflow_init_script_is_valid_bash() -> None:
    script = DOCKER_DIR / "airflow-init.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)


# --- broken copies must be caught ------------------------------------------------


def _set_env(service: str, key: str, value: str) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        env = dict(env_of(doc["services"][service]))
        env[key] = value
        doc["services"][service]["environment"] = env

    return mutate


def _list_env(doc: Doc) -> None:
    env = env_of(doc["services"]["spark-worker"])
    doc["services"]["spark-worker"]["environment"] = [f"{k}={v}" for k, v in env.items()] + [
        "RANKING_SPARK_MASTR=spark://spark-master:7077"
    ]


def _drop_env(doc: Doc) -> None:
    env = dict(env_of(doc["services"]["airflow-scheduler"]))
    del env["RANKING_ONLINE_STORE"]
    doc["services"]["airflow-scheduler"]["environment"] = env


BROKEN: dict[str, tuple[Callable[[Doc], None], str]] = {
    "misspelt name": (
        _set_env("airflow-scheduler", "RANKING_REDIS_URI", "redis:6379"),
        "RANKING_REDIS_URI is not a Settings field",
    ),
    "misspelt name, list form": (_list_env, "RANKING_SPARK_MASTR is not a Settings field"),
    "invalid literal": (
        _set_env("airflow-scheduler", "RANKING_ONLINE_STORE", "memcached"),
        "Settings rejects",
    ),
    "out-of-range int": (_set_env("spark-worker", "RANKING_TOP_N", "0"), "Settings rejects"),
    "env set nowhere": (_set_env("spark-worker", "RANKING_SEED", "${SEED}"), "is set nowhere"),
    "host not in stack": (
        _set_env("airflow-scheduler", "RANKING_REDIS_URL", "valkey:6379"),
        "'valkey' is not a service",
    ),
    "airflow env drift": (_drop_env, "airflow-scheduler: environment differs"),
    "other image": (
        lambda d: d["services"]["airflow-dag-processor"].update(image="apache/airflow:3.1.0"),
        "airflow-dag-processor does not use the project image",
    ),
    "undefined dependency": (
        lambda d: d["services"]["mlflow"]["depends_on"].update(
            kafka={"condition": "service_started"}
        ),
        "undefined service 'kafka'",
    ),
    "healthy without healthcheck": (
        lambda d: d["services"]["redis"].pop("healthcheck"),
        "it has no healthcheck",
    ),
    "duplicate port": (
        lambda d: d["services"]["mlflow"]["ports"].append("8080:8081"),
        "host port 8080/tcp",
    ),
    "missing service": (lambda d: d["services"].pop("spark-worker"), "missing service"),
    "misspelt Airflow option": (
        _set_env("airflow-scheduler", "AIRFLOW__CORE__EXECUTER", "LocalExecutor"),
        "AIRFLOW__CORE__EXECUTER is not an Airflow config option",
    ),
    "misspelt key": (
        lambda d: d["services"]["redis"].update(depend_on=["postgres"]),
        "unknown service key 'depend_on'",
    ),
    "undeclared volume": (
        lambda d: d["services"]["redis"]["volumes"].append("redis-dat:/data2"),
        "volume 'redis-dat' is not declared",
    ),
    "unquoted number in command": (
        lambda d: d["services"]["spark-master"]["command"].append(7077),
        "items must be strings",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_copies_are_caught(case: str, compose: Doc, monkeypatch: pytest.MonkeyPatch) -> None:
    mutate, expected = BROKEN[case]
    assert not [p for p in all_problems(compose, monkeypatch) if expected in p]
    broken = copy.deepcopy(compose)
    mutate(broken)
    problems = all_problems(broken, monkeypatch)
    assert any(expected in p for p in problems), problems


def test_interpolation_follows_compose() -> None:
    assert interpolate("${A:-x}/${B-y}", {}) == "x/y"
    assert interpolate("$${HOSTNAME}", {}) == "${HOSTNAME}"
    assert interpolate("${A:-x}/${B:?say}", {"A": "a", "B": "b"}) == "a/b"
    with pytest.raises(ValueError):
        interpolate("${A}", {})
    with pytest.raises(ValueError):
        interpolate("${A:?set it}", {})


def test_secrets_come_only_from_the_env_file(compose: Doc) -> None:
    """No password or secret has a default in the file; every variable the file
    requires is in .env.example; the real .env stays out of git and the image."""
    text = COMPOSE.read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "AIRFLOW_JWT_SECRET"} <= required
    assert not re.search(r"\$\{\w*(PASSWORD|SECRET|USER)\w*:-", text)
    assert required <= set(env_example())
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert ".env" in (DOCKER_DIR / "Dockerfile.dockerignore").read_text().split()
    env = env_of(compose["services"]["airflow-scheduler"])
    assert "AIRFLOW__CORE__FERNET_KEY" not in env
    key_file = env["AIRFLOW__CORE__FERNET_KEY_CMD"].removeprefix("cat ")
    assert key_file in (DOCKER_DIR / "airflow-init.sh").read_text()  # generated there


def test_every_service_has_a_memory_limit(compose: Doc) -> None:
    assert [n for n, svc in compose["services"].items() if not svc.get("mem_limit")] == []


def test_ranking_commands_are_cli_commands(compose: Doc) -> None:
    """The API and the bootstrap run `ranking-jobs` subcommands the CLI accepts."""
    from ranking_jobs.cli import build_parser

    for name in RANKING_SERVICES:
        command = [interpolate(part) for part in compose["services"][name]["command"]]
        assert command[0] == "ranking-jobs", name
        build_parser().parse_args(command[1:])  # exits on an unknown subcommand or flag
    api = compose["services"]["ranking-api"]
    port = api["command"][api["command"].index("--port") + 1]
    assert api["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"localhost:{port}/healthz" in " ".join(api["healthcheck"]["test"])


def test_prometheus_scrapes_the_api_and_the_monitoring_record(compose: Doc) -> None:
    config = yaml.safe_load((DOCKER_DIR / "prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    api = compose["services"]["ranking-api"]["command"]
    assert f"ranking-api:{api[api.index('--port') + 1]}" in targets
    assert "node-exporter:9100" in targets
    exporter = compose["services"]["node-exporter"]
    folder = next(a.split("=", 1)[1] for a in exporter["command"] if "textfile.directory" in a)
    mount = next(v for v in exporter["volumes"] if v.startswith("ranking-state:"))
    state = compose["x-ranking-env"]["RANKING_STATE_DIR"]
    # monitor_night writes <state dir>/monitoring/; the exporter sees the same volume
    assert folder == mount.split(":")[1] + "/monitoring"
    assert any(v == f"ranking-state:{state}" for v in compose["x-airflow-common"]["volumes"])


# --- the Dockerfile --------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        op, _, args = full.partition(" ")
        out.append((op.upper(), args.strip()))
    return out


def check_dockerfile(text: str) -> list[str]:
    steps = dockerfile_instructions(text)
    problems = []
    base = next((args for op, args in steps if op == "FROM"), "")
    if not base.startswith("python:3.11-slim"):
        problems.append(f"base image {base!r} is not python:3.11-slim (constraints are for 3.11)")
    copied: set[str] = set()
    pip_installs = 0
    for op, args in steps:
        if op == "COPY":
            sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
            copied.update(Path(s).name for s in sources)
        if op != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", args):
            words = shlex.split(command)
            if "pip" not in words or "install" not in words:
                continue
            pip_installs += 1
            constrained = any(
                w in ("-c", "--constraint") and nxt == "constraints.txt"
                for w, nxt in zip(words, [*words[1:], ""], strict=True)
            ) or any(w in ("-c=constraints.txt", "--constraint=constraints.txt") for w in words)
            if not constrained:
                problems.append(f"pip install without -c constraints.txt: {command.strip()}")
            elif "constraints.txt" not in copied:
                problems.append("constraints.txt is used before it is copied into the image")
    if not pip_installs:
        problems.append("the Dockerfile installs nothing with pip")
    if "openjdk-17-jre-headless" not in text and "openjdk-17-jdk-headless" not in text:
        problems.append("no Java 17 for Spark")
    return problems


def test_dockerfile_installs_with_constraints() -> None:
    text = DOCKERFILE.read_text()
    assert check_dockerfile(text) == []
    assert any(
        op == "RUN" and re.search(r"pip install -c constraints\.txt \.(\s|$)", args)
        for op, args in dockerfile_instructions(text)
    ), "the package itself is installed with the constraints"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("-c constraints.txt", ""), "pip install without -c"),
        (
            lambda t: t.replace(
                "RUN pip install",
                "RUN python -m pip install --upgrade pip && pip install requests && pip install",
            ),
            "pip install without -c constraints.txt: pip install requests",
        ),
        (lambda t: t.replace("COPY constraints.txt ", "COPY "), "used before it is copied"),
        (lambda t: t.replace("python:3.11-slim", "python:3.12-slim"), "base image"),
    ],
    ids=["no constraints", "extra unconstrained install", "constraints not copied", "wrong python"],
)
def test_dockerfile_check_can_fail(edit: Callable[[str], str], expected: str) -> None:
    problems = check_dockerfile(edit(DOCKERFILE.read_text()))
    assert any(expected in p for p in problems), problems


def test_compose_builds_the_dockerfile_from_the_repo_root(compose: Doc) -> None:
    build = compose["x-project-image"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    ignored = {
        line.strip().rstrip("/")
        for line in (DOCKER_DIR / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for op, args in dockerfile_instructions(DOCKERFILE.read_text()):
        if op == "COPY" and "--from" not in args:
            for source in [a for a in shlex.split(args) if not a.startswith("--")][:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the build context"
                assert source.split("/")[0] not in ignored, f"COPY {source}: excluded"
