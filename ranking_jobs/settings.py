"""One typed settings object for every stage, in sections.

``Settings`` holds one section per part of the pipeline (``settings.paths``,
``settings.publish``, ``settings.serving`` ...); a stage reads its own. Every field
keeps the environment variable it always had, ``RANKING_<FLAT NAME>`` (upper case),
where the flat name is the field's name before the sections (``publish.batch_rows`` is
``RANKING_PUBLISH_BATCH_ROWS``): ``FIELDS`` is the one table of flat names, built from
the sections' aliases. The CLI, the Airflow workers, docker-compose and the tests
configure the pipeline the same way. Defaults run on one laptop: the lake under
``./data``, state (Feast registry, SQLite online store, MLflow) under ``./var``.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

ENV_PREFIX = "RANKING_"
# RANKING_* variables read elsewhere than Settings: logging's level, and the folder of
# the shared public data sets the benches and tests read.
OTHER_VARIABLES = frozenset({"RANKING_LOG_LEVEL", "RANKING_SHARED_DATASETS"})

Scale = Literal["tiny", "small", "medium", "large"]

# Candidate sources in merge order (an item offered twice is credited to the first);
# global popularity comes last and fills what the quotas leave.
CANDIDATE_SOURCES = (
    "past_items",
    "item_knn",
    "als",
    "covisitation",
    "category_popular",
    "brand_popular",
    "new_arrivals",
    "trending",
    "global_popular",
)

_REPO = Path(__file__).resolve().parents[1]


class Section(BaseModel):
    """A group of settings. A field whose name drops its section's prefix keeps its flat
    name as alias (``batch_rows`` of ``publish`` is ``publish_batch_rows``): the name of
    its environment variable and of its keyword in ``load_settings``."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=True,  # as BaseSettings does: a default path is made absolute too
        validate_by_name=True,
        validate_by_alias=True,
    )


class PathsSettings(Section):
    """Where the lake, the local state and the repositories are."""

    data_root: str = Field("./data", description="Lake root: a folder or s3://bucket/prefix.")
    state_dir: Path = Field(
        Path("./var"), description="Local state: Feast registry, SQLite online store, MLflow."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 API endpoint for s3:// lake roots (MinIO, moto); None = AWS."
    )
    feast_repo: Path = Field(
        _REPO / "feature_repo",
        description="Feast repository folder (entity and feature view definitions).",
    )
    dags_folder: Path = Field(_REPO / "dags", description="Airflow DAG folder.")

    @field_validator("data_root")
    @classmethod
    def _absolute_root(cls, v: str) -> str:
        """Pin a local root to an absolute path so every process sees the same lake."""
        if "://" in v:
            return v.rstrip("/")
        return str(Path(v).expanduser().resolve())

    @field_validator("state_dir", "feast_repo", "dags_folder")
    @classmethod
    def _absolute_dir(cls, v: Path) -> Path:
        return Path(v).expanduser().resolve()

    @property
    def feast_dir(self) -> Path:
        return self.state_dir / "feast"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def artifact_root(self) -> str:
        """MLflow's artifact store: a folder of the state."""
        return (self.state_dir / "mlartifacts").as_uri()


class AirflowSettings(Section):
    """How Airflow runs the nightly tasks (read where the DAG files are parsed)."""

    task_retries: int = Field(2, ge=0, description="Airflow retries per task (with backoff).")
    task_timeout_minutes: int = Field(
        240,
        ge=1,
        description="Airflow execution timeout of each nightly task: a hung task fails and "
        "retries instead of holding the night (max_active_runs is 1).",
    )
    night_deadline_minutes: int = Field(
        240,
        ge=0,
        description="A night still running this long after it was queued alerts (Airflow "
        "Deadline Alert): a scheduled night queued at 02:00 UTC on D+1 is late at 06:00. "
        "0: no deadline.",
    )


class AlertsSettings(Section):
    """Where alerts (failed task, missed deadline, drift warning) go."""

    webhook_url: str | None = Field(
        None,
        alias="alert_webhook_url",
        description="Every alert (failed task, missed deadline) POSTed here as JSON.",
    )
    slack_conn_id: str | None = Field(
        None,
        alias="alert_slack_conn_id",
        description="Airflow connection of a Slack incoming webhook that gets every alert "
        "(needs apache-airflow-providers-slack).",
    )
    email_to: str = Field(
        "",
        alias="alert_email_to",
        description="Comma-separated addresses that get every alert, through Airflow's SMTP "
        "provider and its smtp_default connection.",
    )


