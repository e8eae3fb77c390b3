"""The one code path that turns a :class:`SuiteSpec` into a real Great Expectations
run and a readable summary.

GX 1.x facts this module is written around (checked against 1.24.1):

- ``ValidationDefinition.run()`` never raises on failed expectations; it returns
  an ``ExpectationSuiteValidationResult`` whose ``.success`` we check ourselves.
- A rule whose metric raises (e.g. comparing strings with a number) does not
  raise either: it comes back with ``success=False`` and the exception in
  ``exception_info`` (keyed by metric id), which we surface as the failure.
- A dataframe asset has no data of its own: the frame is passed explicitly as
  ``batch_parameters={"dataframe": df}`` on every run.
- Rules on a column that is missing all fail with a "column not found" metric
  error; we run only ``expect_column_to_exist`` for missing columns so the
  failure says what is wrong once.
- Data Docs index building deletes pages whose results are not in the
  context's validation results store ("skip_and_clean_missing"): with a purely
  in-memory ephemeral context every run would wipe the previous runs' pages. The
  session therefore keeps the results store on disk (``state_dir/gx``) while
  everything else stays ephemeral, and renders only this run's pages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ranking_jobs.validation.errors import DataValidationError
from ranking_jobs.validation.spec import Rule, SuiteSpec, exists

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
SITE_NAME = "ranking_validation"
_DATASOURCE = "frames"
_BATCH_DEFINITION = "whole_frame"
_TYPE_EXPECTATIONS = (
    "expect_column_values_to_be_of_type",
    "expect_column_values_to_be_in_type_list",
)


# --------------------------------------------------------------------------- results


def jsonable(value: Any) -> Any:
    """Convert GX / numpy / pandas values to plain JSON types (inf and nan as strings)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Failure:
    """One failed expectation, in plain JSON-able terms."""

    expectation: str
    column: str  # "table" for table-level rules
    note: str = ""
    examples: list[Any] = field(default_factory=list)
    unexpected_count: int | None = None
    element_count: int | None = None
    observed: Any = None
    expected: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def describe(self) -> str:
        where = "table" if self.column == "table" else f"column '{self.column}'"
        if self.expectation == "expect_column_to_exist":
            detail = "the column is missing"
        elif self.error:
            detail = f"could not be evaluated: {self.error}"
        elif self.unexpected_count is not None:
            share = (
                f" ({100.0 * self.unexpected_count / self.element_count:.2f}%)"
                if self.element_count
                else ""
            )
            detail = (
                f"{self.unexpected_count} of {self.element_count} rows unexpected{share}, "
                f"e.g. {_short(self.examples)}"
            )
            if self.observed is not None:
                detail += f"; observed {_short(self.observed)}"
        else:
            detail = f"observed {_short(self.observed)}"
            if self.examples:
                detail += f", e.g. {_short(self.examples)}"
        expected = {k: v for k, v in self.expected.items() if v is not None}
        text = f"{self.expectation} on {where}: {detail}"
        if expected:
            text += f"; expected {_short(expected)}"
        if self.note:
            text += f" [{self.note}]"
        return text


@dataclass
class ValidationSummary:
    """What one suite run on one frame found."""

    name: str  # table, e.g. "raw/events"
    suite: str
    location: str  # partition path
    success: bool
    rows: int
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # rules not run: their column is missing
    run_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["failures"] = [jsonable(asdict(f)) for f in self.failures]
        out["failed"] = len(self.failures)
        return out

    def message(self) -> str:
        head = (
            f"{self.name} at {self.location or '<frame>'}: suite '{self.suite}' failed "
            f"{len(self.failures)} of {self.evaluated} expectations ({self.rows} rows)"
        )
        lines = [head, *(f"  - {f.describe()}" for f in self.failures)]
        if self.skipped:
            lines.append(f"  (not run because their column is missing: {', '.join(self.skipped)})")
        return "\n".join(lines)

    def raise_for_failures(self, data_docs: str | None = None) -> None:
        if not self.success:
            raise_for(f"data validation failed for {self.name}", [self], data_docs=data_docs)


