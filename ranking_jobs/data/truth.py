"""Ground truth of the synthetic marketplace: users' latent taste and the true utility.

The simulation drives clicks, likes, saves, bag adds and purchases from
:func:`utility`, and :func:`true_utility` recomputes exactly the same number from
the stored ``truth/users`` partition and the raw item columns, so a ranking can be
scored against the oracle later (e.g. NDCG of a list under the true utility).

Utility of user ``u`` for item ``i`` (no randomness, no item identity)::

    U = category_affinity[u, category(i)]
      + STYLE_WEIGHT * style_affinity[u, style(i)]
      + BRAND_BONUS  * [brand(i) in favourite_brands(u)]
      + size_fit(true size of u in the size system of i, size(i))
      + price_fit(log(price(i) / base price of category(i)), price_level(u), price_tolerance(u))
      + CONDITION_VALUE[condition(i)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ranking_jobs.contracts import CONDITIONS
from ranking_jobs.data import catalog as cat

STYLE_WEIGHT = 0.7
BRAND_BONUS = 1.0
CONDITION_VALUE = np.array([0.35, 0.15, 0.0, -0.5], dtype=np.float32)
PRICE_SLOPE = 0.2  # everyone likes a bargain a little
SIZE_MATCH_BONUS = 0.3
SIZE_MISS_PENALTY = 1.2
N_FAVOURITE_BRANDS = 5
SIZED_SYSTEMS = ("letter", "waist", "shoe")

CATEGORY_COLUMNS = tuple(f"affinity_category__{c}" for c in cat.CATEGORIES)
STYLE_COLUMNS = tuple(f"affinity_style__{s}" for s in cat.STYLES)
SIZE_COLUMNS = tuple(f"true_size_{s}" for s in SIZED_SYSTEMS)

TRUTH_USERS_SCHEMA = pa.schema(
    [pa.field("user_id", pa.int64(), nullable=False)]
    + [pa.field(c, pa.float32(), nullable=False) for c in CATEGORY_COLUMNS]
    + [pa.field(c, pa.float32(), nullable=False) for c in STYLE_COLUMNS]
    + [pa.field("favourite_brands", pa.list_(pa.string()), nullable=False)]
    + [pa.field(c, pa.string(), nullable=False) for c in SIZE_COLUMNS]
    + [
        pa.field("price_level", pa.float32(), nullable=False),
        pa.field("price_tolerance", pa.float32(), nullable=False),
        pa.field("activity", pa.float32(), nullable=False),
        pa.field("click_bias", pa.float32(), nullable=False),
        pa.field("purchase_propensity", pa.float32(), nullable=False),
        pa.field("is_seller", pa.bool_(), nullable=False),
    ]
)


@dataclass
class Taste:
    """Latent taste of a set of users (row r = one user)."""

    category: np.ndarray  # (n, n_categories) float32
    style: np.ndarray  # (n, n_styles) float32
    brands: np.ndarray  # (n, k) int32 brand codes, -1 = none
    size: np.ndarray  # (n, 3) int16 ordinal of the true size per sized system
    price_level: np.ndarray  # (n,) float32, preferred log(price / category base)
    price_tolerance: np.ndarray  # (n,) float32


@dataclass
class ItemAttributes:
    """Attributes of a set of items that the utility reads (row r = one item)."""

    category: np.ndarray  # int codes into catalog.CATEGORIES
    style: np.ndarray  # into catalog.STYLES
    brand: np.ndarray  # brand codes (same coding as Taste.brands)
    size: np.ndarray  # into catalog.SIZES
    condition: np.ndarray  # into contracts.CONDITIONS
    price: np.ndarray  # EUR


def utility(taste: Taste, u: np.ndarray, items: ItemAttributes, i: np.ndarray) -> np.ndarray:
    """True utility of the pairs (taste row ``u[k]``, item row ``i[k]``), float32."""
    c = items.category[i]
    out = taste.category[u, c].astype(np.float32)
    out += STYLE_WEIGHT * taste.style[u, items.style[i]]
    brand = items.brand[i]
    fav = (taste.brands[u] == brand[:, None]).any(axis=1)
    out += BRAND_BONUS * fav
    size_code = items.size[i]
    system = cat.SIZE_SYSTEM_OF[size_code]
    sized = system < len(SIZED_SYSTEMS)
    true_ord = taste.size[u, np.minimum(system, len(SIZED_SYSTEMS) - 1)]
    dist = np.abs(cat.SIZE_ORDINAL[size_code] - true_ord) / cat.SIZE_TOLERANCE[system]
    fit = SIZE_MATCH_BONUS - SIZE_MISS_PENALTY * np.minimum(dist, 3.0) ** 1.5
    out += np.where(sized, fit, 0.0).astype(np.float32)
    rel = np.log(items.price[i] / cat.CATEGORY_BASE_PRICE[c])
    z = (rel - taste.price_level[u]) / taste.price_tolerance[u]
    out += (-0.5 * np.minimum(z * z, 9.0) - PRICE_SLOPE * rel).astype(np.float32)
    out += CONDITION_VALUE[items.condition[i]]
    return out


def truth_table(
    user_ids: np.ndarray, taste: Taste, extra: dict[str, np.ndarray], brand_names: tuple[str, ...]
) -> pa.Table:
    """The ``truth/users`` table of the given users (``extra``: activity & co)."""
    cols: dict[str, pa.Array] = {"user_id": pa.array(user_ids, pa.int64())}
    for j, name in enumerate(CATEGORY_COLUMNS):
        cols[name] = pa.array(taste.category[:, j], pa.float32())
    for j, name in enumerate(STYLE_COLUMNS):
        cols[name] = pa.array(taste.style[:, j], pa.float32())
    valid = taste.brands >= 0
    offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32)
    values = pa.array(brand_names, pa.string()).take(pa.array(taste.brands[valid]))
    cols["favourite_brands"] = pa.ListArray.from_arrays(pa.array(offsets), values)
    for j, system in enumerate(SIZED_SYSTEMS):
        vocab = pa.array(cat.SIZES_BY_SYSTEM[system], pa.string())
        cols[SIZE_COLUMNS[j]] = vocab.take(pa.array(taste.size[:, j].astype(np.int32)))
    cols["price_level"] = pa.array(taste.price_level, pa.float32())
    cols["price_tolerance"] = pa.array(taste.price_tolerance, pa.float32())
    for name in ("activity", "click_bias", "purchase_propensity"):
        cols[name] = pa.array(extra[name], pa.float32())
    cols["is_seller"] = pa.array(extra["is_seller"], pa.bool_())
    return pa.Table.from_arrays(list(cols.values()), schema=TRUTH_USERS_SCHEMA)


def _positions(index_values: pd.Series, wanted: np.ndarray, what: str) -> np.ndarray:
    idx = pd.Index(index_values)
    if not idx.is_unique:
        raise ValueError(f"{what}: ids must be unique")
    pos = idx.get_indexer(np.asarray(wanted))
    if (pos < 0).any():
        missing = np.asarray(wanted)[pos < 0][:5].tolist()
        raise KeyError(f"{what}: no row for ids {missing}")
    return pos


def _favourite_brand_rows(truth_users: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, slot, brand name) of every favourite brand of the given rows, vectorised."""
    fav = truth_users["favourite_brands"].reset_index(drop=True).explode().dropna()
    rows = fav.index.to_numpy(np.int64)
    slot = fav.groupby(level=0).cumcount().to_numpy(np.int64)
    return rows, slot, fav.to_numpy().astype(str)


