"""The online-store port's pure parts: which errors mean the store is down, and retries."""

from __future__ import annotations

import sqlite3

import pytest

from ranking_jobs import online


class EndpointConnectionError(Exception):
    """Named as botocore names its error when DynamoDB cannot be reached."""


class NoHostAvailable(Exception):
    """Named as the Cassandra driver names its error."""


class OperationalError(Exception):
    """Named as psycopg names a failed connection."""


def _wrapped(cause: BaseException) -> Exception:
    """A Feast-style error raised while handling ``cause``."""
    try:
        raise cause
    except BaseException:
        try:
            raise RuntimeError("Feast could not read the online store")
        except RuntimeError as outer:
            return outer


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError("timed out"),
        EndpointConnectionError("dynamodb"),
        NoHostAvailable("cassandra"),
        OperationalError("connection to server failed"),
        sqlite3.OperationalError("database is locked"),
        sqlite3.OperationalError("unable to open database file"),
        _wrapped(ConnectionResetError(104, "reset")),
    ],
)
def test_a_store_that_cannot_be_reached_is_unavailable(exc: BaseException) -> None:
    assert online.is_unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        sqlite3.OperationalError("no such table: marketplace_ranking_user_recommendations"),
        KeyError("item_ids"),
        ValueError("bad entity key"),
        FileNotFoundError("registry.db"),
        _wrapped(TypeError("unhashable")),
    ],
)
def test_other_errors_are_the_callers(exc: BaseException) -> None:
    assert not online.is_unavailable(exc)


def test_retrying_backs_off_then_names_the_store_and_what_it_did() -> None:
    calls: list[int] = []
    resets: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError(111, "refused")
        return "written"

    got = online.retrying(
        "Redis at h:1", "writing", flaky, 3, 0.0, online.is_unavailable, lambda: resets.append(1)
    )
    assert got == "written" and len(calls) == 3 and len(resets) == 2

    def down() -> None:
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(online.PublishError, match=r"Redis at h:1 unreachable while writing: 2 att"):
        online.retrying("Redis at h:1", "writing", down, 2, 0.0, online.is_unavailable)

    def broken() -> None:
        raise ValueError("a bad row")

    with pytest.raises(ValueError, match="a bad row"):  # not retried, not renamed
        online.retrying("Redis at h:1", "writing", broken, 5, 0.0, online.is_unavailable)
