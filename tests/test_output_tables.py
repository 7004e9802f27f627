"""broom's tables (tidy, glance, augment), lme4's summary parts and the anova object
(docs/output.md). References: lme4 1.1 (tests/reference/output_fits.R ->
tests/fixtures/output.json), lavaan 0.6.14 (tests/fixtures/lavaan) and broom 1.0.3's
tidy.lavaan/glance.lavaan column layout; broom.mixed's layout from its documentation."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import SpecError
from semgalamm.results.conditional_variance import conditional_covariances, ranef_table
from semgalamm.results.summary import _table, abbreviate, fixef_correlation_table
from tests.test_structural_long import SCHOOLS

FIXTURES = Path(__file__).parent / "fixtures"
HS = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


def reference(case: str) -> dict:
    return json.loads((FIXTURES / "output.json").read_text())[case]


@cache
def sleep_fit(reml: bool = False) -> semgalamm.FitResult:
    return semgalamm.fit("Reaction ~ Days + (Days | Subject)",
                         semgalamm.load_dataset("sleepstudy"), reml=reml)


@cache
def cbpp_fit() -> semgalamm.FitResult:
    return semgalamm.fit("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                         semgalamm.load_dataset("cbpp"), family="binomial")


@cache
def school_fit() -> semgalamm.FitResult:
    return semgalamm.fit(SCHOOLS, semgalamm.load_dataset("schoolclimate"))


# ----------------------------------------------------------------------- conditional variances

@pytest.mark.parametrize("case, reml", [("sleepstudy_ml", False), ("sleepstudy_reml", True)])
def test_conditional_variances_are_lme4s_condvar(case, reml):
    ref = reference(case)["ranef"][0]
    fit = sleep_fit(reml)
    table = ranef_table(fit)
    sd = table.pivot(index="level", columns="term", values="std_error").loc[ref["levels"],
                                                                             ref["terms"]]
    np.testing.assert_allclose(sd.to_numpy(), ref["condsd"], rtol=2e-3)
    modes = table.pivot(index="level", columns="term", values="estimate")
    np.testing.assert_allclose(modes.loc[ref["levels"], ref["terms"]].to_numpy(),
                               ref["modes"], rtol=2e-3, atol=1e-2)
    cov = conditional_covariances(fit)[0][:, 0, 1]
    np.testing.assert_allclose(cov, ref["condcov"], rtol=5e-3)


def test_conditional_variances_of_a_glmm_are_lme4s():
    ref = reference("cbpp_glmer")["ranef"][0]
    table = ranef_table(cbpp_fit())
    np.testing.assert_allclose(table.std_error, np.ravel(ref["condsd"]), rtol=1e-3)


# ----------------------------------------------------------------------- tidy, glance, augment

def test_tidy_of_a_mixed_model_is_broom_mixeds_layout():
    fit = sleep_fit()
    table = fit.tidy(conf_int=True, conf_level=0.9)
    assert list(table.columns) == ["effect", "group", "term", "estimate", "std_error",
                                   "statistic", "p_value", "conf_low", "conf_high"]
    fixed = table[table.effect == "fixed"].set_index("term")
    np.testing.assert_allclose(fixed.estimate, fit.fixef)
    np.testing.assert_allclose(fixed.std_error, np.sqrt(np.diag(fit.vcov())))
    np.testing.assert_allclose(fixed.statistic, fit.fixef / fit.fixef_se)
    assert fixed.p_value.isna().all()  # lme4 gives a t value without a p-value
    ci = fit.confint(0.9)
    np.testing.assert_allclose(fixed.conf_low, ci["5 %"])
    pars = table[table.effect == "ran_pars"]
    # broom.mixed's order (its tests/testthat/test-lme4.R)
    assert list(pars.term) == ["sd__(Intercept)", "cor__(Intercept).Days", "sd__Days",
                               "sd__Observation"]
    assert list(pars.group) == ["Subject"] * 3 + ["Residual"]
    vc = fit.varcorr()
    np.testing.assert_allclose(pars.estimate.iloc[[0, 2, 3]], vc.sd.iloc[[0, 1, 3]])
    assert pars.estimate.iloc[1] == pytest.approx(vc.correlation.iloc[2])
    assert pars.estimate.iloc[3] == pytest.approx(fit.sigma)
    assert pars.conf_low.isna().all()


def test_tidy_of_a_glmm_has_wald_p_values_and_ran_vals():
    fit = cbpp_fit()
    table = fit.tidy(effects=["fixed", "ran_vals"], conf_int=True)
    assert "level" in table.columns
    fixed = table[table.effect == "fixed"]
    assert fixed.p_value.iloc[1] == pytest.approx(0.001212, rel=2e-2)  # lme4: 0.001212
    vals = table[table.effect == "ran_vals"]
    assert len(vals) == 15 and set(vals.group) == {"herd"}
    np.testing.assert_allclose(vals.estimate, fit.ranef()["herd"]["(Intercept)"])
    np.testing.assert_allclose(vals.conf_high - vals.estimate, 1.959964 * vals.std_error,
                               rtol=1e-6)


def test_tidy_of_a_galamm_has_loadings_and_regressions():
    fit = school_fit()
    table = fit.tidy()
    assert list(dict.fromkeys(table.effect)) == ["fixed", "ran_pars", "loading", "regression"]
    loadings = table[table.effect == "loading"]
    est = fit.loading_estimates()
    np.testing.assert_allclose(loadings.estimate, est.estimate)
    assert list(loadings.group) == list(est.latent)
    regression = table[table.effect == "regression"].iloc[0]
    assert regression.term == "ability ~ climate"
    assert regression.estimate == pytest.approx(fit.structural.estimate.iloc[0])
    with pytest.raises(SpecError, match="effects must be among .*Did you mean 'loading'"):
        fit.tidy(effects="loadings")
    with pytest.raises(SpecError, match="no loadings"):
        sleep_fit().tidy(effects="loading")


def test_glance_and_augment():
    fit = sleep_fit()
    row = fit.glance().iloc[0]
    assert row.logLik == pytest.approx(-875.9697, abs=1e-3)  # lme4
    assert row.AIC == pytest.approx(fit.aic) and row.BIC == pytest.approx(fit.bic)
    assert row.df_residual == 174 and row.nobs == 180
    assert row.sigma == pytest.approx(25.5918, rel=1e-3)
    assert list(sleep_fit(True).glance().columns) == ["nobs", "sigma", "logLik", "AIC", "BIC",
                                                      "REMLcrit", "df_residual"]
    data = semgalamm.load_dataset("sleepstudy")
    before = data.copy()
    augmented = fit.augment(data)
    pd.testing.assert_frame_equal(data, before)  # the user's frame is untouched
    assert list(augmented.columns[:3]) == ["Reaction", "Days", "Subject"]
    b = fit.ranef()["Subject"].loc[augmented.Subject.astype(str)].to_numpy()
    random_part = b[:, 0] + b[:, 1] * augmented.Days
    np.testing.assert_allclose(augmented[".fitted"] - augmented[".fixed"], random_part,
                               atol=1e-8)
    np.testing.assert_allclose(augmented[".resid"], augmented.Reaction - augmented[".mu"])
    frame = fit.augment()
    assert list(frame.columns) == [".response", "Subject", ".fitted", ".mu", ".fixed",
                                   ".resid", ".wtres", ".hat", ".cooksd"]
    with pytest.raises(SpecError, match="not in data"):
        fit.augment(data.iloc[:10])


@pytest.mark.parametrize("case", ["sleepstudy_ml", "sleepstudy_reml", "cbpp_glmer"])
def test_augment_hat_and_cooksd_and_glance_sigma_equal_lme4(case):
    """.hat = lme4's hatvalues() (the penalized system's hat diagonal; for the binomial GLMM
    lme4's mix of prior weights outside and PIRLS weights inside), .cooksd = lme4's
    cooks.distance(), glance's sigma = lme4's sigma() (1 for the binomial GLMM); 2e-3
    relative: lme4's own estimates differ from ours by about 1e-4."""
    ref = reference(case)
    fit = cbpp_fit() if case == "cbpp_glmer" else sleep_fit(case.endswith("reml"))
    frame = fit.augment()
    np.testing.assert_allclose(frame[".hat"], ref["hat"], rtol=2e-3)
    np.testing.assert_allclose(frame[".cooksd"], ref["cooksd"], rtol=2e-3)
    assert fit.glance().sigma.iloc[0] == pytest.approx(ref["sigma"], rel=1e-4)
    if case != "cbpp_glmer":  # a linear smoother's hat matrix: leverages in [0, 1]
        assert frame[".hat"].between(0, 1).all()


