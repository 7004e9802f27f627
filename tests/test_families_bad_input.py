"""Bad input for the families of issue 13: each a DataError naming the column and the rows
(or the category) and saying how to fix it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError

DATA = Path(__file__).parent / "data"
WINE = "rating ~ temp + contact + (1 | judge)"


@pytest.fixture()
def wine() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "wine.csv")
    frame["judge"] = frame["judge"].astype(str)
    return frame


@pytest.fixture()
def ticks() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "grouseticks.csv")
    frame["BROOD"] = frame["BROOD"].astype(str)
    return frame


def test_declared_category_never_observed(wine):
    wine["rating"] = pd.Categorical(wine["rating"], categories=[1, 2, 3, 4, 5, 6],
                                    ordered=True)
    with pytest.raises(DataError, match=r"'rating' declares the category 6, never observed"):
        semgalamm.fit(WINE, wine, family="ordinal")


def test_one_category(wine):
    wine["rating"] = 3
    with pytest.raises(DataError, match=r"'rating' has one category \(3\) \(rows 0, 1, 2"):
        semgalamm.fit(WINE, wine, family="ordinal")


def test_one_category_for_an_item():
    items = pd.read_csv(DATA / "grm_items.csv")
    items.loc[items["item"] == 2, "y"] = 4
    model = "y ~ 0\nability =~ 1*item[1] + 1*item[2] + 1*item[3] + 1*item[4]\n" \
            "ability ~ (1 | person)"
    with pytest.raises(DataError, match=r"one category \(4\) in the rows of item\[2\] "
                                        r"\(rows 1, 5, 9"):
        semgalamm.fit(model, items, family="ordinal")


def test_unordered_text_response(wine):
    wine["rating"] = wine["rating"].map({1: "a", 2: "b", 3: "c", 4: "d", 5: "e"})
    with pytest.raises(DataError, match=r"'rating' must be an ordered categorical"):
        semgalamm.fit(WINE, wine, family="ordinal")


@pytest.mark.parametrize("value", [-1.0, 2.5])
def test_negative_binomial_counts(ticks, value):
    ticks["TICKS"] = ticks["TICKS"].astype(float)
    ticks.loc[[3, 7], "TICKS"] = value
    with pytest.raises(DataError, match=r"'TICKS' of 2 negative_binomial row\(s\) \(index 3, 7\)"
                                        r".*non-negative integer counts"):
        semgalamm.fit("TICKS ~ YEAR + (1 | BROOD)", ticks, family="negative_binomial")


@pytest.mark.parametrize("value", [0.0, -0.5])
def test_gamma_non_positive(value):
    frame = pd.read_csv(DATA / "gamma_sim.csv")
    frame.loc[[10], "y"] = value
    with pytest.raises(DataError, match=r"'y' of 1 gamma row\(s\) \(index 10\).*positive"):
        semgalamm.fit("y ~ x + (1 | g)", frame, family="gamma")


@pytest.mark.parametrize("family", ["binomial(link='logt')", "ordinal(link = 'log')",
                                    "negative_binomial(link='identity')"])
def test_unknown_link(wine, family):
    name = family.split("(")[0]
    with pytest.raises(DataError, match=rf"The {name} family has no link .*Use one of"):
        semgalamm.fit(WINE, wine, family=family)


def test_unknown_link_in_a_mapping(wine):
    with pytest.raises(DataError, match=r"binomial family has no link \"logt\". Use one of "
                                        r"'logit', 'probit', 'cloglog'.*family mapping"):
        semgalamm.fit("y ~ 0\nf =~ item[a] + item[b]\nf ~ (1 | id)",
                      pd.DataFrame({"y": [0, 1, 1, 0], "item": ["a", "b", "a", "b"],
                                    "id": ["1", "1", "2", "2"]}),
                      family={"a": "binomial(link='logt')", "b": "binomial"})


def test_cbind_response_with_ordinal_rows(wine):
    wine["other"] = 1
    with pytest.raises(DataError, match=r"ordinal rows need the column of categories"):
        semgalamm.fit("cbind(rating, other) ~ temp + (1 | judge)", wine, family="ordinal")
