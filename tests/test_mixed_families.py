"""Heteroscedastic residuals and mixed response families.

References: galamm 0.3.0 and nlme's ``lme(weights = varIdent(~1 | item), method = "ML")`` for
the all-Gaussian heteroscedastic models; for models mixing Gaussian and binomial rows an
independent per-cluster Laplace approximation and adaptive Gauss-Hermite quadrature
(``mixed_family_truth``), because galamm 0.3.0 is wrong there (docs/engine.md). The same
per-cluster computation is written again below, independently of the engine, and compared
with our deviance away from the optimum.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, gammaln

import semgalamm
from semgalamm.errors import DataError, SpecError
from tests.conftest import fixture, load_csv

HSCED = "y ~ x + (1 | id); y ~~ (1 | item)"
MRESP = "level =~ itemgroup[a] + itemgroup[b]; level ~ (1 | id); y ~ x"
MRESP_HSCED = "y ~ x + (1 | id); y ~~ (1 | grp)"
DIET_LOADINGS = "loading =~ 1*item[fiber1] + 1*item[fiber2] + item[chd]; loading ~ (1 | id)"
DIET = {
    "diet": f"{DIET_LOADINGS}; y ~ 0 + chd + (age*bus):chd + fiber + (age*bus):fiber + fiber2",
    "diet0": f"{DIET_LOADINGS}; y ~ 0 + chd + fiber + (age*bus):fiber + fiber2",
}
DIET_FAMILY = {"item": {"chd": "binomial"}, "default": "gaussian"}


def mixed_data(name: str) -> pd.DataFrame:
    """galamm's mixed-response layout: y.1 the response, y.2 the family (1 Gaussian, 2
    binomial)."""
    frame = load_csv(f"{name}.csv").rename(columns={"y.1": "y"})
    frame["family"] = np.where(frame.pop("y.2") == 1, "gaussian", "binomial")
    return frame


@cache
def fit_of(case: str) -> semgalamm.FitResult:
    if case == "hsced":
        return semgalamm.fit(HSCED, load_csv("hsced.csv"))
    if case == "hsced_three_groups":
        return semgalamm.fit(HSCED, load_csv("galamm_t_hsced2_three_groups.csv"))
    if case == "hsced_homoscedastic":
        return semgalamm.fit("y ~ x + (1 | id)", load_csv("hsced.csv"))
    if case == "mresp":
        return semgalamm.fit(MRESP, mixed_data("mresp"), family="family")
    if case == "mresp_hsced":
        return semgalamm.fit(MRESP_HSCED, mixed_data("mresp_hsced"), family="family")
    return semgalamm.fit(DIET[case], mixed_data("diet"), family=DIET_FAMILY)


# ----------------------------------------------------------------- heteroscedastic Gaussian

@pytest.mark.parametrize("case", ["hsced", "hsced_three_groups", "hsced_homoscedastic"])
def test_heteroscedastic_lmm_matches_galamm(case):
    ref = fixture("mixed_family")[case]
    fit = fit_of(case)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.npar == ref["df"]
    for name, value in ref["fixef"].items():
        assert fit.fixef[name] == pytest.approx(value, rel=1e-3)
        assert fit.fixef_se[name] == pytest.approx(ref["fixef_se"][name], rel=1e-2)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    vc = fit.varcorr()
    assert vc.loc[vc.group == "id", "sd"].iloc[0] == pytest.approx(ref["id_sd"], rel=1e-3)
    if "levels" in ref:
        table = fit.residual_sd()
        assert list(table.index) == ref["levels"]
        np.testing.assert_allclose(table["sd_ratio"], ref["sd_ratio"], rtol=1e-3)
        np.testing.assert_allclose(table["sd"], ref["residual_sd_by_level"], rtol=1e-3)


@pytest.mark.parametrize("case", ["hsced", "hsced_three_groups"])
def test_heteroscedastic_lmm_matches_nlme_varident(case):
    ref = fixture("mixed_family")[case]["nlme"]
    fit = fit_of(case)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    for name, value in ref["fixef"].items():
        assert fit.fixef[name] == pytest.approx(value, rel=1e-3)
    np.testing.assert_allclose(fit.residual_sd()["sd_ratio"], ref["sd_ratio"], rtol=1e-3)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-3)


def test_dispformula_keyword_is_the_model_string_statement():
    data = load_csv("hsced.csv")
    keyword = semgalamm.fit("y ~ x + (1 | id)", data, dispformula="~ (1 | item)")
    assert keyword.loglik == pytest.approx(fit_of("hsced").loglik, abs=1e-8)
    assert keyword.design.dispersion_levels == ("1", "2")


def test_likelihood_ratio_test_of_heteroscedasticity():
    ref = fixture("mixed_family")
    table = semgalamm.anova(fit_of("hsced"), fit_of("hsced_homoscedastic"),
                            names=["varident", "homoscedastic"])
    assert list(table.index) == ["homoscedastic", "varident"]
    expected = 2 * (ref["hsced"]["logLik"] - ref["hsced_homoscedastic"]["logLik"])
    assert table["Chisq"].iloc[1] == pytest.approx(expected, abs=2e-3)
    assert table["Df"].iloc[1] == 1
    assert table["Pr(>Chisq)"].iloc[1] < 1e-9


# ----------------------------------------------------------------- mixed response families

@pytest.mark.parametrize("case", ["mresp", "mresp_hsced", "diet", "diet0"])
def test_mixed_families_match_the_independent_laplace(case):
    ref = fixture("mixed_family")[case]["laplace"]
    fit = fit_of(case)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    names = list(ref["beta"]) if isinstance(ref["beta"], dict) else list(fit.fixef.index)
    np.testing.assert_allclose(fit.fixef[names], list(ref["beta"].values()), rtol=1e-3)
    np.testing.assert_allclose(fit.fixef_se[names], ref["se_beta"], rtol=1e-2)
    if ref["lambda"]:
        free = fit.loading_estimates().query("free")
        assert free["estimate"].iloc[0] == pytest.approx(ref["lambda"], rel=1e-3)
        assert free["se"].iloc[0] == pytest.approx(ref["se_lambda"], rel=1e-2)
    vc = fit.varcorr()
    assert vc.loc[vc.group == "id", "sd"].iloc[0] == pytest.approx(ref["sd_latent"], rel=1e-3)
    np.testing.assert_allclose(fit.residual_sd()["sd"], np.ravel(ref["sigma_by_group"]),
                               rtol=1e-3)


def test_likelihood_ratio_test_of_diet_models():
    ref = fixture("mixed_family")
    table = semgalamm.anova(fit_of("diet"), fit_of("diet0"), names=["full", "nested"])
    expected = 2 * (ref["diet"]["laplace"]["logLik"] - ref["diet0"]["laplace"]["logLik"])
    assert list(table.index) == ["nested", "full"]
    assert table["Df"].iloc[1] == 3
    assert table["Chisq"].iloc[1] == pytest.approx(expected, abs=2e-3)
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(0.6349, abs=1e-3)
    assert table["AIC"].iloc[1] == pytest.approx(fit_of("diet").aic)


# ----------------------------------------------------------------- an independent Laplace

def cluster_loglik(y, family, nu_fixed, ell, sigma_row, cluster, sd_latent, nodes=0):
    """log L of a model with one scalar latent b_c ~ N(0, sd^2) per cluster and row predictor
    nu_fixed + ell * b: per cluster Newton to the mode of h(b), then the Laplace
    approximation (nodes=0) or adaptive Gauss-Hermite quadrature with ``nodes`` nodes."""
    gaussian = family == "gaussian"
    n_clusters = cluster.max() + 1

    def h_derivatives(b):
        nu = nu_fixed + ell * b[cluster]
        mu = np.where(gaussian, nu, expit(nu))
        var = np.where(gaussian, 1.0 / sigma_row**2, mu * (1 - mu))
        resid = np.where(gaussian, (y - nu) / sigma_row**2, y - mu)
        grad = np.bincount(cluster, ell * resid, n_clusters) - b / sd_latent**2
        hess = -np.bincount(cluster, ell**2 * var, n_clusters) - 1 / sd_latent**2
        return grad, hess

    def h(b):
        nu = nu_fixed + ell * b[cluster]
        logf = np.where(gaussian,
                        -0.5 * ((y - nu) / sigma_row) ** 2 - np.log(sigma_row)
                        - 0.5 * np.log(2 * np.pi),
                        y * nu - np.logaddexp(0, nu))
        prior = -0.5 * (b / sd_latent) ** 2 - np.log(sd_latent) - 0.5 * np.log(2 * np.pi)
        return np.bincount(cluster, logf, n_clusters) + prior

    b = np.zeros(n_clusters)
    for _ in range(50):
        grad, hess = h_derivatives(b)
        b = b - grad / hess
    _, hess = h_derivatives(b)
    scale = 1.0 / np.sqrt(-hess)
    if nodes == 0:
        return float(np.sum(h(b) + 0.5 * np.log(2 * np.pi) + np.log(scale)))
    x, w = np.polynomial.hermite.hermgauss(nodes)
    terms = np.array([h(b + np.sqrt(2) * scale * xk) + xk**2 for xk in x])
    log_integral = np.log(np.sqrt(2) * scale) + np.logaddexp.reduce(
        terms + np.log(w)[:, None], axis=0)
    return float(np.sum(log_integral))


def _cluster_inputs(case: str, fit: semgalamm.FitResult, beta, lam, sigmas):
    """Rows' response, family, fixed predictor, loading and residual SD, for ``case``."""
    d = fit.design
    table = fit.fitted_table()
    ell = np.ones(d.n) if d.loadings is None else d.row_loadings(np.atleast_1d(lam))[:, 0]
    groups = d.dispersion_group
    sigma_row = np.where(groups >= 0, np.asarray(sigmas)[np.maximum(groups, 0)], 1.0)
    cluster = d.blocks[0].index
    nu_fixed = d.X(d.row_loadings(np.atleast_1d(lam))) @ beta
    return d.y, table["family"].to_numpy(), nu_fixed, ell, sigma_row, cluster


