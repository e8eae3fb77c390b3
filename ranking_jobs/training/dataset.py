"""Training set: candidates plus logged impressions, graded labels, Feast features.

For each label window of the night's calendar (``ranking_jobs.calendar``), the rows
of a user with an interaction in the window are the candidates generated from the
snapshot of the window's eve plus the items actually shown in the window; each row's
label is the strongest interaction with the item during the window. Features come
from Feast at the window's start, so nothing from the window leaks in.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.calendar import SPLITS, Window, calendar_of
from ranking_jobs.candidates import inputs
from ranking_jobs.columns import AFFINITY_DIMENSIONS
from ranking_jobs.context import RunContext
from ranking_jobs.feast_store import assemble_features
from ranking_jobs.model import SHOWN_ONLY

log = logging.getLogger(__name__)

# Training and validation windows whose estimated rows exceed the row budget this many
# times are sampled by query before their candidates are built, down to this many times
# the budget; the exact budget is then applied to the rows built. Building every
# query's candidates first takes memory in proportion to the users: `small` built 9M
# rows to keep 3M, and a `medium` night's three windows reached 27M rows and was killed
# at 20 GB. The estimate (a query's candidates plus the items it was shown) is rough,
# hence the margin above the budget.
PRESAMPLE_TO = 1.5


def grade_labels(day_events: pd.DataFrame) -> pd.DataFrame:
    """Strongest interaction per (user, item) in the label window, as a graded label;
    whether the item was shown (has a logged impression) and the best position it was
    shown at (NaN when never shown)."""
    grades = day_events["event_type"].map(C.LABEL_GRADES).fillna(C.NOT_SHOWN_GRADE)
    shown = day_events["event_type"] == "impression"
    out = day_events[["user_id", "item_id"]].assign(label=grades.astype("int64"), shown=shown)
    if "position" in day_events:
        out["shown_position"] = day_events["position"].astype("float64").where(shown)
    else:
        out["shown_position"] = np.nan
    return out.groupby(["user_id", "item_id"], as_index=False).agg(
        label=("label", "max"), shown=("shown", "any"), shown_position=("shown_position", "min")
    )


def query_rows(candidates: pd.DataFrame, labels: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Union of candidates and shown items of users with a labelled interaction; labelled.

    An item interacted with but never shown (a log without impressions, e.g. a shop's
    sales) is a row only when it is a candidate: added on its own, every such row would
    be a positive that serving's candidates never contain, which the ranker learns to
    spot instead of learning to rank. ``source`` says which candidate generator
    proposed the row first, or ``shown`` for a logged item no generator proposed, and
    ``sources`` every generator that proposed it (their recall is measured on both).
    """
    shown_users = labels["user_id"].unique()
    keep = ["user_id", "item_id", "source", "sources"]
    cands = candidates.loc[candidates["user_id"].isin(shown_users), keep]
    shown = labels.loc[labels["shown"], ["user_id", "item_id"]]
    rows = cands.merge(shown, on=["user_id", "item_id"], how="outer")
    rows["source"] = rows["source"].fillna(SHOWN_ONLY)
    rows["sources"] = rows["sources"].fillna(0).astype("int64")
    labelled = labels[["user_id", "item_id", "label", "shown_position"]]
    rows = rows.merge(labelled, on=["user_id", "item_id"], how="left")
    rows["label"] = rows["label"].fillna(C.NOT_SHOWN_GRADE).astype("int64")
    # Items listed after the snapshot are not in it yet; they are dropped.
    return rows.merge(items[["item_id", *AFFINITY_DIMENSIONS]], on="item_id", how="inner")


def window_labels(ctx: RunContext, window: Window) -> pd.DataFrame:
    """The graded labels of every (user, item) the window's events touch."""
    events = lake.read_days(
        ctx.settings, C.RAW_EVENTS, window.days, ["user_id", "item_id", "event_type", "position"]
    ).to_pandas()
    return grade_labels(events)


def rows_for_window(
    ctx: RunContext, window: Window, labels: pd.DataFrame, users: np.ndarray
) -> pd.DataFrame:
    """The labelled candidate rows of ``users``' queries in ``window``."""
    labels = labels[labels["user_id"].isin(users)]
    cands = inputs.candidates_at(ctx.settings, labels["user_id"].unique(), window.snapshot)
    rows = inputs.with_pair_features(query_rows(cands.frame, labels, cands.items), cands)
    rows["as_of"] = window.as_of
    return rows


def engaged_users(labels: pd.DataFrame) -> np.ndarray:
    """The users with an engagement among a window's graded labels."""
    return labels.loc[C.is_engagement(labels["label"].to_numpy()), "user_id"].unique()


