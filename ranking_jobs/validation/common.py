"""Plumbing shared by the three validation stages: reading partitions, the GX
session of a run (results store + Data Docs site under ``state_dir``), summaries."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.settings import Settings
from ranking_jobs.validation.engine import GxSession, ValidationSummary, raise_for
from ranking_jobs.validation.errors import MissingDataPartitionError

T = TypeVar("T")


def data_docs_dir(ctx: RunContext) -> Path:
    return ctx.settings.paths.reports_dir / "data_docs"


def results_dir(ctx: RunContext) -> Path:
    return ctx.settings.paths.state_dir / "gx" / "validation_results"


def session_for(ctx: RunContext, stage: str) -> GxSession:
    """A GX session whose results land in the run's Data Docs site."""
    run = re.sub(r"[^A-Za-z0-9_.-]+", "_", ctx.run_id or "run").strip("_")
    return GxSession(
        results_dir=results_dir(ctx),
        docs_dir=data_docs_dir(ctx),
        run_name=f"{ctx.ds_str}__{stage}__{run}",
    )


def read_required(
    ctx: RunContext,
    tables: Sequence[str],
    day: dt.date,
    read: Callable[[Settings, str, dt.date], T] = lake.read_partition,  # type: ignore[assignment]
) -> dict[str, T]:
    """``read`` (the whole partition by default) of each table's partition for ``day``;
    one clear error naming every missing one."""
    out: dict[str, T] = {}
    missing: list[str] = []
    for table in tables:
        try:
            out[table] = read(ctx.settings, table, day)
        except lake.MissingPartitionError:
            missing.append(lake.partition_uri(ctx.settings, table, day))
    if missing:
        raise MissingDataPartitionError(
            "data validation failed: missing partition(s) "
            + ", ".join(missing)
            + f" (dt={day.isoformat()}); the step that writes them has not run for this day"
        )
    return out


def finish(
    ctx: RunContext, stage: str, session: GxSession, summaries: Sequence[ValidationSummary]
) -> dict[str, Any]:
    """Build Data Docs, raise if any suite failed, else return the stage's JSON summary."""
    docs = session.build_data_docs()
    raise_for(f"data validation failed in {stage} for dt={ctx.ds_str}", summaries, docs)
    return {
        "stage": stage,
        "ds": ctx.ds_str,
        "success": True,
        "tables": {s.name: s.to_dict() for s in summaries},
        "data_docs": docs,
    }
