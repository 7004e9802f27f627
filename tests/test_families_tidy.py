"""tidy() with family parameters: ordinal thresholds as "fixed" rows of coef_type "intercept"
before the "location" fixed effects (broom's tidy.clmm), the negative binomial size and the
Gamma dispersion as "ran_pars" rows of group "Residual"; numbers against clmm and glmmTMB
(tests/fixtures/families.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import semgalamm

DATA = Path(__file__).parent / "data"
REF = json.loads((Path(__file__).parent / "fixtures" / "families.json").read_text())


def test_thresholds_are_intercept_rows_before_the_location_rows():
    data = pd.read_csv(DATA / "wine.csv").astype({"judge": str})
    fit = semgalamm.fit("rating ~ temp + contact + (1 | judge)", data, family="ordinal")
    table = fit.tidy(conf_int=True)
    ref = REF["wine_logit"]
    fixed = table[table.effect == "fixed"]
    assert list(fixed.coef_type) == ["intercept"] * 4 + ["location"] * 2
    alpha = fixed[fixed.coef_type == "intercept"].set_index("term")
    names = ref["thresholds"]["names"]
    assert alpha.estimate[names].to_numpy() == pytest.approx(ref["thresholds"]["values"],
                                                             rel=1e-3)
    assert alpha.std_error[names].to_numpy() == pytest.approx(ref["thresholds_se"], rel=2e-2)
    assert alpha.statistic.to_numpy() == pytest.approx(
        (alpha.estimate / alpha.std_error).to_numpy(), rel=1e-12)
    assert (alpha.conf_low < alpha.estimate).all() and (alpha.conf_high > alpha.estimate).all()
    beta = fixed[fixed.coef_type == "location"].set_index("term")
    assert beta.estimate[ref["fixef"]["names"]].to_numpy() == pytest.approx(
        ref["fixef"]["values"], rel=1e-3)
    assert table.coef_type[table.effect == "ran_pars"].isna().all()


@pytest.mark.parametrize("case, formula, frame, family, term", [
    ("ticks_tmb_nbinom2", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)",
     ("grouseticks.csv", {"YEAR": "category", "BROOD": str}), "negative_binomial", "size"),
    ("gamma_tmb_log", "y ~ x + (1 | g)", ("gamma_sim.csv", {"g": str}), "gamma(link='log')",
     "dispersion"),
])
def test_size_and_dispersion_are_residual_ran_pars(case, formula, frame, family, term):
    name, kinds = frame
    fit = semgalamm.fit(formula, pd.read_csv(DATA / name).astype(kinds), family=family)
    table = fit.tidy()
    assert "coef_type" not in table
    row = table[(table.effect == "ran_pars") & (table.group == "Residual")]
    assert list(row.term) == [term]
    ref = REF[case]["dispersion"]
    # glmmTMB's log size and log shape = -log dispersion with their SEs; its Gamma sigma()
    # is the coefficient of variation sqrt(dispersion)
    natural = ref["value"] if term == "size" else ref["value"] ** 2
    assert row.estimate.iloc[0] == pytest.approx(natural, rel=2e-3)
    assert row.std_error.iloc[0] == pytest.approx(natural * ref["log_se"], rel=2e-2)
    assert np.isnan(row.statistic.iloc[0])


def test_no_family_rows_without_family_parameters():
    data = pd.read_csv(DATA / "cbpp.csv").astype({"period": "category", "herd": str})
    table = semgalamm.fit("cbind(incidence, size - incidence) ~ period + (1 | herd)", data,
                          family="binomial").tidy()
    assert "coef_type" not in table
    assert "Residual" not in set(table.group.dropna())