class GeneratorSettings(Section):
    """The synthetic marketplace; ``seed`` also seeds every sampled draw of the stages."""

    scale: Scale = Field("tiny", description="Generator preset: tiny, small, medium, large.")
    seed: int = Field(
        7,
        description="Seed of the synthetic marketplace and of every seeded draw of the "
        "stages (samples, models, bootstraps).",
    )
    history_days: int = Field(
        14, ge=3, description="Days of raw data the generator writes, ending on the run's date."
    )


class SparkSettings(Section):
    """The Spark session of the feature stage, precompute and Feast's Spark store."""

    master: str = Field("local[2]", alias="spark_master", description="Spark master URL.")
    driver_memory: str = Field(
        "4g", alias="spark_driver_memory", description="Spark driver memory."
    )
    shuffle_partitions: int = Field(
        4, ge=1, alias="spark_shuffle_partitions", description="spark.sql.shuffle.partitions."
    )


class FeaturesSettings(Section):
    """The feature stage's snapshots."""

    batch_rows: int = Field(
        20_000_000,
        ge=1,
        alias="feature_batch_rows",
        description="Rows one batch of the feature stage may hold: raw events reduced to "
        "daily aggregates at once, or daily aggregate and raw/items rows of the snapshots' "
        "windows and user-item lookbacks rolled in one pass; bounds a backfill's memory. "
        "Raise it with driver memory.",
    )
    prior_strength: float = Field(
        20.0, gt=0, description="Pseudo-impressions of the category prior in smoothed rates."
    )
    user_item_lookback_days: int = Field(
        30,
        ge=1,
        description="How far back user-item history features remember an engagement "
        "(longer for repurchase domains); derived from the data profile unless set.",
    )


class FeastSettings(Section):
    """Feast's project, offline store and online store."""

    project: str = Field(
        "marketplace_ranking", alias="feast_project", description="Feast project name."
    )
    offline_store: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Engine of Feast's offline store over the lake's Parquet files."
    )
    online_store: Literal["sqlite", "redis", "feast"] = Field(
        "sqlite",
        description="Feast online store: sqlite or redis (written directly, in Feast's layout), "
        "or feast: any other store Feast supports, configured by online_store_config and "
        "written and read through Feast's own API.",
    )
    online_store_config: dict[str, Any] = Field(
        default_factory=dict,
        description="With online_store=feast: the online_store block of feature_store.yaml "
        'as JSON, e.g. {"type": "dynamodb", "region": "eu-west-1"}.',
    )
    redis_url: str = Field("localhost:6379", description="Redis host:port for the online store.")
    retrieval_chunk_rows: int = Field(
        1_000_000,
        ge=1_000,
        description="Entity rows per point-in-time retrieval; bounds the offline store's memory.",
    )

    @model_validator(mode="after")
    def _generic_store_configured(self) -> FeastSettings:
        if self.online_store == "feast" and "type" not in self.online_store_config:
            raise ValueError(
                "online_store=feast needs RANKING_ONLINE_STORE_CONFIG: the online_store block "
                'of feature_store.yaml as JSON, with its "type"'
            )
        return self


