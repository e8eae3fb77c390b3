"""Settings in sections: every flat RANKING_* name still sets its field, flat keywords
route to their section, and the explicit/replace helpers."""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ranking_jobs.settings import (
    ENV_PREFIX,
    FIELDS,
    SECTIONS,
    PublishSettings,
    Settings,
    env_name,
    load_settings,
    unknown_variables,
)

# The variables of the flat Settings before the sections: none may change its name.
FLAT_NAMES = [
    "data_root",
    "state_dir",
    "s3_endpoint_url",
    "task_retries",
    "task_timeout_minutes",
    "night_deadline_minutes",
    "alert_webhook_url",
    "alert_slack_conn_id",
    "alert_email_to",
    "scale",
    "seed",
    "history_days",
    "spark_master",
    "spark_driver_memory",
    "spark_shuffle_partitions",
    "feature_batch_rows",
    "prior_strength",
    "feast_project",
    "feast_repo",
    "dags_folder",
    "offline_store",
    "online_store",
    "online_store_config",  # added with the online-store port
    "redis_url",
    "user_item_lookback_days",
    "retrieval_chunk_rows",
    "train_days",
    "label_window_days",
    "valid_windows",
    "min_holdout_queries",
    "min_history_days",
    "train_max_rows",
    "train_engine",
    "eval_users",
    "holdout_row_users",
    "candidates_per_user",
    "candidate_size_first",
    "candidate_quotas",
    "num_boost_round",
    "early_stopping_rounds",
    "max_depth",
    "learning_rate",
    "min_child_weight",
    "colsample_bytree",
    "nthread",
    "categorical_features",
    "train_rows",
    "position_debias",
    "search_trials",
    "search_timeout_s",
    "position_bias_ablation",
    "mlflow_tracking_uri",
    "mlflow_experiment",
    "registered_model",
    "eval_k",
    "min_gain_over_baseline",
    "champion_tolerance",
    "min_referential_integrity",
    "volume_window_days",
    "volume_min_ratio",
    "volume_max_ratio",
    "top_n",
    "surface_size",
    "precompute_shard_users",
    "seller_cap",
    "lists_coverage_band",
    "exclude_purchased",
    "exclude_engaged",
    "active_days",
    "fallback_size",
    "monitor_sample_users",
    "monitor_sample_rows",
    "monitor_reference_nights",
    "monitor_psi_warn",
    "monitor_min_shift",
    "monitor_psi_fail",
    "publish_batch_rows",
    "publish_attempts",
    "publish_backoff_s",
    "publish_lock_wait_s",
    "list_ttl_days",
    "serve_host",
    "serve_port",
    "serve_direct_redis",
    "serve_redis_timeout_s",
    "sold_items_margin_hours",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _other_value(flat: str, tmp_path: Path) -> str:
    """A valid value of the field, other than its default, as its variable spells it."""
    section, attr = FIELDS[flat]
    info = SECTIONS[section].model_fields[attr]
    default = getattr(SECTIONS[section](), attr)
    hint = typing.get_type_hints(SECTIONS[section])[attr]
    choices = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()
    if choices:
        return next(c for c in choices if c != default)
    if isinstance(default, bool):
        return str(not default).lower()
    if isinstance(default, int):
        return str(default + 1)
    if isinstance(default, float):
        return str(default / 2 if default else 1.0)
    if isinstance(default, dict):
        return json.dumps({"trending": 0.5})
    if isinstance(default, Path):
        return str(tmp_path / flat)
    if flat == "data_root":
        return "s3://bucket/prefix"
    assert info.annotation in (str, str | None), (flat, info.annotation)
    return f"http://{flat}.example:1"


def test_the_flat_names_are_exactly_the_old_ones() -> None:
    assert sorted(FIELDS) == sorted(FLAT_NAMES)
    assert len(set(FLAT_NAMES)) == len(FLAT_NAMES)


@pytest.mark.parametrize("flat", sorted(FIELDS))
def test_every_flat_variable_sets_its_section_field(
    flat: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    section, attr = FIELDS[flat]
    raw = _other_value(flat, tmp_path)
    monkeypatch.setenv(env_name(flat), raw)
    assert env_name(flat) == f"RANKING_{flat.upper()}"

    got = Settings()
    expected = getattr(
        SECTIONS[section].model_validate(
            {flat: json.loads(raw)} if raw[:1] == "{" else {flat: raw}
        ),
        attr,
    )
    assert getattr(getattr(got, section), attr) == expected
    assert got.value(flat) == expected
    assert expected != getattr(SECTIONS[section](), attr)  # the variable changed something
    assert got.explicit() == {flat}
    assert unknown_variables() == []


def test_flat_keywords_route_to_their_sections(tmp_path: Path) -> None:
    s = load_settings(
        data_root=str(tmp_path / "lake"),
        online_store="redis",
        top_n=5,
        publish_batch_rows=3,
        monitor_psi_warn=0.5,
        serve_port=9000,
        scale=None,  # None: not given
    )
    assert s.paths.data_root == str(tmp_path / "lake")
    assert s.feast.online_store == "redis"
    assert s.lists.top_n == 5
    assert s.publish.batch_rows == 3
    assert s.monitoring.psi_warn == 0.5
    assert s.serving.port == 9000
    assert s.generator.scale == "tiny"
    assert s.explicit() == {
        "data_root",
        "online_store",
        "top_n",
        "publish_batch_rows",
        "monitor_psi_warn",
        "serve_port",
    }


def test_keywords_win_over_env_field_by_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKING_TOP_N", "50")
    monkeypatch.setenv("RANKING_SURFACE_SIZE", "5")
    s = Settings(top_n=7)
    assert (s.lists.top_n, s.lists.surface_size) == (7, 5)  # the same section, merged


def test_a_section_keyword_is_accepted_too() -> None:
    s = Settings(lists={"top_n": 9}, seller_cap=2)
    assert (s.lists.top_n, s.lists.seller_cap) == (9, 2)
    p = Settings(publish=PublishSettings(batch_rows=4, attempts=2), publish_attempts=3)
    assert (p.publish.batch_rows, p.publish.attempts) == (4, 3)  # the flat keyword wins
    assert p.explicit() == {"publish_batch_rows", "publish_attempts"}


def test_unknown_keyword_and_bad_value_are_errors() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        load_settings(publish_batch_row=3)
    with pytest.raises(ValidationError) as info:
        load_settings(publish_batch_rows=0)
    assert [e["loc"] for e in info.value.errors()] == [("publish", "publish_batch_rows")]


def test_bad_json_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKING_CANDIDATE_QUOTAS", "{not json")
    with pytest.raises(ValueError, match="RANKING_CANDIDATE_QUOTAS"):
        Settings()
    monkeypatch.setenv("RANKING_CANDIDATE_QUOTAS", '{"nowhere": 0.5}')
    with pytest.raises(ValidationError, match="unknown candidate sources"):
        Settings()


@pytest.mark.parametrize(
    ("typo", "closest"),
    [
        ("RANKING_TOPN", "RANKING_TOP_N"),
        ("RANKING_PUBLISH_BATCH_ROW", "RANKING_PUBLISH_BATCH_ROWS"),
        ("RANKING_MONITOR_PSI_WARNING", "RANKING_MONITOR_PSI_WARN"),
        ("RANKING_SERVE_PROT", "RANKING_SERVE_PORT"),
        # the attribute's name inside its section is no variable
        ("RANKING_BATCH_ROWS", "RANKING_PUBLISH_BATCH_ROWS"),
    ],
)
def test_a_typo_is_reported_with_the_closest_variable(
    typo: str, closest: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(typo, "1")
    monkeypatch.setenv("RANKING_LOG_LEVEL", "DEBUG")  # read by logging, not a setting
    assert unknown_variables() == [f"{typo} (did you mean {closest}?)"]
    assert Settings().explicit() == frozenset()  # and it sets nothing


def test_replace_takes_flat_names_and_marks_them_explicit() -> None:
    base = Settings(seller_cap=2)
    copy = base.replace(top_n=5, publish_lock_wait_s=0, position_debias=True)
    assert (copy.lists.top_n, copy.lists.seller_cap) == (5, 2)
    assert copy.publish.lock_wait_s == 0
    assert copy.training.position_debias is True
    assert copy.explicit() == {"seller_cap", "top_n", "publish_lock_wait_s", "position_debias"}
    assert base.lists.top_n == 100 and base.explicit() == {"seller_cap"}  # untouched
    with pytest.raises(KeyError, match="did you mean top_n"):
        base.replace(topn=5)


def test_defaults_are_not_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().explicit() == frozenset()
    monkeypatch.setenv("RANKING_LABEL_WINDOW_DAYS", "3")
    assert Settings().explicit() == {"label_window_days"}
    assert Settings(label_window_days=1).explicit() == {"label_window_days"}  # even = default


def test_profile_keeps_explicit_settings_and_derives_the_rest() -> None:
    from ranking_jobs.profile import choose

    derived: dict[str, Any] = {
        "label_window_days": {"value": 7, "why": "profile"},
        "active_days": {"value": 90, "why": "profile"},
    }
    chosen = choose(Settings(label_window_days=2), derived)
    assert chosen["label_window_days"] == {
        "value": 2,
        "source": "explicit",
        "why": "set explicitly",
    }
    assert chosen["active_days"]["source"] == "profile"


def test_a_generic_online_store_needs_its_feast_config() -> None:
    with pytest.raises(ValueError, match="RANKING_ONLINE_STORE_CONFIG"):
        Settings(online_store="feast")
    config = {"type": "sqlite", "path": "online.db"}
    assert (
        Settings(online_store="feast", online_store_config=config).feast.online_store_config
        == config
    )