def test_glance_sigma_of_a_gamma_model_is_glmmtmbs_sigma():
    """Gamma: sigma = sqrt(dispersion) = 1 / sqrt(shape), glmmTMB's sigma() (families.json)."""
    from tests.conftest import fixture, load_csv

    ref = fixture("families")["gamma_tmb_log"]
    fit = semgalamm.fit("y ~ x + (1 | g)", load_csv("gamma_sim.csv", {"g": None}),
                        family="gamma(link='log')")
    assert fit.glance().sigma.iloc[0] == pytest.approx(ref["dispersion"]["value"], rel=1e-4)


def test_tidy_and_glance_of_a_sem_are_brooms_lavaan_tables():
    ref = json.loads((FIXTURES / "lavaan" / "hs_cfa.json").read_text())
    fit = semgalamm.cfa(HS, semgalamm.load_dataset("HolzingerSwineford1939"))
    table = fit.tidy(conf_int=True)
    assert list(table.columns) == ["term", "op", "estimate", "std_error", "statistic",
                                   "p_value", "conf_low", "conf_high", "std_lv", "std_all",
                                   "std_nox"]  # broom 1.0.3's tidy(fit, conf.int = TRUE)
    assert table.term.iloc[1] == "visual =~ x2"
    expected = pd.DataFrame(ref["parameter_estimates"])
    np.testing.assert_allclose(table.estimate, expected.est, rtol=1e-3)
    np.testing.assert_allclose(table.std_error, expected.se, rtol=2e-2, atol=1e-8)
    np.testing.assert_allclose(table.std_all, pd.DataFrame(ref["standardized"])["est.std"],
                               rtol=1e-3)
    glance = fit.glance().iloc[0]
    for ours, theirs in [("cfi", "cfi"), ("tli", "tli"), ("rmsea", "rmsea"), ("srmr", "srmr"),
                         ("chisq", "chisq"), ("rmsea_conf_high", "rmsea.ci.upper")]:
        assert glance[ours] == pytest.approx(ref["fit_measures"][theirs], rel=1e-3)
    assert glance.npar == 21 and glance.nobs == 301 and glance.ngroups == 1


