"""Settings from RANKING_* variables, the run context's dates, and the ``ranking-jobs`` CLI."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest
from pydantic import ValidationError

from ranking_jobs import cli
from ranking_jobs.context import RunContext, parse_ds
from ranking_jobs.settings import ENV_PREFIX, FIELDS, Settings, load_settings
from ranking_jobs.stages import NIGHTLY, STAGES

GOOD_DS = "2026-01-31"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RANKING_* variable of the machine running the tests leaks in; a scratch cwd."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def error_fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


# --- settings: environment ---------------------------------------------------------


def test_defaults_run_locally(tmp_path: Path) -> None:
    s = Settings()
    assert s.paths.data_root == str(tmp_path / "data")
    assert s.paths.state_dir == tmp_path / "var"
    assert s.generator.scale == "tiny"
    assert s.feast.online_store == "sqlite"
    assert s.paths.s3_endpoint_url is None
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'var' / 'mlflow.db'}"
    assert s.paths.feast_dir == tmp_path / "var" / "feast"
    assert s.paths.reports_dir == tmp_path / "var" / "reports"
    assert s.paths.artifact_root == (tmp_path / "var" / "mlartifacts").as_uri()
    assert Settings(mlflow_tracking_uri="http://mlflow:5000").tracking_uri == "http://mlflow:5000"


def test_prefixed_env_vars_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RANKING_TOP_N", "50")
    monkeypatch.setenv("RANKING_ONLINE_STORE", "redis")
    monkeypatch.setenv("RANKING_REDIS_URL", "cache:6380")
    monkeypatch.setenv("RANKING_SCALE", "small")
    monkeypatch.setenv("RANKING_EXCLUDE_PURCHASED", "false")
    monkeypatch.setenv("RANKING_LEARNING_RATE", "0.05")
    monkeypatch.setenv("RANKING_DATA_ROOT", "s3://bucket/prefix")
    monkeypatch.setenv("RANKING_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("RANKING_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ranking_seed", "11")  # env names are case-insensitive

    s = Settings()
    assert s.lists.top_n == 50
    assert s.feast.online_store == "redis"
    assert s.feast.redis_url == "cache:6380"
    assert s.generator.scale == "small"
    assert s.lists.exclude_purchased is False
    assert s.training.learning_rate == pytest.approx(0.05)
    assert s.paths.data_root == "s3://bucket/prefix"
    assert s.paths.s3_endpoint_url == "http://127.0.0.1:9000"
    assert s.paths.state_dir == tmp_path / "state"
    assert s.generator.seed == 11


def test_unprefixed_env_vars_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOP_N", "0")
    monkeypatch.setenv("SCALE", "huge")
    s = Settings()
    assert s.lists.top_n == 100
    assert s.generator.scale == "tiny"


def test_explicit_overrides_win_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKING_TOP_N", "50")
    monkeypatch.setenv("RANKING_SCALE", "small")

    assert Settings(top_n=7).lists.top_n == 7
    s = load_settings(top_n=7, scale=None)  # None means "not given": env still applies
    assert s.lists.top_n == 7
    assert s.generator.scale == "small"
    assert load_settings().lists.top_n == 50


@pytest.mark.parametrize(
    ("var", "value", "field"),
    [
        ("RANKING_TOP_N", "0", "top_n"),
        ("RANKING_TOP_N", "lots", "top_n"),
        ("RANKING_ONLINE_STORE", "memcached", "online_store"),
        ("RANKING_OFFLINE_STORE", "bigquery", "offline_store"),
        ("RANKING_SCALE", "huge", "scale"),
        ("RANKING_TASK_RETRIES", "-1", "task_retries"),
        ("RANKING_HISTORY_DAYS", "2", "history_days"),
        ("RANKING_MIN_REFERENTIAL_INTEGRITY", "1.5", "min_referential_integrity"),
        ("RANKING_LEARNING_RATE", "0", "learning_rate"),
        ("RANKING_EXCLUDE_PURCHASED", "maybe", "exclude_purchased"),
    ],
)
def test_bad_env_value_names_the_field(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, field: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert error_fields(info.value) == {f"{FIELDS[field][0]}.{field}"}  # section.flat name
    assert field in str(info.value)
    assert value in str(info.value)  # the offending input is shown


def test_unknown_prefixed_env_var_is_ignored_and_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """extra="forbid" only guards keyword arguments: pydantic-settings drops unknown
    RANKING_* variables, which matters because RANKING_LOG_LEVEL is read by logging, not
    by Settings, and must not break every command. A typo is dropped too, so every
    command and task names it at start."""
    from ranking_jobs.settings import unknown_variables

    monkeypatch.setenv("RANKING_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("RANKING_TOPN", "5")
    monkeypatch.setenv("RANKING_ZZZ_NOTHING_LIKE_IT", "1")
    s = Settings()
    assert s.lists.top_n == 100
    assert not hasattr(s, "log_level")
    assert unknown_variables() == [
        "RANKING_TOPN (did you mean RANKING_TOP_N?)",
        "RANKING_ZZZ_NOTHING_LIKE_IT",
    ]
    monkeypatch.setenv("RANKING_SCALE", "huge")  # the command stops before running anything
    with caplog.at_level("WARNING"):
        assert cli.main(["validate_raw", "--ds", GOOD_DS]) == 2
    assert "unknown setting RANKING_TOPN (did you mean RANKING_TOP_N?) is ignored" in caplog.text


def test_unknown_keyword_is_an_error() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(topn=5)
    assert error_fields(info.value) == {"topn"}
    assert "extra_forbidden" in {e["type"] for e in info.value.errors()}


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.lists.top_n = 3  # type: ignore[misc]


# --- settings: paths -------------------------------------------------------------------


def test_relative_data_root_is_made_absolute(tmp_path: Path) -> None:
    s = Settings(data_root="lake/here", state_dir=Path("state"))
    assert s.paths.data_root == str(tmp_path / "lake" / "here")
    assert Path(s.paths.data_root).is_absolute()
    assert s.paths.state_dir == tmp_path / "state"
    assert Settings(data_root="./data/../lake").paths.data_root == str(tmp_path / "lake")


def test_home_relative_root_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings(data_root="~/lake").paths.data_root == str(tmp_path / "home" / "lake")


def test_relative_env_root_is_pinned_at_load_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RANKING_DATA_ROOT", "rel")
    s = Settings()
    monkeypatch.chdir("/")
    assert s.paths.data_root == str(tmp_path / "rel")  # later chdir does not move the lake


def test_uri_roots_are_kept_but_lose_trailing_slash() -> None:
    assert Settings(data_root="s3://bucket/prefix/").paths.data_root == "s3://bucket/prefix"
    assert Settings(data_root="gs://b/p").paths.data_root == "gs://b/p"


# --- run context -------------------------------------------------------------------------


def test_run_context_from_pendulum_datetime_is_a_plain_date() -> None:
    logical = pendulum.datetime(2026, 1, 31, tz="UTC")
    ctx = RunContext.create(logical, Settings())
    assert type(ctx.ds) is dt.date  # not pendulum.Date: Spark rejects the subclass
    assert ctx.ds == dt.date(2026, 1, 31)
    assert ctx.ds_str == GOOD_DS
    assert ctx.run_id == "manual__2026-01-31"
    assert ctx.start == dt.datetime(2026, 1, 31, tzinfo=dt.UTC)
    assert ctx.end - ctx.start == dt.timedelta(days=1)
    assert ctx.day(-1) == dt.date(2026, 1, 30)


def test_parse_ds_forms_all_give_plain_utc_dates() -> None:
    paris = pendulum.datetime(2026, 2, 1, 0, 30, tz="Europe/Paris")  # still Jan 31 in UTC
    cases = [
        paris,
        pendulum.date(2026, 1, 31),
        dt.datetime(2026, 1, 31, 23, 59),
        dt.date(2026, 1, 31),
        "2026-01-31",
        "2026-01-31T00:00:00+00:00",
    ]
    for value in cases:
        got = parse_ds(value)
        assert type(got) is dt.date, value
        assert got == dt.date(2026, 1, 31), value


@pytest.mark.parametrize("bad", ["2026-13-40", "2026-02-30", "31/01/2026", "", "yesterday"])
def test_parse_ds_rejects_bad_dates_clearly(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD") as info:
        parse_ds(bad)
    assert repr(bad) in str(info.value)


def test_parse_ds_string_and_datetime_agree() -> None:
    value = "2026-01-31T23:00:00-05:00"
    assert parse_ds(value) == parse_ds(dt.datetime.fromisoformat(value))  # 2026-02-01 UTC
    with pytest.raises(ValueError):
        parse_ds("2026-01-31junk")


# --- CLI: help ---------------------------------------------------------------------------


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def run_main(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int | str | None, str, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_every_nightly_stage_has_a_subcommand() -> None:
    commands = subparsers(cli.build_parser())
    for stage in NIGHTLY:
        assert stage.name in commands, stage.name
        assert "--ds" in options(commands[stage.name])
    assert set(STAGES) <= set(commands)
    assert {"generate", "night", "airflow-test", "demo", "recommend"} <= set(commands)


def test_top_level_help_lists_every_command_and_option(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0
    for name in subparsers(cli.build_parser()):
        assert name in out, name
    for option in options(cli.build_parser()):
        assert option in out, option


@pytest.mark.parametrize("command", sorted(subparsers(cli.build_parser())))
def test_each_subcommand_help_mentions_every_option(
    command: str, capsys: pytest.CaptureFixture
) -> None:
    parser = subparsers(cli.build_parser())[command]
    code, out, _ = run_main([command, "--help"], capsys)
    assert code == 0
    assert out.startswith(f"usage: ranking-jobs {command}")
    expected = options(parser)
    assert {"--help", "--data-root", "--state-dir", "--scale"} <= set(expected)
    for option in expected:
        assert option in out, f"{command} help lacks {option}"
    assert f"{ENV_PREFIX}DATA_ROOT" in out
    if command in STAGES:
        assert STAGES[command].doc.split()[0] in out  # the stage's doc is the description


def test_installed_console_script_help() -> None:
    script = Path(sys.executable).with_name("ranking-jobs")
    assert script.exists(), f"{script} missing: pip install -e . (the README's commands)"
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ranking-jobs")
    for stage in NIGHTLY:
        assert stage.name in done.stdout
    assert "Traceback" not in done.stderr


# --- CLI: bad input ----------------------------------------------------------------------


def test_bad_scale_flag_exits_2(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_main(["--scale", "huge", "validate_raw", "--ds", GOOD_DS], capsys)
    assert code == 2
    assert "huge" in err

    code, _, err = run_main(["validate_raw", "--ds", GOOD_DS, "--scale", "huge"], capsys)
    assert code == 2
    assert "--scale" in err and "invalid choice: 'huge'" in err


def test_missing_ds_exits_2(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_main(["build_features"], capsys)
    assert code == 2
    assert "--ds" in err


def test_bad_scale_env_returns_2_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("RANKING_SCALE", "huge")
    code = cli.main(["validate_raw", "--ds", GOOD_DS])  # stops before running anything
    err = capsys.readouterr().err
    assert code == 2
    assert "bad settings" in err and "scale" in err and "huge" in err


def test_flags_win_over_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RANKING_SCALE", "large")
    monkeypatch.setenv("RANKING_DATA_ROOT", str(tmp_path / "from-env"))
    args = cli.build_parser().parse_args(
        ["train_model", "--ds", GOOD_DS, "--scale", "small", "--state-dir", "st"]
    )
    s = cli._settings(args)
    assert s.generator.scale == "small"
    assert s.paths.data_root == str(tmp_path / "from-env")  # not given as a flag: env applies
    assert s.paths.state_dir == tmp_path / "st"


def test_bad_ds_gives_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    """Today the error is a ValueError that names the value and the expected format,
    raised before any stage runs."""
    with pytest.raises((ValueError, SystemExit)) as info:
        cli.main(["validate_raw", "--ds", "2026-13-40"])
    text = str(info.value) + capsys.readouterr().err
    assert "2026-13-40" in text
    assert "YYYY-MM-DD" in text


def test_bad_ds_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    code, _, err = run_main(["validate_raw", "--ds", "2026-13-40"], capsys)
    assert code == 2
    assert "--ds" in err and "2026-13-40" in err


def test_derived_paths_follow_a_copy_with_another_state_dir(tmp_path) -> None:
    """model_copy(update=...) must not carry the original's derived paths along."""
    first = Settings(state_dir=tmp_path / "a")
    assert first.paths.feast_dir == tmp_path / "a" / "feast"
    second = first.replace(state_dir=tmp_path / "b")
    assert second.paths.feast_dir == tmp_path / "b" / "feast"
    assert second.paths.reports_dir == tmp_path / "b" / "reports"
    assert "/b/" in second.tracking_uri and "/b/" in second.paths.artifact_root


def test_settings_travel_to_a_child_process_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ranking_jobs.airflow_runner import settings_env

    sent = Settings(
        data_root=str(tmp_path / "lake"),
        candidate_quotas={"trending": 0.5, "covisitation": 0.2},
        exclude_purchased=False,
        seller_cap=2,
    )
    env = settings_env(sent)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == sent
    # a defaulted setting stays unset in the child, where the data profile may choose it
    assert "RANKING_LABEL_WINDOW_DAYS" not in env and "RANKING_ACTIVE_DAYS" not in env
    assert Settings().explicit() == sent.explicit() | {
        "data_root",
        "state_dir",
        "feast_repo",
        "dags_folder",
    }
