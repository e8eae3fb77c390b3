"""The feature families: one declaration each, from which everything else follows.

A family is one Spark transform writing one lake table of daily snapshots, served as
one Feast feature view. Its declaration gives the lake table and its columns (what a
current snapshot must hold), the view's join keys, the Feast schema, the refs the
feature assembly retrieves and the model's Feast ``FeatureService``; the feature
stage calls its transform with the inputs it names, and the model reads its numeric
columns. Adding a family is its transform and its entry in ``FAMILIES``.

Kept free of Spark and Feast imports: the serving process and the DAG files read it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ranking_jobs import columns as cols
from ranking_jobs import contracts as C

INT, FLOAT = "int64", "float64"
INT_LIST, FLOAT_LIST, STRING_LIST = "int64[]", "float64[]", "string[]"


@dataclass(frozen=True)
class Family:
    view: str  # the Feast feature view
    table: str  # the lake table of its snapshots
    keys: tuple[str, ...]  # join keys: user_id, item_id or an item attribute
    columns: tuple[tuple[str, str], ...]  # (name, type), in the order Feast serves them
    transform: str  # "module:function" of the Spark transform
    inputs: tuple[str, ...]  # its arguments: attributes of the stage's SnapshotInputs
    description: str
    params: dict[str, Any] = field(default_factory=dict)  # literal keyword arguments
    model_input: bool = True  # retrieved for the model (else read by candidates only)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def refs(self) -> list[str]:
        return [f"{self.view}:{name}" for name in self.names]

    def build(self, inputs: Any) -> Any:
        """The family's snapshots as a Spark DataFrame, from the stage's inputs."""
        module, function = self.transform.split(":")
        transform: Callable[..., Any] = getattr(importlib.import_module(module), function)

        def resolve(path: str) -> Any:
            value = inputs
            for part in path.split("."):
                value = getattr(value, part)
            return value

        return transform(*(resolve(name) for name in self.inputs), **self.params)


def _typed(names: list[str], kind: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, kind) for name in names)


def _counts_floats_ints(
    counts: list[str], floats: list[str], ints: list[str]
) -> tuple[tuple[str, str], ...]:
    """The columns of a stats family, in the table's order: counts, rates, then integers."""
    return _typed(counts, INT) + _typed(floats, FLOAT) + _typed(ints, INT)


FAMILIES: tuple[Family, ...] = (
    Family(
        view="item_stats",
        table=C.FEATURES_ITEM,
        keys=("item_id",),
        columns=_counts_floats_ints(cols.ITEM_COUNTS, cols.ITEM_FLOATS, cols.ITEM_INTS),
        transform="ranking_jobs.features.item:item_stats",
        inputs=("item_days", "item_snapshots", "settings.features.prior_strength", "items_seen"),
        description="Item popularity, smoothed rates, age, price and seller quality.",
    ),
    Family(
        view="user_stats",
        table=C.FEATURES_USER,
        keys=("user_id",),
        columns=_counts_floats_ints(cols.USER_COUNTS, cols.USER_FLOATS, cols.USER_INTS),
        transform="ranking_jobs.features.user:user_stats",
        inputs=("user_days", "user_items", "items_seen"),
        description="User activity over windows, recency, price level, breadth.",
    ),
    Family(
        view="user_profile",
        table=C.FEATURES_USER_PROFILE,
        keys=("user_id",),
        columns=_typed(cols.PROFILE_FLOATS, FLOAT) + _typed(cols.PROFILE_LISTS, STRING_LIST),
        transform="ranking_jobs.features.user:user_profile",
        inputs=("user_snapshots",),
        description="Size and styles the user declared at sign-up (letter-chart position).",
    ),
    *(
        Family(
            view=f"user_{d}_affinity",
            table=C.FEATURES_USER_AFFINITY[d],
            keys=("user_id", d),
            columns=((f"{d}_affinity", FLOAT),),
            transform="ranking_jobs.features.affinity:user_affinity",
            inputs=("user_items", "items_seen"),
            params={"dimension": d},
            description=f"Time-decayed share of the user's interactions per listing {d}.",
        )
        for d in cols.AFFINITY_DIMENSIONS
    ),
    Family(
        view="item_covisitation",
        table=C.FEATURES_COVISITATION,
        keys=("item_id",),
        columns=(("neighbour_ids", INT_LIST), ("neighbour_scores", FLOAT_LIST)),
        transform="ranking_jobs.features.covisitation:item_covisitation",
        inputs=("pairs", "item_days"),
        description="Items engaged with in the same sessions, best first (cosine score).",
        model_input=False,
    ),
    Family(
        view="user_item_stats",
        table=C.FEATURES_USER_ITEM,
        keys=("user_id", "item_id"),
        columns=_typed(cols.USER_ITEM_INTS, INT) + _typed(cols.USER_ITEM_FLOATS, FLOAT),
        transform="ranking_jobs.features.user_item:user_item_stats",
        inputs=("user_item_history",),
        description="The user's engagements and purchases of this very listing, and how "
        "long ago the last was.",
    ),
)

# Every feature table and the columns a current snapshot of it has.
FEATURE_COLUMNS: dict[str, list[str]] = {f.table: f.names for f in FAMILIES}
# What the feature assembly retrieves for the model, and its Feast FeatureService.
FEATURE_REFS: tuple[str, ...] = tuple(r for f in FAMILIES if f.model_input for r in f.refs)
MODEL_SERVICE = "ranking_model"
# What the assembly adds to entity rows (the retrieved numbers, then the cross
# features), and the model's inputs in their order (then the candidates' pair scores).
ASSEMBLED_FEATURES: list[str] = [
    name for f in FAMILIES if f.model_input for name, kind in f.columns if kind in (INT, FLOAT)
] + cols.CROSS_FLOATS
MODEL_FEATURES: list[str] = [*ASSEMBLED_FEATURES, *cols.PAIR_FLOATS]
