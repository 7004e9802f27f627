"""predict() and residuals() against lme4 (tests/reference/inference_fits.R).

Predictions and residuals are compared at lme4's own estimates (the fit re-evaluated at
lme4's theta and beta), so that they test the prediction code to 1e-6 and not the optimizer;
at our optimum they agree to the tolerance of the estimates (1e-3 relative)."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError, UnsupportedError
from semgalamm.results.fit_result import FitResult
from tests.conftest import fixture, load_csv

MODELS = {"sleepstudy": ("sleepstudy", "gaussian"), "cbpp": ("cbpp", "binomial"),
          "cbpp_poisson": ("cbpp", "poisson"),
          "cbpp_probit": ("cbpp", "binomial(link = 'probit')"),
          "ticks_nb": ("grouseticks.csv", "negative_binomial")}


def _data(name: str) -> pd.DataFrame:
    if name.endswith(".csv"):
        return load_csv(name, {"YEAR": None, "BROOD": None})
    return semgalamm.load_dataset(name)


def reference(case: str) -> dict:
    return fixture("inference")[case]


@cache
def our_fit(case: str) -> FitResult:
    data, family = MODELS[case]
    model = reference(case)["model"].replace("log(size)", "np.log(size)")
    return semgalamm.fit(model, _data(data), family=family)


@cache
def fit_at_lme4(case: str) -> FitResult:
    """Our fit evaluated at lme4's estimates (theta; and beta for GLMMs, an outer parameter)."""
    fit, ref = our_fit(case), reference(case)
    x = np.atleast_1d(ref["theta"]).astype(float)
    if not fit.laplace.profiled:
        x = np.concatenate([x, ref["beta"], np.log(np.atleast_1d(ref.get("size", [])))])
    return FitResult.from_fit(fit.model, fit.syntax, fit.spec, fit.laplace,
                              replace(fit.optimizer, x=x), fit.rows, fit.families)


