"""The user population: sign-up times, declared profile, latent taste, activity, sellers.

Drawn once per run from the seed (independent of the day being simulated), sorted
by sign-up time so that ``user_id = row + 1`` grows with seniority and the users
known on day D are a prefix of the table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ranking_jobs.contracts import USERS_SCHEMA
from ranking_jobs.data import catalog as cat
from ranking_jobs.data.presets import ScalePreset
from ranking_jobs.data.truth import N_FAVOURITE_BRANDS, Taste, truth_table

US_PER_DAY = 86_400_000_000
# Share of the population per day that signs up during the history window.
DAILY_SIGNUP_SHARE = 0.006
ACTIVITY_SIGMA = 1.3  # lognormal spread of users' session rates: heavy-tailed activity
DORMANT_SHARE = 0.3  # users who almost never come back


def _choice(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """Vectorised categorical draws with probabilities ``p``."""
    cdf = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(p) - 1)


def _affinity(rng: np.random.Generator, n: int, k: int, alpha: float) -> np.ndarray:
    """Sparse-ish preferences: log of a Dirichlet draw, roughly in [-2.5, 2.2]."""
    p = rng.dirichlet(np.full(k, alpha), size=n)
    return np.clip(np.log(k * p + 0.08), -2.5, 2.2).astype(np.float32)


@dataclass
class Population:
    signed_up_at: np.ndarray  # int64 us, ascending
    country: np.ndarray  # codes into catalog.COUNTRIES
    declared_size: np.ndarray  # code into SIZES_BY_SYSTEM["letter"], -1 = not declared
    declared_styles: np.ndarray  # (n, 2) codes into STYLES, -1 = none
    taste: Taste
    activity: np.ndarray  # mean sessions per day
    click_bias: np.ndarray
    purchase_propensity: np.ndarray
    is_seller: np.ndarray
    seller_weight: np.ndarray  # listing rate of sellers (0 for non-sellers)
    brand_names: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.signed_up_at)

    @property
    def user_id(self) -> np.ndarray:
        return np.arange(1, self.n + 1, dtype=np.int64)

    def known_by(self, t_us: int) -> int:
        """How many users signed up strictly before ``t_us`` (a prefix of the table)."""
        return int(np.searchsorted(self.signed_up_at, t_us, side="left"))

    def users_table(self) -> pa.Table:
        """``raw/users`` for everyone; day D's partition is the prefix known by its end."""
        valid = self.declared_styles >= 0
        has_any = valid.any(axis=1)
        # A third of the users who declared nothing left the field empty, the rest null.
        offsets = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int32)
        null_mask = ~has_any & (np.arange(self.n) % 3 != 0)
        styles = pa.ListArray.from_arrays(
            pa.array(offsets),
            pa.array(cat.STYLES, pa.string()).take(pa.array(self.declared_styles[valid])),
            mask=pa.array(null_mask),
        )
        sizes = pa.array(cat.SIZES_BY_SYSTEM["letter"], pa.string())
        declared = pa.array(np.maximum(self.declared_size, 0), mask=self.declared_size < 0)
        return pa.Table.from_arrays(
            [
                pa.array(self.user_id, pa.int64()),
                pa.array(self.signed_up_at, USERS_SCHEMA.field("signed_up_at").type),
                pa.array(cat.COUNTRIES, pa.string()).take(pa.array(self.country)),
                sizes.take(declared),
                styles,
            ],
            schema=USERS_SCHEMA,
        )

    def truth_table(self, n: int | None = None) -> pa.Table:
        n = self.n if n is None else n
        t = self.taste
        taste = Taste(
            category=t.category[:n],
            style=t.style[:n],
            brands=t.brands[:n],
            size=t.size[:n],
            price_level=t.price_level[:n],
            price_tolerance=t.price_tolerance[:n],
        )
        extra = {
            "activity": self.activity[:n],
            "click_bias": self.click_bias[:n],
            "purchase_propensity": self.purchase_propensity[:n],
            "is_seller": self.is_seller[:n],
        }
        return truth_table(self.user_id[:n], taste, extra, self.brand_names)