@pytest.mark.parametrize("case", ["mresp", "mresp_hsced", "diet"])
def test_laplace_deviance_equals_a_per_cluster_laplace(case):
    """Away from the optimum, at perturbed parameters, our deviance is the per-cluster
    Laplace approximation written above."""
    fit = fit_of(case)
    x = fit.optimizer.x * 1.1
    parts = fit.laplace.layout.unpack(x)
    sd_latent = parts["theta"][0]
    inputs = _cluster_inputs(case, fit, parts["beta"], parts["lambda"],
                             np.exp(parts["log_sigma"]))
    expected = cluster_loglik(*inputs, sd_latent)
    assert -0.5 * fit.laplace.deviance(x) == pytest.approx(expected, abs=1e-6)
    fit.laplace.deviance(fit.optimizer.x)  # restore the warm start


@pytest.mark.parametrize("case", ["mresp", "diet"])
def test_quadrature_reference_reproduced(case):
    """The reference's quadrature log-likelihood, from its estimates, with 30 nodes: it is the
    exact marginal likelihood that galamm 0.3.0's mixed-family value is not."""
    ref = fixture("mixed_family")[case]["agq"]
    fit = fit_of(case)
    beta = np.array(list(ref["beta"].values()))
    inputs = _cluster_inputs(case, fit, beta, ref["lambda"], [ref["sigma_by_group"]])
    assert cluster_loglik(*inputs, ref["sd_latent"], nodes=30) == pytest.approx(
        ref["logLik"], abs=2e-3)
    galamm = fixture("mixed_family")["galamm_mixed_family_logLik"].get(case)
    if galamm is not None:  # galamm's value exceeds the maximum of the exact likelihood
        assert galamm > ref["logLik"] + 1.0