def taste_from_truth(
    truth_users: pd.DataFrame, fav_rows: np.ndarray, fav_slot: np.ndarray, fav_codes: np.ndarray
) -> Taste:
    """Rebuild :class:`Taste` from ``truth/users`` rows and their coded favourite brands."""
    n = len(truth_users)
    keep = fav_slot < N_FAVOURITE_BRANDS
    fav = np.full((n, N_FAVOURITE_BRANDS), -1, dtype=np.int32)
    fav[fav_rows[keep], fav_slot[keep]] = fav_codes[keep]
    size = np.stack(
        [
            cat.code_of(cat.SIZES_BY_SYSTEM[s], truth_users[col].to_numpy(), col)
            for s, col in zip(SIZED_SYSTEMS, SIZE_COLUMNS, strict=True)
        ],
        axis=1,
    ).astype(np.int16)
    return Taste(
        category=truth_users[list(CATEGORY_COLUMNS)].to_numpy(np.float32),
        style=truth_users[list(STYLE_COLUMNS)].to_numpy(np.float32),
        brands=fav,
        size=size,
        price_level=truth_users["price_level"].to_numpy(np.float32),
        price_tolerance=truth_users["price_tolerance"].to_numpy(np.float32),
    )


def attributes_from_items(items: pd.DataFrame, brand_codes: np.ndarray) -> ItemAttributes:
    """Rebuild :class:`ItemAttributes` from raw item rows and their coded brands."""
    return ItemAttributes(
        category=cat.code_of(cat.CATEGORIES, items["category"].to_numpy(), "category"),
        style=cat.code_of(cat.STYLES, items["style"].to_numpy(), "style"),
        brand=brand_codes.astype(np.int32),
        size=cat.code_of(cat.SIZES, items["size"].to_numpy(), "size"),
        condition=cat.code_of(CONDITIONS, items["condition"].to_numpy(), "condition"),
        price=items["price"].to_numpy(np.float64),
    )


def true_utility(
    truth_users: pd.DataFrame,
    items: pd.DataFrame,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
) -> np.ndarray:
    """True utility (float32) of each pair ``(user_ids[k], item_ids[k])``.

    ``truth_users`` is (a superset of) the ``truth/users`` partition, ``items`` any
    rows of ``raw/items`` covering the wanted items (rows of several daily
    snapshots may be concatenated: an item's attributes never change).
    Raises ``KeyError`` naming ids that have no row.
    """
    user_ids = np.asarray(user_ids, dtype=np.int64)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    if user_ids.shape != item_ids.shape:
        raise ValueError(f"user_ids {user_ids.shape} and item_ids {item_ids.shape} differ")
    items = items.drop_duplicates("item_id", keep="last")
    u_pos = _positions(truth_users["user_id"], user_ids, "truth_users")
    i_pos = _positions(items["item_id"], item_ids, "items")
    # Decode only the rows that are used.
    u_rows, u_inv = np.unique(u_pos, return_inverse=True)
    i_rows, i_inv = np.unique(i_pos, return_inverse=True)
    users = truth_users.iloc[u_rows]
    used_items = items.iloc[i_rows]
    fav_rows, fav_slot, fav_names = _favourite_brand_rows(users)
    # One coding for both sides: only equality of brand names matters.
    brand_codes, _ = pd.factorize(
        np.concatenate([fav_names, used_items["brand"].to_numpy().astype(str)])
    )
    taste = taste_from_truth(users, fav_rows, fav_slot, brand_codes[: len(fav_names)])
    attrs = attributes_from_items(used_items, brand_codes[len(fav_names) :])
    return utility(taste, u_inv.reshape(-1), attrs, i_inv.reshape(-1))
