"""Each stage's summary of its run, a JSON file beside the night's report.

Later stages read them (the profile's settings for the night, the gate's verdict),
so they sit below the stages, which import them from here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROFILE = "profile_data"  # the stage whose summary holds the settings chosen for the night


def summary_dir(ctx: Any) -> Path:
    return Path(ctx.settings.paths.reports_dir) / ctx.ds_str


def write_summary(ctx: Any, name: str, result: Mapping[str, Any]) -> Path:
    """Each stage's result as JSON beside the night's report (written whole, then renamed)."""
    path = summary_dir(ctx) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
    return path


def read_summary(ctx: Any, name: str) -> dict[str, Any] | None:
    path = summary_dir(ctx) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