def planned_queries(
    settings: Any, windows: list[Window], labels: dict[Window, pd.DataFrame]
) -> dict[Window, np.ndarray]:
    """The users whose rows each window builds: those who engaged in it (a click or
    more), unless the training and validation windows' estimated rows are over
    ``PRESAMPLE_TO`` times the budget, then whole queries drawn at random down to that;
    and at most ``RANKING_HOLDOUT_ROW_USERS`` hold-out queries, drawn the same way.

    A user who was only shown items is no query: the model learns from, and the
    evaluation scores, engaged queries alone. Built anyway, such queries took four
    fifths of the row budget at ``medium`` (a feed shows far more users items than
    engage), and the validation split that early stopping watched kept about 200
    engaged queries of its 1,052."""
    rng = np.random.default_rng(settings.generator.seed)
    per_user = settings.candidates.per_user
    plan: dict[Window, np.ndarray] = {}
    sizes: dict[Window, np.ndarray] = {}
    for window in windows:
        frame = labels[window]
        shown = frame[frame["user_id"].isin(engaged_users(frame))].groupby("user_id")["shown"].sum()
        plan[window] = shown.index.to_numpy()
        sizes[window] = per_user + shown.to_numpy()
    fitting = [w for w in windows if w.split != "test"]
    budget = settings.training.max_rows
    if sum(int(sizes[w].sum()) for w in fitting) > PRESAMPLE_TO * budget:
        which = np.concatenate([np.full(len(plan[w]), i) for i, w in enumerate(fitting)])
        est = np.concatenate([sizes[w] for w in fitting])
        order = rng.permutation(len(est))
        chosen = order[np.cumsum(est[order]) <= PRESAMPLE_TO * budget]
        users = np.concatenate([plan[w] for w in fitting])
        for i, window in enumerate(fitting):
            plan[window] = np.sort(users[chosen[which[chosen] == i]])
    for window in windows:
        if window.split == "test" and len(plan[window]) > settings.evaluation.row_users:
            drawn = rng.choice(plan[window], settings.evaluation.row_users, replace=False)
            plan[window] = np.sort(drawn)
    return plan


def require_engagement(windows: list[Window], plan: dict[Window, np.ndarray]) -> None:
    """Fail by name when a split has no engaged user at all: the night cannot fit or
    judge a model on it, and a log whose events all import as impressions (weights
    below 2) is the usual cause."""
    empty = [s for s in SPLITS if not any(len(plan[w]) for w in windows if w.split == s)]
    if empty:
        spans = [f"{w.first}..{w.last}" for w in windows if w.split in empty]
        raise ValueError(
            f"no user engaged (a click or more) in the {' and '.join(empty)} label windows "
            f"({', '.join(spans)}): raw/events holds no click or stronger event there. An imported "
            "log needs event types above impression, or weights of 2 or more"
        )


def sample_queries(rows: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """Whole queries (user, as-of) drawn at random until ``max_rows`` rows: a budget that
    keeps training time flat as users grow, without cutting any query's list short."""
    if len(rows) <= max_rows:
        return rows
    keys = rows.groupby(["as_of", "user_id"], sort=False).ngroup().to_numpy()
    sizes = np.bincount(keys)
    order = np.random.default_rng(seed).permutation(len(sizes))
    keep = order[np.cumsum(sizes[order]) <= max_rows]
    return rows[np.isin(keys, keep)]


def within_budget(
    frames: dict[str, pd.DataFrame], max_rows: int, seed: int
) -> dict[str, pd.DataFrame]:
    """The splits with training and validation sampled (whole queries) to ``max_rows``
    rows between them, shared in proportion to their rows; the hold-out keeps every
    query."""
    fitting = len(frames["train"]) + len(frames["valid"])
    out = dict(frames)
    for split in ("train", "valid"):
        share = max_rows * len(frames[split]) / max(fitting, 1)
        out[split] = sample_queries(frames[split], int(share), seed)
    return out


def build_training_set(ctx: RunContext) -> dict[str, Any]:
    settings = ctx.settings
    calendar = calendar_of(ctx)
    windows = list(calendar.windows)
    labels = {window: window_labels(ctx, window) for window in windows}
    plan = planned_queries(settings, windows, labels)
    require_engagement(windows, plan)
    before = {w.split: 0 for w in windows}
    for window in windows:
        before[window.split] += len(engaged_users(labels[window]))
    parts = {split: [] for split in SPLITS}
    for window in windows:
        rows = rows_for_window(ctx, window, labels.pop(window), plan[window])
        rows["split"] = window.split
        parts[window.split].append(rows)
        log.info(
            "label window %s..%s (%s): %s rows, %s queries",
            window.first,
            window.last,
            window.split,
            f"{len(rows):,}",
            f"{rows['user_id'].nunique():,}",
        )
    frames = {split: pd.concat(p, ignore_index=True) for split, p in parts.items()}
    fitting = len(frames["train"]) + len(frames["valid"])
    frames = within_budget(frames, settings.training.max_rows, settings.generator.seed)
    rows = pd.concat(frames.values(), ignore_index=True)
    rows["event_timestamp"] = rows["as_of"]
    table = assemble_features(settings, rows).drop(columns="event_timestamp")
    table = table.sort_values(["as_of", "user_id", "item_id"], kind="stable")
    import pyarrow as pa

    uri = lake.write_partition(
        settings, C.TRAINING, ctx.ds, pa.Table.from_pandas(table, preserve_index=False)
    )
    queries = table.groupby("split")[["as_of", "user_id"]].apply(lambda f: len(f.drop_duplicates()))
    return {
        "uri": uri,
        "rows": len(table),
        "rows_by_split": table.groupby("split").size().to_dict(),
        "queries_by_split": {k: int(v) for k, v in queries.items()},
        "sampled": fitting > settings.training.max_rows,
        "queries_before_sampling": before,
        "positives_by_split": table.groupby("split")["label"]
        .apply(lambda s: int((s >= 2).sum()))
        .to_dict(),
        "queries": int(table.groupby(["user_id", "as_of"]).ngroups),
        "calendar": calendar.describe(),
    }