class TrainingSettings(Section):
    """The night's windows (label, validation, training), the row budget and the model."""

    days: int = Field(
        8,
        ge=1,
        alias="train_days",
        description="Most label windows (as-of times) in the training split; fewer when the "
        "lake's history is shorter. Derived from the data profile unless set: as many as "
        "the row budget holds, between 8 and 64.",
    )
    label_window_days: int = Field(
        1,
        ge=1,
        description="Days of events after each as-of time that form its labels; derived "
        "from the data profile unless set (the shortest window holding "
        "min_holdout_queries engaged users).",
    )
    valid_windows: int = Field(
        1,
        ge=1,
        description="Label windows before the hold-out that early stopping watches; derived "
        "from the data profile unless set (enough for min_holdout_queries queries, at most "
        "a third of the windows).",
    )
    min_holdout_queries: int = Field(
        500,
        ge=1,
        description="Engaged users a label window should hold, so that the hold-out and "
        "the validation split can measure a difference.",
    )
    min_history_days: int = Field(
        3,
        ge=1,
        description="Days of events a window's snapshot must have behind it; older windows "
        "are not laid.",
    )
    max_rows: int = Field(
        3_000_000,
        ge=1_000,
        alias="train_max_rows",
        description="Row budget of the training and validation splits: beyond it, whole "
        "queries (user, as-of) are sampled, so the same code serves a small log and a "
        "large one.",
    )
    rows: Literal["candidates", "shown"] = Field(
        "candidates",
        alias="train_rows",
        description="What the model learns from and the gate judges: every candidate with "
        "graded labels, or only the logged impressions ('shown'; better by true utility "
        "on `small` data, refused by the gate on `tiny`).",
    )
    num_boost_round: int = Field(
        1000, ge=1, description="Maximum XGBoost boosting rounds; early stopping ends sooner."
    )
    early_stopping_rounds: int = Field(40, ge=1, description="Early stopping patience.")
    max_depth: int = Field(4, ge=1, description="XGBoost tree depth.")
    learning_rate: float = Field(0.05, gt=0, description="XGBoost eta.")
    min_child_weight: float = Field(
        50.0, ge=0, description="XGBoost min_child_weight: least hessian sum in a leaf."
    )
    colsample_bytree: float = Field(
        0.6, gt=0, le=1, description="XGBoost colsample_bytree: share of features per tree."
    )
    nthread: int = Field(2, ge=1, description="XGBoost threads.")
    engine: Literal["xgboost", "spark"] = Field(
        "xgboost",
        alias="train_engine",
        description="Where the model is boosted: in the stage's process, or on the Spark "
        "master's executors (xgboost.spark, one XGBoost worker per executor slot).",
    )
    categorical_features: bool = Field(
        False,
        description="Also give the model the item's category, brand, size and style as "
        "XGBoost native categorical features.",
    )
    position_debias: bool = Field(
        False,
        description="Unbiased LambdaMART (lambdarank_unbiased) on the logged display order.",
    )
    position_bias_ablation: bool = Field(
        True,
        description="Also fit the model with the other position_debias value and score it "
        "on the hold-out, so the report shows what the correction is worth.",
    )
    search_trials: int = Field(
        0, ge=0, description="Optuna trials of the hyperparameter search before training; 0: off."
    )
    search_timeout_s: float = Field(
        1800, gt=0, description="Wall-time budget of the hyperparameter search."
    )

    @model_validator(mode="after")
    def _engine_supports_the_features(self) -> TrainingSettings:
        if self.engine == "spark" and self.categorical_features:
            raise ValueError(
                "train_engine=spark does not take categorical_features (the Spark "
                "estimator's numeric feature columns); set one of them off"
            )
        return self


class MlflowSettings(Section):
    """MLflow's tracking server and the registered model."""

    tracking_uri: str | None = Field(
        None,
        alias="mlflow_tracking_uri",
        description="MLflow tracking URI; default is a SQLite store in state_dir "
        "(Settings.tracking_uri resolves it).",
    )
    experiment: str = Field(
        "ranking_nightly", alias="mlflow_experiment", description="MLflow experiment name."
    )
    registered_model: str = Field("marketplace_ranker", description="MLflow registered model.")


class CandidatesSettings(Section):
    """Candidate generation: how many per user, from which sources."""

    per_user: int = Field(
        300,
        ge=10,
        alias="candidates_per_user",
        description="Candidates generated per user: the ranker can only put in a list what "
        "they hold; derived from the data profile unless set (300 for a feed's log, "
        "where half the events or more are impressions; 120 for a log of actions).",
    )
    size_first: bool = Field(
        False,
        alias="candidate_size_first",
        description="Taste sources offer items in the user's most-engaged sizes first. Off: "
        "it raised candidate recall but lowered the ranker's hold-out NDCG (fitting "
        "unshown candidates look like shown ones; docs/decisions.md).",
    )
    quotas: dict[str, float] = Field(
        {
            "past_items": 0.3,
            "item_knn": 0.25,
            "als": 0.25,
            "covisitation": 0.25,
            "category_popular": 0.35,
            "brand_popular": 0.15,
            "new_arrivals": 0.1,
            "trending": 0.1,
        },
        alias="candidate_quotas",
        description="Most of a user's candidates each source may propose, as a share of "
        "candidates_per_user (JSON); past_items applies only when exclude_purchased is off.",
    )

    @field_validator("quotas")
    @classmethod
    def _known_sources(cls, quotas: dict[str, float]) -> dict[str, float]:
        unknown = set(quotas) - set(CANDIDATE_SOURCES[:-1])
        if unknown:
            raise ValueError(
                f"unknown candidate sources {sorted(unknown)}; "
                f"known: {list(CANDIDATE_SOURCES[:-1])}"
            )
        bad = {k: v for k, v in quotas.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"candidate quotas must be shares in [0, 1], got {bad}")
        return quotas