# --------------------------------------------------------------------------- summary

def test_summary_has_lme4s_parts():
    ml, reml = str(sleep_fit().summary()), str(sleep_fit(True).summary())
    assert "   Data: sleepstudy" in ml
    assert "REML criterion at convergence: 1743.6" in reml and "AIC" not in reml
    assert reference("sleepstudy_reml")["reml_crit"] == pytest.approx(1743.628, abs=1e-3)
    assert "Correlation of Fixed Effects:\n     (Intr)\nDays -0.138" in ml  # lme4's lines
    assert reference("sleepstudy_ml")["corr_fixef"][0][1] == pytest.approx(-0.1375, abs=1e-3)
    # the random-effects table laid out as lme4's (tests/fixtures/output.json "summary")
    assert " Groups   Name        Variance Std.Dev. Corr\n Subject  (Intercept) 565.5" in ml
    assert "          Days         32.68    5.717   0.08\n Residual             654.9" in ml
    glmm = str(cbpp_fit().summary())
    lme4_lines = reference("cbpp_glmer")["summary"]
    for line in ["        (Intr) perid2 perid3", "period2 -0.364              "]:
        assert line in lme4_lines
        assert line in glmm


def test_summary_separates_blocks_of_one_factor_as_lme4():
    fit = semgalamm.fit("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
                        semgalamm.load_dataset("sleepstudy"))
    text = str(fit.summary())
    assert "\n Subject   (Intercept)" in text and "\n Subject.1 Days" in text
    assert "groups:  Subject, 18\n" in text


