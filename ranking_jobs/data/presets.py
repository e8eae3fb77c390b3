"""Scale presets of the synthetic marketplace, one frozen dataclass per name."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ScalePreset:
    """How big the simulated marketplace is.

    ``n_users`` is the population at the end of the history (``history_days``
    comes from the settings, except where a preset recommends its own),
    ``live_listings`` the target number of available listings the inventory is
    kept around, ``sessions_per_user_day`` the mean daily sessions of a user.
    """

    name: str
    n_users: int
    live_listings: int
    n_brands: int
    sessions_per_user_day: float
    recommended_history_days: int
    # share of the final population that signs up during the history window
    new_user_share: float = 0.08
    # share of users who also sell
    seller_share: float = 0.12
    # Listings arriving per day: what refills the inventory to ``live_listings``
    # after the sales, plus ``listing_growth_share`` of it (a slowly growing
    # market), and never fewer than ``min_new_listing_share`` of it.
    listing_growth_share: float = 0.004
    min_new_listing_share: float = 0.012
    # time-ordered slices of a day simulated against one inventory state
    chunks_per_day: int = 48

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


TINY = ScalePreset(
    name="tiny",
    n_users=600,
    live_listings=1_500,
    n_brands=60,
    sessions_per_user_day=0.35,
    recommended_history_days=14,
)
SMALL = ScalePreset(
    name="small",
    n_users=20_000,
    live_listings=20_000,
    n_brands=300,
    sessions_per_user_day=0.25,
    recommended_history_days=14,
)
MEDIUM = ScalePreset(
    name="medium",
    n_users=200_000,
    live_listings=50_000,
    n_brands=800,
    sessions_per_user_day=0.2,
    recommended_history_days=30,
)
LARGE = ScalePreset(
    name="large",
    n_users=1_000_000,
    live_listings=200_000,
    n_brands=1_500,
    sessions_per_user_day=0.15,
    recommended_history_days=30,
)

PRESETS: dict[str, ScalePreset] = {p.name: p for p in (TINY, SMALL, MEDIUM, LARGE)}


def get_preset(name: str) -> ScalePreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown scale preset {name!r}; choose one of {sorted(PRESETS)}"
        ) from None
