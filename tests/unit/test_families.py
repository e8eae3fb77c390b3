"""The feature families' declarations: what each yields and how the stage calls it."""

from __future__ import annotations

from types import SimpleNamespace

from ranking_jobs import columns as cols
from ranking_jobs import families
from ranking_jobs.families import FAMILIES, Family


def _echo(*args, **kwargs):
    return args, kwargs


def test_build_calls_the_transform_with_the_inputs_it_names() -> None:
    family = Family(
        view="v",
        table="features/v",
        keys=("user_id",),
        columns=(("x", families.FLOAT),),
        transform=f"{__name__}:_echo",
        inputs=("events", "settings.features.prior_strength"),
        params={"dimension": "brand"},
        description="",
    )
    inputs = SimpleNamespace(
        events="E", settings=SimpleNamespace(features=SimpleNamespace(prior_strength=7.0))
    )
    assert family.build(inputs) == (("E", 7.0), {"dimension": "brand"})


def test_declarations_are_unique_and_typed() -> None:
    assert len({f.view for f in FAMILIES}) == len({f.table for f in FAMILIES}) == len(FAMILIES)
    kinds = {families.INT, families.FLOAT, families.INT_LIST, families.FLOAT_LIST}
    kinds.add(families.STRING_LIST)
    for family in FAMILIES:
        assert {kind for _, kind in family.columns} <= kinds, family.view
        assert set(family.keys) <= {"user_id", "item_id", *cols.AFFINITY_DIMENSIONS}


def test_the_model_reads_every_numeric_column_of_the_model_families_once() -> None:
    numeric = [
        name
        for f in FAMILIES
        if f.model_input
        for name, kind in f.columns
        if kind in (families.INT, families.FLOAT)
    ]
    assert families.MODEL_FEATURES[: len(numeric)] == numeric
    assert len(set(families.MODEL_FEATURES)) == len(families.MODEL_FEATURES)
    assert "neighbour_ids" not in families.MODEL_FEATURES  # candidates read co-visitation
    assert "declared_styles" not in families.MODEL_FEATURES  # a list: read by a cross feature
    refs = {r.split(":")[1] for r in families.FEATURE_REFS}
    assert set(numeric) <= refs and "declared_styles" in refs


def test_the_stages_declaration_covers_every_family_table() -> None:
    from ranking_jobs.stages import FEATURES, covers

    assert all(covers((FEATURES,), f.table) for f in FAMILIES)
