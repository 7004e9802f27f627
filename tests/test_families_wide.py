"""Ordinal indicators of models on wide data (one row per unit): family="ordinal", lavaan's
threshold statements ``y1 | t1 + t2 + t3`` and ``ordered=[...]`` in cfa()/sem() all stack the
model to long data and fit the graded response model; with equal loadings it is clmm2's
model with item-specific thresholds (tests/fixtures/families.json, grm_equal_loadings)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError, UnsupportedError
from semgalamm.results.ordinal import family_parameter_table

HERE = Path(__file__).parent
REF = json.loads((HERE / "fixtures" / "families.json").read_text())["grm_equal_loadings"]
EQUAL = "f =~ 1*y1 + 1*y2 + 1*y3 + 1*y4"


@pytest.fixture(scope="module")
def wide() -> pd.DataFrame:
    items = pd.read_csv(HERE / "data" / "grm_items.csv")
    frame = items.pivot(index="person", columns="item", values="y")
    frame.columns = [f"y{c}" for c in frame.columns]
    return frame.reset_index(drop=True)


@pytest.mark.parametrize("how", ["family", "thresholds", "cfa"])
def test_equal_loadings_equal_clmm2(wide, how):
    if how == "family":
        fit = semgalamm.fit(EQUAL, wide, family="ordinal")
    elif how == "thresholds":
        fit = semgalamm.fit(EQUAL + "\n" + "\n".join(f"y{i} | t1 + t2 + t3" for i in range(1, 5)),
                            wide)
    else:
        fit = semgalamm.cfa(EQUAL, wide, ordered=["y1", "y2", "y3", "y4"])
    assert fit.loglik == pytest.approx(REF["logLik"], abs=1e-3)
    table = family_parameter_table(fit)
    assert list(table.lhs[:3]) == ["y1"] * 3 and list(table.rhs[:3]) == ["t1", "t2", "t3"]
    assert table.estimate.to_numpy() == pytest.approx(REF["thresholds"]["values"], rel=1e-3)


def test_ordinal_beside_gaussian_indicators(wide):
    """Two indicators ordinal, two Gaussian (their scores read as numbers): each ordinal
    indicator has thresholds and no intercept, each Gaussian one an intercept and a
    residual SD."""
    fit = semgalamm.sem("f =~ y1 + y2 + y3 + y4", wide, ordered=["y1", "y2"])
    assert set(family_parameter_table(fit).lhs) == {"y1", "y2"}
    assert list(fit.fixef.index) == ["sg_itemy3", "sg_itemy4"]
    assert fit.converged


def test_threshold_count_must_match_the_categories(wide):
    with pytest.raises(DataError, match=r"'y1 \| t1 \+ t2' gives 2 threshold\(s\), but "
                                        r"column 'y1' has 4 categories"):
        semgalamm.fit("f =~ y1 + y2 + y3\ny1 | t1 + t2", wide)


def test_threshold_labels_are_not_supported(wide):
    with pytest.raises(UnsupportedError, match="labels and fixed values of thresholds"):
        semgalamm.fit("f =~ y1 + y2 + y3\ny1 | a*t1 + t2 + t3", wide)
