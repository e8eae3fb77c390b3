"""The synthetic marketplace: the embedded default data of the pipeline.

``generate(ctx)`` writes ``raw/events``, ``raw/items`` and ``raw/users`` for the
history window ending at the run's date, plus the ground truth ``truth/users``;
``truth.true_utility`` scores (user, item) pairs against that truth.
"""

from __future__ import annotations

from ranking_jobs.data.generator import generate
from ranking_jobs.data.presets import PRESETS, ScalePreset, get_preset
from ranking_jobs.data.truth import true_utility

__all__ = ["PRESETS", "ScalePreset", "generate", "get_preset", "true_utility"]