@pytest.mark.parametrize("case", ["sleepstudy", "cbpp", "cbpp_poisson"])
def test_predictions_at_the_fitted_rows_equal_lme4(case):
    ref, fit = reference(case), fit_at_lme4(case)
    np.testing.assert_allclose(fit.predict(type="link"), ref["predict_conditional"],
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(fit.predict(conditional=False, type="link"),
                               ref["predict_population"], rtol=0, atol=1e-6)
    if "predict_response" in ref:
        np.testing.assert_allclose(fit.predict(), ref["predict_response"], atol=1e-6)
        np.testing.assert_allclose(fit.predict(conditional=False),
                                   ref["predict_population_response"], atol=1e-6)
    # at our own optimum: the tolerance of the estimates
    ours = our_fit(case).predict(type="link")
    np.testing.assert_allclose(ours, ref["predict_conditional"], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("case", ["sleepstudy", "cbpp"])
def test_new_levels_are_predicted_at_zero_as_lme4(case):
    ref, fit = reference(case), fit_at_lme4(case)
    new = pd.DataFrame(ref["newdata"])
    predicted = fit.predict(new, allow_new_levels=True, type="link")
    np.testing.assert_allclose(predicted, ref["predict_new"], rtol=0, atol=1e-6)
    population = fit.predict(new, conditional=False, type="link")
    unseen = new.iloc[:, 1].astype(str).str.startswith("new").to_numpy()
    np.testing.assert_allclose(predicted[unseen], population[unseen], rtol=0, atol=1e-12)


def test_unseen_levels_and_missing_columns_are_named():
    fit = our_fit("sleepstudy")
    new = pd.DataFrame({"Days": [1, 2], "Subject": ["308", "999"]})
    with pytest.raises(DataError, match="'999' of 'Subject'.*allow_new_levels=True"):
        fit.predict(new)
    with pytest.raises(DataError, match="The variable 'Subject' is not a column"):
        fit.predict(new.drop(columns="Subject"))
    with pytest.raises(DataError, match="'Days'"):
        fit.predict(new.drop(columns="Days"), conditional=False)
    # a level given as a number matches the fitted level of the same value
    np.testing.assert_allclose(fit.predict(new.assign(Subject=[308.0, 308])),
                               fit.predict(new.assign(Subject=["308", "308"])))


@pytest.mark.parametrize("case", ["sleepstudy", "cbpp"])
def test_population_standard_errors_equal_x_vcov_x(case):
    """sqrt(diag(X vcov X')) with lme4's vcov; ours is the inverse observed information, equal
    to lme4's within the standard-error tolerance (2e-2)."""
    table = our_fit(case).predict(conditional=False, type="link", se_fit=True)
    assert list(table.columns) == ["fit", "se_fit"]
    np.testing.assert_allclose(table["se_fit"], reference(case)["se_population"], rtol=2e-2)
    with pytest.raises(UnsupportedError, match="conditional=False, type='link'"):
        our_fit(case).predict(se_fit=True)


@pytest.mark.parametrize("case", list(MODELS))
@pytest.mark.parametrize("kind", ["response", "pearson", "deviance", "working"])
def test_residuals_equal_lme4(case, kind):
    """Binomial with trials (cbind), Poisson with an offset, Gaussian (R's Pearson residuals
    of an lmer fit are not divided by sigma; scaled=True does), binomial with a probit link
    and glmer.nb's negative binomial (variance mu + mu^2 / size)."""
    fit = fit_at_lme4(case)
    # At lme4's estimates our conditional modes agree to 1e-7 for canonical links, to 1e-6
    # for the probit link (R's PIRLS tolerance) and to 1e-3 for glmer.nb (whose Laplace
    # log-likelihood at the same parameters is 0.3 away from ours, tests/test_families_fits);
    # a wrong variance or deviance formula is off by more than 0.1.
    tolerance = {"cbpp_probit": 1e-5, "ticks_nb": 2e-3}.get(case, 1e-6)
    np.testing.assert_allclose(fit.residuals(kind), reference(case)["residuals"][kind],
                               rtol=tolerance, atol=tolerance)


def test_scaled_residuals_divide_by_sigma():
    fit = our_fit("sleepstudy")
    np.testing.assert_allclose(fit.residuals("pearson", scaled=True),
                               fit.residuals("pearson") / fit.sigma)


def test_loadings_in_predictions():
    """A loading model: the conditional prediction at the fitted rows is the fitted linear
    predictor, the population one drops Z(lambda) b exactly, and a new row of indicator 2
    gets item 2's loading times its level's random effects."""
    data = load_csv("galamm_t_lmm_irtsub.csv")
    fit = semgalamm.fit("abil.sid =~ 1*item[1] + item[2] + item[3]; "
                        "abil.sid ~ (1 | school/sid); y ~ 0 + item", data)
    np.testing.assert_allclose(fit.predict(), fit.linear_predictor(), atol=1e-10)
    new = data.iloc[[0, 100]].assign(item=[2, 2])
    lam = fit.loadings.iloc[1, 0]
    effects = fit.ranef()
    b = [effects["school"].loc[str(s)].iloc[0] + effects["school:sid"].loc[f"{s}:{i}"].iloc[0]
         for s, i in zip(new["school"], new["sid"])]
    expected = fit.fixef["item2"] + lam * np.array(b)
    np.testing.assert_allclose(fit.predict(new), expected, atol=1e-10)
    np.testing.assert_allclose(fit.predict(new, conditional=False), fit.fixef["item2"])


def test_population_standard_errors_of_a_smooth_equal_mgcv():
    """gamm4(y ~ s(x), REML = FALSE): predict(fit$gam, newdata, se.fit = TRUE), from mgcv's
    posterior covariance Vp of the fixed and penalized coefficients."""
    ref = reference("gamm4_smooth")
    fit = semgalamm.fit(ref["model"], load_csv(ref["data"]))
    table = fit.predict(pd.DataFrame(ref["newdata"]), conditional=False, type="link",
                        se_fit=True)
    np.testing.assert_allclose(table["fit"], ref["predict_new"], rtol=1e-6)
    np.testing.assert_allclose(table["se_fit"], ref["se_new"], rtol=1e-6)


def test_ordinal_probabilities_and_probs_on_other_fits():
    """predict(type="probs") on wine: rows sum to 1, the same at newdata = the data, and the
    probability of each row's observed category is exp of its log-likelihood given nu (the
    family's own loglik); a non-ordinal fit, or probs at the population level, is refused."""
    from semgalamm.inference.residuals import family_parameters

    wine = semgalamm.load_dataset("wine")
    fit = semgalamm.fit("rating ~ temp + contact + (1 | judge)", wine, family="ordinal")
    probs = fit.predict(type="probs")
    assert list(probs.columns) == ["1", "2", "3", "4", "5"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(fit.predict(wine, type="probs"), probs, atol=1e-10)
    d = fit.design
    observed = probs.to_numpy()[np.arange(d.n), d.y.astype(int)]
    loglik = d.families.loglik(d.y, fit.state.nu, d.weights, d.trials, family_parameters(fit))
    np.testing.assert_allclose(np.log(observed), loglik, atol=1e-10)
    with pytest.raises(UnsupportedError, match="conditional modes"):
        fit.predict(type="probs", conditional=False)
    with pytest.raises(UnsupportedError, match="no mean on the response scale: use type='probs'"):
        fit.predict()
    cbpp = semgalamm.load_dataset("cbpp")
    binomial = semgalamm.fit("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                             family="binomial")
    with pytest.raises(UnsupportedError, match="binomial rows only. Use type='response'"):
        binomial.predict(type="probs")
