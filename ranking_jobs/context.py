"""The run context every stage takes: which day, which run, which settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ranking_jobs.settings import Settings, load_settings

UTC = dt.UTC
DAY = dt.timedelta(days=1)


def parse_ds(value: str | dt.date | dt.datetime) -> dt.date:
    """Accept 2026-01-31, a date or a datetime (Airflow's pendulum ones included).

    Always returns a plain ``datetime.date``: Spark rejects pendulum's subclass.
    """
    if isinstance(value, dt.datetime):
        value = value.astimezone(UTC) if value.tzinfo else value
        return dt.date(value.year, value.month, value.day)
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, value.day)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"logical date must look like YYYY-MM-DD, got {value!r}") from exc
    return parse_ds(parsed)


@dataclass(frozen=True)
class RunContext:
    """One night's run: the day ``ds`` whose data is processed (its partition ``dt=ds``).

    The data interval is the UTC day ``[ds 00:00, ds+1 00:00)``; features computed
    for ``ds`` become knowable at the interval end, which is the event timestamp
    they are registered with in Feast.
    """

    ds: dt.date
    settings: Settings
    run_id: str = ""

    @classmethod
    def create(
        cls,
        ds: str | dt.date | dt.datetime,
        settings: Settings | None = None,
        run_id: str | None = None,
    ) -> RunContext:
        day = parse_ds(ds)
        return cls(
            ds=day,
            settings=settings or load_settings(),
            run_id=run_id or f"manual__{day.isoformat()}",
        )

    @property
    def ds_str(self) -> str:
        return self.ds.isoformat()

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.combine(self.ds, dt.time(), tzinfo=UTC)

    @property
    def end(self) -> dt.datetime:
        return self.start + DAY

    def day(self, offset: int) -> dt.date:
        return self.ds + dt.timedelta(days=offset)
