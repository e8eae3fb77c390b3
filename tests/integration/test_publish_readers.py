"""Published lists read back through Feast's SDK and Feast's own HTTP feature server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from ranking_jobs.context import RunContext
from ranking_jobs.feast_store import feature_store, write_repo_yaml
from ranking_jobs.online import LIST_FIELDS
from ranking_jobs.publish import publish_lists
from tests.integration.serving_data import DAY, MODEL, write_lists
from tests.servers import free_port, wait_for_port

LISTS = {1: [10, 11, 12], 2: [20], 7: list(range(700, 800))}


def _feast_repo(settings, folder: Path) -> Path:
    """A Feast repo folder for `feast serve`: this test's registry and online store."""
    return write_repo_yaml(settings, folder).parent


@pytest.fixture
def published(direct_store_settings):
    """The lists as the port writes them directly: Feast's own readers must find them."""
    write_lists(direct_store_settings, DAY, LISTS, "run-serve")
    publish_lists(RunContext.create(DAY, direct_store_settings, "run-serve"))
    return direct_store_settings


def test_lists_read_through_get_online_features(published):
    refs = [f"user_recommendations:{f}" for f in LIST_FIELDS]
    rows = feature_store(published).get_online_features(
        features=refs, entity_rows=[{"user_id": u} for u in (1, 2, 7, 404)]
    )
    got = rows.to_dict()
    assert got["item_ids"] == [[10, 11, 12], [20], list(range(700, 800)), None]
    assert got["run_id"] == ["run-serve"] * 3 + [None]
    assert got["model_version"][:3] == [MODEL] * 3
    assert len(got["scores"][2]) == 100 and got["scores"][0][0] == pytest.approx(1.0)


def test_lists_read_through_feast_serve(published, tmp_path):
    repo = _feast_repo(published, tmp_path / "serve_repo")
    port = free_port()
    feast = Path(sys.executable).with_name("feast")
    proc = subprocess.Popen(
        [
            str(feast),
            "-c",
            str(repo),
            "serve",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--no-access-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        try:
            wait_for_port(port, timeout=90)
        except TimeoutError as exc:
            proc.kill()
            raise AssertionError(
                f"feast serve did not start: {proc.stderr.read().decode()[-2000:]}"
            ) from exc
        body = json.dumps(
            {
                "features": [f"user_recommendations:{f}" for f in LIST_FIELDS],
                "entities": {"user_id": [1, 7, 404]},
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/get-online-features",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    names = answer["metadata"]["feature_names"]
    columns = dict(zip(names, answer["results"], strict=True))
    assert columns["item_ids"]["values"][:2] == [[10, 11, 12], list(range(700, 800))]
    # Feast's Redis store reports an absent key as PRESENT with no value; SQLite as NOT_FOUND.
    assert columns["item_ids"]["statuses"][:2] == ["PRESENT", "PRESENT"]
    assert columns["item_ids"]["values"][2] in (None, [])
    assert columns["run_id"]["values"][:2] == ["run-serve", "run-serve"]
    assert columns["model_version"]["values"][0] == MODEL
