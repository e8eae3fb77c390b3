"""Feast's private helpers that the publisher and the serving readers rely on, in one place.

Publishing writes Feast's online layout itself (many times faster than Feast's own
write path) and serving reads it without Feast's request path; both must name keys
and fields exactly as Feast does. Feast keeps those helpers private, so each is
wrapped here once, and ``tests/unit/test_feast_internals.py`` pins what they return:
a Feast upgrade that changes one fails there by name instead of writing rows that
Feast's own readers no longer find.
"""

from __future__ import annotations

from typing import Any

# How entity keys are serialized: the repository config says it, and serving, which
# reads Redis without loading that config, builds the same keys.
ENTITY_KEY_VERSION = 3


def field_hash(view: str, feature: str) -> bytes:
    """The Redis hash field of one feature of a view (Feast: mmh3 of ``view:feature``)."""
    from feast.infra.online_stores.helpers import _mmh3

    return _mmh3(f"{view}:{feature}")


def redis_key(project: str, entity_key: Any, version: int) -> bytes:
    """The Redis key of one entity: its serialized key, then the project's name."""
    from feast.infra.online_stores.helpers import _redis_key

    return _redis_key(project, entity_key, version)


def redis_connection(url: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Feast's ``host:port,key=value`` Redis connection string: its nodes and options."""
    from feast.infra.online_stores.redis import RedisOnlineStore

    return RedisOnlineStore._parse_connection_string(url)


def sqlite_path(config: Any) -> str:
    """The file of a SQLite online store (a relative path is below the repository)."""
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    return SqliteOnlineStore._get_db_path(config)