def raise_for(
    title: str, summaries: Sequence[ValidationSummary], data_docs: str | None = None
) -> None:
    """Raise one DataValidationError covering every failed summary (no-op if all pass)."""
    failed = [s for s in summaries if not s.success]
    if not failed:
        return
    parts = [f"{title}:", *(s.message() for s in failed)]
    if data_docs:
        parts.append(f"Data Docs: {data_docs}")
    raise DataValidationError("\n".join(parts), list(summaries), data_docs)


def _exception_text(info: Any) -> str | None:
    """The exception message of an expectation result's exception_info, if any."""
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "exception").strip()
        return None
    for value in info.values():  # keyed by metric id when a metric failed
        if isinstance(value, Mapping) and (value.get("exception_message") or "").strip():
            return str(value["exception_message"]).strip()
    return None


def _failure_from_result(result: Any) -> Failure:
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    rule = Rule(config.type, kwargs)
    detail = result.result or {}
    expected = {
        k: v for k, v in kwargs.items() if k not in ("column", "column_A", "column_B", "batch_id")
    }
    return Failure(
        expectation=config.type,
        column=rule.target,
        note=(config.meta or {}).get("note", "") or "",
        examples=jsonable(list(detail.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]),
        unexpected_count=jsonable(detail.get("unexpected_count")),
        element_count=jsonable(detail.get("element_count")),
        observed=jsonable(detail.get("observed_value")),
        expected=jsonable(expected),
        error=_exception_text(result.exception_info),
    )


# --------------------------------------------------------------------------- GX session


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "frame"


