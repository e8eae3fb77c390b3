"""Logging set-up and a progress helper that reports counts and rates."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str | None = None) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_ranking", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._ranking = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level or os.environ.get("RANKING_LOG_LEVEL", "INFO"))
    for noisy in ("py4j", "great_expectations", "feast", "alembic", "urllib3", "botocore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def timed(log: logging.Logger, what: str, unit: str = "rows") -> Iterator[dict[str, float]]:
    """Log ``what`` with its wall time and, if the block sets ``out['count']``, the rate."""
    out: dict[str, float] = {}
    started = time.perf_counter()
    yield out
    seconds = time.perf_counter() - started
    out["seconds"] = round(seconds, 3)
    count = out.get("count")
    if count is not None:
        rate = count / seconds if seconds > 0 else float("inf")
        log.info(
            "%s: %s %s in %.1fs (%s %s/s)",
            what,
            f"{int(count):,}",
            unit,
            seconds,
            f"{rate:,.0f}",
            unit,
        )
    else:
        log.info("%s in %.1fs", what, seconds)
