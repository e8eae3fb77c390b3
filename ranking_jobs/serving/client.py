"""A user's list for a surface: the availability filter and the popular fallback.

The lists come through the online-store port (``ranking_jobs.online``): on Redis,
read directly in one round trip; on any other store, through Feast's
``get_online_features``. A test holds the two readers to the same answer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ranking_jobs import online
from ranking_jobs.online import ListReader, SoldItems, StoredList, StoreUnavailableError
from ranking_jobs.settings import Settings

log = logging.getLogger(__name__)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# While the store is down, a background thread tries it this often; requests get the
# degraded list at once instead of waiting out the store's timeout (which would hold
# the API's event loop).
PROBE_EVERY_S = 1.0


@dataclass
class Recommendations:
    """What a surface shows: the list after the availability filter, and its provenance."""

    user_id: int
    items: list[int]
    scores: list[float]
    model_version: str
    generated_at: str | None
    personalised: bool
    run_id: str = ""
    removed_sold: int = 0
    generated_ts: float | None = field(default=None, repr=False)
    degraded: bool = False  # the store was unreachable: the last popular list read

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("generated_ts")
        return out

    @property
    def age_seconds(self) -> float | None:
        """How old the served list is (now minus its as-of time)."""
        return None if self.generated_ts is None else time.time() - self.generated_ts


def _select(stored: StoredList, sold: frozenset[int], limit: int) -> tuple[list, list, int]:
    """The first ``limit`` items still for sale, their scores, and how many sold were dropped."""
    items: list[int] = []
    scores: list[float] = []
    removed = 0
    for item, score in zip(stored.item_ids, stored.scores, strict=False):
        if item in sold:
            removed += 1
            continue
        items.append(item)
        scores.append(score)
        if len(items) == limit:
            break
    return items, scores, removed


class RecommendationClient:
    """A user's list for a surface; one instance per process (it caches segment rows).

    Unknown users, and users whose whole list has sold, get the popular fallback;
    sold items are dropped from both. While the store is unreachable, every user
    gets the last popular list this process read (``degraded``); only a process
    that never read one raises ``StoreUnavailableError``.
    """

    def __init__(self, settings: Settings, reader: ListReader | None = None) -> None:
        self.settings = settings
        self.reader = reader or online.reader(settings)
        self._last: tuple[StoredList | None, SoldItems] = (None, SoldItems())
        self._down = False  # set on the first failed read; a probe thread clears it
        with contextlib.suppress(StoreUnavailableError):
            self.check()  # a process started while the store is up holds a fallback

    def get(self, user_id: int, limit: int = 20) -> Recommendations:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        user_id = int(user_id)
        if not INT64_MIN <= user_id <= INT64_MAX:
            raise ValueError(f"user_id must fit in 64 bits, got {user_id}")
        popular, sold = self._last
        if self._down and popular is not None:
            return replace(self._finish(user_id, limit, None, popular, sold), degraded=True)
        try:
            stored, popular, sold = self.reader.read(user_id)
        except StoreUnavailableError as exc:
            popular, sold = self._last
            if popular is None:
                raise
            if not self._down:
                log.warning("%s; serving the last popular list read until it is back", exc)
                self._down = True
                threading.Thread(target=self._probe, name="store-probe", daemon=True).start()
            return replace(self._finish(user_id, limit, None, popular, sold), degraded=True)
        self._last = (popular or self._last[0], sold)
        return self._finish(user_id, limit, stored, popular, sold)

    def _probe(self) -> None:
        """While the store is down, try it every ``PROBE_EVERY_S`` from this thread:
        requests meanwhile never wait on a dead store's timeout (an async server's
        event loop stays free)."""
        while True:
            time.sleep(PROBE_EVERY_S)
            try:
                self.check()
            except StoreUnavailableError:
                continue
            log.warning("online store reachable again: personal lists are served")
            self._down = False
            return

    def _finish(
        self,
        user_id: int,
        limit: int,
        stored: StoredList | None,
        popular: StoredList | None,
        sold: SoldItems,
    ) -> Recommendations:
        personalised = False
        items: list[int] = []
        scores: list[float] = []
        removed = 0
        if stored is not None:
            items, scores, removed = _select(stored, sold.item_ids, limit)
            personalised = bool(items)
        if not personalised:
            if popular is None and stored is not None:
                popular = self.reader.popular()  # the Feast reader skips it for known users
            stored = popular
            items, scores, removed = (
                _select(popular, sold.item_ids, limit) if popular is not None else ([], [], 0)
            )
        generated = stored.generated_at if stored is not None else None
        return Recommendations(
            user_id=user_id,
            items=items,
            scores=scores,
            model_version=stored.model_version if stored is not None else "",
            generated_at=generated.isoformat() if generated is not None else None,
            personalised=personalised,
            run_id=stored.run_id if stored is not None else "",
            removed_sold=removed,
            generated_ts=generated.timestamp() if generated is not None else None,
        )

    def check(self) -> dict[str, Any]:
        """A real read of the fallback list: raises StoreUnavailableError when unreachable."""
        popular = self.reader.popular()
        if popular is not None:
            self._last = (popular, self._last[1])
        return {
            "fallback_list": popular is not None,
            "model_version": popular.model_version if popular is not None else None,
        }


def recommend(settings: Settings, user_id: int, limit: int = 20) -> Recommendations:
    return RecommendationClient(settings).get(user_id, limit)
