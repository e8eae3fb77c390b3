"""Contracts and invariants of the synthetic marketplace generator (tiny preset)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ranking_jobs import contracts, lake
from ranking_jobs.context import RunContext
from ranking_jobs.data import PRESETS, generate, get_preset, true_utility
from ranking_jobs.data import catalog as cat
from ranking_jobs.data.market import STREAM_POPULATION, stream_rng, to_us
from ranking_jobs.data.population import make_population
from ranking_jobs.data.truth import TRUTH_USERS_SCHEMA, ItemAttributes, utility
from ranking_jobs.settings import Settings

DS = dt.date(2026, 1, 31)
HISTORY = 14
SEED = 11


def _settings(root: Path, **kw: object) -> Settings:
    base = {"scale": "tiny", "seed": SEED, "history_days": HISTORY}
    return Settings(data_root=str(root / "lake"), state_dir=root / "var", **{**base, **kw})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    root = tmp_path_factory.mktemp("gen")
    settings = _settings(root)
    summary = generate(RunContext.create(DS, settings))
    return settings, summary


@pytest.fixture(scope="module")
def tables(run: tuple[Settings, dict]) -> dict[str, pd.DataFrame]:
    settings, _ = run
    days = lake.day_range(DS, HISTORY)
    out = {}
    for table in (contracts.RAW_EVENTS, contracts.RAW_ITEMS, contracts.RAW_USERS):
        parts = []
        for d in days:
            df = lake.read_partition(settings, table, d).to_pandas()
            df["dt"] = d
            parts.append(df)
        out[table] = pd.concat(parts, ignore_index=True)
    out[contracts.TRUTH_USERS] = lake.read_partition(
        settings, contracts.TRUTH_USERS, DS
    ).to_pandas()
    return out


def _day_bounds(d: dt.date) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(d, tz="UTC")
    return start, start + pd.Timedelta(days=1)


def _hash_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


# --- contracts -------------------------------------------------------------------------


def test_schemas_equal_the_contracts(run: tuple[Settings, dict]) -> None:
    settings, _ = run
    for table, schema in contracts.RAW_SCHEMAS.items():
        for d in lake.day_range(DS, HISTORY):
            got = lake.read_partition(settings, table, d).schema
            assert got == schema, f"{table} dt={d}: {got} != {schema}"
            assert [f.nullable for f in got] == [f.nullable for f in schema]
    truth = lake.read_partition(settings, contracts.TRUTH_USERS, DS).schema
    assert truth == TRUTH_USERS_SCHEMA


def test_partitions_and_summary(run: tuple[Settings, dict], tables: dict) -> None:
    settings, summary = run
    days = lake.day_range(DS, HISTORY)
    for table in (contracts.RAW_EVENTS, contracts.RAW_ITEMS, contracts.RAW_USERS):
        assert lake.list_partitions(settings, table) == days
        assert summary["rows"][table] == len(tables[table])
    assert lake.list_partitions(settings, contracts.TRUTH_USERS) == [DS]
    assert summary["days"] == [d.isoformat() for d in days]
    assert summary["events_per_s"] > 0
    json.dumps(summary)  # JSON-able
    # tiny really is tiny: a few hundred users, one to two thousand live listings
    items_last = tables[contracts.RAW_ITEMS].query("dt == @DS")
    assert 200 <= len(tables[contracts.TRUTH_USERS]) <= 1000
    assert 1000 <= (items_last.status == "available").sum() <= 2500


def test_same_settings_give_identical_bytes(run: tuple[Settings, dict], tmp_path: Path) -> None:
    settings, _ = run
    again = _settings(tmp_path / "again")
    generate(RunContext.create(DS, again))
    first = _hash_tree(Path(settings.paths.data_root))
    second = _hash_tree(Path(again.paths.data_root))
    assert len(first) == 3 * HISTORY + 1
    assert first == second


def test_another_seed_gives_other_data(run: tuple[Settings, dict], tmp_path: Path) -> None:
    settings, _ = run
    other = _settings(tmp_path / "other", seed=SEED + 1, history_days=3)
    generate(RunContext.create(DS, other))
    a = lake.read_partition(settings, contracts.RAW_EVENTS, DS).to_pandas()
    b = lake.read_partition(other, contracts.RAW_EVENTS, DS).to_pandas()
    assert not a[["user_id", "item_id"]].equals(b[["user_id", "item_id"]])


def test_rerun_replaces_partitions(run: tuple[Settings, dict], tmp_path: Path) -> None:
    settings = _settings(tmp_path, history_days=3)
    generate(RunContext.create(DS, settings))
    before = _hash_tree(Path(settings.paths.data_root))
    generate(RunContext.create(DS, settings))
    assert _hash_tree(Path(settings.paths.data_root)) == before
    assert not list(Path(settings.paths.data_root).rglob(".staging/*"))


# --- users -----------------------------------------------------------------------------


def test_users_grow_by_signup(tables: dict) -> None:
    users = tables[contracts.RAW_USERS]
    prev: set[int] = set()
    for d, day in users.groupby("dt"):
        ids = day.user_id.to_numpy()
        assert (ids == np.arange(1, len(ids) + 1)).all(), "user ids are 1..n"
        _, end = _day_bounds(d)
        assert (day.signed_up_at < end).all()
        assert prev <= set(ids)
        prev = set(ids)
        assert set(day.country) <= set(cat.COUNTRIES)
        sizes = day.declared_size.dropna()
        assert set(sizes) <= set(cat.SIZES_BY_SYSTEM["letter"])
        assert day.declared_size.isna().any() and day.declared_styles.isna().any()
    first, last = users.dt.min(), users.dt.max()
    assert (users.dt == last).sum() > (users.dt == first).sum(), "new users sign up"
    truth = tables[contracts.TRUTH_USERS]
    assert truth.user_id.tolist() == list(range(1, len(truth) + 1))
    assert truth.is_seller.mean() > 0.05


# --- items -----------------------------------------------------------------------------


def test_item_snapshots(tables: dict) -> None:
    items = tables[contracts.RAW_ITEMS]
    days = sorted(items.dt.unique())
    for d in days:
        day = items[items.dt == d]
        start, end = _day_bounds(d)
        assert day.item_id.is_unique
        assert (day.listed_at < end).all()
        sold = day.status == "sold"
        assert day.sold_at.notna().eq(sold).all()
        assert ((day.sold_at[sold] >= start) & (day.sold_at[sold] < end)).all()
        assert set(day.condition) <= set(contracts.CONDITIONS)
        assert (day.currency == "EUR").all() and (day.price > 0).all()
        assert set(day.status) <= set(contracts.ITEM_STATUSES)
    first_start, _ = _day_bounds(days[0])
    assert (items[items.dt == days[0]].listed_at < first_start).sum() > 1000, "initial stock"
    for prev, d in itertools.pairwise(days):
        start, end = _day_bounds(d)
        new = items[(items.dt == d) & (items.listed_at >= start)]
        assert len(new) > 0, f"new listings arrive on {d}"
        # continuity: what was available yesterday is still there today
        left = set(items[(items.dt == prev) & (items.status == "available")].item_id)
        assert left <= set(items[items.dt == d].item_id)
    # item ids are unique forever: the same id always carries the same listing
    attrs = ["seller_id", "category", "brand", "size", "price", "listed_at"]
    assert (items.groupby("item_id")[attrs].nunique() == 1).all().all()


def test_prices_depend_on_category_brand_and_condition(tables: dict) -> None:
    items = tables[contracts.RAW_ITEMS].drop_duplicates("item_id")
    by_cat = items.groupby("category").price.median()
    assert by_cat["outerwear"] > 2 * by_cat["accessories"]
    by_cond = items.groupby("condition").price.median()
    assert by_cond["new_with_tags"] > by_cond["satisfactory"]
    brands = cat.brands(get_preset("tiny").n_brands)
    tier = dict(zip(brands.names, brands.tier, strict=True))
    items = items.assign(tier=items.brand.map(tier))
    by_tier = items.groupby("tier").price.median()
    assert by_tier[3] > 2 * by_tier[0]  # luxury vs fast fashion


def test_sold_listings_vanish(tables: dict) -> None:
    items, events = tables[contracts.RAW_ITEMS], tables[contracts.RAW_EVENTS]
    sold = items[items.status == "sold"].set_index("item_id")
    assert len(sold) > 20, "listings do sell"
    assert sold.index.is_unique, "a listing is sold once"
    last_seen = items.groupby("item_id")["dt"].max().reindex(sold.index)
    reappears = last_seen[last_seen > sold["dt"]]
    assert reappears.empty, f"sold listings reappear in later snapshots: {reappears.head()}"
    buys = events[events.event_type == "purchase"]
    assert buys.item_id.is_unique, "at most one purchase per listing"
    assert set(buys.item_id) == set(sold.index)
    assert (buys.set_index("item_id").ts == sold.sold_at.reindex(buys.item_id)).all()
    ev = events.merge(sold.sold_at.rename("sold"), left_on="item_id", right_index=True)
    buyer = buys.set_index("item_id").session_id
    others = ev[ev.session_id != buyer.reindex(ev.item_id).to_numpy()]
    assert not (others.ts > others.sold).any(), "nobody interacts with a sold listing"
    imps = ev[ev.event_type == "impression"]
    assert not (imps.ts > imps.sold).any(), "a sold listing is never shown again"


# --- events ----------------------------------------------------------------------------


def test_event_basics(tables: dict) -> None:
    events = tables[contracts.RAW_EVENTS]
    assert events.event_id.is_unique
    assert set(events.event_type) == set(contracts.EVENT_TYPES)
    assert {"home", "search"} <= set(events.surface) <= set(contracts.SURFACES)
    assert (events.position >= 0).all()
    for d, day in events.groupby("dt"):
        start, end = _day_bounds(d)
        assert ((day.ts >= start) & (day.ts < end)).all(), f"event outside dt={d}"
        assert day.event_id.is_monotonic_increasing
        assert day.ts.is_monotonic_increasing
    # a session belongs to one user and one surface
    per_session = events.groupby("session_id")[["user_id", "surface"]].nunique()
    assert (per_session == 1).all().all()
    users = tables[contracts.TRUTH_USERS].user_id
    assert events.user_id.isin(users).all()


def test_queries_match_results(tables: dict) -> None:
    events, items = tables[contracts.RAW_EVENTS], tables[contracts.RAW_ITEMS]
    assert events[events.surface != "search"]["query"].isna().all()
    search = events[events.surface == "search"]
    assert search["query"].notna().all()
    meta = items.drop_duplicates("item_id").set_index("item_id")
    hit = search.join(meta[["category", "subcategory", "brand"]], on="item_id")
    matches = (
        (hit["query"] == hit.category)
        | (hit["query"] == hit.subcategory)
        | (hit["query"] == hit.brand)
    )
    assert matches.all()
    kinds = set(search["query"])
    assert kinds & set(cat.CATEGORIES) and kinds - set(cat.CATEGORIES) - set(cat.SUBCATEGORIES)


def test_downstream_events_follow_their_impression(tables: dict) -> None:
    events = tables[contracts.RAW_EVENTS]
    key = ["session_id", "item_id"]
    imps = events[events.event_type == "impression"]
    assert not imps.duplicated(key).any(), "an item is shown once per session"
    rest = events[events.event_type != "impression"].merge(
        imps[[*key, "ts", "position"]], on=key, how="left", suffixes=("", "_imp")
    )
    assert rest.ts_imp.notna().all(), "every interaction has its impression"
    assert (rest.ts > rest.ts_imp).all()
    assert (rest.position == rest.position_imp).all()
    clicks = events[events.event_type == "click"][[*key, "ts"]]
    after_click = rest[rest.event_type != "click"].merge(clicks, on=key, suffixes=("", "_c"))
    assert len(after_click) == (rest.event_type != "click").sum(), "likes/bags/buys need a click"
    assert (after_click.ts > after_click.ts_c).all()
    bags = events[events.event_type == "add_to_bag"][[*key, "ts"]]
    buys = events[events.event_type == "purchase"].merge(bags, on=key, suffixes=("", "_bag"))
    assert len(buys) == (events.event_type == "purchase").sum(), "a purchase goes through the bag"
    assert (buys.ts > buys.ts_bag).all()
    # positions of a logged list are the ranks 0..k-1 (gaps only where a listing sold meanwhile)
    first = imps.groupby("session_id").position.min()
    assert (first == 0).mean() > 0.95


def test_no_seller_sees_own_listings(tables: dict) -> None:
    events, items = tables[contracts.RAW_EVENTS], tables[contracts.RAW_ITEMS]
    seller = items.drop_duplicates("item_id").set_index("item_id").seller_id
    assert (events.user_id != seller.reindex(events.item_id).to_numpy()).all()
    # ... although sellers are active buyers too
    truth = tables[contracts.TRUTH_USERS]
    assert events.user_id.isin(truth.user_id[truth.is_seller]).any()


def test_no_impression_before_listing(tables: dict) -> None:
    events, items = tables[contracts.RAW_EVENTS], tables[contracts.RAW_ITEMS]
    listed = items.drop_duplicates("item_id").set_index("item_id").listed_at
    assert (events.ts > listed.reindex(events.item_id).to_numpy()).all()


# --- ground truth ----------------------------------------------------------------------


def test_true_utility_roundtrips_the_simulation_truth(
    run: tuple[Settings, dict], tables: dict
) -> None:
    """The stored truth reproduces exactly the utility the simulation used."""
    preset = get_preset("tiny")
    days = lake.day_range(DS, HISTORY)
    start = to_us(dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC))
    population = make_population(stream_rng(SEED, STREAM_POPULATION), preset, start, HISTORY)
    items = tables[contracts.RAW_ITEMS].drop_duplicates("item_id")
    rng = np.random.default_rng(0)
    users = rng.integers(1, population.n + 1, 3000)
    item_ids = rng.choice(items.item_id.to_numpy(), 3000)
    got = true_utility(tables[contracts.TRUTH_USERS], items, users, item_ids)

    meta = items.set_index("item_id").loc[item_ids]
    brands = {b: i for i, b in enumerate(population.brand_names)}
    attrs = dataclasses.replace(_attrs(meta), brand=meta.brand.map(brands).to_numpy(np.int32))
    want = utility(population.taste, users - 1, attrs, np.arange(len(meta)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert got.dtype == np.float32 and np.isfinite(got).all()


def _attrs(meta: pd.DataFrame) -> ItemAttributes:
    return ItemAttributes(
        category=cat.code_of(cat.CATEGORIES, meta.category.to_numpy(), "category"),
        style=cat.code_of(cat.STYLES, meta["style"].to_numpy(), "style"),
        brand=np.zeros(len(meta), dtype=np.int32),
        size=cat.code_of(cat.SIZES, meta["size"].to_numpy(), "size"),
        condition=cat.code_of(contracts.CONDITIONS, meta.condition.to_numpy(), "condition"),
        price=meta.price.to_numpy(np.float64),
    )


def test_true_utility_names_unknown_ids(tables: dict) -> None:
    truth, items = tables[contracts.TRUTH_USERS], tables[contracts.RAW_ITEMS]
    item = items.item_id.iloc[:1].to_numpy()
    with pytest.raises(KeyError, match="999999"):
        true_utility(truth, items, np.array([999_999]), item)
    with pytest.raises(KeyError, match="888888"):
        true_utility(truth, items, np.array([1]), np.array([888_888]))


def test_clicked_items_have_higher_true_utility(tables: dict) -> None:
    events, items = tables[contracts.RAW_EVENTS], tables[contracts.RAW_ITEMS]
    truth = tables[contracts.TRUTH_USERS]
    u = true_utility(truth, items, events.user_id.to_numpy(), events.item_id.to_numpy())
    mean = pd.Series(u).groupby(events.event_type.to_numpy()).mean()
    assert mean["click"] > mean["impression"] + 1.0
    assert mean["purchase"] > mean["click"]


# --- presets ---------------------------------------------------------------------------


def test_presets() -> None:
    assert list(PRESETS) == ["tiny", "small", "medium", "large"]
    large = get_preset("large")
    assert (large.n_users, large.live_listings, large.recommended_history_days) == (
        1_000_000,
        200_000,
        30,
    )
    assert get_preset("small").n_users == 20_000 and get_preset("medium").n_users == 200_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        large.n_users = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="unknown scale preset 'huge'"):
        get_preset("huge")
