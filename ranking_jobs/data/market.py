"""Day-by-day simulation of the marketplace: listings, sessions, logged lists, behaviour.

One day is simulated in ``preset.chunks_per_day`` time-ordered slices. Every
session of a slice sees the inventory as it stood when the slice began (listed
before it, not sold); its list is drawn by the LOGGING POLICY (popularity +
freshness + brand prior + noise, restricted to the query for search and to the
anchor's subcategory for "similar"; the home feed leans lightly on the user's
*declared* styles). Examination decays with the position, and examined items
are clicked, liked, saved, put in the bag and bought according to the user's
TRUE utility (see :mod:`ranking_jobs.data.truth`). A purchase sells the one-of-a-
kind listing: the first buyer wins, the listing leaves the inventory for the
following slices, and every event of another session on that listing after the
sale is dropped, so a sold listing is never shown again.

No Python loop runs per user, session or event: the loops are per day and per
slice, everything inside is numpy.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ranking_jobs.contracts import (
    CONDITIONS,
    EVENT_TYPES,
    EVENTS_SCHEMA,
    ITEM_STATUSES,
    ITEMS_SCHEMA,
    SURFACES,
)
from ranking_jobs.data import catalog as cat
from ranking_jobs.data.population import US_PER_DAY, Population, _choice
from ranking_jobs.data.presets import ScalePreset
from ranking_jobs.data.truth import ItemAttributes, utility

US = 1_000_000
HOUR_US = 3600 * US
NOT_SOLD = np.iinfo(np.int64).max
MAX_SESSION_SPAN_US = 20 * 60 * US  # every event of a session lies within 20 min of its start

# Rhythm: sessions per UTC hour (European evenings peak) and per weekday (Mon..Sun).
DIURNAL = np.array(
    [0.9, 0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.0, 1.3, 1.4, 1.4, 1.5,
     1.7, 1.6, 1.5, 1.5, 1.6, 1.8, 2.2, 2.6, 2.8, 2.6, 2.0, 1.4]
)  # fmt: skip
WEEKDAY = np.array([0.9, 0.88, 0.92, 0.97, 1.05, 1.22, 1.28])

SURFACE_SHARE = np.array([0.6, 0.3, 0.1])  # home, search, similar
HOME, SEARCH, SIMILAR = (SURFACES.index(s) for s in ("home", "search", "similar"))
# list length: lognormal median and spread, bounds per surface
LIST_LENGTH = {HOME: (20.0, 0.55, 4, 60), SEARCH: (14.0, 0.55, 3, 48), SIMILAR: (9.0, 0.4, 3, 24)}
QUERY_KIND_SHARE = np.array([0.4, 0.25, 0.35])  # category, subcategory, brand

# Logging policy (what the old ranker did): NOT the users' preference.
POLICY_POPULARITY = 1.1
POLICY_FRESHNESS = 1.5
POLICY_FRESHNESS_DAYS = 2.0
POLICY_BRAND = 0.3
POLICY_NOISE = 1.0
POPULARITY_DECAY = 0.7  # per day
POPULARITY_GAIN = np.array([0.02, 1.0, 1.0, 1.0, 2.0, 3.0])  # per event type

# Behaviour: examination by position, then choices driven by the true utility.
EXAM_DECAY = 0.7
CLICK_BASE = -1.5
SURFACE_INTENT = np.array([0.0, 0.5, 0.3])  # search and similar show intent
IMP, CLICK, LIKE, SAVE, BAG, BUY = range(len(EVENT_TYPES))
assert EVENT_TYPES == ("impression", "click", "like", "save", "add_to_bag", "purchase")

_SUB_START = np.searchsorted(cat.SUBCATEGORY_CATEGORY, np.arange(len(cat.CATEGORIES)))
_SUB_COUNT = np.bincount(cat.SUBCATEGORY_CATEGORY, minlength=len(cat.CATEGORIES))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def to_us(t: dt.datetime) -> int:
    return int(t.timestamp()) * US


STREAM_POPULATION, STREAM_INVENTORY, STREAM_DAY = range(3)


def stream_rng(seed: int, *key: int) -> np.random.Generator:
    """An independent random stream for (seed, key...): SeedSequence spawn keys."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def day_rng(seed: int, day: dt.date) -> np.random.Generator:
    return stream_rng(seed, STREAM_DAY, day.toordinal())


def query_vocabulary(brand_names: tuple[str, ...]) -> tuple[str, ...]:
    """Search queries are category, subcategory or brand names (in that code order)."""
    return cat.CATEGORIES + cat.SUBCATEGORIES + brand_names