class GxSession:
    """One ephemeral GX context with a pandas data source; runs suites on frames.

    ``results_dir`` keeps validation results on disk (needed for a Data Docs site
    that accumulates runs); ``docs_dir`` is where :meth:`build_data_docs` writes
    the HTML site. Both None = everything in memory, no docs (tests, ad hoc use).
    """

    def __init__(
        self,
        *,
        results_dir: Path | None = None,
        docs_dir: Path | None = None,
        run_name: str = "adhoc",
    ) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
        stores = dict(defaults.stores)
        if results_dir is not None:
            results_dir.mkdir(parents=True, exist_ok=True)
            stores[defaults.validation_results_store_name] = {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(results_dir),
                },
            }
        sites = {}
        if docs_dir is not None:
            sites[SITE_NAME] = {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                # Suites differ per stage and live only in this ephemeral context; the
                # index would delete other stages' suite pages, so render results only.
                "site_section_builders": {"expectations": "None", "profiling": "None"},
            }
        config = DataContextConfig(
            store_backend_defaults=defaults,
            stores=stores,
            data_docs_sites=sites,
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral", project_config=config)
        self.datasource = self.context.data_sources.add_pandas(_DATASOURCE)
        self.docs_dir = docs_dir
        self.run_name = run_name
        self._result_ids: list[Any] = []
        self._lock = threading.Lock()

    # -- suites -------------------------------------------------------------------
    def _batch_definition(self, asset_name: str) -> Any:
        try:
            asset = self.datasource.get_asset(asset_name)
        except LookupError:
            asset = self.datasource.add_dataframe_asset(asset_name)
        try:
            return asset.get_batch_definition(_BATCH_DEFINITION)
        except (KeyError, LookupError):
            return asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION)

    def _replace_suite(self, spec_name: str, rules: Sequence[Rule]) -> Any:
        from great_expectations.expectations.registry import get_expectation_impl

        gx = self._gx
        for factory in (self.context.validation_definitions, self.context.suites):
            with contextlib.suppress(Exception):  # absent is fine
                factory.delete(spec_name)
        suite = gx.ExpectationSuite(name=spec_name)
        for rule in rules:
            impl = get_expectation_impl(rule.expectation)
            suite.add_expectation(impl(**dict(rule.kwargs), meta={"note": rule.note}))
        return self.context.suites.add(suite)

    def check(
        self, df: pd.DataFrame, spec: SuiteSpec, name: str, *, location: str = ""
    ) -> ValidationSummary:
        """Run ``spec`` on ``df`` with GX and summarise the outcome (never raises on failure)."""
        from great_expectations.core.run_identifier import RunIdentifier

        present = set(map(str, df.columns))
        rules: list[Rule] = []
        skipped: list[str] = []
        checked_exists: set[str] = set()
        for rule in spec.rules:
            if rule.expectation == "expect_column_to_exist":
                checked_exists.add(rule.kwargs["column"])
        for rule in spec.rules:
            missing = [c for c in rule.columns if c not in present]
            if missing and rule.expectation != "expect_column_to_exist":
                skipped.append(f"{rule.expectation}({rule.target})")
                for col in missing:
                    if col not in checked_exists:
                        checked_exists.add(col)
                        rules.append(exists(col))
                continue
            rules.append(rule)

        with self._lock:
            suite = self._replace_suite(spec.name, rules)
            batch_definition = self._batch_definition(_sanitize(name))
            validation = self.context.validation_definitions.add(
                self._gx.ValidationDefinition(name=spec.name, data=batch_definition, suite=suite)
            )
            run_id = RunIdentifier(run_name=self.run_name, run_time=dt.datetime.now(dt.UTC))
            result = validation.run(
                batch_parameters={"dataframe": df}, result_format=RESULT_FORMAT, run_id=run_id
            )
            self._result_ids.append((spec.name, run_id))

        failures = [_failure_from_result(r) for r in result.results if not r.success]
        for failure in failures:
            # Dtype-level type checks report only the observed type: add sample values.
            if (
                failure.expectation in _TYPE_EXPECTATIONS
                and not failure.examples
                and failure.column in present
            ):
                sample = df[failure.column].dropna().head(MAX_EXAMPLES)
                failure.examples = jsonable(sample.tolist())
        order = {(r.expectation, r.target): i for i, r in enumerate(rules)}
        failures.sort(key=lambda f: order.get((f.expectation, f.column), len(order)))
        return ValidationSummary(
            name=name,
            suite=spec.name,
            location=location,
            success=bool(result.success),
            rows=len(df),
            evaluated=len(result.results),
            failures=failures,
            skipped=skipped,
            run_name=self.run_name,
        )

    # -- Data Docs --------------------------------------------------------------------
    def build_data_docs(self) -> str | None:
        """Render this session's results into the site; return the index path (or None)."""
        if self.docs_dir is None:
            return None
        store = self.context.validation_results_store
        wanted = {(suite, run_id.to_tuple()) for suite, run_id in self._result_ids}
        keys = [
            key
            for key in store.list_keys()
            if (key.expectation_suite_identifier.name, key.run_id.to_tuple()) in wanted
        ]
        try:
            self.context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=keys)
        except Exception:  # Data Docs are a report: never let them hide the verdict
            log.exception("building Data Docs under %s failed", self.docs_dir)
            return None
        index = self.docs_dir / "index.html"
        return str(index) if index.exists() else None


_default_session: GxSession | None = None
_default_lock = threading.Lock()


def default_session() -> GxSession:
    """A process-wide in-memory session (GX import and context creation happen once)."""
    global _default_session
    with _default_lock:
        if _default_session is None:
            _default_session = GxSession()
        return _default_session


def check_frame(
    df: pd.DataFrame,
    suite_spec: SuiteSpec,
    name: str,
    *,
    session: GxSession | None = None,
    location: str = "",
) -> ValidationSummary:
    """Validate ``df`` against ``suite_spec`` with Great Expectations; never raises on
    failed expectations (call ``summary.raise_for_failures()`` for that)."""
    return (session or default_session()).check(df, suite_spec, name, location=location)
