"""Validation stage: Great Expectations suites on raw data, the training set and the lists.

Public API (each stage takes a RunContext, returns a JSON-able summary and raises
:class:`DataValidationError` naming the table/partition, and per failed
expectation its type, column and example values):

- :func:`validate_raw` - raw/events, raw/items, raw/users at dt=ds
- :func:`validate_training_set` - training/dt=ds
- :func:`validate_lists` - recommendations/dt=ds (against raw/items dt=ds)
- :func:`check_frame` - the single code path: a SuiteSpec run on a pandas frame

Importing this package does not import Great Expectations (slow); the engine
imports it when a suite first runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ranking_jobs.validation.errors import DataValidationError, MissingDataPartitionError
from ranking_jobs.validation.spec import Rule, SuiteSpec

if TYPE_CHECKING:
    from ranking_jobs.validation.engine import (
        Failure,
        GxSession,
        ValidationSummary,
        check_frame,
    )
    from ranking_jobs.validation.lists import validate_lists
    from ranking_jobs.validation.raw import validate_raw
    from ranking_jobs.validation.training import validate_training_set

__all__ = [
    "DataValidationError",
    "Failure",
    "GxSession",
    "MissingDataPartitionError",
    "Rule",
    "SuiteSpec",
    "ValidationSummary",
    "check_frame",
    "validate_lists",
    "validate_raw",
    "validate_training_set",
]

_LAZY = {
    "Failure": "engine",
    "GxSession": "engine",
    "ValidationSummary": "engine",
    "check_frame": "engine",
    "validate_raw": "raw",
    "validate_training_set": "training",
    "validate_lists": "lists",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
