"""Feast's SQLite online-store tables as the direct writer fills them, and their key order."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from ranking_jobs import feast_internals


class SqliteLists:
    """Feast's SQLite online-store table of a view, replaced whole in one transaction.

    ``begin`` deletes every row of the table and ``write`` inserts the new ones,
    in primary-key order so every insert appends to the b-tree; nothing is visible
    to readers until ``commit``. A killed publish leaves SQLite's rollback journal,
    so the next open rolls back to the old lists.
    """

    COLUMNS = ("entity_key", "feature_name", "value", "value_text", "event_ts")
    ROWS_PER_INSERT = 50

    def __init__(self, store: Any) -> None:
        self.path = feast_internals.sqlite_path(store.config)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: the b-tree pages of a night
        self.indexes: list[str] = []  # dropped by ``begin``, rebuilt by ``commit``

    @staticmethod
    def table(store: Any, view: str) -> str:
        from feast.infra.online_stores.helpers import compute_table_id

        fv = store.get_feature_view(view)
        return compute_table_id(
            store.config.project, fv, store.config.registry.enable_online_feature_view_versioning
        )

    @staticmethod
    def stamp(ts: dt.datetime) -> Any:
        """The event_ts value Feast's SQLite store writes for ``ts`` (its own adapter)."""
        from feast.infra.online_stores.sqlite import adapt_datetime_epoch
        from feast.utils import to_naive_utc

        return adapt_datetime_epoch(to_naive_utc(ts))

    def begin(self, tables: Sequence[str]) -> None:
        """Empty ``tables`` and drop their secondary indexes (Feast's ``<table>_ek``),
        rebuilt by ``commit``: one sort at the end costs less than updating the index
        on every insert (docs/decisions.md)."""
        self.conn.execute("BEGIN IMMEDIATE")
        for table in tables:
            self.conn.execute(f'DELETE FROM "{table}"')
            for name, sql in self.conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL",
                (table,),
            ).fetchall():
                self.conn.execute(f'DROP INDEX "{name}"')
                self.indexes.append(sql)

    def write(self, table: str, cells: Sequence[Any]) -> None:
        """Insert rows given as one flat sequence of their ``COLUMNS`` values. Rows go
        ``ROWS_PER_INSERT`` to a statement: fewer statement steps and parameter
        tuples than one row per statement (docs/decisions.md)."""
        width = len(self.COLUMNS)
        step = width * self.ROWS_PER_INSERT
        full = len(cells) - len(cells) % step
        if full:
            self.conn.executemany(
                self._insert(table, self.ROWS_PER_INSERT),
                [tuple(cells[i : i + step]) for i in range(0, full, step)],
            )
        if full < len(cells):
            self.conn.execute(self._insert(table, (len(cells) - full) // width), cells[full:])

    def _insert(self, table: str, rows: int) -> str:
        one = "(" + ", ".join(["?"] * len(self.COLUMNS)) + ", NULL)"
        return f'INSERT INTO "{table}" ({", ".join(self.COLUMNS)}, created_ts) VALUES ' + ", ".join(
            [one] * rows
        )

    def commit(self) -> None:
        for sql in self.indexes:
            self.conn.execute(sql)
        self.conn.execute("COMMIT")

    def close(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.close()


def sqlite_key_order(users: np.ndarray) -> np.ndarray:
    """Row order in which Feast's little-endian int64 entity keys sort as blobs, so
    every insert appends to the primary-key and entity-key b-trees."""
    return np.argsort(users.astype("<i8").view("<u8").byteswap(), kind="stable")


def sqlite_rows(
    keys: list[bytes],
    features: list[str],
    columns: list[list[bytes]],
    texts: list[list[str | None]],
    event_ts: Any,
) -> list[Any]:
    """Rows of Feast's SQLite table in primary-key order (entity key, feature name),
    flattened to ``SqliteLists.COLUMNS`` values one row after another and built by
    slice assignment rather than a Python loop per row."""
    order = sorted(range(len(features)), key=features.__getitem__)
    n, width = len(keys), len(order)
    stride = width * len(SqliteLists.COLUMNS)
    cells: list[Any] = [None] * (n * stride)
    cells[4 :: len(SqliteLists.COLUMNS)] = [event_ts] * (n * width)
    for at, j in enumerate(order):
        first = at * len(SqliteLists.COLUMNS)
        cells[first::stride] = keys
        cells[first + 1 :: stride] = [features[j]] * n
        cells[first + 2 :: stride] = columns[j]
        if texts[j]:
            cells[first + 3 :: stride] = texts[j]
    return cells
