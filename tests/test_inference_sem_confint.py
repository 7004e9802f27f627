"""SemFit.confint(method="wald" | "boot"): Wald intervals of the free and := parameters equal
lavaan's parameterEstimates() ci.lower and ci.upper (PoliticalDemocracy with equal loadings
and an indirect effect); bootstrap intervals cover the estimate with the width the standard
errors imply (a property: parametric replicates of a correctly specified model)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import SpecError, UnsupportedError
from tests.conftest import fixture


@cache
def reference() -> dict:
    return fixture("lavaan/poldem_labels")


@cache
def poldem() -> semgalamm.SemFit:
    return semgalamm.sem(reference()["model"], semgalamm.load_dataset("PoliticalDemocracy"))


def lavaan_rows() -> pd.DataFrame:
    """lavaan's rows by the name confint() gives them: the label, else lhs op rhs."""
    table = pd.DataFrame(reference()["parameter_estimates"])
    table = table[(table["op"] == ":=") | (table["free"] > 0)]
    names = np.where(table["label"] != "", table["label"],
                     table["lhs"] + table["op"] + table["rhs"])
    return table.assign(name=names).drop_duplicates("name").set_index("name")


def test_wald_intervals_of_free_and_defined_parameters_equal_lavaan():
    ours = poldem().confint()
    theirs = lavaan_rows()
    assert sorted(ours.index) == sorted(theirs.index)
    assert list(ours.index[-2:]) == ["indirect", "total"]
    theirs = theirs.loc[ours.index]
    # bounds = est +- 1.96 se: estimates to 1e-3 relative, SEs to 2e-2
    tolerance = 1e-3 * theirs["est"].abs() + 1.96 * 2e-2 * theirs["se"]
    for ours_col, theirs_col in (("2.5 %", "ci.lower"), ("97.5 %", "ci.upper")):
        difference = (ours[ours_col] - theirs[theirs_col]).abs()
        assert (difference <= tolerance).all(), difference[difference > tolerance]
    narrow = poldem().confint(0.9, parm=["indirect", "a"])
    assert list(narrow.index) == ["indirect", "a"]
    assert (narrow["5 %"] > ours.loc[narrow.index, "2.5 %"]).all()


def test_bootstrap_intervals_cover_the_estimate_with_the_wald_width():
    """200 parametric replicates: every 90% percentile interval contains the estimate and its
    width is 2 z SE within 30% (the Monte Carlo error of a 5%/95% quantile pair with 200
    replicates is about 10%); the := rows are there, columns lower and upper first."""
    fit = poldem()
    with ThreadPoolExecutor(2) as threads:
        boot = fit.confint(0.9, method="boot", n=200, seed=11, executor=threads,
                           progress=False)
    wald = fit.confint(0.9)
    assert list(boot.columns) == ["5 %", "95 %", "estimate"]
    assert list(boot.index) == list(wald.index)
    np.testing.assert_allclose(boot["estimate"], wald["estimate"])
    assert ((boot["5 %"] < boot["estimate"]) & (boot["estimate"] < boot["95 %"])).all()
    ratio = (boot["95 %"] - boot["5 %"]) / (wald["95 %"] - wald["5 %"])
    assert ratio.between(0.7, 1.3).all(), ratio[~ratio.between(0.7, 1.3)]


def test_sem_confint_misuse():
    fit = poldem()
    with pytest.raises(UnsupportedError, match="method='wald' or method='boot'"):
        fit.confint(method="profile")
    with pytest.raises(SpecError, match="Did you mean 'indirect'"):
        fit.confint(parm="indirec")
    with pytest.raises(SpecError, match="options of method='boot'"):
        fit.confint(n=10)
