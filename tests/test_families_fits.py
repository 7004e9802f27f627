"""Fits with the families and links of issue 13 against R (tests/reference/families_fits.R,
tests/fixtures/families.json): glmer binomial probit and cloglog, glmmTMB nbinom2 and
Gamma (log, inverse), glmer.nb, ordinal::clmm (logit, probit, cloglog; one and two random
terms) and clmm2 with
item-specific thresholds (a graded response model with equal loadings).

The Laplace log-determinant uses the weight the reference uses: glmer the Fisher weight,
glmmTMB and clmm the exact Hessian (``Family.laplace_weight``); test_laplace_weight shows
that each reference is reproduced by its own weight and not by the other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm import families
from semgalamm.laplace.model import _glm_start
from semgalamm.results.ordinal import (
    category_probabilities,
    family_parameter_table,
    family_parameter_values,
)
from tests.test_gradient import central_differences

DATA = Path(__file__).parent / "data"
REF = json.loads((Path(__file__).parent / "fixtures" / "families.json").read_text())


def _data(name: str, factors: dict[str, str]) -> pd.DataFrame:
    frame = pd.read_csv(DATA / name)
    for column, kind in factors.items():
        frame[column] = frame[column].astype(kind)
    return frame


CASES = {
    "cbpp_probit": ("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    ("cbpp.csv", {"period": "category", "herd": str}),
                    "binomial(link = 'probit')"),
    "cbpp_cloglog": ("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                     ("cbpp.csv", {"period": "category", "herd": str}),
                     'binomial(link = "cloglog")'),
    "ticks_tmb_nbinom2": ("TICKS ~ YEAR + cHEIGHT + (1 | BROOD)",
                          ("grouseticks.csv", {"YEAR": "category", "BROOD": str}),
                          "negative_binomial"),
    "ticks_glmer_nb": ("TICKS ~ YEAR + cHEIGHT + (1 | BROOD)",
                       ("grouseticks.csv", {"YEAR": "category", "BROOD": str}),
                       families.negative_binomial(laplace_weight="fisher")),
    # TMB's observed weight; glmmTMB's start (its default beta = 0 is a mean of 0)
    "poisson_identity_tmb": ("y ~ x + (1 | g)", ("poisson_identity.csv", {"g": str}),
                             families.Family("poisson", "identity", laplace_weight="observed"),
                             {"beta": [2.0, 1.5]}),
    "gamma_tmb_log": ("y ~ x + (1 | g)", ("gamma_sim.csv", {"g": str}), "gamma(link='log')"),
    # no start= (glmmTMB needs one: its default beta = 0 is 1/0): the GLM start halves its
    # first IRLS step back inside the support (test_gamma_inverse_starts_inside_the_support)
    "gamma_tmb_inverse": ("y ~ x + (1 | g)", ("gamma_sim.csv", {"g": str}),
                          families.gamma(link="inverse")),
    "wine_logit": ("rating ~ temp + contact + (1 | judge)", ("wine.csv", {"judge": str}),
                   "ordinal"),
    "wine_probit": ("rating ~ temp + contact + (1 | judge)", ("wine.csv", {"judge": str}),
                    "ordinal(link='probit')"),
    # clm without random effects, and clmm's "loglog", which is clm's cloglog: clmm's own
    # "cloglog" with a random effect computes exp(-exp(-x)) (tests/reference/families_fits.R)
    "wine_cloglog_clm": ("rating ~ temp + contact", ("wine.csv", {}),
                         "ordinal(link = 'cloglog')"),
    "wine_cloglog_clmm_loglog": ("rating ~ temp + contact + (1 | judge)",
                                 ("wine.csv", {"judge": str}), "ordinal(link = 'cloglog')"),
    "soup_logit": ("SURENESS ~ PROD + (1 | RESP) + (1 | RESP:PROD)",
                   ("soup.csv", {"RESP": str}), "ordinal"),
    "soup_probit": ("SURENESS ~ PROD + (1 | RESP) + (1 | RESP:PROD)",
                    ("soup.csv", {"RESP": str}), "ordinal(link = 'probit')"),
    "grm_equal_loadings": (
        "y ~ 0\nability =~ 1*item[1] + 1*item[2] + 1*item[3] + 1*item[4]\n"
        "ability ~ (1 | person)", ("grm_items.csv", {"person": str}), "ordinal"),
}
SLOW = {"soup_logit", "soup_probit"}
PARAMS = [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in CASES]
_FITS: dict[str, semgalamm.FitResult] = {}


def _fit(case: str):
    if case not in _FITS:
        model, (name, factors), family, *start = CASES[case]
        _FITS[case] = semgalamm.fit(model, _data(name, factors), family=family,
                                    start=start[0] if start else None)
    return _FITS[case]


def _thresholds(fit) -> pd.Series:
    """Our thresholds by clmm's names ("1|2", or clmm2's "item1:1|2" for item[1]:1|2)."""
    values = family_parameter_values(fit)
    values.index = [n.replace("item[", "item").replace("]", "") for n in values.index]
    return values


@pytest.mark.parametrize("case", PARAMS)
def test_loglik(case):
    fit = _fit(case)
    ref = REF[case]
    # clmm's own Laplace stops its inner Newton loop early: 2e-3 (issue 13)
    tolerance = 2e-3 if ref["package"] == "ordinal" else 1e-3
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=tolerance)


@pytest.mark.parametrize("case", PARAMS)
def test_estimates(case):
    fit = _fit(case)
    ref = REF[case]
    # glmer.nb alternates between the size and a glmer fit and stops 1.4e-6 below the
    # maximum of its own objective, where the intercept is still 1.5e-3 (relative) away.
    rel = 2e-3 if case == "ticks_glmer_nb" else 1e-3
    if "fixef" in ref:
        ours = fit.fixef[ref["fixef"]["names"]].to_numpy()
        assert ours == pytest.approx(ref["fixef"]["values"], rel=rel, abs=1e-5)
    if "thresholds" in ref:
        ours = _thresholds(fit)[ref["thresholds"]["names"]].to_numpy()
        assert ours == pytest.approx(ref["thresholds"]["values"], rel=rel, abs=1e-4)
    sds = np.sort(np.atleast_1d(ref["sd"]))
    ours = np.sort(fit.varcorr().dropna(subset=["sd"]).sd.to_numpy())
    assert ours == pytest.approx(sds, rel=5e-3)


# Not compared here: glmer.nb's SEs, which are conditional on the size (test below), and
# clmm2's threshold SEs (its numerical Hessian, computed after its inner loop warns "step
# factor reduced below minimum", differs from ours by up to 25%; clmm's Hessian for wine and
# soup agrees with ours to 1%); nor those of clmm's "loglog" (its Hessian is 20% off ours,
# while clm's cloglog SEs without random effects equal ours: wine_cloglog_clm).
@pytest.mark.parametrize("case", [c for c in PARAMS if (c.values[0] if hasattr(c, "values")
                                                         else c) not in
                                  ("ticks_glmer_nb", "grm_equal_loadings",
                                   "wine_cloglog_clmm_loglog")])
def test_standard_errors(case):
    fit = _fit(case)
    ref = REF[case]
    if "fixef" in ref:
        ours = fit.fixef_se[ref["fixef"]["names"]].to_numpy()
        assert ours == pytest.approx(ref["fixef_se"], rel=2e-2)
    if "thresholds" in ref:
        names = list(family_parameter_values(fit).index)
        se = np.sqrt(np.diag(fit.vcov().loc[names, names]))
        ours = pd.Series(se, index=_thresholds(fit).index)[ref["thresholds"]["names"]]
        assert ours.to_numpy() == pytest.approx(ref["thresholds_se"], rel=2e-2)


def test_glmer_nb_standard_errors_are_conditional_on_the_size():
    """glmer.nb's final model is a glmer fit with the size s held fixed (lme4's optTheta
    refits negative.binomial(theta = s)), so vcov() is conditional on s: from our joint
    covariance, V_bb - V_bs V_ss^-1 V_sb. Measured 6e-6 relative; the joint SEs are 2e-4
    above it on grouseticks (the size is nearly uncorrelated with beta), so the tolerance
    5e-5 tells the two apart."""
    fit = _fit("ticks_glmer_nb")
    ref = REF["ticks_glmer_nb"]
    names = ref["fixef"]["names"]
    V = fit.vcov().loc[[*names, "log(size)"], [*names, "log(size)"]].to_numpy()
    conditional = V[:-1, :-1] - np.outer(V[:-1, -1], V[-1, :-1]) / V[-1, -1]
    assert np.sqrt(np.diag(conditional)) == pytest.approx(ref["fixef_se"], rel=5e-5)
    assert fit.fixef_se[names].to_numpy() != pytest.approx(ref["fixef_se"], rel=5e-5)


def test_gamma_inverse_starts_inside_the_support():
    """The unconstrained IRLS fixed point of the Gamma GLM with the inverse link has mu < 0
    on a row of gamma_sim (glm.fit stops: "no valid set of coefficients"); halving the first
    step toward the intercept-only beta keeps every mu > 0, so the starting point of the
    Laplace fit has a finite deviance."""
    laplace = _fit("gamma_tmb_inverse").laplace
    beta = _glm_start(laplace.design)[0]
    assert np.min(laplace.design.X(np.zeros(0)) @ beta) > 0
    assert np.isfinite(laplace.deviance(laplace.start()))


def test_glm_start_uses_the_family_parameter_starts():
    """Ordinal thresholds at 0 give the middle categories probability 0 (an infinite GLM
    deviance); at the cumulative proportions the GLM start is the clm fit with those
    thresholds held, finite and on the side of clmm's estimates."""
    fit = _fit("wine_logit")
    beta = _glm_start(fit.laplace.design)[0]
    assert np.all(np.isfinite(beta))
    assert np.all(np.sign(beta) == np.sign(REF["wine_logit"]["fixef"]["values"]))


