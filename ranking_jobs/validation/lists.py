"""Suite of the final lists (recommendations/dt=ds) before anything is published.

Per-list rules (sorted scores, duplicates, sold items, own listings) are computed
as derived per-user columns with vectorised Arrow/numpy code, then asserted by
GX, so a failure names the rule, the derived column and example offending item
ids or positions.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.settings import Settings
from ranking_jobs.validation.common import finish, read_required, session_for
from ranking_jobs.validation.frames import to_frame
from ranking_jobs.validation.spec import (
    Rule,
    SuiteSpec,
    between,
    is_null,
    row_count,
    schema_rules,
    unique,
)

log = logging.getLogger(__name__)

ITEM_IDS_LENGTH = "item_ids_length"
SCORES_LENGTH = "scores_length"
SCORES_NOT_DESCENDING_AT = "scores_not_descending_at"  # first position whose score rises
DUPLICATE_ITEM = "item_ids_duplicate"  # first item id repeated within the list
SOLD_ITEM = "item_ids_sold"  # first listed item that is sold in raw/items dt=ds
OWN_LISTING = "item_ids_own_listing"  # first listed item whose seller is the user
# First head item past its seller's cap while a later item of the list was within its
# seller's cap (it could have been shown instead).
SELLER_OVER_CAP = "item_ids_seller_over_cap"
# First head item past its seller's cap that no later item could replace: the list's
# items come from too few sellers (one shop, or a catalogue without sellers). Not refused.
SELLER_CAP_UNMET = "item_ids_seller_cap_unmet"
ACTIVE_USER = "user_is_active"  # 1 when the list's user is active on the day (user_stats)


class Coverage(NamedTuple):
    active: int  # active users tonight
    previous: float  # share of its active users the previous run's lists covered
    previous_day: dt.date


CHUNK_ROWS = 200_000


def lists_spec(settings: Settings, coverage: Coverage | None = None) -> SuiteSpec:
    """``coverage``: tonight's active users and the previous run's coverage of its
    own, which tonight's may fall below by at most ``lists_coverage_band``."""
    top_n = settings.lists.top_n
    coverage_rules = []
    if coverage is not None:
        floor = max(0.0, coverage.previous - settings.validation.lists_coverage_band)
        coverage_rules.append(
            Rule(
                "expect_column_sum_to_be_between",
                {"column": ACTIVE_USER, "min_value": math.ceil(coverage.active * floor)},
                f"lists must cover at least {floor:.0%} of the {coverage.active:,} active users: "
                f"{coverage.previous:.1%} were covered on {coverage.previous_day.isoformat()}, "
                f"and coverage may fall by at most {settings.validation.lists_coverage_band:.0%}",
            )
        )
    return SuiteSpec(
        "recommendations",
        [
            row_count("there must be lists to publish", min_value=1),
            *coverage_rules,
            *schema_rules(C.RECOMMENDATIONS_SCHEMA),
            unique("user_id", "one list per user"),
            between(
                ITEM_IDS_LENGTH,
                f"each list holds 1..{top_n} items (settings.lists.top_n)",
                min_value=1,
                max_value=top_n,
            ),
            Rule(
                "expect_column_pair_values_to_be_equal",
                {"column_A": ITEM_IDS_LENGTH, "column_B": SCORES_LENGTH},
                "item_ids and scores must have equal lengths",
            ),
            is_null(SCORES_NOT_DESCENDING_AT, "scores must be sorted descending"),
            is_null(DUPLICATE_ITEM, "no item twice in one list"),
            is_null(SOLD_ITEM, "no item that is sold in raw/items of the day"),
            is_null(OWN_LISTING, "no item the user sells themself"),
            is_null(
                SELLER_OVER_CAP,
                f"at most {settings.lists.seller_cap} items of one seller among the first "
                f"{settings.lists.surface_size} (settings.lists.seller_cap) where the list's "
                "later items could have held it",
            ),
            Rule(
                "expect_column_value_lengths_to_be_between",
                {"column": "model_version", "min_value": 1},
                "model_version must be non-empty",
            ),
        ],
    )


def _first_per_row(rows: np.ndarray, values: np.ndarray, n: int) -> pd.Series:
    """Per row, the value at the row's first flagged element (null when none)."""
    out = np.full(n, None, dtype=object)
    if len(rows):
        first_rows, first_idx = np.unique(rows, return_index=True)
        out[first_rows] = values[first_idx].tolist()
    return pd.Series(out, dtype=object)


