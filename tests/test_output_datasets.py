"""The shipped datasets the docs use load as documented: every entry of DATASETS loads, is
named (attrs["name"], summary()'s "Data:" line), and the data the docs took from tests/data
equal their source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.datasets import DATASETS
from tests.conftest import load_csv


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_loads_with_its_name_and_levels(name):
    frame = semgalamm.load_dataset(name)
    assert frame.attrs["name"] == name and len(frame) > 0
    for column, levels in DATASETS[name][1].items():
        assert isinstance(frame[column].dtype, pd.CategoricalDtype)
        if levels is not None:
            assert list(frame[column].cat.categories) == levels


def test_diet_and_cognition_equal_the_test_data():
    diet = semgalamm.load_dataset("diet")
    source = load_csv("diet.csv")
    np.testing.assert_array_equal(diet.y, source["y.1"])
    assert list(diet.item.astype(str)) == list(source["item"])
    cognition = semgalamm.load_dataset("cognition")
    source = load_csv("cognition_domains13.csv")
    np.testing.assert_allclose(cognition.y, source.y, atol=5e-5)  # rounded to 4 decimals
    assert list(cognition.item.astype(str)) == [str(v) for v in source["item"]]
