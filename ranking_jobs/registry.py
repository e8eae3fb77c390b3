"""MLflow tracking and the model registry: one experiment, a champion alias."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ranking_jobs.settings import Settings

if TYPE_CHECKING:
    import xgboost as xgb
    from mlflow import MlflowClient
    from mlflow.models import ModelSignature

log = logging.getLogger(__name__)

CHAMPION = "champion"


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    run_id: str

    @property
    def label(self) -> str:
        """What every published row carries: ``<registered model>/v<version>``."""
        return f"{self.name}/v{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def client(settings: Settings) -> MlflowClient:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    settings.paths.state_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    if mlflow.get_experiment_by_name(settings.mlflow.experiment) is None:
        mlflow.create_experiment(
            settings.mlflow.experiment, artifact_location=settings.paths.artifact_root
        )
    mlflow.set_experiment(settings.mlflow.experiment)
    return mlflow.MlflowClient()


def log_and_register(
    settings: Settings,
    booster: xgb.Booster,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    artifacts: dict[str, Any],
    signature: ModelSignature,
    metric_steps: dict[str, list[float]] | None = None,
) -> ModelRef:
    """One MLflow run per training; the model in XGBoost's own format with its input
    schema, registered; the tags say which code built it. ``metric_steps`` are
    series logged step by step (e.g. one value per search trial)."""
    import mlflow
    import mlflow.xgboost
    import xgboost

    from ranking_jobs import __version__

    mlc = client(settings)
    with mlflow.start_run(run_name=tags.get("ds")) as run:
        mlflow.set_tags(
            {**tags, "xgboost_version": xgboost.__version__, "ranking_jobs_version": __version__}
        )
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for name, values in (metric_steps or {}).items():
            for step, value in enumerate(values):
                mlflow.log_metric(name, value, step=step)
        with tempfile.TemporaryDirectory() as tmp:
            for name, payload in artifacts.items():
                path = Path(tmp) / name
                path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
                mlflow.log_artifact(str(path))
        info = mlflow.xgboost.log_model(
            booster,
            name="model",
            model_format="ubj",
            signature=signature,
            pip_requirements=[f"xgboost=={xgboost.__version__}"],
        )
    version = mlflow.register_model(info.model_uri, settings.mlflow.registered_model)
    for key, value in tags.items():
        mlc.set_model_version_tag(settings.mlflow.registered_model, version.version, key, value)
    ref = ModelRef(settings.mlflow.registered_model, str(version.version), run.info.run_id)
    log.info("registered %s (MLflow run %s)", ref.label, ref.run_id)
    return ref


def find_version(settings: Settings, tags: dict[str, str]) -> ModelRef | None:
    """An already registered version carrying all of ``tags`` (a rerun of the same training)."""
    mlc = client(settings)
    try:
        versions = mlc.search_model_versions(f"name='{settings.mlflow.registered_model}'")
    except Exception:
        return None
    for mv in sorted(versions, key=lambda v: int(v.version)):
        if all(mv.tags.get(k) == v for k, v in tags.items()):
            return ModelRef(settings.mlflow.registered_model, str(mv.version), mv.run_id)
    return None


# What MLflow answers when the registered model, or its champion alias, does not exist.
_NO_CHAMPION = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


class RegistryUnavailableError(RuntimeError):
    """The model registry could not be asked (server down, refused, broken store)."""


def champion(settings: Settings) -> ModelRef | None:
    """The ``@champion`` version, None when no model has passed the gate yet. Any
    other registry error raises: read as "no champion", a refused connection would
    publish a baseline's lists over the champion's."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client(settings).get_model_version_by_alias(settings.mlflow.registered_model, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in _NO_CHAMPION:
            return None
        raise RegistryUnavailableError(
            f"cannot read @{CHAMPION} of {settings.mlflow.registered_model} from the model "
            f"registry at {settings.tracking_uri}: {exc}"
        ) from exc
    return ModelRef(settings.mlflow.registered_model, str(mv.version), mv.run_id)


def trained_for(settings: Settings, ref: ModelRef) -> str | None:
    """The day (``ds`` tag) whose night trained ``ref``."""
    return client(settings).get_model_version(ref.name, ref.version).tags.get("ds")


def promote(settings: Settings, ref: ModelRef, reasons: list[str]) -> None:
    mlc = client(settings)
    mlc.set_registered_model_alias(ref.name, CHAMPION, ref.version)
    mlc.set_model_version_tag(ref.name, ref.version, "gate", "promoted: " + "; ".join(reasons))
    log.info("promoted %s to @%s", ref.label, CHAMPION)


def record_refusal(settings: Settings, ref: ModelRef, reasons: list[str]) -> None:
    client(settings).set_model_version_tag(
        ref.name, ref.version, "gate", "refused: " + "; ".join(reasons)
    )


def load_booster(settings: Settings, ref: ModelRef) -> xgb.Booster:
    import mlflow.xgboost

    client(settings)
    return mlflow.xgboost.load_model(ref.uri)
