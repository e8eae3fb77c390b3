"""Suite specifications: plain data describing which Great Expectations rules to run.

A :class:`SuiteSpec` is a list of :class:`Rule` (a GX expectation type in snake
case plus its keyword arguments). Specs are pure data so they can be built,
inspected and tested without importing Great Expectations; the engine turns
them into a real ``ExpectationSuite``.

Column kinds (integer, float, string, timestamp, list, boolean) are derived from
the Arrow contracts; :func:`ranking_jobs.validation.frames.to_frame` converts
Arrow tables to pandas so that each kind has a dtype GX 1.x can check:

- integer / float / boolean: numpy (or pandas nullable) dtypes, checked by
  ``expect_column_values_to_be_in_type_list`` at the dtype level;
- string: Arrow-backed ``pd.ArrowDtype(string)`` whose scalar type is ``str``
  (checked at the dtype level; a plain ``object`` column is checked value by value);
- timestamp: tz-aware ``datetime64[..., UTC]``, whose dtype's scalar type is
  ``Timestamp``: ``expect_column_values_to_be_of_type(type_="Timestamp")`` (a
  naive timestamp column reports ``datetime64``);
- list: ``pd.ArrowDtype(list<...>)`` whose scalar type is ``list``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

INTEGER_TYPES = (
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "Int8Dtype",
    "Int16Dtype",
    "Int32Dtype",
    "Int64Dtype",
    "UInt8Dtype",
    "UInt16Dtype",
    "UInt32Dtype",
    "UInt64Dtype",
)
FLOAT_TYPES = ("float16", "float32", "float64", "Float32Dtype", "Float64Dtype")
BOOLEAN_TYPES = ("bool", "BooleanDtype")


@dataclass(frozen=True)
class Rule:
    """One expectation: GX snake-case type, its kwargs, and a human note on why."""

    expectation: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the rule reads (empty for table-level rules)."""
        cols = [self.kwargs.get(k) for k in ("column", "column_A", "column_B")]
        cols += list(self.kwargs.get("column_list") or ())
        return tuple(c for c in cols if c)

    @property
    def target(self) -> str:
        return ", ".join(self.columns) if self.columns else "table"


@dataclass(frozen=True)
class SuiteSpec:
    """A named list of rules (becomes one GX ExpectationSuite)."""

    name: str
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))

    def plus(self, rules: Iterable[Rule]) -> SuiteSpec:
        return SuiteSpec(self.name, (*self.rules, *rules))


def kind_of(arrow_type: pa.DataType) -> str | None:
    """The column kind the suites check for an Arrow type (None = not checked)."""
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return "list"
    return None


def type_rule(column: str, kind: str) -> Rule:
    """The GX rule asserting that ``column`` has the given kind."""
    note = f"{column} must be of kind {kind}"
    if kind == "integer":
        return Rule(
            "expect_column_values_to_be_in_type_list",
            {"column": column, "type_list": list(INTEGER_TYPES)},
            note,
        )
    if kind == "float":
        return Rule(
            "expect_column_values_to_be_in_type_list",
            {"column": column, "type_list": list(FLOAT_TYPES)},
            note,
        )
    if kind == "boolean":
        return Rule(
            "expect_column_values_to_be_in_type_list",
            {"column": column, "type_list": list(BOOLEAN_TYPES)},
            note,
        )
    if kind == "string":
        return Rule("expect_column_values_to_be_of_type", {"column": column, "type_": "str"}, note)
    if kind == "timestamp":
        return Rule(
            "expect_column_values_to_be_of_type",
            {"column": column, "type_": "Timestamp"},
            note + " (timezone-aware)",
        )
    if kind == "list":
        return Rule("expect_column_values_to_be_of_type", {"column": column, "type_": "list"}, note)
    raise ValueError(f"unknown column kind {kind!r}")


def exists(column: str) -> Rule:
    return Rule("expect_column_to_exist", {"column": column}, f"{column} is a required column")


def not_null(column: str, note: str = "") -> Rule:
    return Rule(
        "expect_column_values_to_not_be_null",
        {"column": column},
        note or f"{column} is required (non-nullable)",
    )


def unique(column: str, note: str = "") -> Rule:
    return Rule(
        "expect_column_values_to_be_unique", {"column": column}, note or f"{column} is a unique key"
    )


def in_set(column: str, values: Iterable[Any], note: str = "") -> Rule:
    values = list(values)
    return Rule(
        "expect_column_values_to_be_in_set",
        {"column": column, "value_set": values},
        note or f"{column} is one of {values}",
    )


def between(column: str, note: str = "", **bounds: Any) -> Rule:
    return Rule("expect_column_values_to_be_between", {"column": column, **bounds}, note)


def is_null(column: str, note: str, mostly: float | None = None) -> Rule:
    kwargs: dict[str, Any] = {"column": column}
    if mostly is not None and mostly < 1:
        kwargs["mostly"] = mostly
    return Rule("expect_column_values_to_be_null", kwargs, note)


def row_count(note: str, min_value: int | None = None, max_value: int | None = None) -> Rule:
    return Rule(
        "expect_table_row_count_to_be_between",
        {"min_value": min_value, "max_value": max_value},
        note,
    )


def schema_rules(schema: pa.Schema, *, required: Iterable[str] | None = None) -> list[Rule]:
    """Kind and (for non-nullable fields) not-null rules of a contract schema.

    Presence needs no rule of its own: the engine adds ``expect_column_to_exist``
    for every referenced column that is missing (one clear failure instead of a
    "column not found" error per rule), which keeps suites short: GX 1.x costs a
    fixed time of Python per expectation whatever the data size (docs/decisions.md).

    ``required`` overrides which columns must not be null (default: the schema's
    non-nullable fields).
    """
    required_set = {f.name for f in schema if not f.nullable} if required is None else set(required)
    rules: list[Rule] = []
    for f in schema:
        kind = kind_of(f.type)
        rules.append(type_rule(f.name, kind) if kind is not None else exists(f.name))
        if f.name in required_set:
            rules.append(not_null(f.name))
    return rules
