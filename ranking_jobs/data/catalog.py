"""The fixed vocabulary of the synthetic marketplace.

Categories (with their subcategories, size system and base price), sizes, styles,
colours, conditions, countries and a generated brand list with a Zipf-like
popularity and a price tier. Every string the generator writes comes from here,
and every code the simulation uses is an index into one of these tuples, so the
ground-truth utility can be recomputed from the stored strings alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ranking_jobs.contracts import CONDITIONS, SIZE_CHARTS

# name -> (subcategories, size system, base price in EUR)
_CATEGORY_SPEC: dict[str, tuple[tuple[str, ...], str, float]] = {
    "tops": (("t-shirts", "shirts", "blouses", "tank tops"), "letter", 16.0),
    "knitwear": (("jumpers", "cardigans", "hoodies"), "letter", 24.0),
    "dresses": (("mini dresses", "midi dresses", "maxi dresses"), "letter", 28.0),
    "skirts": (("mini skirts", "midi skirts", "maxi skirts"), "letter", 20.0),
    "trousers": (("chinos", "wide-leg trousers", "leggings", "shorts"), "letter", 22.0),
    "jeans": (("skinny jeans", "straight jeans", "mom jeans", "bootcut jeans"), "waist", 26.0),
    "outerwear": (("coats", "jackets", "blazers", "puffers"), "letter", 45.0),
    "shoes": (("sneakers", "boots", "heels", "sandals", "flats"), "shoe", 35.0),
    "bags": (("handbags", "backpacks", "totes", "crossbody bags"), "one", 38.0),
    "accessories": (("scarves", "belts", "hats", "jewellery", "sunglasses"), "one", 12.0),
}

CATEGORIES: tuple[str, ...] = tuple(_CATEGORY_SPEC)
SUBCATEGORIES: tuple[str, ...] = tuple(s for subs, _, _ in _CATEGORY_SPEC.values() for s in subs)
SUBCATEGORY_CATEGORY = np.array(
    [CATEGORIES.index(c) for c, (subs, _, _) in _CATEGORY_SPEC.items() for _ in subs],
    dtype=np.int16,
)
CATEGORY_BASE_PRICE = np.array([p for _, _, p in _CATEGORY_SPEC.values()], dtype=np.float64)
# Share of listings per category (clothing dominates second-hand fashion).
CATEGORY_SHARE = np.array([0.20, 0.11, 0.13, 0.07, 0.10, 0.10, 0.09, 0.10, 0.05, 0.05])

SIZE_SYSTEMS: tuple[str, ...] = ("letter", "waist", "shoe", "one")
CATEGORY_SIZE_SYSTEM = np.array(
    [SIZE_SYSTEMS.index(sys) for _, sys, _ in _CATEGORY_SPEC.values()], dtype=np.int8
)
SIZES_BY_SYSTEM: dict[str, tuple[str, ...]] = {**SIZE_CHARTS, "one": ("one size",)}
# Flat size vocabulary: code -> (system, ordinal inside the system).
SIZES: tuple[str, ...] = tuple(s for sys in SIZE_SYSTEMS for s in SIZES_BY_SYSTEM[sys])
SIZE_SYSTEM_OF = np.array(
    [i for i, sys in enumerate(SIZE_SYSTEMS) for _ in SIZES_BY_SYSTEM[sys]], dtype=np.int8
)
SIZE_ORDINAL = np.array(
    [j for sys in SIZE_SYSTEMS for j in range(len(SIZES_BY_SYSTEM[sys]))], dtype=np.int16
)
SIZE_OFFSET = np.array(
    [SIZES.index(SIZES_BY_SYSTEM[sys][0]) for sys in SIZE_SYSTEMS], dtype=np.int16
)
# How many ordinals away still "sort of fits" (waist sizes are finer-grained).
SIZE_TOLERANCE = np.array([1.0, 1.6, 1.0, 1.0])
# Distribution of true body sizes (centre, spread) per sized system.
SIZE_CENTRE = {"letter": (3.0, 1.1), "waist": (5.0, 2.4), "shoe": (4.5, 2.0)}

STYLES: tuple[str, ...] = (
    "casual",
    "streetwear",
    "vintage",
    "minimalist",
    "boho",
    "classic",
    "sporty",
    "romantic",
    "grunge",
    "preppy",
)
COLOURS: tuple[str, ...] = (
    "black",
    "white",
    "grey",
    "navy",
    "blue",
    "beige",
    "brown",
    "red",
    "pink",
    "green",
    "yellow",
    "multicolour",
)
COLOUR_SHARE = np.array([0.2, 0.12, 0.09, 0.08, 0.1, 0.09, 0.07, 0.06, 0.06, 0.05, 0.03, 0.05])

CONDITION_SHARE = np.array([0.12, 0.38, 0.38, 0.12])
CONDITION_PRICE = np.array([1.35, 1.0, 0.8, 0.55])
assert len(CONDITION_SHARE) == len(CONDITIONS)

COUNTRIES: tuple[str, ...] = ("FR", "DE", "ES", "IT", "NL", "BE", "PL", "PT", "AT", "LT", "CZ")
COUNTRY_SHARE = np.array([0.28, 0.16, 0.12, 0.10, 0.08, 0.06, 0.06, 0.05, 0.03, 0.03, 0.03])

BRAND_TIERS: tuple[str, ...] = ("fast", "mid", "premium", "luxury")
BRAND_TIER_PRICE = np.array([0.55, 1.0, 1.9, 4.5])

_SYLLABLES = (
    "ba", "lo", "ri", "ve", "na", "mo", "ka", "lu", "sa", "te", "vi", "do", "ra", "ni",
    "po", "el", "an", "or", "is", "mi", "zu", "fe", "co", "la", "ti", "ro", "ma", "se",
)  # fmt: skip
_SUFFIXES = ("", "", "", " & Co", " Studio", " Paris", " Atelier", " Denim", " Milano")


@dataclass(frozen=True)
class Brands:
    """A brand vocabulary: names, listing popularity (Zipf-like), price tier, style lean."""

    names: tuple[str, ...]
    popularity: np.ndarray  # sums to 1, decreasing with code
    tier: np.ndarray  # index into BRAND_TIERS
    style: np.ndarray  # index into STYLES: the style a brand's listings lean to

    @property
    def price_factor(self) -> np.ndarray:
        return BRAND_TIER_PRICE[self.tier]


@lru_cache(maxsize=8)
def brands(n: int, zipf_exponent: float = 1.07) -> Brands:
    """``n`` invented brand names, deterministic for a given ``n`` (independent of the seed)."""
    rng = np.random.default_rng(20_240_601)
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < n:
        k = int(rng.integers(2, 4))
        stem = "".join(_SYLLABLES[i] for i in rng.integers(0, len(_SYLLABLES), k)).capitalize()
        name = stem + _SUFFIXES[int(rng.integers(0, len(_SUFFIXES)))]
        if name not in seen:
            seen.add(name)
            names.append(name)
    ranks = np.arange(1, n + 1, dtype=np.float64)
    pop = ranks**-zipf_exponent
    pop /= pop.sum()
    # The most listed brands are mostly fast fashion and mid-market; luxury sits in the tail.
    head = ranks <= max(5, n // 20)
    tier_p = np.where(head[:, None], [0.55, 0.35, 0.08, 0.02], [0.25, 0.4, 0.22, 0.13])
    u = rng.random(n)
    tier = (u[:, None] > np.cumsum(tier_p, axis=1)).sum(axis=1).astype(np.int8)
    style = rng.integers(0, len(STYLES), n).astype(np.int8)
    return Brands(names=tuple(names), popularity=pop, tier=tier, style=style)


def code_of(vocabulary: tuple[str, ...], values: np.ndarray, what: str) -> np.ndarray:
    """Vectorised string -> code lookup that names the unknown values it meets."""
    lookup = {v: i for i, v in enumerate(vocabulary)}
    uniq, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    codes = np.array([lookup.get(v, -1) for v in uniq], dtype=np.int32)
    if (codes < 0).any():
        bad = [str(v) for v, c in zip(uniq, codes, strict=True) if c < 0][:5]
        raise ValueError(f"unknown {what} values {bad}; expected one of {list(vocabulary)[:12]}")
    return codes[inverse]