@dataclass
class Inventory:
    """Every listing ever created; row = item_id - 1 (ids grow with listing time)."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def n(self) -> int:
        return len(self.columns["listed_at"]) if self.columns else 0

    def append(self, new: dict[str, np.ndarray]) -> None:
        if not self.columns:
            self.columns = new
        else:
            self.columns = {k: np.concatenate([v, new[k]]) for k, v in self.columns.items()}

    def attributes(self) -> ItemAttributes:
        c = self.columns
        return ItemAttributes(
            category=c["category"],
            style=c["style"],
            brand=c["brand"],
            size=c["size"],
            condition=c["condition"],
            price=c["price"],
        )


def new_listings(
    rng: np.random.Generator, population: Population, brands: cat.Brands, listed_at: np.ndarray
) -> dict[str, np.ndarray]:
    """Attributes of listings created at ``listed_at`` (sorted), sellers included."""
    n = len(listed_at)
    category = _choice(rng, cat.CATEGORY_SHARE, n).astype(np.int16)
    subcategory = (_SUB_START[category] + rng.integers(0, _SUB_COUNT[category])).astype(np.int16)
    brand = _choice(rng, brands.popularity, n).astype(np.int32)
    style = np.where(
        rng.random(n) < 0.6, brands.style[brand], rng.integers(0, len(cat.STYLES), n)
    ).astype(np.int16)
    system = cat.CATEGORY_SIZE_SYSTEM[category]
    ordinal = np.zeros(n)
    for j, name in enumerate(("letter", "waist", "shoe")):
        centre, spread = cat.SIZE_CENTRE[name]
        top = len(cat.SIZES_BY_SYSTEM[name]) - 1
        draw = np.clip(np.rint(rng.normal(centre, spread * 1.15, n)), 0, top)
        ordinal = np.where(system == j, draw, ordinal)
    size = (cat.SIZE_OFFSET[system] + ordinal).astype(np.int16)
    condition = _choice(rng, cat.CONDITION_SHARE, n).astype(np.int16)
    colour = _choice(rng, cat.COLOUR_SHARE, n).astype(np.int16)
    price = (
        cat.CATEGORY_BASE_PRICE[category]
        * brands.price_factor[brand]
        * cat.CONDITION_PRICE[condition]
        * rng.lognormal(0.0, 0.35, n)
    )
    price = np.maximum(np.round(price * 2.0) / 2.0, 2.0)

    # Seller: a user who sells and had signed up before listing, weighted by listing rate.
    sellers = np.flatnonzero(population.is_seller)
    seller_signup = population.signed_up_at[sellers]
    cw = np.cumsum(population.seller_weight[sellers])
    eligible = np.maximum(np.searchsorted(seller_signup, listed_at, side="left"), 1)
    pick = np.searchsorted(cw, rng.random(n) * cw[eligible - 1], side="right")
    pick = np.minimum(pick, eligible - 1)
    listed_at = np.maximum(listed_at, seller_signup[pick] + 1)
    return {
        "category": category,
        "subcategory": subcategory,
        "brand": brand,
        "style": style,
        "size": size,
        "condition": condition,
        "colour": colour,
        "price": price,
        "seller": sellers[pick].astype(np.int64) + 1,
        "listed_at": listed_at.astype(np.int64),
        "sold_at": np.full(n, NOT_SOLD, dtype=np.int64),
        "buyer_session": np.full(n, -1, dtype=np.int64),
        "popularity": np.zeros(n),
    }


def _draw_times(rng: np.random.Generator, start_us: int, n: int, latest_us: int) -> np.ndarray:
    """``n`` sorted instants in the day starting at ``start_us``, following the diurnal rhythm."""
    hour = _choice(rng, DIURNAL, n)
    t = start_us + hour * HOUR_US + rng.integers(0, HOUR_US, n)
    return np.sort(np.minimum(t, latest_us))


def _sample_groups(
    rng: np.random.Generator,
    keys_sorted: np.ndarray,
    items_sorted: np.ndarray,
    cum_weight: np.ndarray,
    session: np.ndarray,
    session_key: np.ndarray,
    draws: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted draws (with replacement) among the items whose key equals the session's.

    Items are sorted by key with cumulative weights ``cum_weight``; a session's
    group is a contiguous slice, so one ``searchsorted`` serves every session.
    Returns (session, item) pairs; sessions whose group is empty get none.
    """
    lo = np.searchsorted(keys_sorted, session_key, side="left")
    hi = np.searchsorted(keys_sorted, session_key, side="right")
    ok = hi > lo
    session, lo, hi, draws = session[ok], lo[ok], hi[ok], draws[ok]
    cw0 = np.concatenate([[0.0], cum_weight])
    rep = np.repeat(np.arange(len(session)), draws)
    w_lo, w_hi = cw0[lo][rep], cw0[hi][rep]
    pos = np.searchsorted(cum_weight, w_lo + rng.random(len(rep)) * (w_hi - w_lo), side="right")
    pos = np.clip(pos, lo[rep], hi[rep] - 1)
    return session[rep], items_sorted[pos]


