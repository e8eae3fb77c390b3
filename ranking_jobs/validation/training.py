"""Suite of the training set (training/dt=ds): keys, labels, query groups, features.

A feature column that is entirely null usually means a broken join or transform and
is refused. Some feature families are empty by construction for a log that lacks
what they are computed from, and that is read from the raw data, not the training
set (an empty family looks the same as a broken join there):

- seller: raw/items of ds has fewer than two sellers (an imported log without them);
- impression: raw/events has no impression in the longest feature window up to ds;
- declared profile: no user of raw/users at ds declared a size or styles;
- user-item history: ``exclude_engaged`` is on, or ``exclude_purchased`` is and every
  engagement in the user-item lookback up to ds is a purchase, so no candidate is an
  item its user engaged with.

Such a family is not required to hold a value that night, and the stage's summary
says so in ``warnings``; a family whose source the raw data has is checked like any
feature, and its failures name the family. (The declared profile's columns are in
OPTIONAL_FEATURES, sparse even where users declare one: for it the warning is all.)
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.calendar import SPLITS
from ranking_jobs.columns import (
    ITEM_COUNTS,
    OPTIONAL_FEATURES,
    PROFILE_FLOATS,
    USER_COUNTS,
    USER_ITEM_FLOATS,
    USER_ITEM_INTS,
    WINDOWS,
)
from ranking_jobs.context import RunContext
from ranking_jobs.settings import Settings
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
# Rows held at once while the partition is streamed: a few hundred MB of features.
VALIDATION_BATCH_ROWS = 250_000

log = logging.getLogger(__name__)

# Feature families by the raw fact they are computed from (see the module docstring).
FAMILIES: dict[str, tuple[str, ...]] = {
    "seller": ("seller_sales_30d", "seller_conversion_30d"),
    "impression": (
        *(c for c in [*ITEM_COUNTS, *USER_COUNTS] if "impressions_" in c),
        "ctr_7d",
        "ctr_30d",
        "category_ctr_30d",
        "brand_ctr_30d",
    ),
    "declared profile": (*PROFILE_FLOATS, "declared_size_distance", "declared_style_match"),
    "user-item history": (*USER_ITEM_INTS, *USER_ITEM_FLOATS),
}
FAMILY_OF = {column: family for family, columns in FAMILIES.items() for column in columns}


def _has_event(settings: Settings, ds: dt.date, days: int, kinds: frozenset[str]) -> bool:
    """Whether raw/events of the ``days`` days ending with ``ds`` hold an event of one of
    ``kinds``; newest day first, so a marketplace answers on one day's column and only a
    small log is read whole."""
    present = set(lake.list_partitions(settings, C.RAW_EVENTS))
    for day in reversed(lake.day_range(ds, days)):
        if day in present:
            types = lake.read_partition(settings, C.RAW_EVENTS, day, ["event_type"])
            if kinds.intersection(pc.unique(types["event_type"]).to_pylist()):
                return True
    return False


def empty_families(settings: Settings, ds: dt.date) -> dict[str, str]:
    """Family -> why the raw data up to ``ds`` leaves it empty by construction.

    Nothing is excused without the night's raw partitions: what they lack is unknown."""
    if not all(lake.has_partition(settings, t, ds) for t in C.RAW_SCHEMAS):
        return {}
    day = ds.isoformat()
    out: dict[str, str] = {}
    sellers = lake.read_partition(settings, C.RAW_ITEMS, ds, ["seller_id"])["seller_id"]
    count = pc.count_distinct(sellers).as_py()
    if count < 2:
        out["seller"] = f"raw/items of {day} has {count} seller(s)"
    if not _has_event(settings, ds, max(WINDOWS), frozenset({"impression"})):
        out["impression"] = f"raw/events has no impression in the {max(WINDOWS)} days up to {day}"
    users = lake.read_partition(settings, C.RAW_USERS, ds, ["declared_size", "declared_styles"])
    styles = pc.fill_null(pc.list_value_length(users["declared_styles"]), 0)
    if (
        users["declared_size"].null_count == users.num_rows
        and not pc.any(pc.greater(styles, 0)).as_py()
    ):
        out["declared profile"] = f"no user of raw/users at {day} declared a size or styles"
    lookback = settings.features.user_item_lookback_days
    others = frozenset(C.EVENT_TYPES) - {"impression", "purchase"}
    if settings.lists.exclude_engaged:
        out["user-item history"] = (
            "exclude_engaged keeps every item a user engaged with out of their candidates"
        )
    elif settings.lists.exclude_purchased and not _has_event(settings, ds, lookback, others):
        out["user-item history"] = (
            f"every engagement in the {lookback} days up to {day} is a purchase and "
            "exclude_purchased keeps bought items out of the candidates"
        )
    return out


