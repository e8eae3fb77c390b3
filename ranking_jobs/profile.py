"""The data profile of a night and the settings it derives from it.

Users bring their own logs: a marketplace with millions of daily events and logged
impressions, or a shop with a few hundred sales a day. The settings that depend on
that shape (how long a label window must be to hold enough users to measure, whether
users buy the same item again, how long users stay away before they come back) are
derived from a profile of the lake up to ``ds``. A setting given explicitly (a
``RANKING_*`` variable, a CLI flag, a DAG param) always wins; every choice is logged,
recorded with the model in MLflow and shown in the report.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from ranking_jobs import contracts as C
from ranking_jobs import lake, summaries
from ranking_jobs.context import RunContext
from ranking_jobs.logs import timed
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

STAGE = summaries.PROFILE
# label window lengths, in days; the long ones serve sparse logs of several years
WINDOW_CHOICES = (1, 2, 3, 7, 14, 28, 91, 182)
ACTIVE_CHOICES = (30, 60, 90, 180, 365)  # how long a user counts as active, in days
REPEAT_SHARE = 0.05  # share of purchases that re-buy an item: above it, repurchases matter
RETURN_DAYS = 28  # days in which the profile looks for users coming back to an item
RETURN_COVERAGE = 0.95  # share of returning users whose absence active_days must cover
MAX_VALID_WINDOWS = 4  # validation windows early stopping may take from training
MIN_TRAIN_WINDOWS = 4  # training windows a label window length must leave room for
REPURCHASE_LOOKBACK_DAYS = 365  # how long user-item history is remembered where users rebuy
# Candidates per user for a log of what a feed showed (most events impressions) and for
# a log of actions (README, Candidates and precompute)
CANDIDATES_SHOWN_LOG = 300
CANDIDATES_SALES_LOG = 120
FEED_LOG_SHARE = 0.5  # share of events that are impressions in a feed's log
# Training windows: at least the fixed default's 8; more while their queries fit the row
# budget (a sparse log's windows hold few users each, and one more window of them costs
# little); at most 64 snapshots.
MIN_TRAIN_DAYS = 8
MAX_TRAIN_DAYS = 64


def _day_activity(settings: Settings, day: Any, pairs: bool) -> dict[str, Any]:
    """One day's counts, its active and engaged users, its purchases and, if ``pairs``,
    its engaged (user, item) pairs."""
    events = lake.read_partition(settings, C.RAW_EVENTS, day, ["user_id", "item_id", "event_type"])
    kind = events["event_type"]
    engaged = pc.not_equal(kind, "impression")
    bought = events.filter(pc.equal(kind, "purchase")).select(["user_id", "item_id"])
    out = {
        "events": events.num_rows,
        "engaged": int(pc.sum(engaged).as_py() or 0),
        "impressions": events.num_rows - int(pc.sum(engaged).as_py() or 0),
        "active": np.unique(events["user_id"].to_numpy()),
        "engaged_users": np.unique(events.filter(engaged)["user_id"].to_numpy()),
        "purchases": bought.to_pandas().drop_duplicates().assign(day=day),
    }
    if pairs:
        out["engaged_pairs"] = events.filter(engaged).select(["user_id", "item_id"]).to_pandas()
    return out


def measure(settings: Settings, ds: Any) -> dict[str, Any]:
    """The shape of the lake's raw data up to ``ds``: per-day volumes, engaged users per
    label window length, the shares of repeat purchases and of returns to an engaged
    item, how long returning users were away, and whether impressions, sellers and
    declared profiles exist."""
    days = [d for d in lake.list_partitions(settings, C.RAW_EVENTS) if d <= ds]
    if not days:
        raise lake.MissingPartitionError(
            f"no raw/events partition up to {ds} under {settings.paths.data_root}"
        )
    with timed(log, f"profile of {len(days)} days of events") as t:
        per_day = {d: _day_activity(settings, d, (ds - d).days < RETURN_DAYS) for d in days}
        t["count"] = sum(p["events"] for p in per_day.values())
    span = (ds - days[0]).days + 1
    engaged_in = {}
    for width in WINDOW_CHOICES:
        inside = [per_day[d]["engaged_users"] for d in days if (ds - d).days < width]
        engaged_in[str(width)] = len(np.unique(np.concatenate(inside))) if inside else 0
    purchases = pd.concat([p["purchases"] for p in per_day.values()], ignore_index=True)
    purchases = purchases.sort_values("day", kind="stable")
    repeats = purchases.duplicated(["user_id", "item_id"])
    recent = [
        p["engaged_pairs"].drop_duplicates() for p in per_day.values() if "engaged_pairs" in p
    ]
    pairs = pd.concat(recent, ignore_index=True).value_counts() if recent else pd.Series()
    sellers = lake.read_partition(settings, C.RAW_ITEMS, ds, ["seller_id"])["seller_id"]
    users = lake.read_partition(settings, C.RAW_USERS, ds, ["declared_size", "declared_styles"])
    declared = users.num_rows and max(c.null_count < users.num_rows for c in users.columns)
    volumes = np.array([p["events"] for p in per_day.values()], dtype=np.float64)
    engaged_users = np.array([len(p["engaged_users"]) for p in per_day.values()], np.float64)
    return {
        "ds": ds.isoformat(),
        "first_day": days[0].isoformat(),
        "history_days": span,
        "days_with_events": int((volumes > 0).sum()),
        "events": int(volumes.sum()),
        "events_per_day": float(volumes.sum() / span),
        "engaged_users_per_day": float(engaged_users.sum() / span),
        "engaged_users_in_window": engaged_in,
        "impressions": int(sum(p["impressions"] for p in per_day.values())),
        "purchases": len(purchases),
        "repeat_purchase_share": float(repeats.mean()) if len(purchases) else 0.0,
        "repeat_engagement_share": float((pairs > 1).mean()) if len(pairs) else 0.0,
        "sellers": len(pc.unique(sellers.drop_null())),
        "declared_profiles": bool(declared),
        "return_gaps": _return_gaps(per_day, ds),
    }


def _return_gaps(per_day: dict[Any, dict[str, Any]], ds: Any) -> dict[str, float]:
    """Quantiles of how many days users active in the last week had been away before it
    (users new in that week are not counted)."""
    recent = [d for d in per_day if (ds - d).days < 7]
    earlier = [d for d in per_day if (ds - d).days >= 7]
    if not recent or not earlier:
        return {}
    back = np.unique(np.concatenate([per_day[d]["active"] for d in recent]))
    last_seen = (
        pd.concat([pd.DataFrame({"user_id": per_day[d]["active"], "day": d}) for d in earlier])
        .groupby("user_id")["day"]
        .max()
    )
    seen = last_seen.reindex(back).dropna()
    if seen.empty:
        return {}
    gaps = (pd.Timestamp(min(recent)) - pd.to_datetime(seen.to_numpy())).days.to_numpy() + 1.0
    return {str(q): float(np.quantile(gaps, q)) for q in (0.5, 0.9, RETURN_COVERAGE)}


def derive(settings: Settings, profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Setting name -> {value, why}: what the profile implies, before explicit settings win."""
    target = settings.training.min_holdout_queries
    span = profile["history_days"]
    counts = {int(w): n for w, n in profile["engaged_users_in_window"].items()}
    room = [
        w
        for w in sorted(counts)
        if span >= settings.training.min_history_days + w * (2 + MIN_TRAIN_WINDOWS)
    ]
    enough = [w for w in room if counts[w] >= target]
    if "label_window_days" in settings.explicit():
        width = settings.training.label_window_days  # the rest follows the window the night uses
        why = "set explicitly"
    elif enough:
        width = enough[0]
        why = (
            f"the shortest window with >= {target} engaged users "
            f"({counts[width]:,} in the last {width} days)"
        )
    elif room:
        width = room[-1]
        why = (
            f"no window that leaves room for {MIN_TRAIN_WINDOWS} training windows in "
            f"{span} days holds {target} engaged users; the longest that does holds "
            f"{counts[width]:,}"
        )
    else:
        width = WINDOW_CHOICES[0]
        why = f"{span} days of history leave room for no longer window"
    out: dict[str, dict[str, Any]] = {"label_window_days": {"value": width, "why": why}}
    # engaged users per window: measured for the choices, the nearest shorter one else
    per_window = max(counts[max([w for w in counts if w <= width], default=min(counts))], 1)
    valid = min(-(-target // per_window), MAX_VALID_WINDOWS)
    out["valid_windows"] = {
        "value": valid,
        "why": f"{valid} window(s) of about {per_window:,} engaged users for early stopping "
        f"(aiming at {target}, at most {MAX_VALID_WINDOWS})",
    }
    share = profile["repeat_purchase_share"]
    rebuy = share >= REPEAT_SHARE
    out["exclude_purchased"] = {
        "value": not rebuy,
        "why": f"{share:.1%} of purchases re-buy an item the user bought before "
        f"({'>=' if rebuy else '<'} {REPEAT_SHARE:.0%})",
    }
    again = profile["repeat_engagement_share"]
    rare = again < REPEAT_SHARE
    out["exclude_engaged"] = {
        "value": rare and not rebuy,
        "why": f"users came back to {again:.1%} of the items they engaged with in the last "
        f"{RETURN_DAYS} days on another day ({'<' if rare else '>='} {REPEAT_SHARE:.0%})"
        + ("; but they re-buy items" if rare and rebuy else ""),
    }
    if rebuy:
        out["user_item_lookback_days"] = {
            "value": REPURCHASE_LOOKBACK_DAYS,
            "why": "users buy items again: remember their items for a year",
        }
    seen = profile["impressions"] / max(profile["events"], 1)
    feed = seen >= FEED_LOG_SHARE
    out["candidates_per_user"] = {
        "value": CANDIDATES_SHOWN_LOG if feed else CANDIDATES_SALES_LOG,
        "why": f"{seen:.0%} of the events are impressions "
        + (
            f"(>= {FEED_LOG_SHARE:.0%}, a feed's log): what users engage with is spread "
            "over what the feed showed them"
            if feed
            else f"(< {FEED_LOG_SHARE:.0%}, a log of actions): engagement gathers on "
            "users' own and popular items"
        ),
    }
    candidates = (
        settings.candidates.per_user
        if "candidates_per_user" in settings.explicit()
        else out["candidates_per_user"]["value"]
    )
    fit = settings.training.max_rows // (candidates * per_window)
    windows = int(np.clip(fit, MIN_TRAIN_DAYS, MAX_TRAIN_DAYS))
    out["train_days"] = {
        "value": windows,
        "why": f"{fit:,} windows of about {per_window:,} queries x {candidates} candidates fit "
        f"the row budget ({settings.training.max_rows:,}); between {MIN_TRAIN_DAYS} and "
        f"{MAX_TRAIN_DAYS}, and never before the lake's first day",
    }
    gaps = profile["return_gaps"]
    if gaps:
        away = gaps[str(RETURN_COVERAGE)]
        days = next((a for a in ACTIVE_CHOICES if a >= away), ACTIVE_CHOICES[-1])
        out["active_days"] = {
            "value": days,
            "why": f"{RETURN_COVERAGE:.0%} of the users back in the last week had been away "
            f"<= {away:.0f} days",
        }
    return out


def choose(settings: Settings, derived: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The derived settings with their source: explicit settings win over the profile."""
    explicit = settings.explicit()
    return {
        name: (
            {"value": settings.value(name), "source": "explicit", "why": "set explicitly"}
            if name in explicit
            else {**choice, "source": "profile"}
        )
        for name, choice in derived.items()
    }


def profile_data(ctx: RunContext) -> dict[str, Any]:
    """The night's data profile and the settings it chose; later stages run with them."""
    profile = measure(ctx.settings, ctx.ds)
    chosen = choose(ctx.settings, derive(ctx.settings, profile))
    for name, choice in chosen.items():
        log.info("setting %s = %s (%s: %s)", name, choice["value"], choice["source"], choice["why"])
    return {"profile": profile, "settings": chosen}


def with_profile(ctx: RunContext) -> RunContext:
    """``ctx`` with the settings its night's profile chose, once ``profile_data`` ran."""
    from ranking_jobs.summaries import read_summary

    summary = read_summary(ctx, STAGE)
    if not summary:
        return ctx
    update = {k: c["value"] for k, c in summary["settings"].items() if c["source"] == "profile"}
    if not update:
        return ctx
    return dataclasses.replace(ctx, settings=ctx.settings.replace(**update))
