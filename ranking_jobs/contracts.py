"""Data contracts of the lake: table names, Arrow schemas and enumerations.

Every writer casts to these schemas and every reader may rely on them; the raw
validation suites are derived from the same definitions so the two can never
drift apart.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

EVENT_TYPES = ("impression", "click", "like", "save", "add_to_bag", "purchase")
SURFACES = ("home", "search", "similar")
ITEM_STATUSES = ("available", "sold")
CONDITIONS = ("new_with_tags", "very_good", "good", "satisfactory")  # best first

# The marketplace's size charts, smallest first: how far a listing's size is from
# the sizes a user wears is a feature. Sizes outside every chart have no position.
SIZE_CHARTS: dict[str, tuple[str, ...]] = {
    "letter": ("XXS", "XS", "S", "M", "L", "XL", "XXL"),
    "waist": tuple(f"W{w}" for w in range(24, 37)),
    "shoe": tuple(str(s) for s in range(35, 47)),
}

# Graded relevance of the strongest interaction a user had with an item in the
# label window: purchase > bag > like/save > click > shown only > not shown.
LABEL_GRADES: dict[str, int] = {
    "purchase": 5,
    "add_to_bag": 4,
    "like": 3,
    "save": 3,
    "click": 2,
    "impression": 1,
}
NOT_SHOWN_GRADE = 0


def is_engagement(label: np.ndarray) -> np.ndarray:
    """Which graded labels are an engagement (a click or more), not a bare impression."""
    return np.asarray(label) >= LABEL_GRADES["click"]


def engagement_grade(label: np.ndarray) -> np.ndarray:
    """Grades shifted so that engagement starts at 1 (a click) and a bare impression
    counts 0 like an unshown item: what a list is judged on, and what the model learns,
    so that it ranks what users engage with rather than what the logging policy showed."""
    return np.clip(np.asarray(label) - (LABEL_GRADES["click"] - 1), 0, None)


RAW_EVENTS = "raw/events"
RAW_ITEMS = "raw/items"
RAW_USERS = "raw/users"
TRUTH_USERS = "truth/users"
FEATURES_ITEM = "features/item_stats"
FEATURES_USER = "features/user_stats"
FEATURES_USER_AFFINITY = {
    d: f"features/user_{d}_affinity" for d in ("category", "brand", "size", "style")
}
FEATURES_COVISITATION = "features/item_covisitation"
FEATURES_USER_ITEM = "features/user_item_stats"
FEATURES_USER_PROFILE = "features/user_profile"
# Compact per-day aggregates of raw/events that the snapshots' windows are rolled from,
# so a night reads one new day of events (features.daily).
DAILY_ITEM = "daily/item_events"
DAILY_USER = "daily/user_events"
DAILY_USER_ITEM = "daily/user_item_events"
DAILY_PAIRS = "daily/item_pairs"
TRAINING = "training"
RECOMMENDATIONS = "recommendations"
# Lists per Parquet row group of ``recommendations``: publish streams the partition
# and decodes row groups in parallel (one 1Mi-row group decoded on one core).
LISTS_ROW_GROUP_ROWS = 50_000
POPULAR = "popular"
SOLD_ITEMS = "sold_items"
MONITORING_SAMPLE = "monitoring_sample"  # a night's sampled model inputs and scores
MONITORING = "monitoring"  # a night's drift, quality and freshness figures

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("ts", TS, nullable=False),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("item_id", pa.int64(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("surface", pa.string(), nullable=False),
        pa.field("query", pa.string()),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("session_id", pa.string(), nullable=False),
    ]
)

ITEMS_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.int64(), nullable=False),
        pa.field("seller_id", pa.int64(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("subcategory", pa.string(), nullable=False),
        pa.field("brand", pa.string(), nullable=False),
        pa.field("size", pa.string(), nullable=False),
        pa.field("condition", pa.string(), nullable=False),
        pa.field("colour", pa.string(), nullable=False),
        pa.field("style", pa.string(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("currency", pa.string(), nullable=False),
        pa.field("listed_at", TS, nullable=False),
        pa.field("sold_at", TS),
        pa.field("status", pa.string(), nullable=False),
    ]
)

USERS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("signed_up_at", TS, nullable=False),
        pa.field("country", pa.string(), nullable=False),
        pa.field("declared_size", pa.string()),
        pa.field("declared_styles", pa.list_(pa.string())),
    ]
)

RAW_SCHEMAS: dict[str, pa.Schema] = {
    RAW_EVENTS: EVENTS_SCHEMA,
    RAW_ITEMS: ITEMS_SCHEMA,
    RAW_USERS: USERS_SCHEMA,
}

# Final lists, one row per user, as written to recommendations/dt= and the
# online store's user_recommendations feature view.
RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("item_ids", pa.list_(pa.int64()), nullable=False),
        pa.field("scores", pa.list_(pa.float32()), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("generated_at", TS, nullable=False),
        pa.field("event_timestamp", TS, nullable=False),
    ]
)

# Items sold since the live lists were made, one row per segment, rewritten by the
# hourly availability step; the online store's sold_items feature view.
SOLD_ITEMS_SCHEMA = pa.schema(
    [
        pa.field("segment", pa.string(), nullable=False),
        pa.field("item_ids", pa.list_(pa.int64()), nullable=False),
        pa.field("since", TS, nullable=False),
        pa.field("updated_at", TS, nullable=False),
        pa.field("event_timestamp", TS, nullable=False),
    ]
)
