"""Any Feast online store through Feast's own write and read paths.

The reference implementation of the port: ``FeastListReader`` reads any store (and
is what the direct Redis reader is tested against), and ``FeastWriter`` serves any
online store Feast supports (``RANKING_ONLINE_STORE=feast``). Feast's write path has
no transaction across rows and no delete of one entity, so a publish here is batch by
batch, and a user's list is removed by writing an empty one, which this reader reads
as no list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa

from ranking_jobs import online
from ranking_jobs.online import FALLBACK_SEGMENT, AfterBatch, Batches, SoldItems, StoredList

if TYPE_CHECKING:
    from feast import FeatureStore

    from ranking_jobs.settings import Settings

T = TypeVar("T")


class FeastListReader:
    """Everything through ``get_online_features``: any store Feast supports."""

    def __init__(self, settings: Settings, store: FeatureStore | None = None) -> None:
        from ranking_jobs.feast_store import feature_store

        self.store = store or feature_store(settings)

    def _row(self, view: str, fields: tuple[str, ...], key: str, value: object) -> dict[str, Any]:
        try:
            got = self.store.get_online_features(
                features=[f"{view}:{f}" for f in fields], entity_rows=[{key: value}]
            ).to_dict()
        except Exception as exc:  # Feast wraps store errors in many types
            if online.is_unavailable(exc):
                raise online.StoreUnavailableError(f"online store unreachable: {exc}") from exc
            raise
        return {k: v[0] for k, v in got.items()}

    def _list(self, view: str, key: str, value: object) -> StoredList | None:
        row = self._row(view, online.LIST_FIELDS, key, value)
        if not row.get("item_ids"):
            return None
        generated = row.get("generated_at")
        return StoredList(
            item_ids=tuple(int(i) for i in row["item_ids"]),
            scores=tuple(float(s) for s in row.get("scores") or ()),
            model_version=str(row.get("model_version") or ""),
            run_id=str(row.get("run_id") or ""),
            generated_at=generated if isinstance(generated, dt.datetime) else None,
        )

    def sold(self) -> SoldItems:
        from feast.errors import FeatureViewNotFoundException

        try:
            row = self._row(online.SOLD_VIEW, online.SOLD_FIELDS, "segment", FALLBACK_SEGMENT)
        except FeatureViewNotFoundException:  # a registry applied before the view existed
            return SoldItems()
        if row.get("item_ids") is None:
            return SoldItems()
        return SoldItems(
            frozenset(int(i) for i in row["item_ids"]), row.get("since"), row.get("updated_at")
        )

    def popular(self) -> StoredList | None:
        return self._list(online.POPULAR_VIEW, "segment", FALLBACK_SEGMENT)

    def read(self, user_id: int) -> tuple[StoredList | None, StoredList | None, SoldItems]:
        user = self._list(online.USER_VIEW, "user_id", user_id)
        return user, (None if user is not None else self.popular()), self.sold()


class FeastWriter:
    """A publish through ``FeatureStore.write_to_online_store``, a batch at a time."""

    def __init__(self, settings: Settings, store: FeatureStore, stamp: dt.datetime) -> None:
        self.settings, self.store, self.stamp = settings, store, stamp

    def _calling(self, what: str, call: Callable[[], T]) -> T:
        """``call`` retried like the direct writers' batches (``RANKING_PUBLISH_ATTEMPTS``,
        ``RANKING_PUBLISH_BACKOFF_S``) while the store is unreachable."""
        kind = self.store.config.online_store.type
        publish = self.settings.publish
        return online.retrying(
            f"online store ({kind})",
            what,
            call,
            publish.attempts,
            publish.backoff_s,
            online.is_unavailable,
        )

    def connect(self, views: Sequence[str]) -> None:
        """One read of the fallback row, whatever ``views`` are written: an unreachable
        store fails here, before anything is written or journaled."""
        self._calling(
            "connecting",
            lambda: self.store.get_online_features(
                features=[f"{online.POPULAR_VIEW}:item_ids"],
                entity_rows=[{"segment": FALLBACK_SEGMENT}],
            ),
        )

    def write(self, batches: Batches, view: str, after_batch: AfterBatch | None = None) -> None:
        """Rows carry the publish time as their event time, as the direct writers do."""
        number = 0
        for batch in batches:
            if not batch.num_rows:
                continue
            table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
            at = table.schema.get_field_index("event_timestamp")
            stamps = pa.array([self.stamp] * table.num_rows, table.schema.field(at).type)
            frame = table.set_column(at, "event_timestamp", stamps).to_pandas()
            self._calling(
                f"writing {len(frame):,} rows of {view}",
                lambda frame=frame: self.store.write_to_online_store(view, frame),
            )
            if after_batch is not None:
                after_batch(number)
            number += 1

    def remove(self, view: str, users: np.ndarray) -> int:
        """Overwrite the lists of ``users`` in the user view with empty ones."""
        if not len(users):
            return 0
        from ranking_jobs import contracts as C

        step = self.settings.publish.batch_rows
        for start in range(0, len(users), step):
            ids = users[start : start + step]
            n = len(ids)
            empty = pa.table(
                {
                    online.JOIN_KEY[view]: pa.array(ids, pa.int64()),
                    "item_ids": pa.array([[]] * n, pa.list_(pa.int64())),
                    "scores": pa.array([[]] * n, pa.list_(pa.float32())),
                    "model_version": pa.array([""] * n),
                    "run_id": pa.array([""] * n),
                    "generated_at": pa.array([self.stamp] * n, C.TS),
                    "event_timestamp": pa.array([self.stamp] * n, C.TS),
                },
                schema=C.RECOMMENDATIONS_SCHEMA,
            )
            self.write([empty], view)
        return len(users)

    def commit(self) -> None:
        """Nothing to do: each batch was final when written."""

    def close(self) -> None:
        """Nothing held open: Feast opens its connections per call."""
