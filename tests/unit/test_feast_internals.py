"""What the publisher and the serving readers take from Feast's private helpers, pinned.

The values below are what Feast 0.67 returns. If an upgrade changes one, the rows we
write are no longer where Feast's readers look: this fails first, naming the helper.
"""

from __future__ import annotations

from pathlib import Path

from ranking_jobs import feast_internals


def _user_key(user_id: int):
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=["user_id"], entity_values=[Value(int64_val=user_id)])


def test_field_hash_is_murmur3_of_view_and_feature() -> None:
    assert feast_internals.field_hash("user_recommendations", "item_ids").hex() == "0dd47b73"
    assert feast_internals.field_hash("user_recommendations", "scores") != (
        feast_internals.field_hash("popular_items", "scores")
    )


def test_redis_key_is_the_serialized_entity_then_the_project() -> None:
    key = feast_internals.redis_key("ranking", _user_key(7), feast_internals.ENTITY_KEY_VERSION)
    # version 3: join-key count, its type and name, the value's type, length and bytes
    assert key.hex() == (
        "01000000"
        "02000000"
        "07000000" + b"user_id".hex() + "04000000"
        "08000000"
        "0700000000000000" + b"ranking".hex()
    )


def test_redis_connection_string_gives_nodes_and_options() -> None:
    nodes, options = feast_internals.redis_connection("localhost:6380,db=2,password=x")
    assert nodes == [{"host": "localhost", "port": "6380"}]
    assert options == {"db": 2, "password": "x"}


def test_sqlite_path_is_below_the_repository_when_relative(tmp_path: Path) -> None:
    from feast import RepoConfig

    def config(path: str) -> RepoConfig:
        return RepoConfig(
            project="ranking",
            provider="local",
            registry=str(tmp_path / "registry.db"),
            online_store={"type": "sqlite", "path": path},
            repo_path=tmp_path,
            entity_key_serialization_version=feast_internals.ENTITY_KEY_VERSION,
        )

    assert feast_internals.sqlite_path(config("data/online.db")) == str(
        tmp_path / "data" / "online.db"
    )
    assert feast_internals.sqlite_path(config("/srv/online.db")) == "/srv/online.db"


def test_feast_reads_the_generated_repository_file_as_the_pipeline_config(tmp_path: Path) -> None:
    """``ranking-jobs feast-yaml`` writes what Feast's CLI loads; its keys are built the
    way serving builds them."""
    from feast.repo_config import load_repo_config

    from ranking_jobs.cli import main
    from ranking_jobs.feast_store import repo_config
    from ranking_jobs.settings import Settings

    state = tmp_path / "var"
    assert main(["feast-yaml", "--state-dir", str(state), "--output", str(tmp_path / "r")]) == 0
    loaded = load_repo_config(tmp_path / "r", tmp_path / "r" / "feature_store.yaml")
    ours = repo_config(Settings(state_dir=state))
    assert loaded.entity_key_serialization_version == feast_internals.ENTITY_KEY_VERSION
    assert loaded.registry.path == str(state / "feast" / "registry.db")
    assert loaded.online_store.path == ours.online_store.path
    assert (loaded.project, loaded.offline_store.type) == (ours.project, ours.offline_store.type)