def family_warnings(empty: dict[str, str]) -> list[str]:
    """One sentence per family left out: its name, its columns and why."""
    return [
        f"{family} features ({', '.join(FAMILIES[family])}) not required tonight: {why}"
        for family, why in empty.items()
    ]


def feature_columns(schema: pa.Schema) -> list[str]:
    """Every numeric column that is not a key, the label, bookkeeping or a derived check."""
    skip = set(KEYS) | set(DERIVED) | set(BOOKKEEPING)
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
    return [f.name for f in schema if f.name not in skip and any(k(f.type) for k in numeric)]


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


class FeatureExtremes:
    """Each feature's smallest and largest value, gathered batch by batch (missing
    values ignored, infinities kept; both missing when the feature holds no value).

    The per-feature rules read :meth:`frame`: a rule per feature on every row of a
    training set cost Great Expectations about a second per 300k rows, so validating
    a few million rows took minutes; on the extremes it takes no longer at 1M users,
    and the features are never held whole.
    """

    def __init__(self, features: list[str]) -> None:
        self.low = dict.fromkeys(features, np.inf)
        self.high = dict.fromkeys(features, -np.inf)
        self.held = dict.fromkeys(features, False)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        for column in self.low:
            values = pc.cast(batch[column], pa.float64()).to_numpy(zero_copy_only=False)
            values = values[~np.isnan(values)]
            if len(values):
                self.held[column] = True
                self.low[column] = min(self.low[column], values.min())
                self.high[column] = max(self.high[column], values.max())

    def frame(self) -> pd.DataFrame:
        out = {
            c: [self.low[c], self.high[c]] if self.held[c] else [np.nan, np.nan] for c in self.low
        }
        return pd.DataFrame(out, index=["min", "max"], dtype=np.float64)


def features_spec(
    features: list[str],
    float_features: list[str] | None = None,
    empty: dict[str, str] | None = None,
) -> SuiteSpec:
    """Rules of the training set's features, checked on :meth:`FeatureExtremes.frame`:
    a feature holds a value (its extremes are not missing) unless its family is in
    ``empty`` (see :func:`empty_families`) or it is optional; ``float_features``
    (default: all) are finite."""
    excused = {c for family in empty or {} for c in FAMILIES[family]}
    rules: list[Rule] = []
    for column in features:
        if column not in OPTIONAL_FEATURES and column not in excused:
            family = FAMILY_OF.get(column)
            why = f" ({family} family: the raw data has what it is computed from)" if family else ""
            rules.append(not_null(column, f"feature {column} must not be entirely null{why}"))
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
    return SuiteSpec("training_features", rules)


def training_spec() -> SuiteSpec:
    """Rules of the training set's rows: keys, labels, splits and query groups."""
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
            {"column": "split", "value_set": list(SPLITS)},
            f"the training set needs rows in every split {list(SPLITS)}",
        ),
        between(QUERY_SIZE, "each (user_id, as_of) query needs >= 2 rows", min_value=2),
        is_null(
            SPLIT_WITHOUT_POSITIVE,
            f"each split needs a query with a positive label (>= {POSITIVE_LABEL})",
        ),
    ]
    return SuiteSpec("training_set", rules)


def validate_training_set(ctx: RunContext) -> dict[str, Any]:
    """Validate training/dt=ctx.ds; raise DataValidationError naming each broken rule.

    The partition is streamed: the row rules run on the key columns of every row, the
    feature rules on each feature's extremes, so no frame of every feature is held."""
    schema = read_required(ctx, [C.TRAINING], ctx.ds, read=lake.partition_schema)[C.TRAINING]
    features = feature_columns(schema)
    floats = [c for c in features if pa.types.is_floating(schema.field(c).type)]
    key_columns = [c for c in KEYS if c in schema.names]
    extremes = FeatureExtremes(features)
    keys = [schema.empty_table().select(key_columns)]
    started = time.perf_counter()
    for batch in lake.iter_partition(ctx.settings, C.TRAINING, ctx.ds, VALIDATION_BATCH_ROWS):
        extremes.add(batch)
        keys.append(pa.Table.from_batches([batch.select(key_columns)]))
    key_frame = to_frame(pa.concat_tables(keys))
    seconds = time.perf_counter() - started
    log.info("validate_training_set: streamed %d rows in %.1f s", len(key_frame), seconds)
    empty = empty_families(ctx.settings, ctx.ds)
    warnings = family_warnings(empty)
    for warning in warnings:
        log.warning(warning)
    session = session_for(ctx, "validate_training_set")
    location = lake.partition_uri(ctx.settings, C.TRAINING, ctx.ds)
    summaries = [
        session.check(
            with_query_columns(key_frame), training_spec(), C.TRAINING, location=location
        ),
        session.check(
            extremes.frame(),
            features_spec(features, floats, empty),
            f"{C.TRAINING}_features",
            location=location,
        ),
    ]
    result = finish(ctx, "validate_training_set", session, summaries)
    result["features"] = features
    result["warnings"] = warnings
    return result