class EvaluationSettings(Section):
    """The evaluation stage and its gate."""

    users: int = Field(
        20_000,
        ge=100,
        alias="eval_users",
        description="Most hold-out users whose final lists the evaluation makes for the "
        "model and every baseline (a seeded sample beyond it).",
    )
    row_users: int = Field(
        5_000,
        ge=100,
        alias="holdout_row_users",
        description="Most hold-out queries in the training set (a seeded sample beyond "
        "it): the row-level diagnostics' rows, every candidate of each. The gate judges "
        "lists, over eval_users.",
    )
    k: int = Field(10, ge=1, alias="eval_k", description="Cut-off of the gate's NDCG.")
    min_gain_over_baseline: float = Field(
        0.0, description="Lower CI bound the NDCG@k gain over the best baseline must exceed."
    )
    champion_tolerance: float = Field(
        0.01, ge=0, description="How much worse than the champion's NDCG@k a model may be."
    )


class ValidationSettings(Section):
    """Thresholds of the Great Expectations suites (raw data and lists)."""

    min_referential_integrity: float = Field(
        0.99, ge=0, le=1, description="Least share of events whose item/user is in that day's data."
    )
    volume_window_days: int = Field(
        7, ge=1, description="Earlier days whose event volume forms the day-volume band."
    )
    volume_min_ratio: float = Field(
        0.2, ge=0, description="Least day volume as a multiple of the trailing median."
    )
    volume_max_ratio: float = Field(
        5.0, gt=0, description="Largest day volume as a multiple of the trailing median."
    )
    lists_coverage_band: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Largest drop in the share of active users with a list, against the "
        "previous run's share, before the lists suite refuses to publish.",
    )


class ListsSettings(Section):
    """A user's final list: who gets one, its length and its business rules."""

    top_n: int = Field(
        100,
        ge=1,
        description="Length of each precomputed list: a tail beyond what a surface shows, "
        "so items sold after the night can be dropped at read time.",
    )
    surface_size: int = Field(20, ge=1, description="Items a surface shows by default.")
    seller_cap: int = Field(
        3, ge=1, description="Most items of one seller among a list's first surface_size."
    )
    exclude_purchased: bool = Field(
        True,
        description="Drop items the user already bought; derived from the data profile "
        "unless set (off where users buy the same item again).",
    )
    exclude_engaged: bool = Field(
        False,
        description="Drop every item the user already engaged with (a log where nobody "
        "comes back to an item, such as ratings); derived from the data profile unless set "
        "(on where under 5% of engaged user-item pairs see the user again another day).",
    )
    active_days: int = Field(
        30,
        ge=1,
        description="Users with an event in this many days ending with ds get a list; "
        "derived from the data profile unless set (covers how long returning users stay "
        "away).",
    )
    fallback_size: int = Field(100, ge=1, description="Length of the popular fallback list.")
    precompute_shard_users: int = Field(
        20_000,
        ge=1,
        description="Most users per precompute Spark task, or per batch of a baseline's "
        "lists: either holds its users' candidates in memory. In local mode, a night with "
        "no more active users makes its lists without Spark.",
    )


