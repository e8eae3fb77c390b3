"""Names of the feature columns, shared by the Spark transforms, Feast and the model.

Kept free of Spark imports so the Feast repository and the trainer can read it;
a test checks the transforms produce exactly these columns.
"""

from __future__ import annotations

WINDOWS = (1, 7, 30)
EVENT_COUNTS = ("impressions", "clicks", "likes", "saves", "bag_adds", "purchases")

ITEM_COUNTS = [f"{name}_{w}d" for w in WINDOWS for name in EVENT_COUNTS]
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
]
ITEM_INTS = ["is_available", "seller_sales_30d"]

USER_COUNTS = [f"user_{c}" for c in ITEM_COUNTS]
USER_FLOATS = ["user_days_since_active", "user_price_level"]
USER_INTS = ["user_category_breadth"]

# (user, item) history of engagement with the very listing.
USER_ITEM_INTS = ["ui_engagements", "ui_purchases"]
USER_ITEM_FLOATS = ["ui_days_since"]

# Item attributes a user can lean towards; each has its own affinity view keyed by
# (user, attribute value), joined through the item's value at retrieval time.
AFFINITY_DIMENSIONS = ("category", "brand", "size", "style")
AFFINITY_FLOATS = [f"{d}_affinity" for d in AFFINITY_DIMENSIONS]

# Computed at join time from a (user, item) pair, never stored.
CROSS_FLOATS = ["price_distance"]

# Computed with the candidates, from the same inputs (the user's last days of
# engagement and the co-visitation snapshot), for every row a ranker sees.
PAIR_FLOATS = ["covis_score"]

# What the feature assembly (Feast plus the cross features) adds to entity rows.
ASSEMBLED_FEATURES = [
    *ITEM_COUNTS,
    *ITEM_FLOATS,
    *ITEM_INTS,
    *USER_COUNTS,
    *USER_FLOATS,
    *USER_INTS,
    *AFFINITY_FLOATS,
    *USER_ITEM_INTS,
    *USER_ITEM_FLOATS,
    *CROSS_FLOATS,
]
MODEL_FEATURES = [*ASSEMBLED_FEATURES, *PAIR_FLOATS]

# The item's attributes themselves, as XGBoost native categories (RANKING_CATEGORICAL_FEATURES).
CATEGORICAL_FEATURES = list(AFFINITY_DIMENSIONS)
