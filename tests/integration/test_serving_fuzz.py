"""Property-based fuzzing of the API's own OpenAPI spec with schemathesis, over real Redis."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from ranking_jobs.availability import refresh_availability
from ranking_jobs.context import RunContext
from ranking_jobs.serving.api import create_app
from tests.conftest import redis_settings
from tests.integration.serving_data import AS_OF, DAY, publish, write_sales


@pytest.fixture(scope="module")
def api_schema(redis_server, tmp_path_factory):
    store = redis_settings(tmp_path_factory.mktemp("fuzz"), redis_server)
    # Small ids, so generated user ids hit personalised lists as well as the fallback.
    publish(store, {u: [u * 100 + k for k in range(100)] for u in range(-3, 4)}, [7, 8, 9])
    nxt = DAY + dt.timedelta(days=1)
    write_sales(store, nxt, purchases={8: AS_OF + dt.timedelta(hours=1)}, sold_at={})
    refresh_availability(RunContext.create(nxt, store))
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(store))


# Driven through `as_strategy` + `@given` rather than the pytest plugin's
# `from_fixture`, which breaks on pytest 9 (`Function` has no `_nodeid`).
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_responses_conform_to_the_spec(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert "/v1/users/{user_id}/recommendations" in paths and "/readyz" in paths
    statuses: list[int] = []
    if mode is GenerationMode.NEGATIVE:  # only an operation with parameters can be wrong
        operations = [op for op in operations if op.path.startswith("/v1/")]

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case) -> None:
            response = case.call_and_validate()
            statuses.append(response.status_code)
            assert response.status_code < 500

        fuzz()
    assert statuses and max(statuses) < 500
    if mode is GenerationMode.POSITIVE:
        assert 200 in statuses
    else:
        assert 422 in statuses
