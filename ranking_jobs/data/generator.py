"""``generate(ctx)``: write the synthetic marketplace's raw partitions for the history window."""

from __future__ import annotations

import datetime as dt
import logging
import time

from ranking_jobs import lake
from ranking_jobs.context import RunContext
from ranking_jobs.contracts import RAW_EVENTS, RAW_ITEMS, RAW_USERS, TRUTH_USERS
from ranking_jobs.data.market import (
    STREAM_INVENTORY,
    STREAM_POPULATION,
    Market,
    stream_rng,
    to_us,
)
from ranking_jobs.data.population import make_population
from ranking_jobs.data.presets import get_preset

log = logging.getLogger("ranking_jobs.data")

SORT_KEYS: dict[str, tuple[str, ...]] = {
    RAW_EVENTS: ("event_id",),  # ids are assigned in (ts, session, position, type) order
    RAW_ITEMS: ("item_id",),
    RAW_USERS: ("user_id",),
    TRUTH_USERS: ("user_id",),
}


def generate(ctx: RunContext) -> dict[str, object]:
    """Write raw events/items/users for every day of the history window ending at ``ctx.ds``.

    The window is ``[ds - (history_days - 1), ds]``; ``truth/users`` (the latent
    taste behind every interaction) is written once, at ``ds``. The same seed,
    scale, history length and ``ds`` give byte-identical files. Returns a small
    JSON-able summary.
    """
    settings = ctx.settings
    preset = get_preset(settings.generator.scale)
    days = lake.day_range(ctx.ds, settings.generator.history_days)
    start_us = to_us(dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC))
    began = time.perf_counter()
    log.info(
        "generating %s marketplace (seed %s) for %s..%s: %s users, ~%s live listings",
        preset.name,
        settings.generator.seed,
        days[0],
        days[-1],
        f"{preset.n_users:,}",
        f"{preset.live_listings:,}",
    )
    population = make_population(
        stream_rng(settings.generator.seed, STREAM_POPULATION), preset, start_us, len(days)
    )
    market = Market(preset, population, settings.generator.seed)
    market.seed_inventory(stream_rng(settings.generator.seed, STREAM_INVENTORY), start_us)
    users = population.users_table()

    rows = {RAW_EVENTS: 0, RAW_ITEMS: 0, RAW_USERS: 0, TRUTH_USERS: 0}
    totals: dict[str, int] = {}
    sim_seconds = 0.0
    for day in days:
        t = time.perf_counter()
        events, items, stats = market.simulate_day(day)
        sim = time.perf_counter() - t
        sim_seconds += sim
        day_users = users.slice(0, stats["users"])
        for table, data in ((RAW_EVENTS, events), (RAW_ITEMS, items), (RAW_USERS, day_users)):
            lake.write_partition(settings, table, day, data, sort_by=SORT_KEYS[table])
            rows[table] += data.num_rows
        for k, v in stats.items():
            if k not in ("live_listings", "users"):
                totals[k] = totals.get(k, 0) + v
        log.info(
            "day %s: %s sessions, %s events (%s clicks, %s purchases), %s new listings, "
            "%s sold, %s live, %s users; simulated in %.2fs (%s events/s), total %.2fs",
            day,
            f"{stats['sessions']:,}",
            f"{stats['events']:,}",
            f"{stats['click']:,}",
            f"{stats['purchase']:,}",
            f"{stats['new_listings']:,}",
            f"{stats['sold']:,}",
            f"{stats['live_listings']:,}",
            f"{stats['users']:,}",
            sim,
            f"{stats['events'] / max(sim, 1e-9):,.0f}",
            time.perf_counter() - t,
        )
    truth = population.truth_table(population.known_by(to_us(ctx.end)))
    lake.write_partition(settings, TRUTH_USERS, ctx.ds, truth, sort_by=SORT_KEYS[TRUTH_USERS])
    rows[TRUTH_USERS] = truth.num_rows
    wall = time.perf_counter() - began
    summary: dict[str, object] = {
        "scale": preset.name,
        "seed": settings.generator.seed,
        "days": [d.isoformat() for d in days],
        "rows": rows,
        "totals": totals,
        "live_listings": int(stats["live_listings"]),
        "users": truth.num_rows,
        "seconds": round(wall, 3),
        "simulation_seconds": round(sim_seconds, 3),
        "events_per_s": round(rows[RAW_EVENTS] / max(wall, 1e-9), 1),
    }
    log.info(
        "generated %s days: %s events, %s item rows, %s user rows in %.1fs (%s events/s)",
        len(days),
        f"{rows[RAW_EVENTS]:,}",
        f"{rows[RAW_ITEMS]:,}",
        f"{rows[RAW_USERS]:,}",
        wall,
        f"{summary['events_per_s']:,.0f}",
    )
    return summary
