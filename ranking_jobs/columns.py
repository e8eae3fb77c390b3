"""Names of the feature columns, shared by the Spark transforms, Feast and the model.

Kept free of Spark imports so the Feast repository and the trainer can read it;
a test checks the transforms produce exactly these columns.
"""

from __future__ import annotations

from ranking_jobs import contracts as C
from ranking_jobs.contracts import SIZE_CHARTS

WINDOWS = (1, 7, 30)
EVENT_COUNTS = ("impressions", "clicks", "likes", "saves", "bag_adds", "purchases")

ITEM_COUNTS = [f"{name}_{w}d" for w in WINDOWS for name in EVENT_COUNTS]

# Each daily aggregate table of raw/events (``features.daily``) and its columns besides
# ``dt``: what a current partition holds.
DAILY_COLUMNS: dict[str, list[str]] = {
    C.DAILY_ITEM: ["item_id", *EVENT_COUNTS, "sessions"],
    C.DAILY_USER: ["user_id", *EVENT_COUNTS],
    C.DAILY_USER_ITEM: ["user_id", "item_id", "engagements", "purchases", "last_ts", "intent"],
    C.DAILY_PAIRS: ["item_id", "neighbour_id", "together"],
}
ITEM_FLOATS = [
    "ctr_7d",
    "ctr_30d",
    "conversion_30d",
    "category_ctr_30d",
    "category_conversion_30d",
    "brand_ctr_30d",
    "brand_conversion_30d",
    "age_days",
    "price",
    "price_rel_category",
    "seller_conversion_30d",
    "condition_rank",  # position in contracts.CONDITIONS: 0 is new with tags
]
ITEM_INTS = ["is_available", "seller_sales_30d"]

USER_COUNTS = [f"user_{c}" for c in ITEM_COUNTS]
# Where the user's engagement sits in each size chart (weighted mean position).
USER_SIZE_FLOATS = {system: f"user_size_{system}" for system in SIZE_CHARTS}
USER_FLOATS = [
    "user_days_since_active",
    "user_price_level",
    "user_price_rel_level",  # median log(price / category median) of what they engage with
    *USER_SIZE_FLOATS.values(),
]
USER_INTS = ["user_category_breadth"]

# (user, item) history of engagement with the very listing.
USER_ITEM_INTS = ["ui_engagements", "ui_purchases", "ui_days", "ui_span_days"]
USER_ITEM_FLOATS = ["ui_days_since"]

# Item attributes a user can lean towards; each has its own affinity view keyed by
# (user, attribute value), joined through the item's value at retrieval time.
AFFINITY_DIMENSIONS = ("category", "brand", "size", "style")
AFFINITY_FLOATS = [f"{d}_affinity" for d in AFFINITY_DIMENSIONS]

# What the user told us at sign-up, known before any engagement (new users).
PROFILE_FLOATS = ["declared_size_rank"]  # position in the letter chart
PROFILE_LISTS = ["declared_styles"]  # read by a cross feature, not a model input

# Computed at join time from a (user, item) pair, never stored. The fit ones read a
# size chart or the declared profile.
FIT_FLOATS = [
    "size_distance",  # |item's chart position - user_size_<its chart>|
    "declared_size_distance",  # the same against the declared size (letter chart)
    "declared_style_match",  # 1 if the item's style is declared, 0 if not, NaN if none
]
CROSS_FLOATS = [
    "price_distance",
    "price_rel_gap",  # log(price_rel_category) - user_price_rel_level
    *FIT_FLOATS,
]

# Computed with the candidates, from the same inputs (the user's last days of
# engagement and the co-visitation snapshot; item-kNN and ALS fitted on the engagement
# history up to the snapshot), for every row a ranker sees.
PAIR_FLOATS = ["covis_score", "knn_score", "als_score"]

# Features that stay null where a marketplace lacks what they read (size charts, a
# sign-up profile; an imported shop log has neither): the training-set suite does
# not require them to hold a value, where an all-null column otherwise means a
# broken join.
OPTIONAL_FEATURES = frozenset([*USER_SIZE_FLOATS.values(), *PROFILE_FLOATS, *FIT_FLOATS])

# size -> (chart, position in it), for every size in a chart.
SIZE_POSITION: dict[str, tuple[str, int]] = {
    size: (system, rank) for system, sizes in SIZE_CHARTS.items() for rank, size in enumerate(sizes)
}

# The item's attributes themselves, as XGBoost native categories (RANKING_CATEGORICAL_FEATURES).
CATEGORICAL_FEATURES = list(AFFINITY_DIMENSIONS)