@pytest.mark.parametrize("case", ["ticks_tmb_nbinom2", "gamma_tmb_log", "gamma_tmb_inverse"])
def test_dispersion(case):
    """glmmTMB's log size (nbinom2) and log shape = -log dispersion (Gamma) with its SE."""
    table = family_parameter_table(_fit(case)).iloc[0]
    ref = REF[case]["dispersion"]
    sign = -1.0 if case.startswith("gamma") else 1.0
    assert sign * table.estimate == pytest.approx(ref["log_value"], rel=1e-3)
    assert table.se == pytest.approx(ref["log_se"], rel=2e-2)
    natural = ref["value"] if sign > 0 else ref["value"] ** 2  # glmmTMB's sigma is the CV
    assert table.natural == pytest.approx(natural, rel=2e-3)


def test_laplace_weight():
    """glmmTMB's nbinom2 log-likelihood needs the observed weight, glmer.nb's the Fisher
    weight; glmer's probit needs the Fisher weight (the observed one gives 0.038 more)."""
    observed, fisher = _fit("ticks_tmb_nbinom2"), _fit("ticks_glmer_nb")
    assert observed.loglik - fisher.loglik == pytest.approx(
        REF["ticks_tmb_nbinom2"]["logLik"] - REF["ticks_glmer_nb"]["logLik"], abs=1e-3)
    assert abs(observed.loglik - fisher.loglik) > 0.2
    model, (name, factors), _ = CASES["cbpp_probit"]
    probit = families.Family("binomial", "probit", laplace_weight="observed")
    other = semgalamm.fit(model, _data(name, factors), family=probit)
    assert abs(other.loglik - REF["cbpp_probit"]["logLik"]) > 0.03


