"""The nightly stages, in order, as lazy references, with what each reads and writes.

A declaration only: it imports nothing of the package, so the Airflow DAG file reads
it at parse time and any layer may name the stages; ``runner`` runs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# What stages read and write: lake tables by their folder (``contracts``), and the
# stores beside the lake. Every stage also writes its summary to the night's report
# folder, which later stages read (the profile's settings); that is not listed.
RAW = ("raw/events", "raw/items", "raw/users")
# Every feature family's table (``ranking_jobs.families``): a declared name ending in
# ``/*`` covers each table below it, so a new family changes no declaration here.
FEATURES = "features/*"
# The daily aggregates of raw/events the feature windows are rolled from (features.daily).
DAILY = "daily/*"
FEAST = "feast registry"
MLFLOW = "mlflow"  # runs, model versions and the champion alias
ONLINE = "online store"  # the live lists, the popular fallback and sold items
REPORTS = "reports"  # var/reports: the HTML report and Data Docs
METRICS = "metrics"  # the Prometheus textfile of the night's monitoring record
STORES = (FEAST, MLFLOW, ONLINE, REPORTS, METRICS)  # anything else named is a lake table
# Outputs read outside the DAGs, and by whom.
READ_OUTSIDE = {
    ONLINE: "the serving API and the app surfaces",
    REPORTS: "people",
    METRICS: "Prometheus",
    "sold_items": "people auditing what serving filtered",
}


@dataclass(frozen=True)
class Stage:
    name: str
    target: str  # "module:function", the function takes a RunContext
    doc: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    reads_earlier_nights: tuple[str, ...] = ()  # what it compares tonight with

    def load(self) -> Callable[..., Mapping[str, Any]]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)

    def undeclared(self, touched: set[str], wrote: set[str]) -> list[str]:
        """What a run of this stage did to lake tables that its declaration omits."""
        known = (*self.reads, *self.reads_earlier_nights, *self.writes)
        out = [f"wrote {t}" for t in sorted(wrote) if not covers(self.writes, t)]
        out += [f"read {t}" for t in sorted(touched - wrote) if not covers(known, t)]
        return out


def covers(declared: tuple[str, ...], table: str) -> bool:
    """Whether ``table`` is one of ``declared`` or below a declared ``<folder>/*``."""
    return any(d == table or (d.endswith("/*") and table.startswith(d[:-1])) for d in declared)


NIGHTLY: tuple[Stage, ...] = (
    Stage(
        "validate_raw",
        "ranking_jobs.validation:validate_raw",
        "Great Expectations suites on the day's raw events, items and users.",
        reads=RAW,
        writes=(REPORTS,),
    ),
    Stage(
        "profile_data",
        "ranking_jobs.profile:profile_data",
        "Profile of the lake's data (volumes, repeats, impressions, sellers); the settings "
        "it implies for the night.",
        reads=RAW,
        writes=(),
    ),
    Stage(
        "build_features",
        "ranking_jobs.features:build_features",
        "Spark feature extraction for the snapshot date; registers views in Feast.",
        reads=(*RAW, DAILY, FEATURES),
        writes=(DAILY, FEATURES, FEAST),
    ),
    Stage(
        "build_training_set",
        "ranking_jobs.training:build_training_set",
        "Candidates + impressions, graded labels, features joined point-in-time by Feast.",
        reads=("raw/events", "raw/items", FEATURES, FEAST),
        writes=("training",),
    ),
    Stage(
        "validate_training_set",
        "ranking_jobs.validation:validate_training_set",
        "Suite on the training set (labels, groups, feature coverage).",
        reads=("training", *RAW),
        writes=(),
    ),
    Stage(
        "train_model",
        "ranking_jobs.training:train_model",
        "XGBoost rank:ndcg with early stopping on a later day; logged to MLflow.",
        reads=("training",),
        writes=(MLFLOW,),
    ),
    Stage(
        "evaluate_model",
        "ranking_jobs.evaluation:evaluate_model",
        "Hold-out NDCG against baselines; the gate that moves the champion alias.",
        reads=("training", "raw/events", "raw/items", FEATURES, FEAST, MLFLOW),
        writes=(MLFLOW,),
    ),
    Stage(
        "precompute_lists",
        "ranking_jobs.precompute:precompute_lists",
        "Top-N per active user with the champion, after business rules.",
        reads=("raw/events", "raw/items", FEATURES, FEAST, MLFLOW),
        writes=("recommendations", "popular"),
    ),
    Stage(
        "validate_lists",
        "ranking_jobs.validation:validate_lists",
        "Suite on the final lists before anything is published.",
        reads=("recommendations", "raw/items", "features/user_stats"),
        writes=(),
    ),
    Stage(
        "monitor_night",
        "ranking_jobs.monitoring:monitor_night",
        "Drift (PSI) of every model feature and the scores against the nights before, "
        "freshness and quality figures; a large drift stops the night before publish.",
        reads=("raw/events", "raw/items", FEATURES, FEAST, MLFLOW),
        reads_earlier_nights=("monitoring", "monitoring_sample", ONLINE),
        writes=("monitoring_sample", "monitoring", METRICS),
    ),
    Stage(
        "publish_lists",
        "ranking_jobs.publish:publish_lists",
        "Lists into the Feast online store (user_recommendations).",
        reads=("recommendations", "popular", ONLINE),
        writes=(ONLINE,),
    ),
    Stage(
        "write_report",
        "ranking_jobs.report:write_report",
        "One HTML report with the night's metrics and plots.",
        reads=("recommendations", "monitoring", REPORTS),
        reads_earlier_nights=("monitoring", REPORTS),  # the metrics over time
        writes=(REPORTS,),
    ),
)

# Not nightly: the hourly ``ranking_availability`` DAG runs it between nights.
AVAILABILITY = Stage(
    "refresh_availability",
    "ranking_jobs.availability:refresh_availability",
    "Items sold since the live lists were made, into the online store (sold_items).",
    reads=("raw/events", "raw/items", ONLINE),
    writes=("sold_items", ONLINE),
)

STAGES: dict[str, Stage] = {s.name: s for s in (*NIGHTLY, AVAILABILITY)}


def airflow_assets(stores: tuple[str, ...]) -> list[Any]:
    """Declared inputs or outputs as Airflow assets: the UI's lineage between tasks and
    between the DAGs (the nightly publish and the hourly availability meet at the
    online store)."""
    from airflow.sdk import Asset

    return [Asset(name=s, uri=f"ranking://{s.replace(' ', '-')}") for s in stores]


def lineage_problems(nightly: tuple[Stage, ...] = NIGHTLY) -> list[str]:
    """Reads nothing earlier provides and writes nobody reads, in DAG order.

    A stage may read the raw tables, what an earlier stage wrote, and what it wrote
    itself on the nights before (the monitoring reference).
    """
    problems, written = [], list(RAW)
    every_write = tuple(w for stage in nightly for w in stage.writes)
    for stage in nightly:
        problems += [
            f"{stage.name} reads {r} of earlier nights, which no stage writes"
            for r in stage.reads_earlier_nights
            if not covers(every_write, r)
        ]
        problems += [
            f"{stage.name} reads {r}, which no earlier stage writes"
            for r in stage.reads
            if not covers((*written, *stage.writes), r)
        ]
        written += stage.writes
    readers = tuple(
        r for stage in (*nightly, AVAILABILITY) for r in (*stage.reads, *stage.reads_earlier_nights)
    )
    for stage in (*nightly, AVAILABILITY):
        problems += [
            f"{stage.name} writes {w}, which nothing reads"
            for w in stage.writes
            if w not in readers and w not in READ_OUTSIDE
        ]
    return problems


def markdown_table() -> str:
    """The README's table of stages, from the declarations."""

    def names(stores: tuple[str, ...]) -> str:
        return ", ".join(
            s if s in STORES else f"`{s}`" if s.endswith("*") else f"`{s}/`" for s in stores
        )

    rows = ["| task | reads | writes | what |", "|---|---|---|---|"]
    for stage in (*NIGHTLY, AVAILABILITY):
        reads = names(stage.reads)
        if stage.reads_earlier_nights:
            reads += f"; of earlier nights: {names(stage.reads_earlier_nights)}"
        rows.append(f"| `{stage.name}` | {reads} | {names(stage.writes)} | {stage.doc} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m ranking_jobs.stages: the README's stage table
    print(markdown_table())
