"""Reading a user's list from the online store, with the popular fallback."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from ranking_jobs.feast_store import LIST_FIELDS, feature_store
from ranking_jobs.precompute import FALLBACK_SEGMENT
from ranking_jobs.settings import Settings


@dataclass
class Recommendations:
    user_id: int
    items: list[int]
    scores: list[float]
    model_version: str
    generated_at: str | None
    personalised: bool
    run_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RecommendationClient:
    """Thin client over Feast's online store; one instance per process."""

    def __init__(self, settings: Settings) -> None:
        self.store = feature_store(settings)

    def _read(self, view: str, key: str, value: object) -> dict[str, Any]:
        refs = [f"{view}:{f}" for f in LIST_FIELDS]
        row = self.store.get_online_features(features=refs, entity_rows=[{key: value}])
        return {k: v[0] for k, v in row.to_dict().items()}

    def get(self, user_id: int, limit: int = 20) -> Recommendations:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        row = self._read("user_recommendations", "user_id", int(user_id))
        personalised = bool(row.get("item_ids"))
        if not personalised:
            row = self._read("popular_items", "segment", FALLBACK_SEGMENT)
        items = list(row.get("item_ids") or [])[:limit]
        scores = [float(s) for s in (row.get("scores") or [])][:limit]
        generated = row.get("generated_at")
        if isinstance(generated, dt.datetime):
            generated = generated.isoformat()
        return Recommendations(
            user_id=int(user_id),
            items=[int(i) for i in items],
            scores=scores,
            model_version=str(row.get("model_version") or ""),
            generated_at=generated,
            personalised=personalised,
            run_id=str(row.get("run_id") or ""),
        )


def recommend(settings: Settings, user_id: int, limit: int = 20) -> Recommendations:
    return RecommendationClient(settings).get(user_id, limit)