@dataclass
class Sessions:
    """The day's sessions, ordered by start time (index = the day's session number)."""

    user: np.ndarray  # population row
    t0: np.ndarray  # int64 us
    surface: np.ndarray
    length: np.ndarray  # items in the logged list
    group: np.ndarray  # key of the candidate group (meaning depends on keying)
    keying: np.ndarray  # which item attribute ``group`` refers to
    query: np.ndarray  # code into query_vocabulary, -1 = none

    def __len__(self) -> int:
        return len(self.t0)


EVENT_COLUMNS = ("ts", "user", "item", "type", "surface", "query", "position", "session")
# keyings of candidate groups: all listings, by style, category, subcategory, brand
K_ALL, K_STYLE, K_CATEGORY, K_SUBCATEGORY, K_BRAND = range(5)
_KEY_COLUMN = {
    K_STYLE: "style",
    K_CATEGORY: "category",
    K_SUBCATEGORY: "subcategory",
    K_BRAND: "brand",
}


class Market:
    """State of the simulated marketplace across days."""

    def __init__(self, preset: ScalePreset, population: Population, seed: int):
        self.preset = preset
        self.population = population
        self.brands = cat.brands(preset.n_brands)
        self.inventory = Inventory()
        self.seed = seed
        self.n_brand_queries_offset = len(cat.CATEGORIES) + len(cat.SUBCATEGORIES)
        self._brand_logpop = np.log(self.brands.popularity * preset.n_brands)

    # --- inventory -------------------------------------------------------------------
    def seed_inventory(self, rng: np.random.Generator, start_us: int) -> None:
        """Listings already available when the history starts (listed up to ~4 months before)."""
        n = self.preset.live_listings
        age_days = np.minimum(rng.exponential(20.0, n), 120.0)
        listed_at = np.sort(start_us - 1 - (age_days * US_PER_DAY).astype(np.int64))
        self.inventory.append(new_listings(rng, self.population, self.brands, listed_at))

    def _add_arrivals(self, rng: np.random.Generator, start_us: int) -> int:
        live = int((self.inventory["sold_at"] == NOT_SOLD).sum())
        target = self.preset.live_listings
        p = self.preset
        n = max(
            round(p.min_new_listing_share * target),
            target - live + round(p.listing_growth_share * target),
        )
        listed_at = _draw_times(rng, start_us, n, start_us + US_PER_DAY - 1)
        self.inventory.append(new_listings(rng, self.population, self.brands, listed_at))
        return n

    # --- sessions --------------------------------------------------------------------
    def _sessions(self, rng: np.random.Generator, day: dt.date, start_us: int) -> Sessions:
        pop = self.population
        known = pop.known_by(start_us)
        rate = pop.activity[:known] * WEEKDAY[day.weekday()]
        counts = rng.poisson(rate)
        user = np.repeat(np.arange(known), counts)
        n = len(user)
        t0 = start_us + _choice(rng, DIURNAL, n) * HOUR_US + rng.integers(0, HOUR_US, n)
        t0 = np.minimum(t0, start_us + US_PER_DAY - MAX_SESSION_SPAN_US)
        order = np.lexsort((user, t0))
        user, t0 = user[order], t0[order]
        surface = _choice(rng, SURFACE_SHARE, n).astype(np.int8)
        length = np.zeros(n, dtype=np.int64)
        for s, (median, sigma, lo, hi) in LIST_LENGTH.items():
            draw = np.clip(np.rint(rng.lognormal(np.log(median), sigma, n)), lo, hi)
            length = np.where(surface == s, draw, length).astype(np.int64)

        taste = pop.taste
        # Category the session is about (search/similar): the user's taste, softly.
        logits = 1.3 * taste.category[user]
        cdf = np.cumsum(np.exp(logits - logits.max(axis=1, keepdims=True)), axis=1)
        category = (rng.random(n)[:, None] * cdf[:, -1:] > cdf).sum(axis=1)
        subcategory = _SUB_START[category] + (rng.random(n) * _SUB_COUNT[category]).astype(int)
        n_fav = (taste.brands[user] >= 0).sum(axis=1)
        fav = taste.brands[user, (rng.random(n) * np.maximum(n_fav, 1)).astype(int)]
        any_brand = _choice(rng, self.brands.popularity, n)
        brand = np.where((rng.random(n) < 0.6) & (fav >= 0), fav, any_brand)
        styles = pop.declared_styles[user]
        n_styles = (styles >= 0).sum(axis=1)
        declared = styles[np.arange(n), (rng.random(n) * np.maximum(n_styles, 1)).astype(int)]

        kind = _choice(rng, QUERY_KIND_SHARE, n)
        group = np.zeros(n, dtype=np.int64)
        keying = np.full(n, K_ALL, dtype=np.int8)
        query = np.full(n, -1, dtype=np.int64)
        search = surface == SEARCH
        for k, keyed, value, offset in (
            (0, K_CATEGORY, category, 0),
            (1, K_SUBCATEGORY, subcategory, len(cat.CATEGORIES)),
            (2, K_BRAND, brand, self.n_brand_queries_offset),
        ):
            m = search & (kind == k)
            group[m], keying[m], query[m] = value[m], keyed, value[m] + offset
        m = surface == SIMILAR
        group[m], keying[m] = subcategory[m], K_SUBCATEGORY
        m = (surface == HOME) & (declared >= 0)
        group[m], keying[m] = declared[m], K_STYLE  # the home feed's "declared style" share
        return Sessions(user, t0, surface, length, group, keying, query)

    # --- one day ---------------------------------------------------------------------
    def simulate_day(self, day: dt.date) -> tuple[pa.Table, pa.Table, dict]:
        """Simulate ``day``; return (events table, items snapshot, counters).

        The day's random stream is keyed by the seed and the date itself, so it
        never depends on wall-clock time or on how many days were run before.
        """
        rng = day_rng(self.seed, day)
        start = to_us(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
        end = start + US_PER_DAY
        inv = self.inventory
        inv["popularity"][:] *= POPULARITY_DECAY
        n_new = self._add_arrivals(rng, start)
        sessions = self._sessions(rng, day, start)

        live = np.flatnonzero(inv["sold_at"] == NOT_SOLD)
        orders = {K_ALL: np.arange(len(live))}
        for k, col in _KEY_COLUMN.items():
            orders[k] = np.argsort(inv[col][live], kind="stable")
        attrs = inv.attributes()
        chunk_us = US_PER_DAY // self.preset.chunks_per_day
        bounds = np.searchsorted(
            sessions.t0, start + chunk_us * np.arange(self.preset.chunks_per_day + 1)
        )
        parts: list[dict[str, np.ndarray]] = []
        for c in range(self.preset.chunks_per_day):
            s_lo, s_hi = bounds[c], bounds[c + 1]
            if s_hi == s_lo:
                continue
            part = self._simulate_chunk(
                rng, sessions, np.arange(s_lo, s_hi), live, orders, attrs, start + c * chunk_us
            )
            parts.append(part)
        ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else None
        if ev is None:
            ev = {k: np.zeros(0, dtype=np.int64) for k in EVENT_COLUMNS}
        # A sold listing is never shown again: drop other sessions' events after the sale.
        sold_at = inv["sold_at"][ev["item"]]
        keep = (ev["ts"] <= sold_at) | (ev["session"] == inv["buyer_session"][ev["item"]])
        ev = {k: v[keep] for k, v in ev.items()}
        order = np.lexsort((ev["type"], ev["position"], ev["session"], ev["ts"]))
        ev = {k: v[order] for k, v in ev.items()}

        events = self._events_table(day, ev)
        items = self._items_table(start, end)
        counts = np.bincount(ev["type"], minlength=len(EVENT_TYPES))
        stats = {
            "sessions": len(sessions),
            "events": len(ev["ts"]),
            **{EVENT_TYPES[t]: int(counts[t]) for t in range(len(EVENT_TYPES))},
            "new_listings": int(n_new),
            "sold": int(((inv["sold_at"] >= start) & (inv["sold_at"] < end)).sum()),
            "live_listings": int((inv["sold_at"] == NOT_SOLD).sum()),
            "users": self.population.known_by(end),
        }
        return events, items, stats

    def _simulate_chunk(
        self,
        rng: np.random.Generator,
        sessions: Sessions,
        sess: np.ndarray,
        live: np.ndarray,
        orders: dict[int, np.ndarray],
        attrs: ItemAttributes,
        chunk_start: int,
    ) -> dict[str, np.ndarray]:
        inv = self.inventory
        pop = self.population
        available = (inv["listed_at"][live] < chunk_start) & (inv["sold_at"][live] == NOT_SOLD)
        age_days = (chunk_start - inv["listed_at"][live]) / US_PER_DAY
        log_w = (
            POLICY_POPULARITY * np.log1p(inv["popularity"][live])
            + POLICY_FRESHNESS * np.exp(-age_days / POLICY_FRESHNESS_DAYS)
            + POLICY_BRAND * self._brand_logpop[inv["brand"][live]]
        )
        weight = np.exp(log_w)

        # Candidate draws per source, as (local session, live position) pairs.
        keying = sessions.keying[sess]
        length = sessions.length[sess]
        group = sessions.group[sess]
        local = np.arange(len(sess))
        home = sessions.surface[sess] == HOME
        draws_s, draws_i = [], []
        for k, order in orders.items():
            kept = order[available[order]]
            keys = (
                np.zeros(len(kept), dtype=np.int64)
                if k == K_ALL
                else inv[_KEY_COLUMN[k]][live[kept]]
            )
            cum = np.cumsum(weight[kept])
            if k == K_ALL:  # the home feed: global draws (fewer when a declared style adds some)
                m = home
                n_draws = np.where(keying == K_STYLE, length, 2 * length + 4)
                key = np.zeros(len(sess), dtype=np.int64)
            else:
                m = keying == k
                n_draws = length if k == K_STYLE else 2 * length + 4
                n_draws = np.broadcast_to(n_draws, m.shape)
                key = group
            s, i = _sample_groups(rng, keys, kept, cum, local[m], key[m], n_draws[m])
            draws_s.append(s)
            draws_i.append(i)
        s = np.concatenate(draws_s)
        i = np.concatenate(draws_i)
        pair = np.unique(s.astype(np.int64) * len(live) + i)
        s, i = pair // len(live), pair % len(live)
        user = sessions.user[sess][s]
        mine = inv["seller"][live[i]] == user + 1  # a seller never sees their own listings
        s, i, user = s[~mine], i[~mine], user[~mine]
        item = live[i]

        # Logged order: policy score + noise; keep the first ``length`` of each session.
        score = log_w[i] + POLICY_NOISE * rng.gumbel(size=len(item))
        order = np.lexsort((-score, s))
        s, item, user = s[order], item[order], user[order]
        first = np.searchsorted(s, local)
        position = np.arange(len(s)) - first[s]
        keep = position < length[s]
        s, item, user, position = s[keep], item[keep], user[keep], position[keep]

        # Behaviour, driven by the true utility of examined items.
        n = len(s)
        surface = sessions.surface[sess][s]
        util = utility(pop.taste, user, attrs, item)
        attention = rng.uniform(0.6, 1.0, len(sess))[s]
        examined = rng.random(n) < attention * (1.0 + position) ** -EXAM_DECAY
        intent = SURFACE_INTENT[surface]
        logit = CLICK_BASE + util + pop.click_bias[user] + intent + rng.normal(0, 0.5, n)
        click = examined & (rng.random(n) < _sigmoid(logit))
        like = click & (rng.random(n) < _sigmoid(-1.4 + 0.6 * util))
        save = click & (rng.random(n) < _sigmoid(-2.3 + 0.5 * util))
        prop = pop.purchase_propensity[user]
        bag = click & (rng.random(n) < _sigmoid(-2.6 + 0.9 * util + 0.5 * prop))
        buy = bag & (rng.random(n) < _sigmoid(-1.2 + 0.6 * util + prop + intent))

        # Time line of a session: scroll, then click, like/save, bag, purchase.
        t0 = sessions.t0[sess][s]
        dwell = rng.integers(600_000, 2_500_000, len(sess))[s]
        t_imp = t0 + position * dwell + rng.integers(0, 300_000, n)
        t_click = t_imp + np.minimum(rng.exponential(6.0 * US, n), 30 * US).astype(np.int64) + 1000
        t_like = t_click + rng.integers(3 * US, 90 * US, n)
        t_save = t_click + rng.integers(3 * US, 90 * US, n)
        t_bag = t_click + rng.integers(5 * US, 180 * US, n)
        t_buy = t_bag + rng.integers(20 * US, 600 * US, n)

        # One buyer per listing: the earliest purchase of the slice wins.
        b = np.flatnonzero(buy)
        b = b[np.lexsort((t_buy[b], item[b]))]
        winner = np.ones(len(b), dtype=bool)
        winner[1:] = item[b][1:] != item[b][:-1]
        buy[b[~winner]] = False
        b = b[winner]
        inv["sold_at"][item[b]] = t_buy[b]
        inv["buyer_session"][item[b]] = sess[s[b]]

        masks = (np.ones(n, dtype=bool), click, like, save, bag, buy)
        times = (t_imp, t_click, t_like, t_save, t_bag, t_buy)
        idx = np.concatenate([np.flatnonzero(m) for m in masks])
        etype = np.concatenate(
            [np.full(int(m.sum()), t, dtype=np.int8) for t, m in enumerate(masks)]
        )
        ts = np.concatenate([t[m] for t, m in zip(times, masks, strict=True)])
        np.add.at(inv["popularity"], item[idx], POPULARITY_GAIN[etype])
        return {
            "ts": ts,
            "user": user[idx] + 1,
            "item": item[idx],
            "type": etype,
            "surface": surface[idx],
            "query": sessions.query[sess][s][idx],
            "position": position[idx],
            "session": sess[s][idx],
        }

    # --- tables ----------------------------------------------------------------------
    def _events_table(self, day: dt.date, ev: dict[str, np.ndarray]) -> pa.Table:
        stamp = day.strftime("%Y%m%d")
        n = len(ev["ts"])
        seq = pc.utf8_lpad(pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), 9, "0")
        sess = pc.utf8_lpad(pc.cast(pa.array(ev["session"].astype(np.int64)), pa.string()), 7, "0")
        vocab = pa.array(query_vocabulary(self.brands.names), pa.string())
        q = ev["query"].astype(np.int64)
        query = vocab.take(pa.array(np.maximum(q, 0), mask=q < 0))
        return pa.Table.from_arrays(
            [
                pc.binary_join_element_wise(f"ev-{stamp}-", seq, ""),
                pa.array(ev["ts"].astype(np.int64), EVENTS_SCHEMA.field("ts").type),
                pa.array(ev["user"].astype(np.int64), pa.int64()),
                pa.array(ev["item"].astype(np.int64) + 1, pa.int64()),
                pa.array(EVENT_TYPES, pa.string()).take(pa.array(ev["type"])),
                pa.array(SURFACES, pa.string()).take(pa.array(ev["surface"])),
                query,
                pa.array(ev["position"].astype(np.int32), pa.int32()),
                pc.binary_join_element_wise(f"se-{stamp}-", sess, ""),
            ],
            schema=EVENTS_SCHEMA,
        )

    def _items_table(self, start: int, end: int) -> pa.Table:
        """Snapshot of ``[start, end)``: listed by its end and not sold before its start."""
        inv = self.inventory
        sold_at = inv["sold_at"]
        rows = np.flatnonzero(
            (inv["listed_at"] < end) & ((sold_at == NOT_SOLD) | (sold_at >= start))
        )
        take = pa.array(rows)

        def strings(vocab: tuple[str, ...], col: str) -> pa.Array:
            return pa.array(vocab, pa.string()).take(pa.array(inv[col]).take(take))

        sold = sold_at[rows]
        is_sold = sold != NOT_SOLD
        ts_type = ITEMS_SCHEMA.field("listed_at").type
        return pa.Table.from_arrays(
            [
                pa.array(rows.astype(np.int64) + 1, pa.int64()),
                pa.array(inv["seller"][rows], pa.int64()),
                strings(cat.CATEGORIES, "category"),
                strings(cat.SUBCATEGORIES, "subcategory"),
                strings(self.brands.names, "brand"),
                strings(cat.SIZES, "size"),
                strings(CONDITIONS, "condition"),
                strings(cat.COLOURS, "colour"),
                strings(cat.STYLES, "style"),
                pa.array(inv["price"][rows], pa.float64()),
                pa.array(np.full(len(rows), "EUR"), pa.string()),
                pa.array(inv["listed_at"][rows], ts_type),
                pa.array(np.where(is_sold, sold, 0), ts_type, mask=~is_sold),
                pa.array(ITEM_STATUSES, pa.string()).take(pa.array(is_sold.astype(np.int8))),
            ],
            schema=ITEMS_SCHEMA,
        )