class MonitoringSettings(Section):
    """The nightly drift check."""

    sample_users: int = Field(
        500,
        ge=1,
        alias="monitor_sample_users",
        description="Active users whose candidates the nightly drift check scores.",
    )
    sample_rows: int = Field(
        20_000,
        ge=100,
        alias="monitor_sample_rows",
        description="Candidate rows kept per night for the drift check.",
    )
    reference_nights: int = Field(
        7,
        ge=1,
        alias="monitor_reference_nights",
        description="Nights before tonight whose samples are the drift reference.",
    )
    psi_warn: float = Field(
        0.25,
        gt=0,
        alias="monitor_psi_warn",
        description="A feature or score PSI from this value alerts.",
    )
    min_shift: float = Field(
        0.5,
        ge=0,
        alias="monitor_min_shift",
        description="A PSI counts only where the feature's mean also moved by this many "
        "reference standard deviations (or its null share by 10 points).",
    )
    psi_fail: float = Field(
        1.0,
        gt=0,
        alias="monitor_psi_fail",
        description="A feature or score PSI from this value stops the night before publish "
        "(the last good lists stay live).",
    )


class PublishSettings(Section):
    """Writing the lists to the online store."""

    batch_rows: int = Field(
        2_000,
        ge=1,
        alias="publish_batch_rows",
        description="Lists encoded and written per batch (one Redis pipeline).",
    )
    attempts: int = Field(
        5,
        ge=1,
        alias="publish_attempts",
        description="Tries per Redis batch before the publish fails (connection errors).",
    )
    backoff_s: float = Field(
        1.0,
        ge=0,
        alias="publish_backoff_s",
        description="Wait before the second try; doubled after each failed try.",
    )
    lock_wait_s: float = Field(
        600,
        ge=0,
        alias="publish_lock_wait_s",
        description="How long a publish waits for another one (a backfill beside the night) "
        "to finish before it fails.",
    )
    list_ttl_days: float = Field(
        0,
        ge=0,
        description="Redis key expiry of a user's hash, refreshed by every publish; 0: none "
        "(absent users are removed explicitly; the hash is shared with the user's other views).",
    )


class ServingSettings(Section):
    """The recommendation API and the hourly availability stage."""

    host: str = Field(
        "127.0.0.1", alias="serve_host", description="Address the recommendation API binds to."
    )
    port: int = Field(
        8000, ge=1, le=65535, alias="serve_port", description="Port of the recommendation API."
    )
    direct_redis: bool = Field(
        True,
        alias="serve_direct_redis",
        description="Read Feast's Redis layout directly, in one round trip (docs/decisions.md); "
        "off: always go through Feast's get_online_features.",
    )
    redis_timeout_s: float = Field(
        0.5,
        gt=0,
        alias="serve_redis_timeout_s",
        description="Socket timeout of serving reads, so a dead Redis fails fast.",
    )
    sold_items_margin_hours: float = Field(
        48.0,
        ge=0,
        description="Sold items are collected from this long before the live lists' as-of "
        "time, so lists kept from a missed night are filtered too.",
    )


