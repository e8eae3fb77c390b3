"""Errors of the validation stage (importable without Great Expectations)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ranking_jobs.lake import MissingPartitionError

if TYPE_CHECKING:
    from ranking_jobs.validation.engine import ValidationSummary


class DataValidationError(ValueError):
    """A suite failed: the message names the table/partition and, per failed
    expectation, its type, its column and a few offending values.

    ``summaries`` holds the structured results of every table that was checked
    (the failing ones and the passing ones), ``data_docs`` the Data Docs index.
    """

    def __init__(
        self,
        message: str,
        summaries: list[ValidationSummary] | None = None,
        data_docs: str | None = None,
    ) -> None:
        super().__init__(message)
        self.summaries = list(summaries or [])
        self.data_docs = data_docs

    @property
    def failures(self) -> list:
        return [f for s in self.summaries for f in s.failures]


class MissingDataPartitionError(DataValidationError, MissingPartitionError):
    """A partition the suite must check does not exist (also a MissingPartitionError)."""
