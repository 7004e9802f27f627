"""lavaan's datasets ship with semgalamm and load with R's shapes, columns and factor levels."""

from __future__ import annotations

import pytest

import semgalamm

SHAPES = {
    "HolzingerSwineford1939": (301, 15),
    "PoliticalDemocracy": (75, 11),
    "Demo.growth": (400, 10),
    "Demo.twolevel": (2500, 12),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_lavaan_dataset_shape(name):
    frame = semgalamm.load_dataset(name)
    assert frame.shape == SHAPES[name]


def test_holzinger_swineford_columns():
    hs = semgalamm.load_dataset("HolzingerSwineford1939")
    assert list(hs.columns) == ["id", "sex", "ageyr", "agemo", "school", "grade",
                                *[f"x{i}" for i in range(1, 10)]]
    # R's factor levels (Grant-White first); lavaan's groups follow first appearance
    # (Pasteur is group 1), as in tests/fixtures/lavaan/hs_group_*.json.
    assert list(hs["school"].cat.categories) == ["Grant-White", "Pasteur"]
    assert hs["school"].iloc[0] == "Pasteur"
    assert hs["school"].value_counts().to_dict() == {"Pasteur": 156, "Grant-White": 145}
    assert sorted(hs["sex"].unique()) == [1, 2]
    assert hs["grade"].isna().sum() == 1
    assert hs[[f"x{i}" for i in range(1, 10)]].notna().all().all()


def test_demo_twolevel_clusters():
    data = semgalamm.load_dataset("Demo.twolevel")
    assert data["cluster"].nunique() == 200