class FlatEnvSource(PydanticBaseSettingsSource):
    """Each section field from its flat variable ``RANKING_<FLAT NAME>`` (any case);
    a dict or list field's value is JSON."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every field itself

    def __call__(self) -> dict[str, Any]:
        env = {name.upper(): value for name, value in os.environ.items()}
        out: dict[str, dict[str, Any]] = {}
        for flat, (section, attr) in FIELDS.items():
            var = env_name(flat)
            if (raw := env.get(var)) is None:
                continue
            info = SECTIONS[section].model_fields[attr]
            value: Any = raw
            if self.field_is_complex(info):
                try:
                    value = self.decode_complex_value(flat, info, raw)
                except ValueError as exc:
                    raise SettingsError(f"error parsing {var} as JSON: {exc}") from exc
            out.setdefault(section, {})[flat] = value
        return out


class Settings(BaseSettings):
    """Every stage's settings, one section each. Keywords may be flat names
    (``Settings(top_n=5)``, ``load_settings(online_store="redis")``): each goes to its
    section, and an unknown one is an error."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    paths: PathsSettings = Field(default_factory=PathsSettings)
    airflow: AirflowSettings = Field(default_factory=AirflowSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    spark: SparkSettings = Field(default_factory=SparkSettings)
    features: FeaturesSettings = Field(default_factory=FeaturesSettings)
    feast: FeastSettings = Field(default_factory=FeastSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    candidates: CandidatesSettings = Field(default_factory=CandidatesSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    lists: ListsSettings = Field(default_factory=ListsSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)

    def __init__(self, **values: Any) -> None:
        super().__init__(**_route(values))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keywords win over the flat RANKING_* variables; no .env file or secrets dir."""
        return init_settings, FlatEnvSource(settings_cls)

    # --- derived across sections ---------------------------------------------
    @property
    def tracking_uri(self) -> str:
        """MLflow's tracking URI: ``mlflow.tracking_uri``, else SQLite in the state dir."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{self.paths.state_dir / 'mlflow.db'}"

    # --- flat names ------------------------------------------------------------
    def value(self, name: str) -> Any:
        """The value of the field whose flat name is ``name`` (``"top_n"``)."""
        section, attr = _locate(name)
        return getattr(getattr(self, section), attr)

    def explicit(self) -> frozenset[str]:
        """Flat names of the fields set explicitly (a keyword, a RANKING_* variable, a
        ``replace``) rather than defaulted: the data profile chooses only the others."""
        return frozenset(
            flat
            for flat, (section, attr) in FIELDS.items()
            if attr in getattr(self, section).model_fields_set
        )

    def replace(self, **values: Any) -> Settings:
        """A copy with the fields of these flat names changed (validated as a keyword
        would be, so a path is made absolute and a bad value refused), which then count
        as set explicitly; every other field keeps its value and whether it was set."""
        by_section: dict[str, dict[str, Any]] = {}
        for name, v in values.items():
            section, attr = _locate(name)
            by_section.setdefault(section, {})[attr] = v
        update = {}
        for section, changes in by_section.items():
            current = getattr(self, section)
            kept = {attr: getattr(current, attr) for attr in current.model_fields_set}
            update[section] = type(current).model_validate({**kept, **changes})
        return self.model_copy(update=update)


SECTIONS: dict[str, type[Section]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in Settings.model_fields.items()
}
# The one table of flat names: flat name -> (section, field). A field's flat name is
# its alias, else its own name; its environment variable is env_name(flat).
FIELDS: dict[str, tuple[str, str]] = {
    (info.alias or attr): (section, attr)
    for section, model in SECTIONS.items()
    for attr, info in model.model_fields.items()
}


def env_name(flat: str) -> str:
    """The environment variable of the field whose flat name is ``flat``."""
    return f"{ENV_PREFIX}{flat.upper()}"


def _locate(name: str) -> tuple[str, str]:
    try:
        return FIELDS[name]
    except KeyError:
        close = difflib.get_close_matches(name, FIELDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise KeyError(f"no setting named {name!r}{hint}") from None


def _route(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keywords with flat names grouped into their sections (by flat name, which each
    section accepts); section keywords and unknown names stay as given."""
    out: dict[str, Any] = {}
    flat: dict[str, dict[str, Any]] = {}
    for name, v in values.items():
        if name in FIELDS and name not in SECTIONS:
            flat.setdefault(FIELDS[name][0], {})[name] = v
        else:
            out[name] = v
    for section, fields in flat.items():
        given = out.get(section, {})
        if isinstance(given, BaseModel):
            given = given.model_dump(by_alias=True, include=given.model_fields_set)
        out[section] = {**given, **fields}
    return out


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``RANKING_*`` variables no setting reads, each with the closest setting's name:
    the settings ignore them, so a misspelt variable would change nothing silently."""
    env = os.environ if environ is None else environ
    known = sorted(flat.upper() for flat in FIELDS)
    out = []
    for var in sorted(env):
        name = var.upper()
        if not name.startswith(ENV_PREFIX) or name in OTHER_VARIABLES:
            continue
        if (bare := name[len(ENV_PREFIX) :]) not in known:
            close = difflib.get_close_matches(bare, known, n=1)
            out.append(f"{var} (did you mean {ENV_PREFIX}{close[0]}?)" if close else var)
    return out


def warn_unknown_variables(log: logging.Logger) -> None:
    """Log each of ``unknown_variables``: called when a command or a task starts."""
    for var in unknown_variables():
        log.warning("unknown setting %s is ignored", var)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides winning (CLI flags, DAG
    params, tests); an override is a flat name (``top_n=5``) and None means not given."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
