"""The package's layers: the stages import the shared core below them, never each
other, and the core imports no stage. Checked on the source (every import, function-
level ones included), so a new shortcut between stages fails here by name."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ranking_jobs"
STAGES = {
    "validation",
    "profile",
    "features",
    "training",
    "evaluation",
    "precompute",
    "monitoring",
    "publish",
    "report",
    "availability",
    "serving",
}
# Run the stages: the runner, the CLI, the Airflow glue, the demo, the generated data.
# Everything else (``stages``, the declarations, included) is the core below the stages.
ORCHESTRATION = {"runner", "cli", "airflow_glue", "airflow_runner", "airflow_local", "demo", "data"}


def component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def edges() -> dict[tuple[str, str], set[str]]:
    """(importing component, imported component) -> the imports that make the edge."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        source = component(module.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ranking_jobs"):
                names = (
                    [f"ranking_jobs.{a.name}" for a in node.names]
                    if node.module == "ranking_jobs"
                    else [node.module]
                )
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("ranking_jobs.")]
            else:
                continue
            for name in names:
                target = component(name)
                if target and target != source:
                    found.setdefault((source, target), set()).add(f"{module} imports {name}")
    return found


def test_no_import_runs_up_the_layers() -> None:
    upward = {
        edge: sorted(why)
        for edge, why in edges().items()
        if edge[1] in STAGES | ORCHESTRATION and edge[0] not in ORCHESTRATION
    }
    assert upward == {}


def test_the_check_sees_a_function_level_import(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "ranking_jobs"
    (fake / "features").mkdir(parents=True)
    (fake / "features" / "__init__.py").write_text(
        "def f():\n    from ranking_jobs.training import dataset\n"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", fake)
    assert edges() == {
        ("features", "training"): {"ranking_jobs.features.__init__ imports ranking_jobs.training"}
    }