# ----------------------------------------------------------------- forms of family=

def test_family_forms_agree():
    data = mixed_data("mresp")
    reference = fit_of("mresp").loglik
    forms = [
        list(data["family"]),
        {"a": "gaussian", "b": "binomial"},
        {"itemgroup": {"b": "binomial"}, "default": "gaussian"},
    ]
    for form in forms:
        fit = semgalamm.fit(MRESP, data, family=form)
        assert fit.loglik == pytest.approx(reference, abs=1e-6)


def test_fitted_values_per_family():
    fit = fit_of("mresp")
    table = fit.fitted_table()
    gaussian = table["family"] == "gaussian"
    np.testing.assert_allclose(table.loc[gaussian, "fitted"],
                               table.loc[gaussian, "linear_predictor"])
    np.testing.assert_allclose(table.loc[~gaussian, "fitted"],
                               expit(table.loc[~gaussian, "linear_predictor"]))
    assert set(fit.families["family"]) == {"gaussian", "binomial"}
    text = fit.summary()
    assert "itemgroup[a]" in text and "itemgroup[b]" in text and "binomial" in text


def test_heteroscedastic_summary_reports_groups():
    text = fit_of("mresp_hsced").summary()
    assert "Residual standard deviation by grp" in text
    assert "grp=b" in text


def test_binomial_trials_in_a_mixed_model_equal_bernoulli_rows():
    """A binomial row with N trials is N Bernoulli rows, up to the constant log C(N, y)."""
    rng = np.random.default_rng(3)
    data = mixed_data("mresp").query("id < 150").reset_index(drop=True)
    binary = data["family"] == "binomial"
    data["n"] = np.where(binary, 3, 1)
    data.loc[binary, "y"] = rng.binomial(3, 0.6, binary.sum())
    data["failures"] = data["n"] - data["y"]
    aggregated = semgalamm.fit(MRESP.replace("y ~ x", "cbind(y, failures) ~ x"), data,
                               family="family")
    rows = []
    for _, row in data.iterrows():
        if row["family"] == "gaussian":
            rows.append(row)
        else:
            for k in range(3):
                rows.append(row.copy().set_axis(row.index).copy())
                rows[-1]["y"] = float(k < row["y"])
    expanded = pd.DataFrame(rows).reset_index(drop=True)
    bernoulli = semgalamm.fit(MRESP, expanded, family="family")
    n, y = data.loc[binary, "n"], data.loc[binary, "y"]
    constant = np.sum(gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1))
    assert aggregated.loglik == pytest.approx(bernoulli.loglik + constant, abs=1e-4)
    np.testing.assert_allclose(aggregated.fixef, bernoulli.fixef, rtol=1e-4)


