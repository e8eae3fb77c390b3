"""One typed settings object for every stage.

Every field is read from an environment variable named ``RANKING_<FIELD>``
(upper case), so the CLI, the Airflow workers, docker-compose and the tests
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

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    # --- where things live -------------------------------------------------
    data_root: str = Field("./data", description="Lake root: a folder or s3://bucket/prefix.")
    state_dir: Path = Field(
        Path("./var"), description="Local state: Feast registry, SQLite online store, MLflow."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3 API endpoint for s3:// lake roots (MinIO, moto); None = AWS."
    )

    # --- orchestration ---------------------------------------------------------
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
    alert_webhook_url: str | None = Field(
        None, description="Every alert (failed task, missed deadline) POSTed here as JSON."
    )
    alert_slack_conn_id: str | None = Field(
        None,
        description="Airflow connection of a Slack incoming webhook that gets every alert "
        "(needs apache-airflow-providers-slack).",
    )
    alert_email_to: str = Field(
        "",
        description="Comma-separated addresses that get every alert, through Airflow's SMTP "
        "provider and its smtp_default connection.",
    )

    # --- synthetic marketplace ---------------------------------------------
    scale: Scale = Field("tiny", description="Generator preset: tiny, small, medium, large.")
    seed: int = Field(7, description="Seed of the synthetic marketplace.")
    history_days: int = Field(
        14, ge=3, description="Days of raw data the generator writes, ending on the run's date."
    )

    # --- features -----------------------------------------------------------
    spark_master: str = Field("local[2]", description="Spark master URL.")
    spark_driver_memory: str = Field("4g", description="Spark driver memory.")
    spark_shuffle_partitions: int = Field(4, ge=1, description="spark.sql.shuffle.partitions.")
    feature_batch_rows: int = Field(
        20_000_000,
        ge=1,
        description="Rows one batch of feature snapshots may copy (each snapshot's window of "
        "events, raw/items rows and co-visitation pairs, plus the engagements of its "
        "user-item lookback); bounds a backfill's memory. Raise it with driver memory.",
    )
    prior_strength: float = Field(
        20.0, gt=0, description="Pseudo-impressions of the category prior in smoothed rates."
    )

    # --- Feast ---------------------------------------------------------------
    feast_project: str = Field("marketplace_ranking", description="Feast project name.")
    feast_repo: Path = Field(
        Path(__file__).resolve().parents[1] / "feature_repo",
        description="Feast repository folder (entity and feature view definitions).",
    )
    dags_folder: Path = Field(
        Path(__file__).resolve().parents[1] / "dags", description="Airflow DAG folder."
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
    user_item_lookback_days: int = Field(
        30,
        ge=1,
        description="How far back user-item history features remember an engagement "
        "(longer for repurchase domains).",
    )
    retrieval_chunk_rows: int = Field(
        1_000_000,
        ge=1_000,
        description="Entity rows per point-in-time retrieval; bounds the offline store's memory.",
    )

    # --- training / model ----------------------------------------------------
    train_days: int = Field(
        8,
        ge=1,
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
    train_max_rows: int = Field(
        3_000_000,
        ge=1_000,
        description="Row budget of the training and validation splits: beyond it, whole "
        "queries (user, as-of) are sampled, so the same code serves 600 users and 1M.",
    )
    eval_users: int = Field(
        20_000,
        ge=100,
        description="Most hold-out users whose final lists the evaluation makes for the "
        "model and every baseline (a seeded sample beyond it).",
    )
    candidates_per_user: int = Field(
        300,
        ge=10,
        description="Candidates generated per user: the ranker can only put in a list what "
        "they hold; derived from the data profile unless set (300 for a feed's log, "
        "where half the events or more are impressions; 120 for a log of actions).",
    )
    candidate_size_first: bool = Field(
        False,
        description="Taste sources offer items in the user's most-engaged sizes first. Off: "
        "on tiny data it lifted candidate recall 0.356 -> 0.385 but the ranker's hold-out "
        "NDCG@10 fell 0.149 -> 0.115 (fitting unshown candidates look like shown ones).",
    )
    candidate_quotas: dict[str, float] = Field(
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
        description="Most of a user's candidates each source may propose, as a share of "
        "candidates_per_user (JSON); past_items applies only when exclude_purchased is off.",
    )
    num_boost_round: int = Field(300, ge=1, description="Maximum XGBoost boosting rounds.")
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
    categorical_features: bool = Field(
        False,
        description="Also give the model the item's category, brand, size and style as "
        "XGBoost native categorical features.",
    )
    train_rows: Literal["candidates", "shown"] = Field(
        "candidates",
        description="What the model learns from and the gate judges: every candidate with "
        "graded labels, or only the logged impressions ('shown'; better by true utility "
        "on `small` data, refused by the gate on `tiny`).",
    )
    position_debias: bool = Field(
        False,
        description="Unbiased LambdaMART (lambdarank_unbiased) on the logged display order.",
    )
    search_trials: int = Field(
        0, ge=0, description="Optuna trials of the hyperparameter search before training; 0: off."
    )
    search_timeout_s: float = Field(
        1800, gt=0, description="Wall-time budget of the hyperparameter search."
    )
    position_bias_ablation: bool = Field(
        True,
        description="Also fit the model with the other position_debias value and score it "
        "on the hold-out, so the report shows what the correction is worth.",
    )

    # --- MLflow --------------------------------------------------------------
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default is a SQLite store in state_dir."
    )
    mlflow_experiment: str = Field("ranking_nightly", description="MLflow experiment name.")
    registered_model: str = Field("marketplace_ranker", description="MLflow registered model.")

    # --- evaluation / gate ---------------------------------------------------
    eval_k: int = Field(10, ge=1, description="Cut-off of the gate's NDCG.")
    min_gain_over_baseline: float = Field(
        0.0, description="Lower CI bound the NDCG@k gain over the best baseline must exceed."
    )
    champion_tolerance: float = Field(
        0.01, ge=0, description="How much worse than the champion's NDCG@k a model may be."
    )

    # --- validation (Great Expectations suites) -------------------------------
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

    # --- precompute / serving -----------------------------------------------
    top_n: int = Field(
        100,
        ge=1,
        description="Length of each precomputed list: a tail beyond what a surface shows, "
        "so items sold after the night can be dropped at read time.",
    )
    surface_size: int = Field(20, ge=1, description="Items a surface shows by default.")
    precompute_shard_users: int = Field(
        20_000,
        ge=1,
        description="Most users per precompute Spark task: a task holds its users' "
        "candidates with their features in memory.",
    )
    seller_cap: int = Field(
        3, ge=1, description="Most items of one seller among a list's first surface_size."
    )
    lists_coverage_band: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Largest drop in the share of active users with a list, against the "
        "previous run's share, before the lists suite refuses to publish.",
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

    # --- monitoring ------------------------------------------------------------
    monitor_sample_users: int = Field(
        500, ge=1, description="Active users whose candidates the nightly drift check scores."
    )
    monitor_sample_rows: int = Field(
        20_000, ge=100, description="Candidate rows kept per night for the drift check."
    )
    monitor_reference_nights: int = Field(
        7, ge=1, description="Nights before tonight whose samples are the drift reference."
    )
    monitor_psi_warn: float = Field(
        0.25, gt=0, description="A feature or score PSI from this value alerts."
    )
    monitor_min_shift: float = Field(
        0.5,
        ge=0,
        description="A PSI counts only where the feature's mean also moved by this many "
        "reference standard deviations (or its null share by 10 points).",
    )
    monitor_psi_fail: float = Field(
        1.0,
        gt=0,
        description="A feature or score PSI from this value stops the night before publish "
        "(the last good lists stay live).",
    )

    # --- publish (online store) ------------------------------------------------
    publish_batch_rows: int = Field(
        2_000, ge=1, description="Lists encoded and written per batch (one Redis pipeline)."
    )
    publish_attempts: int = Field(
        5, ge=1, description="Tries per Redis batch before the publish fails (connection errors)."
    )
    publish_backoff_s: float = Field(
        1.0, ge=0, description="Wait before the second try; doubled after each failed try."
    )
    publish_lock_wait_s: float = Field(
        600,
        ge=0,
        description="How long a publish waits for another one (a backfill beside the night) "
        "to finish before it fails.",
    )
    list_ttl_days: float = Field(
        0,
        ge=0,
        description="Redis key expiry of a user's hash, refreshed by every publish; 0: none "
        "(absent users are removed explicitly; the hash is shared with the user's other views).",
    )

    # --- serving API and availability (ranking_jobs.serving, ranking_jobs.availability) ---
    serve_host: str = Field("127.0.0.1", description="Address the recommendation API binds to.")
    serve_port: int = Field(8000, ge=1, le=65535, description="Port of the recommendation API.")
    serve_direct_redis: bool = Field(
        True,
        description="Read Feast's Redis layout directly (one round trip, ~3x faster than "
        "get_online_features); off: always go through Feast's API.",
    )
    serve_redis_timeout_s: float = Field(
        0.5, gt=0, description="Socket timeout of serving reads, so a dead Redis fails fast."
    )
    sold_items_margin_hours: float = Field(
        48.0,
        ge=0,
        description="Sold items are collected from this long before the live lists' as-of "
        "time, so lists kept from a missed night are filtered too.",
    )

    @field_validator("candidate_quotas")
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

    @model_validator(mode="after")
    def _generic_store_configured(self) -> Settings:
        if self.online_store == "feast" and "type" not in self.online_store_config:
            raise ValueError(
                "online_store=feast needs RANKING_ONLINE_STORE_CONFIG: the online_store block "
                'of feature_store.yaml as JSON, with its "type"'
            )
        return self

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

    # --- derived -------------------------------------------------------------
    @property
    def feast_dir(self) -> Path:
        return self.state_dir / "feast"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{self.state_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> str:
        return (self.state_dir / "mlartifacts").as_uri()


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """``RANKING_*`` variables no setting reads, each with the closest setting's name:
    pydantic-settings drops them, so a misspelt variable would change nothing silently."""
    env = os.environ if environ is None else environ
    fields = sorted(name.upper() for name in Settings.model_fields)
    out = []
    for var in sorted(env):
        name = var.upper()
        if not name.startswith(ENV_PREFIX) or name in OTHER_VARIABLES:
            continue
        if (bare := name[len(ENV_PREFIX) :]) not in fields:
            close = difflib.get_close_matches(bare, fields, n=1)
            out.append(f"{var} (did you mean {ENV_PREFIX}{close[0]}?)" if close else var)
    return out


def warn_unknown_variables(log: logging.Logger) -> None:
    """Log each of ``unknown_variables``: called when a command or a task starts."""
    for var in unknown_variables():
        log.warning("unknown setting %s is ignored", var)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with explicit overrides winning (CLI flags, tests)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