def test_category_probabilities():
    """Rows sum to 1, equal F(theta_j - nu) differences, and new data give the same numbers
    for the same rows."""
    fit = _fit("wine_logit")
    probs = category_probabilities(fit)
    assert list(probs.columns) == ["1", "2", "3", "4", "5"]
    assert np.allclose(probs.sum(axis=1), 1.0)
    theta = family_parameter_values(fit).to_numpy()
    nu = fit.linear_predictor()
    cumulative = 1 / (1 + np.exp(-(theta[None, :] - nu[:, None])))
    assert np.allclose(probs.iloc[:, :4].cumsum(axis=1), cumulative)
    wine = _data("wine.csv", {"judge": str})
    again = category_probabilities(fit, wine.iloc[[0, 5, 40]])
    assert np.allclose(again.to_numpy(), probs.iloc[[0, 5, 40]].to_numpy())


def test_graded_response_thresholds_per_item():
    """Long data with an indicator column: one threshold set per item, named by item and
    shown with lavaan's op "|" (lhs the indicator, rhs t1, t2, ...)."""
    table = family_parameter_table(_fit("grm_equal_loadings"))
    assert list(table.lhs.unique()) == ["item[1]", "item[2]", "item[3]", "item[4]"]
    assert set(table.op) == {"|"}
    assert list(table.rhs[:3]) == ["t1", "t2", "t3"]
    summary = str(_fit("grm_equal_loadings").summary())
    assert "Threshold coefficients:" in summary and "item[3]:2|3" in summary