# ----------------------------------------------------------------- bad input

def test_gaussian_rows_of_a_cbind_response_need_one_trial():
    data = mixed_data("mresp")
    data["failures"] = 1 - data["y"]
    data.loc[0, "failures"] = 5.0
    with pytest.raises(DataError, match=r"1 gaussian row\(s\) \(index 0\).*failures = 1"):
        semgalamm.fit(MRESP.replace("y ~ x", "cbind(y, failures) ~ x"), data, family="family")


def test_unknown_family_in_a_sequence():
    data = mixed_data("mresp")
    families = list(data["family"])
    families[3] = "tweedie"
    with pytest.raises(DataError, match=r'Unknown family "tweedie".*gaussian.*in family'):
        semgalamm.fit(MRESP, data, family=families)


def test_unknown_family_name_suggests_the_nearest():
    with pytest.raises(DataError, match=r"Unknown family \"binomal\".*Did you mean 'binomial'"):
        semgalamm.fit(MRESP, mixed_data("mresp"), family="binomal")


def test_binomial_row_not_binary_names_the_rows():
    data = mixed_data("mresp")
    data.loc[[2, 7], "y"] = [2.0, 0.5]
    with pytest.raises(DataError, match=r"2 binomial row\(s\) \(index 2, 7\)"):
        semgalamm.fit(MRESP, data, family="family")


@pytest.mark.parametrize("value", [-1.0, 0.5])
def test_poisson_row_negative_or_fractional_names_the_row(value):
    data = mixed_data("mresp")
    data["family"] = data["family"].replace({"binomial": "poisson"})
    data.loc[3, "y"] = value
    with pytest.raises(DataError, match=r"1 poisson row\(s\) \(index 3\).*non-negative integer"):
        semgalamm.fit(MRESP, data, family="family")


def test_family_mapping_with_a_level_the_data_lack():
    with pytest.raises(DataError, match=r"level 'c' of column 'itemgroup'"):
        semgalamm.fit(MRESP, mixed_data("mresp"), family={"a": "gaussian", "c": "binomial"})


def test_family_mapping_without_default_for_a_level():
    with pytest.raises(DataError, match=r"no family for level\(s\) a .*\"default\""):
        semgalamm.fit(MRESP, mixed_data("mresp"), family={"itemgroup": {"b": "binomial"}})


def test_residual_groups_need_gaussian_rows():
    data = mixed_data("mresp").query("family == 'binomial'")
    with pytest.raises(SpecError, match="apply to Gaussian rows"):
        semgalamm.fit("y ~ x + (1 | id); y ~~ (1 | itemgroup)", data, family="binomial")


def test_residual_group_selector_must_cover_gaussian_rows():
    data = mixed_data("mresp_hsced")
    data.loc[0, "isgauss"] = 0
    with pytest.raises(DataError, match=r"1 Gaussian row\(s\) \(index 0\) have 'isgauss' = 0"):
        semgalamm.fit("y ~ x + (1 | id); y ~~ (0 + isgauss | grp)", data, family="family")


def test_galamm_selector_form_is_accepted():
    fit = semgalamm.fit("y ~ x + (1 | id)", mixed_data("mresp_hsced"), family="family",
                        dispformula="~ (0 + isgauss | grp)")
    assert fit.loglik == pytest.approx(fit_of("mresp_hsced").loglik, abs=1e-6)


def test_dispformula_given_twice():
    with pytest.raises(SpecError, match="given twice"):
        semgalamm.fit(HSCED, load_csv("hsced.csv"), dispformula="~ (1 | item)")


def test_anova_refuses_other_rows_and_reml():
    data = load_csv("hsced.csv")
    fewer = semgalamm.fit("y ~ x + (1 | id)", data.iloc[:600])
    with pytest.raises(SpecError, match="other rows"):
        semgalamm.anova(fit_of("hsced"), fewer)
    reml = semgalamm.fit("y ~ x + (1 | id)", data, reml=True)
    with pytest.raises(SpecError, match="REML"):
        semgalamm.anova(fit_of("hsced"), reml)
    with pytest.raises(SpecError, match="two or more"):
        semgalamm.anova(fit_of("hsced"))