def make_population(
    rng: np.random.Generator, preset: ScalePreset, history_start_us: int, history_days: int
) -> Population:
    n = preset.n_users
    brands = cat.brands(preset.n_brands)
    n_new = min(n // 2, round(n * DAILY_SIGNUP_SHARE * history_days))
    n_old = n - n_new
    # Existing users signed up over the previous three years, denser recently (growth).
    age_days = 1095.0 * rng.random(n_old) ** 1.6 + rng.random(n_old)
    old = history_start_us - (age_days * US_PER_DAY).astype(np.int64)
    new = history_start_us + rng.integers(0, history_days * US_PER_DAY, n_new)
    signed_up_at = np.sort(np.concatenate([old, new]))

    category = _affinity(rng, n, len(cat.CATEGORIES), 0.35)
    style = _affinity(rng, n, len(cat.STYLES), 0.5)
    # Favourite brands, drawn from a flattened brand popularity, without repeats.
    k = rng.integers(2, N_FAVOURITE_BRANDS + 1, n)
    fav = _choice(rng, brands.popularity**0.6, n * N_FAVOURITE_BRANDS).reshape(n, -1)
    fav = np.sort(fav, axis=1).astype(np.int32)
    dup = np.zeros_like(fav, dtype=bool)
    dup[:, 1:] = fav[:, 1:] == fav[:, :-1]
    fav[dup] = -1
    fav = np.where(np.arange(N_FAVOURITE_BRANDS)[None, :] < k[:, None], fav, -1)
    fav = -np.sort(-fav, axis=1)  # valid codes first, padding last

    centre, spread = cat.SIZE_CENTRE["letter"]
    letter = np.clip(np.rint(rng.normal(centre, spread, n)), 0, 6)
    waist = np.clip(np.rint(2 * letter - 1 + rng.normal(0, 1.2, n)), 0, 12)
    centre, spread = cat.SIZE_CENTRE["shoe"]
    shoe = np.clip(np.rint(rng.normal(centre, spread, n) + 0.6 * (letter - 3)), 0, 11)
    size = np.stack([letter, waist, shoe], axis=1).astype(np.int16)

    taste = Taste(
        category=category,
        style=style,
        brands=fav,
        size=size,
        price_level=rng.normal(0.0, 0.45, n).astype(np.float32),
        price_tolerance=rng.uniform(0.35, 0.8, n).astype(np.float32),
    )

    # Declared profile: a noisy, incomplete view of the truth.
    u = rng.random(n)
    off = np.clip(letter + rng.choice([-1, 1], n), 0, 6)
    declared_size = np.where(u < 0.75, letter, np.where(u < 0.87, off, -1)).astype(np.int16)
    top2 = np.argsort(-style, axis=1)[:, :2].astype(np.int16)
    u = rng.random((n, 3))
    first = np.where(u[:, 1] < 0.85, top2[:, 0], rng.integers(0, len(cat.STYLES), n))
    second = np.where(u[:, 2] < 0.45, top2[:, 1], -1)
    second = np.where(second == first, -1, second)
    declared_styles = np.stack([first, second], axis=1).astype(np.int16)
    declared_styles[u[:, 0] >= 0.7] = -1

    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, n)
    activity *= np.where(rng.random(n) < DORMANT_SHARE, 0.08, 1.0)
    activity *= preset.sessions_per_user_day / activity.mean()
    is_seller = rng.random(n) < preset.seller_share
    seller_weight = np.where(is_seller, rng.pareto(1.3, n) + 0.2, 0.0)

    return Population(
        signed_up_at=signed_up_at,
        country=_choice(rng, cat.COUNTRY_SHARE, n).astype(np.int32),
        declared_size=declared_size,
        declared_styles=declared_styles,
        taste=taste,
        activity=activity.astype(np.float32),
        click_bias=rng.normal(0.0, 0.4, n).astype(np.float32),
        purchase_propensity=rng.normal(0.0, 0.6, n).astype(np.float32),
        is_seller=is_seller,
        seller_weight=seller_weight,
        brand_names=brands.names,
    )
