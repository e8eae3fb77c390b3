"""Feast objects of the ranking pipeline: entities, file sources, feature views and
the model's feature service.

``definitions(settings)`` builds them for a given lake: one view per feature family
(``ranking_jobs.families``), the list views and the sold-items view. The pipeline
applies them on every run (``ranking_jobs.feast_store.apply_definitions``); Feast's
own CLI reads the registry it applied, through ``ranking-jobs feast-yaml``.
"""

from __future__ import annotations

import datetime as dt

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.data_source import DataSource
from feast.types import Array, Float32, Float64, Int64, String, UnixTimestamp

from ranking_jobs import columns as cols
from ranking_jobs import contracts as C
from ranking_jobs import families, lake, online
from ranking_jobs.settings import Settings

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
    if settings.feast.offline_store == "spark":
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
        s3_endpoint_override=settings.paths.s3_endpoint_url,
    )


_TYPES = {
    families.INT: Int64,
    families.FLOAT: Float64,
    families.INT_LIST: Array(Int64),
    families.FLOAT_LIST: Array(Float64),
    families.STRING_LIST: Array(String),
}
_ENTITIES = {e.join_key: e for e in (user, item, *attributes.values())}


def family_view(settings: Settings, family: families.Family) -> FeatureView:
    """A feature family's snapshots as Feast serves them."""
    return FeatureView(
        name=family.view,
        entities=[_ENTITIES[k] for k in family.keys],
        ttl=SNAPSHOT_TTL,
        schema=[Field(name=n, dtype=_TYPES[t]) for n, t in family.columns],
        source=_source(settings, family.table),
        online=True,
        description=family.description,
    )


def definitions(settings: Settings) -> list[object]:
    views = [family_view(settings, f) for f in families.FAMILIES]
    model = FeatureService(
        name=families.MODEL_SERVICE,
        features=[v for v, f in zip(views, families.FAMILIES, strict=True) if f.model_input],
        description="Every feature the ranking model reads, as the assembly retrieves it.",
    )
    list_fields = [
        Field(name="item_ids", dtype=Array(Int64)),
        Field(name="scores", dtype=Array(Float32)),
        Field(name="model_version", dtype=String),
        Field(name="run_id", dtype=String),
        Field(name="generated_at", dtype=UnixTimestamp),
    ]
    user_recommendations = FeatureView(
        name=online.USER_VIEW,
        entities=[user],
        ttl=dt.timedelta(0),
        schema=list_fields,
        source=_source(settings, C.RECOMMENDATIONS),
        online=True,
        description="Precomputed top-N list per user, with the model and run that made it.",
    )
    popular_items = FeatureView(
        name=online.POPULAR_VIEW,
        entities=[segment],
        ttl=dt.timedelta(0),
        schema=list_fields,
        source=_source(settings, C.POPULAR),
        online=True,
        description="Fallback list for users without a personalised one.",
    )
    sold_items = FeatureView(
        name=online.SOLD_VIEW,
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
        *views,
        model,
        user_recommendations,
        popular_items,
        sold_items,
    ]
