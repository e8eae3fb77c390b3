"""The recommendation HTTP API (FastAPI): lists, health, readiness and metrics.

``create_app(settings)`` builds the app; ``ranking-jobs serve`` runs it with
uvicorn. Handlers are ``async`` and call the synchronous client directly: a read
is one pipelined round trip to Redis, cheaper than the hop to a thread pool that a
sync handler would take. An awaited redis.asyncio read was tried: it cost more server
CPU per request and its p99 was no better (docs/decisions.md). Run one worker per
core.
"""

# No `from __future__ import annotations`: FastAPI resolves the handlers'
# annotations at runtime, and they use the closure's `max_limit`.
import datetime as dt
import json
import re
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from ranking_jobs.online import StoreUnavailableError
from ranking_jobs.serving.client import (
    INT64_MAX,
    INT64_MIN,
    RecommendationClient,
    Recommendations,
)
from ranking_jobs.serving.metrics import SCOPE_KEY, MetricsMiddleware, ServingMetrics
from ranking_jobs.settings import Settings


class Item(BaseModel):
    item_id: int
    score: float


class RecommendationsOut(BaseModel):
    user_id: int
    personalised: bool = Field(description="False: the popular fallback (unknown/cold user).")
    items: list[Item] = Field(
        description="Best first; items sold since the list was made are removed."
    )
    model_version: str = Field(description="Registered model and version that scored the list.")
    run_id: str = Field(description="Pipeline run that published the list.")
    generated_at: dt.datetime | None = Field(description="As-of time the list was computed for.")
    removed_sold: int = Field(description="Items dropped because they sold after generated_at.")
    degraded: bool = Field(
        False,
        description="True: the online store is unreachable and this is the last popular "
        "list the server read.",
    )


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    fallback_list: bool = False
    model_version: str | None = None
    error: str | None = None


class Problem(BaseModel):
    detail: str


def _body(rec: Recommendations) -> dict[str, Any]:
    """The response of the recommendations route, built once for both paths."""
    generated = rec.generated_at
    return {
        "user_id": rec.user_id,
        "personalised": rec.personalised,
        "items": [{"item_id": i, "score": s} for i, s in zip(rec.items, rec.scores, strict=True)],
        "model_version": rec.model_version,
        "run_id": rec.run_id,
        # pydantic's own rendering of a UTC datetime, so both paths answer byte-alike
        "generated_at": generated.replace("+00:00", "Z") if generated else None,
        "removed_sold": rec.removed_sold,
        "degraded": rec.degraded,
    }


_USER_PATH = re.compile(r"/v1/users/(-?[0-9]{1,19})/recommendations")
_LIMIT = re.compile(rb"[1-9][0-9]{0,2}")
_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastPath:
    """The hot route without FastAPI's per-request machinery (its CPU: docs/decisions.md).

    Only requests that are unambiguously valid take it: a canonical int64 user id,
    ``limit`` as plain digits in range or absent, nothing else in the
    query. Everything else (every error included) falls through to the FastAPI
    route, which validates, answers 422 and defines the OpenAPI contract; a test
    holds both paths to the same answers and schemathesis fuzzes the app through both.
    """

    def __init__(
        self, app: Any, client: RecommendationClient, settings: Settings, metrics: ServingMetrics
    ) -> None:
        self.app = app
        self.client = client
        self.default_limit = settings.lists.surface_size
        self.max_limit = settings.lists.top_n
        self.metrics = metrics
        self.hits = 0  # requests answered here (tests check the path is really taken)

    def _query(self, raw: bytes) -> int | None:
        if not raw:
            return self.default_limit
        key, _, value = raw.partition(b"=")
        if key == b"limit" and _LIMIT.fullmatch(value) and int(value) <= self.max_limit:
            return int(value)
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _USER_PATH.fullmatch(scope["path"])
            query = self._query(scope["query_string"]) if match else None
            if match and query is not None and INT64_MIN <= int(match[1]) <= INT64_MAX:
                await self._respond(scope, send, int(match[1]), query)
                return
        await self.app(scope, receive, send)

    async def _respond(self, scope: Any, send: Any, user_id: int, limit: int) -> None:
        self.hits += 1
        try:
            rec = self.client.get(user_id, limit)
        except StoreUnavailableError as exc:
            status, body = 503, {"detail": str(exc)}
        else:
            status, body = 200, _body(rec)
            scope[SCOPE_KEY]["personalised"] = "true" if rec.personalised else "false"
            self.metrics.observe_list(
                rec.personalised, rec.age_seconds, rec.removed_sold, rec.degraded
            )
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def create_app(
    settings: Settings, client: RecommendationClient | None = None, *, fast_path: bool = True
) -> FastAPI:
    """The app over one client (built from ``settings`` unless given).

    ``fast_path=False`` leaves every request to FastAPI (the reference in tests).
    """
    app = FastAPI(
        title="Marketplace recommendations",
        version="1",
        description="Precomputed personalised lists with an availability filter and a "
        "popular fallback for users without a list.",
    )
    app.state.client = client or RecommendationClient(settings)
    metrics = ServingMetrics()
    app.state.metrics = metrics
    if fast_path:
        app.add_middleware(FastPath, client=app.state.client, settings=settings, metrics=metrics)
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts both paths
    max_limit = settings.lists.top_n

    @app.get(
        "/v1/users/{user_id}/recommendations",
        response_model=RecommendationsOut,
        responses={503: {"model": Problem, "description": "The online store is unreachable."}},
        summary="A user's recommendations (one nightly list serves every surface)",
    )
    async def recommendations(
        request: Request,
        user_id: Annotated[int, Path(ge=INT64_MIN, le=INT64_MAX, description="User id (int64).")],
        limit: Annotated[
            int, Query(ge=1, le=max_limit, description="How many items to return.")
        ] = settings.lists.surface_size,
    ) -> Any:
        extra = [k for k in request.query_params if k != "limit"]
        if extra:  # FastAPI would ignore them; a caller asking for more should know
            return JSONResponse(
                {"detail": [{"type": "extra_forbidden", "loc": ["query", k],
                             "msg": f"unknown query parameter {k!r}: the API takes only "
                             "'limit' (one nightly list serves every surface)",
                             "input": request.query_params[k]} for k in extra]},
                status_code=422,
            )  # fmt: skip
        try:
            rec = app.state.client.get(user_id, limit)
        except StoreUnavailableError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        request.scope[SCOPE_KEY]["personalised"] = "true" if rec.personalised else "false"
        metrics.observe_list(rec.personalised, rec.age_seconds, rec.removed_sold, rec.degraded)
        return _body(rec)  # validated and serialised by the response model

    @app.get("/healthz", response_model=Health, summary="The process is up")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Ready,
        responses={
            503: {
                "model": Ready,
                "description": "The online store is unreachable, or nothing was published yet.",
            }
        },
        summary="The online store answers a real read and holds a published fallback list",
    )
    async def readyz(response: Response) -> Ready:
        try:
            found = app.state.client.check()
        except StoreUnavailableError as exc:
            response.status_code = 503
            return Ready(status="unavailable", error=str(exc))
        if not found["fallback_list"]:
            response.status_code = 503
            return Ready(status="empty", error="nothing has been published yet", **found)
        return Ready(status="ready", **found)

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    async def prometheus_metrics() -> PlainTextResponse:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the API with uvicorn (uvloop + httptools, no access log: metrics count requests)."""
    import gc

    import uvicorn

    app = create_app(settings)
    gc.collect()
    gc.freeze()  # the long-lived objects built at start-up never get scanned again
    uvicorn.run(
        app,
        host=host or settings.serving.host,
        port=port or settings.serving.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
