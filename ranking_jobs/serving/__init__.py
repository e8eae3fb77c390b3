"""Serving: the Python client over the online store and the HTTP API on top of it.

``client`` reads lists through the online-store port (availability filter, popular
fallback), ``api`` is the FastAPI app, ``metrics`` its Prometheus instruments.
Importing this package stays light: FastAPI and Feast load only when the app or a
reader is built.
"""

from __future__ import annotations

from ranking_jobs.online import StoreUnavailableError
from ranking_jobs.serving.client import RecommendationClient, Recommendations, recommend

__all__ = ["RecommendationClient", "Recommendations", "StoreUnavailableError", "recommend"]
