"""The champion lookup against real MLflow stores: absent is None, unreachable is an error."""

from __future__ import annotations

import pytest

from ranking_jobs import registry
from tests.conftest import make_settings
from tests.servers import free_port


def test_a_registry_without_a_champion_answers_none(tmp_path):
    settings = make_settings(tmp_path)
    assert registry.champion(settings) is None  # no registered model yet
    registry.client(settings).create_registered_model(settings.mlflow.registered_model)
    assert registry.champion(settings) is None  # a model, but no @champion alias


def test_an_unreachable_registry_is_an_error_not_no_champion(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    url = f"http://127.0.0.1:{free_port()}"
    down = make_settings(tmp_path, mlflow_tracking_uri=url)
    with pytest.raises(registry.RegistryUnavailableError, match=f"@champion .* at {url}"):
        registry.champion(down)
