"""Feast objects of the ranking pipeline: entities, file sources and feature views.

``definitions(settings)`` builds them for a given lake; the pipeline applies
them on every run (``ranking_jobs.feast_store.apply_definitions``). The module-
level objects at the bottom are the same definitions for Feast's own CLI, built
from the RANKING_* environment.
"""

from __future__ import annotations

import datetime as dt

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.data_source import DataSource
from feast.types import Array, Float32, Float64, Int64, String, UnixTimestamp

from ranking_jobs import columns as cols
from ranking_jobs import contracts as C
from ranking_jobs import lake
from ranking_jobs.settings import Settings, load_settings

# A daily snapshot is valid until the next one; two days tolerate one late night.
SNAPSHOT_TTL = dt.timedelta(days=2)

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A marketplace member (buyer and possibly seller).",
)
item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.INT64,
    description="A one-of-a-kind listing.",
)
# One entity per item attribute a user has an affinity to (category, brand, ...).
attributes = {
    d: Entity(
        name=d, join_keys=[d], value_type=ValueType.STRING, description=f"A listing {d} value."
    )
    for d in cols.AFFINITY_DIMENSIONS
}
segment = Entity(
    name="segment",
    join_keys=["segment"],
    value_type=ValueType.STRING,
    description="Audience of a non-personalised list, e.g. 'global'.",
)


def _source(settings: Settings, table: str) -> DataSource:
    """The lake table as Feast sees it: Parquet files read by DuckDB, or by Spark for
    cluster-scale data (Feast's Spark offline store only reads Spark sources)."""
    name = table.replace("/", "__")
    if settings.offline_store == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
            SparkSource,
        )

        return SparkSource(
            name=name,
            path=lake.table_uri(settings, table),
            file_format="parquet",
            timestamp_field="event_timestamp",
        )
    return FileSource(
        name=name,
        path=lake.partition_glob(settings, table),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        s3_endpoint_override=settings.s3_endpoint_url,
    )


def _fields(names: list[str], dtype: object) -> list[Field]:
    return [Field(name=n, dtype=dtype) for n in names]


def definitions(settings: Settings) -> list[object]:
    item_stats = FeatureView(
        name="item_stats",
        entities=[item],
        ttl=SNAPSHOT_TTL,
        schema=_fields(cols.ITEM_COUNTS + cols.ITEM_INTS, Int64)
        + _fields(cols.ITEM_FLOATS, Float64),
        source=_source(settings, C.FEATURES_ITEM),
        online=True,
        description="Item popularity, smoothed rates, age, price and seller quality.",
    )
    user_stats = FeatureView(
        name="user_stats",
        entities=[user],
        ttl=SNAPSHOT_TTL,
        schema=_fields(cols.USER_COUNTS + cols.USER_INTS, Int64)
        + _fields(cols.USER_FLOATS, Float64),
        source=_source(settings, C.FEATURES_USER),
        online=True,
        description="User activity over windows, recency, price level, breadth.",
    )
    affinity_views = [
        FeatureView(
            name=f"user_{d}_affinity",
            entities=[user, attributes[d]],
            ttl=SNAPSHOT_TTL,
            schema=_fields([f"{d}_affinity"], Float64),
            source=_source(settings, C.FEATURES_USER_AFFINITY[d]),
            online=True,
            description=f"Time-decayed share of the user's interactions per listing {d}.",
        )
        for d in cols.AFFINITY_DIMENSIONS
    ]
    item_covisitation = FeatureView(
        name="item_covisitation",
        entities=[item],
        ttl=SNAPSHOT_TTL,
        schema=[
            Field(name="neighbour_ids", dtype=Array(Int64)),
            Field(name="neighbour_scores", dtype=Array(Float64)),
        ],
        source=_source(settings, C.FEATURES_COVISITATION),
        online=True,
        description="Items engaged with in the same sessions, best first (cosine score).",
    )
    user_item_stats = FeatureView(
        name="user_item_stats",
        entities=[user, item],
        ttl=SNAPSHOT_TTL,
        schema=_fields(cols.USER_ITEM_INTS, Int64) + _fields(cols.USER_ITEM_FLOATS, Float64),
        source=_source(settings, C.FEATURES_USER_ITEM),
        online=True,
        description="The user's engagements and purchases of this very listing, and how "
        "long ago the last was.",
    )
    user_profile = FeatureView(
        name="user_profile",
        entities=[user],
        ttl=SNAPSHOT_TTL,
        schema=_fields(cols.PROFILE_FLOATS, Float64) + _fields(cols.PROFILE_LISTS, Array(String)),
        source=_source(settings, C.FEATURES_USER_PROFILE),
        online=True,
        description="Size and styles the user declared at sign-up (letter-chart position).",
    )
    list_fields = [
        Field(name="item_ids", dtype=Array(Int64)),
        Field(name="scores", dtype=Array(Float32)),
        Field(name="model_version", dtype=String),
        Field(name="run_id", dtype=String),
        Field(name="generated_at", dtype=UnixTimestamp),
    ]
    user_recommendations = FeatureView(
        name="user_recommendations",
        entities=[user],
        ttl=dt.timedelta(0),
        schema=list_fields,
        source=_source(settings, C.RECOMMENDATIONS),
        online=True,
        description="Precomputed top-N list per user, with the model and run that made it.",
    )
    popular_items = FeatureView(
        name="popular_items",
        entities=[segment],
        ttl=dt.timedelta(0),
        schema=list_fields,
        source=_source(settings, C.POPULAR),
        online=True,
        description="Fallback list for users without a personalised one.",
    )
    sold_items = FeatureView(
        name="sold_items",
        entities=[segment],
        ttl=dt.timedelta(0),
        schema=[
            Field(name="item_ids", dtype=Array(Int64)),
            Field(name="since", dtype=UnixTimestamp),
            Field(name="updated_at", dtype=UnixTimestamp),
        ],
        source=_source(settings, C.SOLD_ITEMS),
        online=True,
        description="Items sold since the live lists were made (hourly); serving drops them. "
        "One row per segment, so a read costs one key, not one per item.",
    )
    return [
        user,
        item,
        segment,
        *attributes.values(),
        item_stats,
        user_stats,
        *affinity_views,
        item_covisitation,
        user_item_stats,
        user_profile,
        user_recommendations,
        popular_items,
        sold_items,
    ]


# The same objects at module level, for Feast's own CLI (`feast plan/apply/serve`).
for _obj in definitions(load_settings()):
    globals()[_obj.name] = _obj
