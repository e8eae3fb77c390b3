"""Suite of the training set (training/dt=ds): keys, labels, query groups, features."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.features.columns import OPTIONAL_FEATURES
from ranking_jobs.validation.common import finish, read_required, session_for
from ranking_jobs.validation.frames import to_frame
from ranking_jobs.validation.spec import (
    Rule,
    SuiteSpec,
    between,
    in_set,
    is_null,
    not_null,
    row_count,
    type_rule,
)

SPLITS = ("train", "valid", "test")
MAX_LABEL = max(C.LABEL_GRADES.values())
MIN_LABEL = min(C.NOT_SHOWN_GRADE, *C.LABEL_GRADES.values())
# "Positive" = a real interaction (click or stronger), not merely shown.
POSITIVE_LABEL = C.LABEL_GRADES["click"]
KEYS = {
    "user_id": "integer",
    "item_id": "integer",
    "as_of": "timestamp",
    "label": "integer",
    "split": "string",
}

QUERY_SIZE = "query_size"
SPLIT_WITHOUT_POSITIVE = "split_without_positive_query"
DERIVED = (QUERY_SIZE, SPLIT_WITHOUT_POSITIVE)
# Row bookkeeping that is numeric but no model input: which generators proposed the
# row, and where it was displayed.
BOOKKEEPING = ("sources", "shown_position")
FLOAT_MAX = float(np.finfo(np.float64).max)


def feature_columns(df: pd.DataFrame) -> list[str]:
    """Every numeric column that is not a key, the label, bookkeeping or a derived check."""
    skip = set(KEYS) | set(DERIVED) | set(BOOKKEEPING)
    return [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


def with_query_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The training frame plus the per-row columns the query rules assert on.

    - ``query_size``: rows of the row's (user_id, as_of) query;
    - ``split_without_positive_query``: the row's split if no query of that split
      has a positive label (>= click), else null.
    """
    out = df.copy()
    if {"user_id", "as_of"} <= set(df.columns):
        out[QUERY_SIZE] = df.groupby(["user_id", "as_of"], dropna=False)["user_id"].transform(
            "size"
        )
    if {"split", "label"} <= set(df.columns):
        label = pd.to_numeric(df["label"], errors="coerce")
        has_positive = (label >= POSITIVE_LABEL).groupby(df["split"], dropna=False).any()
        bad_splits = {s for s, ok in has_positive.items() if not ok}
        out[SPLIT_WITHOUT_POSITIVE] = (
            df["split"].astype(object).where(df["split"].isin(bad_splits), None)
        )
    return out


def training_spec(features: list[str], float_features: list[str] | None = None) -> SuiteSpec:
    """Rules of the training set; ``float_features`` (default: all) get the finiteness rule."""
    rules: list[Rule] = [row_count("the training set must have rows", min_value=1)]
    for column, kind in KEYS.items():
        rules += [type_rule(column, kind), not_null(column)]
    rules += [
        between(
            "label",
            f"label must be a grade in {MIN_LABEL}..{MAX_LABEL}",
            min_value=MIN_LABEL,
            max_value=MAX_LABEL,
        ),
        in_set("split", SPLITS),
        Rule(
            "expect_column_distinct_values_to_contain_set",
            {"column": "split", "value_set": ["train"]},
            "the training set needs a train split",
        ),
        between(QUERY_SIZE, "each (user_id, as_of) query needs >= 2 rows", min_value=2),
        is_null(
            SPLIT_WITHOUT_POSITIVE,
            f"each split needs a query with a positive label (>= {POSITIVE_LABEL})",
        ),
    ]
    for column in features:
        if column not in OPTIONAL_FEATURES:
            rules.append(
                Rule(
                    "expect_column_proportion_of_non_null_values_to_be_between",
                    {"column": column, "min_value": 0, "strict_min": True},
                    f"feature {column} must not be entirely null",
                )
            )
        if float_features is not None and column not in float_features:
            continue
        rules.append(
            between(
                column,
                f"feature {column} must be finite (no +/-inf)",
                min_value=-FLOAT_MAX,
                max_value=FLOAT_MAX,
            )
        )
    return SuiteSpec("training_set", rules)


def validate_training_set(ctx: RunContext) -> dict[str, Any]:
    """Validate training/dt=ctx.ds; raise DataValidationError naming each broken rule."""
    table = read_required(ctx, [C.TRAINING], ctx.ds)[C.TRAINING]
    df = to_frame(table)
    features = feature_columns(df)
    floats = [c for c in features if pd.api.types.is_float_dtype(df[c])]
    session = session_for(ctx, "validate_training_set")
    summary = session.check(
        with_query_columns(df),
        training_spec(features, floats),
        C.TRAINING,
        location=lake.partition_uri(ctx.settings, C.TRAINING, ctx.ds),
    )
    result = finish(ctx, "validate_training_set", session, [summary])
    result["features"] = features
    return result
