"""Lists and raw sales written the way the pipeline writes them, for the serving tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.feast_store import apply_definitions
from ranking_jobs.online import FALLBACK_SEGMENT
from ranking_jobs.publish import publish_lists
from ranking_jobs.settings import Settings

DAY = dt.date(2026, 1, 31)
AS_OF = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)  # end of DAY: the lists' generated_at
MODEL = "marketplace_ranker/v3"


def write_lists(
    settings: Settings,
    day: dt.date,
    items_of: dict[int, list[int]],
    run: str,
    popular: list[int] | None = None,
) -> None:
    """``day``'s lists (scores falling from 1.0) and fallback, in the lake as precompute
    writes them; the fallback is ``popular`` or else the first user's list."""
    users = sorted(items_of)
    made = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    popular = items_of[users[0]] if popular is None else popular

    def scores(n: int) -> list[float]:
        return list(np.linspace(1.0, 0.01, n, dtype=np.float32))

    lists = pa.table(
        {
            "user_id": users,
            "item_ids": [items_of[u] for u in users],
            "scores": [scores(len(items_of[u])) for u in users],
            "model_version": [MODEL] * len(users),
            "run_id": [run] * len(users),
            "generated_at": [made] * len(users),
            "event_timestamp": [made] * len(users),
        },
        schema=C.RECOMMENDATIONS_SCHEMA,
    )
    fallback = pa.table(
        {
            "item_ids": [popular],
            "scores": [scores(len(popular))],
            "model_version": ["popularity"],
            "run_id": [run],
            "generated_at": [made],
            "event_timestamp": [made],
            "segment": [FALLBACK_SEGMENT],
        },
        schema=pa.schema([*C.RECOMMENDATIONS_SCHEMA.remove(0), pa.field("segment", pa.string())]),
    )
    lake.write_partition(settings, C.RECOMMENDATIONS, day, lists)
    lake.write_partition(settings, C.POPULAR, day, fallback)


def publish(
    settings: Settings, items_of: dict[int, list[int]], popular: list[int], run: str = "run-1"
) -> None:
    """Write DAY's lists and fallback to the lake and publish them with ``publish_lists``."""
    write_lists(settings, DAY, items_of, run, popular)
    apply_definitions(settings)
    publish_lists(RunContext.create(DAY, settings, run))


def write_sales(
    settings: Settings,
    day: dt.date,
    purchases: dict[int, dt.datetime],
    sold_at: dict[int, dt.datetime | None],
) -> None:
    """raw/events of ``day`` with these purchases (plus a click) and a raw/items snapshot."""
    n = len(purchases) + 1
    stamps = [*purchases.values(), AS_OF]
    events = pa.table(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "ts": stamps,
            "user_id": [1] * n,
            "item_id": [*purchases, 7777],
            "event_type": ["purchase"] * len(purchases) + ["click"],
            "surface": ["home"] * n,
            "query": [None] * n,
            "position": [0] * n,
            "session_id": ["s"] * n,
        },
        schema=C.EVENTS_SCHEMA,
    )
    m = len(sold_at)
    items = pa.table(
        {
            "item_id": list(sold_at),
            "seller_id": [5] * m,
            "category": ["tops"] * m,
            "subcategory": ["t-shirts"] * m,
            "brand": ["acme"] * m,
            "size": ["M"] * m,
            "condition": ["good"] * m,
            "colour": ["black"] * m,
            "style": ["casual"] * m,
            "price": [10.0] * m,
            "currency": ["EUR"] * m,
            "listed_at": [AS_OF - dt.timedelta(days=20)] * m,
            "sold_at": list(sold_at.values()),
            "status": ["available" if v is None else "sold" for v in sold_at.values()],
        },
        schema=C.ITEMS_SCHEMA,
    )
    lake.write_partition(settings, C.RAW_EVENTS, day, events)
    lake.write_partition(settings, C.RAW_ITEMS, day, items)
