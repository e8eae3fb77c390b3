"""The calendar of a night: which label windows, as-of times and snapshots serve day ``ds``.

A night holds out the last label window (ending with ``ds``), stops early on the
window before it and trains on the windows before that, back to back so no split's
labels overlap another's. A window's rows, candidates and baselines all come from
the snapshot of the eve of its first day, so nothing of the window leaks into what
is scored on it. Windows are only laid where the lake has history before them:
the night never asks for a day before the lake's first one, and a window whose days
all went without events (a shop closed on Saturdays) is passed over: it has nothing
to label.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import DAY, RunContext
from ranking_jobs.settings import Settings

SPLITS = ("train", "valid", "test")  # in calendar order, oldest first


class HistoryTooShortError(ValueError):
    """The lake holds too few days before ``ds`` for a hold-out, a validation and a
    training window."""


def as_of_after(snapshot: dt.date) -> pd.Timestamp:
    """The as-of time a snapshot serves: the end of its day, the start of the next."""
    return pd.Timestamp(snapshot + DAY, tz="UTC")


@dataclass(frozen=True)
class Window:
    """``days`` of events label the rows made at the start of the first day."""

    split: str
    days: tuple[dt.date, ...]

    @property
    def first(self) -> dt.date:
        return self.days[0]

    @property
    def last(self) -> dt.date:
        return self.days[-1]

    @property
    def snapshot(self) -> dt.date:
        """The newest snapshot the window's rows may read: the eve of its first day."""
        return self.first - DAY

    @property
    def as_of(self) -> pd.Timestamp:
        return as_of_after(self.snapshot)


@dataclass(frozen=True)
class Calendar:
    ds: dt.date
    windows: tuple[Window, ...]  # oldest first; the last is the hold-out
    first_day: dt.date | None  # the lake's first day of events, when known

    def split(self, name: str) -> list[Window]:
        return [w for w in self.windows if w.split == name]

    @property
    def holdout(self) -> Window:
        return self.windows[-1]

    @property
    def snapshots(self) -> list[dt.date]:
        """Every snapshot the night reads: each window's eve and ``ds`` itself (the lists)."""
        return sorted({w.snapshot for w in self.windows} | {self.ds})

    @property
    def history_days(self) -> int:
        """Days of events from the oldest window's snapshot up to ``ds``."""
        return (self.ds - self.windows[0].snapshot).days + 1

    def describe(self) -> dict[str, object]:
        return {
            "label_window_days": len(self.holdout.days),
            "train_windows": len(self.split("train")),
            "first_as_of": self.windows[0].first.isoformat(),
            "holdout": [self.holdout.first.isoformat(), self.holdout.last.isoformat()],
            "lake_first_day": self.first_day.isoformat() if self.first_day else None,
            "history_days_used": self.history_days,
        }


def night_calendar(
    settings: Settings,
    ds: dt.date,
    first_day: dt.date | None,
    without_events: frozenset[dt.date] = frozenset(),
) -> Calendar:
    """The hold-out, then up to ``valid_windows`` validation and ``train_days`` training
    windows of ``label_window_days`` days, fewer when the lake's history (from
    ``first_day``) is shorter; each window's snapshot keeps ``min_history_days`` days of
    events before it. Validation takes at most a third of the windows before the
    hold-out. A window before the hold-out whose days are all ``without_events`` is
    skipped; the hold-out always ends with ``ds``."""
    width = settings.training.label_window_days
    earliest = (
        None if first_day is None else first_day + (settings.training.min_history_days - 1) * DAY
    )
    spans: list[tuple[dt.date, ...]] = []
    end = ds
    while len(spans) < settings.training.days + settings.training.valid_windows + 1:
        days = tuple(end - (width - 1 - j) * DAY for j in range(width))
        if earliest is not None and days[0] - DAY < earliest:
            break
        end = days[0] - DAY
        if spans and without_events.issuperset(days):
            continue
        spans.append(days)
    valid = min(settings.training.valid_windows, max(1, (len(spans) - 1) // 3))
    splits = ["test", *["valid"] * valid, *["train"] * (len(spans) - 1 - valid)]
    windows = [Window(split, days) for split, days in zip(splits, spans, strict=True)]
    if len(windows) < 3:
        have = "no events" if first_day is None else f"events from {first_day} to {ds}"
        raise HistoryTooShortError(
            f"the lake holds {have}: a night with {width}-day label windows needs "
            f"{3 * width + settings.training.min_history_days} days (a training, a validation "
            f"and a hold-out window after {settings.training.min_history_days} days of history); "
            "import "
            "more history or lower RANKING_LABEL_WINDOW_DAYS"
        )
    return Calendar(ds, tuple(reversed(windows)), first_day)


def calendar_of(ctx: RunContext) -> Calendar:
    """The calendar of a run, from the lake's first day of raw events and its days
    without events (written, empty partitions)."""
    days = [d for d in lake.list_partitions(ctx.settings, C.RAW_EVENTS) if d <= ctx.ds]
    empty = frozenset(d for d in days if lake.partition_rows(ctx.settings, C.RAW_EVENTS, d) == 0)
    return night_calendar(ctx.settings, ctx.ds, days[0] if days else None, empty)