def test_summary_renders_html_tables():
    html = sleep_fit().summary()._repr_html_()
    assert html.count("<table") == 5  # statistics, residuals, random, fixed, correlation
    assert "<td>Subject</td>" in html and "251.4051" in html
    assert "<p>Number of obs: 180, groups:  Subject, 18</p>" in html
    sem = semgalamm.cfa(HS, semgalamm.load_dataset("HolzingerSwineford1939"))
    sem_html = sem.summary(fit_measures=True)._repr_html_()
    assert "<b>Latent Variables:</b>" in sem_html and "<b>Variances:</b>" in sem_html
    assert "<th>visual =~ x2</th>\n      <td>0.55" in sem_html  # lavaan: 0.554


def test_abbreviate_is_rs():
    names = ["(Intercept)", "period2", "Days", "period10", "Reaction:Days"]
    assert [abbreviate(n) for n in names] == ["(Intr)", "perid2", "Days", "perd10", "Rctn:D"]
    # R 4.2: abbreviate(names, 6)


# --------------------------------------------------------------------------- anova

def test_anova_rows_are_named_by_the_callers_variables_and_print_in_full():
    fm1 = sleep_fit()
    fm0 = semgalamm.fit("Reaction ~ Days + (1 | Subject)", semgalamm.load_dataset("sleepstudy"))
    table = semgalamm.anova(fm1, fm0)
    assert isinstance(table, pd.DataFrame) and list(table.index) == ["fm0", "fm1"]
    assert table.loc["fm1", "Chisq"] == pytest.approx(42.139, abs=1e-3)  # lme4: 42.139
    text = repr(table)
    assert text.splitlines()[:3] == ["Data: sleepstudy", "Models:",
                                     "fm0: Reaction ~ Days + (1 | Subject)"]
    assert "Pr(>Chisq)" in text and "7.072e-10" in text  # every column, as R prints
    assert type(table.copy()) is pd.DataFrame
    assert "<table" in table._repr_html_()
    inline = semgalamm.anova(fm1, semgalamm.fit("Reaction ~ Days + (1 | Subject)",
                                                semgalamm.load_dataset("sleepstudy")))
    assert list(inline.index) == ["Reaction ~ Days + (1 | Subject)", "fm1"]


@pytest.mark.slow
def test_summary_prints_tiny_p_values_and_zero_correlations_as_r():
    assert _table(pd.DataFrame({"Pr(>|z|)": [1e-20, 0.0123]})).split() == \
        ["Pr(>|z|)", "0", "<2e-16", "1", "0.0123"]  # R's format.pval below 2.2e-16
    fit = semgalamm.fit("""
        climate =~ 1*item[c1] + item[c2] + item[c3]
        ability =~ 1*item[a1] + item[a2] + item[a3]
        climate ~ (1 | school)
        ability ~ climate + s(age) + (1 | school:pupil)
        y ~ 0 + item
    """, semgalamm.load_dataset("schoolclimate"),
        family={"item": {"a3": "binomial"}, "default": "gaussian"})
    correlation = fixef_correlation_table(fit)
    assert correlation.loc["s(age):abilityFx1", "itemc1"] == "0.000"  # -5e-10, shown as R
    assert "<2e-16" in str(fit.summary()).split("Fixed effects:")[1]
