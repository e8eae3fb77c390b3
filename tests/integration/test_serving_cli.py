"""`ranking-jobs availability` and `ranking-jobs serve` (a real uvicorn process) on SQLite."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import httpx

from ranking_jobs.cli import main
from tests.conftest import REPO, make_settings
from tests.integration.serving_data import AS_OF, DAY, publish, write_sales
from tests.servers import free_port, wait_for_port


def test_availability_then_serve_over_http(tmp_path, capsys):
    settings = make_settings(tmp_path)
    publish(settings, {1: [10, 11, 12], 2: [20]}, popular=[12, 40])
    write_sales(settings, DAY + dt.timedelta(days=1), {12: AS_OF + dt.timedelta(hours=1)}, {})
    where = ["--data-root", settings.paths.data_root, "--state-dir", str(settings.paths.state_dir)]

    assert main(["availability", *where, "--ds", "2026-02-01"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out[out.index("{") :])
    assert result["sold_items"] == 1 and result["live_lists_as_of"] == AS_OF.isoformat()

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [sys.executable, "-m", "ranking_jobs.cli", "serve", *where, "--port", str(port)],
        env=env,
        cwd=REPO,
    )
    try:
        wait_for_port(port, timeout=60)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            assert http.get("/readyz").json()["fallback_list"] is True
            body = http.get("/v1/users/1/recommendations", params={"limit": 5}).json()
            assert [i["item_id"] for i in body["items"]] == [10, 11]  # 12 sold
            assert body["personalised"] and body["removed_sold"] == 1
            fallback = http.get("/v1/users/77/recommendations").json()
            assert [i["item_id"] for i in fallback["items"]] == [40]
            assert fallback["personalised"] is False
            bad = http.get("/v1/users/1/recommendations", params={"surface": "feed"})
            assert bad.status_code == 422
            metrics = http.get("/metrics").text
            assert 'ranking_serving_requests_total{endpoint="recommendations"' in metrics
    finally:
        server.terminate()
        server.wait(timeout=20)