def _seller_cap_breaches(
    parents: np.ndarray, starts: np.ndarray, seller: np.ndarray, cap: int, head: int
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the flattened lists past their seller's ``cap`` among the first
    ``head``: (those a later item within its seller's cap could have replaced, those none
    could). A list whose items come from too few sellers cannot hold the cap (one shop:
    nothing past the cap's first items can), so only the first kind is a broken rule.
    ``seller`` is NaN for an item of unknown seller, which no cap counts."""
    position = np.arange(len(parents))
    nth = (
        pd.DataFrame({"r": parents, "s": seller})
        .groupby(["r", "s"], dropna=True)
        .cumcount()
        .reindex(position)
        .to_numpy(np.float64, na_value=np.nan)
    )
    past = nth >= cap
    within = np.concatenate([[0], np.cumsum(~past & ~np.isnan(nth))])
    replaceable = within[starts[parents + 1]] - within[position + 1] > 0
    in_head = past & (position - starts[parents] < head)
    return np.nonzero(in_head & replaceable)[0], np.nonzero(in_head & ~replaceable)[0]


def _is_list(table: pa.Table, name: str) -> bool:
    return name in table.column_names and (
        pa.types.is_list(table.schema.field(name).type)
        or pa.types.is_large_list(table.schema.field(name).type)
    )


def _flattened(chunk: pa.Table, column: str) -> tuple[pa.Array, np.ndarray, pa.Array]:
    """A list column's lengths, the row of each of its values, and the values."""
    lists = chunk.column(column).combine_chunks()
    return (
        pc.list_value_length(lists),
        pc.list_parent_indices(lists).to_numpy(),
        pc.list_flatten(lists),
    )


def _chunk_checks(
    chunk: pa.Table, sold_ids: np.ndarray, sellers: pd.Series, cap: int, head: int
) -> dict[str, pd.Series | np.ndarray]:
    n = chunk.num_rows
    out: dict[str, Any] = {}
    if _is_list(chunk, "item_ids"):
        lengths, parents, flat = _flattened(chunk, "item_ids")
        out[ITEM_IDS_LENGTH] = lengths.to_pandas()
        if pa.types.is_integer(flat.type):
            items = pc.fill_null(flat, -1).to_numpy().astype(np.int64, copy=False)
            dup = pd.DataFrame({"r": parents, "i": items}).duplicated().to_numpy() & (items >= 0)
            out[DUPLICATE_ITEM] = _first_per_row(parents[dup], items[dup], n)
            sold = np.isin(items, sold_ids)
            out[SOLD_ITEM] = _first_per_row(parents[sold], items[sold], n)
            seller = sellers.reindex(items).to_numpy(dtype=np.float64, na_value=np.nan)
            if "user_id" in chunk.column_names and pa.types.is_integer(
                chunk.schema.field("user_id").type
            ):
                users = pc.fill_null(chunk.column("user_id"), -1).to_numpy()
                own = seller == users[parents]
                out[OWN_LISTING] = _first_per_row(parents[own], items[own], n)
            starts = np.concatenate([[0], np.cumsum(pc.fill_null(lengths, 0).to_numpy())])
            over, unmet = _seller_cap_breaches(parents, starts, seller, cap, head)
            out[SELLER_OVER_CAP] = _first_per_row(parents[over], items[over], n)
            out[SELLER_CAP_UNMET] = _first_per_row(parents[unmet], items[unmet], n)
    if _is_list(chunk, "scores"):
        lengths, parents, flat = _flattened(chunk, "scores")
        out[SCORES_LENGTH] = lengths.to_pandas()
        if pa.types.is_floating(flat.type) or pa.types.is_integer(flat.type):
            scores = pc.cast(flat, pa.float64()).to_numpy(zero_copy_only=False)
            starts = np.concatenate([[0], np.cumsum(pc.fill_null(lengths, 0).to_numpy())])[:-1]
            rise = np.nonzero((scores[1:] > scores[:-1]) & (parents[1:] == parents[:-1]))[0] + 1
            rows = parents[rise]
            out[SCORES_NOT_DESCENDING_AT] = _first_per_row(rows, rise - starts[rows], n)
    return out


def with_list_checks(
    table: pa.Table, items: pa.Table, seller_cap: int = 3, surface_size: int = 20
) -> pd.DataFrame:
    """The lists as a pandas frame plus the derived per-user check columns."""
    item_frame = items.select(
        [c for c in ("item_id", "seller_id", "status") if c in items.column_names]
    ).to_pandas()
    sold_ids = (
        item_frame.loc[item_frame.get("status") == "sold", "item_id"].to_numpy(np.int64)
        if {"item_id", "status"} <= set(item_frame.columns)
        else np.empty(0, np.int64)
    )
    sellers = (
        item_frame.drop_duplicates("item_id").set_index("item_id")["seller_id"].astype("float64")
        if {"item_id", "seller_id"} <= set(item_frame.columns)
        else pd.Series(dtype="float64")
    )
    parts = [
        pd.DataFrame(
            _chunk_checks(
                table.slice(offset, CHUNK_ROWS), sold_ids, sellers, seller_cap, surface_size
            )
        )
        for offset in range(0, max(table.num_rows, 1), CHUNK_ROWS)
    ]
    checks = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    df = to_frame(table)
    for column in checks.columns:
        df[column] = checks[column].to_numpy()
    return df


def active_user_ids(settings: Settings, day: dt.date) -> np.ndarray:
    """The users precompute makes lists for: those in the day's user features."""
    return lake.read_partition(settings, C.FEATURES_USER, day, ["user_id"])["user_id"].to_numpy()


def coverage_of(settings: Settings, day: dt.date, users: np.ndarray) -> float:
    active = active_user_ids(settings, day)
    return float(np.isin(active, users).mean()) if len(active) else 1.0


def previous_coverage(settings: Settings, ds: dt.date) -> tuple[dt.date, float] | None:
    """The last day before ``ds`` with lists and user features, and its coverage."""
    with_features = set(lake.list_partitions(settings, C.FEATURES_USER))
    earlier = [
        d
        for d in lake.list_partitions(settings, C.RECOMMENDATIONS)
        if d < ds and d in with_features
    ]
    if not earlier:
        return None
    day = max(earlier)
    users = lake.read_partition(settings, C.RECOMMENDATIONS, day, ["user_id"])["user_id"]
    return day, coverage_of(settings, day, users.to_numpy())


def validate_lists(ctx: RunContext) -> dict[str, Any]:
    """Validate recommendations/dt=ctx.ds against raw/items dt=ctx.ds."""
    settings = ctx.settings
    tables = read_required(ctx, [C.RECOMMENDATIONS, C.RAW_ITEMS], ctx.ds)
    df = with_list_checks(
        tables[C.RECOMMENDATIONS],
        tables[C.RAW_ITEMS],
        settings.lists.seller_cap,
        settings.lists.surface_size,
    )
    coverage = None
    previous = previous_coverage(settings, ctx.ds)
    if previous is not None and lake.has_partition(settings, C.FEATURES_USER, ctx.ds):
        active = active_user_ids(settings, ctx.ds)
        df[ACTIVE_USER] = df["user_id"].isin(active).astype("int64")
        coverage = Coverage(len(active), previous[1], previous[0])
    session = session_for(ctx, "validate_lists")
    summary = session.check(
        df,
        lists_spec(settings, coverage),
        C.RECOMMENDATIONS,
        location=lake.partition_uri(ctx.settings, C.RECOMMENDATIONS, ctx.ds),
    )
    result = finish(ctx, "validate_lists", session, [summary])
    result["warnings"] = seller_cap_warnings(df, tables[C.RAW_ITEMS], settings, ctx.ds)
    for warning in result["warnings"]:
        log.warning(warning)
    return result


def seller_cap_warnings(
    df: pd.DataFrame, items: pa.Table, settings: Settings, ds: dt.date
) -> list[str]:
    """The sentence the report shows when some lists could not hold the seller cap."""
    unmet = int(df[SELLER_CAP_UNMET].notna().sum()) if SELLER_CAP_UNMET in df else 0
    if not unmet:
        return []
    sellers = pc.count_distinct(items.column("seller_id")).as_py()
    return [
        f"seller cap not applied to {unmet:,} of {len(df):,} lists: their items come from "
        f"too few sellers for {settings.lists.seller_cap} per seller among the first "
        f"{settings.lists.surface_size} (raw/items of {ds.isoformat()} has {sellers:,} seller(s))"
    ]