@pytest.mark.parametrize("case", ["ticks_tmb_nbinom2", "ticks_glmer_nb", "gamma_tmb_log",
                                  "wine_probit", "cbpp_cloglog", "grm_equal_loadings"])
def test_exact_gradient(case):
    """The exact gradient of the Laplace deviance (family parameters included) equals
    central differences, 5% away from the optimum."""
    laplace = _fit(case).laplace
    x = _fit(case).optimizer.x * 1.05 + 0.01
    value, gradient = laplace.value_and_gradient(x)
    numeric = central_differences(laplace, x)
    assert gradient == pytest.approx(numeric, rel=1e-4, abs=1e-4)
    assert value == pytest.approx(laplace.deviance(x), rel=1e-12)


def test_three_families_in_one_model():
    """cbpp (binomial probit), grouseticks (negative binomial) and wine (ordinal) stacked in
    one data frame with a family column and separate terms: the joint log-likelihood is the
    sum of the three R fits' and each part's estimates are R's."""
    cbpp = _data("cbpp.csv", {})
    ticks = _data("grouseticks.csv", {})
    wine = _data("wine.csv", {})
    parts = [
        pd.DataFrame({"y": cbpp.incidence / cbpp["size"], "w": cbpp["size"],
                      "fam": "binomial(link='probit')", "A": 1.0,
                      "grp": "h" + cbpp.herd.astype(str),
                      **{f"p{k}": (cbpp.period == k) * 1.0 for k in (2, 3, 4)}}),
        pd.DataFrame({"y": ticks.TICKS, "w": 1.0, "fam": "negative_binomial", "B": 1.0,
                      "grp": "b" + ticks.BROOD.astype(str), "cHEIGHT": ticks.cHEIGHT,
                      **{f"y{k}": (ticks.YEAR == k) * 1.0 for k in (96, 97)}}),
        pd.DataFrame({"y": wine.rating, "w": 1.0, "fam": "ordinal", "C": 1.0,
                      "grp": "j" + wine.judge.astype(str), "warm": (wine.temp == "warm") * 1.0,
                      "yes": (wine.contact == "yes") * 1.0}),
    ]
    data = pd.concat(parts, ignore_index=True).fillna(0.0)
    fit = semgalamm.fit(
        "y ~ 0 + A + p2 + p3 + p4 + B + y96 + y97 + cHEIGHT + warm + yes"
        " + (0 + A | grp) + (0 + B | grp) + (0 + C | grp)", data, family="fam", weights="w")
    cases = ("cbpp_probit", "ticks_tmb_nbinom2", "wine_logit")
    assert fit.loglik == pytest.approx(sum(REF[c]["logLik"] for c in cases), abs=1e-3)
    ours = fit.fixef[["A", "p2", "B", "y96", "cHEIGHT", "warm", "yes"]].to_numpy()
    reference = [REF["cbpp_probit"]["fixef"]["values"][i] for i in (0, 1)] + \
        [REF["ticks_tmb_nbinom2"]["fixef"]["values"][i] for i in (0, 1, 3)] + \
        REF["wine_logit"]["fixef"]["values"]
    assert ours == pytest.approx(reference, rel=1e-3)


def test_ordered_categorical_response_equals_integer_scores():
    """An ordered categorical response (labels in their declared order, not alphabetical)
    gives the fit of its integer codes, thresholds named by the labels."""
    wine = _data("wine.csv", {"judge": str})
    labels = ["none", "weak", "some", "bitter", "very"]
    wine["rating"] = pd.Categorical.from_codes(wine["rating"] - 1, categories=labels,
                                               ordered=True)
    fit = semgalamm.fit("rating ~ temp + contact + (1 | judge)", wine, family="ordinal")
    assert fit.loglik == pytest.approx(_fit("wine_logit").loglik, abs=1e-6)
    assert list(family_parameter_values(fit).index) == [
        "none|weak", "weak|some", "some|bitter", "bitter|very"]
    assert list(category_probabilities(fit).columns) == labels
