"""The lme4/glm habits users bring: ``offset()`` in formulas, ``weights=`` (prior weights),
fixed-effects-only GLMs, ``poly()``/``scale()`` terms. Figures from
tests/fixtures/lme4_habits.json, made by tests/reference/lme4_habits.R (lme4 1.1-31 with
``glmerControl(tolPwrss = 1e-10)``, glm and lm of R 4.2.2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import DataError, SpecError, UnsupportedError
from semgalamm.results.fit_result import FitResult
from semgalamm.results.sem_result import SemFit
from tests.conftest import fixture, load_csv


def _data(name: str) -> pd.DataFrame:
    if name == "sleepstudy.csv":
        d = load_csv(name, {"Subject": None})
        return d.assign(w=1 + d.Days % 3, late=d.Days >= 5)
    if name == "cbpp.csv":
        d = load_csv(name, {"herd": None, "period": None})
        return d.assign(w=1 + np.arange(len(d)) % 2, prop=d.incidence / d["size"])
    if name == "grouseticks.csv":
        d = load_csv(name, {"YEAR": None, "BROOD": None, "LOCATION": None})
        return d.assign(w=1 + np.arange(len(d)) % 2)
    if name == "VerbAgg.csv":
        return load_csv(name, {"Gender": ["F", "M"], "btype": None, "situ": None})
    raise KeyError(name)


# id -> (model, family, options); the data file is the fixture's
CASES = {
    "cbpp_poisson_offset": ("incidence ~ period + offset(log(size)) + (1 | herd)", "poisson",
                            {}),
    "cbpp_binomial_weights": ("prop ~ period + (1 | herd)", "binomial", {"weights": "size"}),
    "sleepstudy_weights": ("Reaction ~ Days + (Days | Subject)", "gaussian", {"weights": "w"}),
    "sleepstudy_weights_reml": ("Reaction ~ Days + (Days | Subject)", "gaussian",
                                {"weights": "w", "reml": True}),
    "grouseticks_poisson_weights": ("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", "poisson",
                                    {"weights": "w"}),
    "cbpp_poisson_weights": ("incidence ~ period + (1 | herd)", "poisson", {"weights": "w"}),
    "glm_cbpp_poisson": ("incidence ~ period", "poisson", {}),
    "glm_cbpp_poisson_offset": ("incidence ~ period + offset(log(size))", "poisson", {}),
    "glm_cbpp_binomial": ("cbind(incidence, size - incidence) ~ period", "binomial", {}),
    "glm_cbpp_binomial_weights": ("prop ~ period", "binomial", {"weights": "size"}),
    "glm_verbagg_binary": ("r2 ~ Anger + Gender", "binomial", {}),
    "glm_grouseticks_poisson_weights": ("TICKS ~ YEAR + cHEIGHT", "poisson", {"weights": "w"}),
    "lm_sleepstudy_weights": ("Reaction ~ Days", "gaussian", {"weights": "w"}),
    "sleepstudy_poly": ("Reaction ~ poly(Days, 2) + (1 | Subject)", "gaussian", {}),
    "sleepstudy_scale": ("Reaction ~ scale(Days) + (1 | Subject)", "gaussian", {}),
}
_FITS: dict[str, FitResult] = {}


def _fit(case_id: str) -> FitResult:
    if case_id not in _FITS:
        model, family, options = CASES[case_id]
        data = _data(fixture("lme4_habits")["cases"][case_id]["data"])
        before = data.copy(deep=True)
        _FITS[case_id] = semgalamm.fit(model, data, family=family, **options)
        pd.testing.assert_frame_equal(data, before)
    return _FITS[case_id]


@pytest.mark.parametrize("case_id", list(CASES))
def test_loglik_and_fixed_effects_equal_r(case_id):
    ref = fixture("lme4_habits")["cases"][case_id]
    fit = _fit(case_id)
    assert isinstance(fit, FitResult)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    assert list(fit.fixef.index) == list(ref["fixef"])
    np.testing.assert_allclose(fit.fixef.to_numpy(), list(ref["fixef"].values()),
                               rtol=1e-4, atol=1e-4 * np.max(list(ref["fixef_se"].values())))


@pytest.mark.parametrize("case_id", list(CASES))
def test_standard_errors_equal_r(case_id):
    ref = fixture("lme4_habits")["cases"][case_id]
    fit = _fit(case_id)
    expected = np.array(list(ref["fixef_se"].values()))
    if case_id.startswith("lm_"):
        # lm's SEs use the unbiased sigma, ours (and lme4's) the ML one
        n, p = fit.nobs, len(expected)
        expected = expected * np.sqrt((n - p) / n)
    np.testing.assert_allclose(fit.fixef_se.to_numpy(), expected, rtol=1e-3)


@pytest.mark.parametrize("case_id", [c for c in CASES if not c.startswith(("glm", "lm"))])
def test_variance_parameters_equal_lme4(case_id):
    ref = fixture("lme4_habits")["cases"][case_id]
    fit = _fit(case_id)
    theta = fit.laplace.layout.unpack(fit.optimizer.x)["theta"]
    np.testing.assert_allclose(theta, ref["theta"], rtol=2e-3, atol=1e-4)
    if "sigma" in ref:
        assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)


def test_lme4_default_pirls_is_within_its_tolerance_of_the_exact_laplace():
    # lme4's default PIRLS (tolPwrss = 1e-7) stops early: its logLik is up to 1.2e-3 below
    # the Laplace value at its own estimates; with tolPwrss = 1e-10 it equals ours to 1e-7.
    cases = fixture("lme4_habits")["cases"]
    for case_id in ("cbpp_poisson_offset", "grouseticks_poisson_weights"):
        ref = cases[case_id]
        assert ref["logLik"] - ref["logLik_default"] == pytest.approx(0.0, abs=1.5e-3)
        assert _fit(case_id).loglik == pytest.approx(ref["logLik"], abs=1e-6)


# ------------------------------------------------------------ offsets


def test_issue_example_offset_with_np_log():
    cbpp = semgalamm.load_dataset("cbpp")
    ref = fixture("lme4_habits")["cases"]["cbpp_poisson_offset"]
    fit = semgalamm.fit("incidence ~ period + offset(np.log(size)) + (1 | herd)", cbpp,
                        family="poisson")
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-4)


def test_offsets_add_up():
    cbpp = _data("cbpp.csv")
    split = semgalamm.fit("incidence ~ period + offset(log(size) / 2) + offset(0.5 * log(size))",
                          cbpp, family="poisson")
    assert split.loglik == pytest.approx(_fit("glm_cbpp_poisson_offset").loglik, abs=1e-8)


def test_gaussian_offset_shifts_the_intercept():
    sleep = _data("sleepstudy.csv")
    plain = semgalamm.fit("Reaction ~ Days + (1 | Subject)", sleep)
    shifted = semgalamm.fit("Reaction ~ Days + offset(100 + 0 * Days) + (1 | Subject)", sleep)
    assert shifted.loglik == pytest.approx(plain.loglik, abs=1e-8)
    assert shifted.fixef["(Intercept)"] == pytest.approx(plain.fixef["(Intercept)"] - 100,
                                                         abs=1e-6)


def test_fitted_values_include_the_offset():
    fit = _fit("glm_cbpp_poisson_offset")
    cbpp = _data("cbpp.csv")
    X = pd.get_dummies(cbpp.period, drop_first=True).to_numpy(dtype=float)
    nu = fit.fixef.iloc[0] + X @ fit.fixef.iloc[1:].to_numpy() + np.log(cbpp["size"])
    np.testing.assert_allclose(fit.design.offset, np.log(cbpp["size"]))
    np.testing.assert_allclose(fit.state.nu, nu, rtol=1e-10)


def test_offset_of_new_data():
    from semgalamm.design.build import new_offset

    fit = _fit("cbpp_poisson_offset")
    new = pd.DataFrame({"incidence": [0, 0], "size": [10, 20], "period": ["1", "3"],
                        "herd": ["1", "2"]})
    np.testing.assert_allclose(new_offset(fit.spec, fit.design.frame, new), np.log([10, 20]))


@pytest.mark.parametrize("model, error, message", [
    ("f =~ 1*item[1] + item[2]; f ~ offset(x) + (1 | g); y ~ item", SpecError,
     r"'offset\(x\)' .* is in the regression of latent 'f'; an offset belongs to the observed "
     r"response's formula"),
    ("y ~ x + offset(x, z) + (1 | g)", SpecError, r"offset\(\) takes one expression"),
    ("y ~ x + offset(log(z)) + (1 | g)", DataError,
     r"The term 'I\(log\(z\)\)' .* is not finite in 1 row\(s\) \(index 0\)"),
    ("y ~ x + offset(zz) + (1 | g)", DataError, r"'zz' is not a column of the data"),
])
def test_offset_errors(model, error, message):
    data = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0], "x": [0.5, 1.0, 2.0, 1.0],
                         "z": [0.0, 1.0, 2.0, 3.0], "g": ["a", "a", "b", "b"],
                         "item": [1, 2, 1, 2]})
    with pytest.raises(error, match=message):
        semgalamm.fit(model, data)


# ------------------------------------------------------------ weights


def test_binomial_proportion_with_weights_equals_cbind():
    ref = fixture("lme4_models")["cbpp_trials"]  # glmer(cbind(incidence, size - incidence) ...)
    assert _fit("cbpp_binomial_weights").loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert _fit("glm_cbpp_binomial_weights").loglik == pytest.approx(
        _fit("glm_cbpp_binomial").loglik, abs=1e-10)


def test_binary_response_with_weights_is_the_weighted_likelihood():
    verb = _data("VerbAgg.csv").iloc[:600]
    w = 1.0 + (np.arange(len(verb)) % 3)
    weighted = semgalamm.fit("r2 ~ Anger + Gender", verb, family="binomial", weights=w)
    repeated = semgalamm.fit("r2 ~ Anger + Gender", verb.loc[verb.index.repeat(w.astype(int))],
                             family="binomial")
    assert weighted.loglik == pytest.approx(repeated.loglik, abs=1e-8)
    np.testing.assert_allclose(weighted.fixef, repeated.fixef, rtol=1e-5, atol=1e-8)


def test_weights_as_an_array_equal_weights_as_a_column():
    sleep = _data("sleepstudy.csv")
    by_array = semgalamm.fit("Reaction ~ Days + (Days | Subject)", sleep,
                             weights=sleep.w.to_numpy())
    assert by_array.loglik == pytest.approx(_fit("sleepstudy_weights").loglik, abs=1e-8)


@pytest.mark.parametrize("weights, message", [
    ("ww", r"weights='ww' is not a column of the data\. Did you mean 'w'"),
    (np.ones(10), r"weights has 10 values \(shape \(10,\)\) but the data have 180 rows"),
    (np.r_[0.0, np.ones(179)], r"must be positive finite numbers; 1 row\(s\) \(index 0\)"),
    (np.r_[np.ones(179), -1.0], r"1 row\(s\) \(index 179\) are not"),
    (np.r_[np.nan, np.ones(179)], r"positive finite numbers"),
    (["a"] * 180, r"must be numbers"),
])
def test_weight_errors(weights, message):
    sleep = _data("sleepstudy.csv")
    with pytest.raises(DataError, match=message):
        semgalamm.fit("Reaction ~ Days + (1 | Subject)", sleep, weights=weights)


def test_binomial_proportion_that_is_not_whole_successes():
    cbpp = _data("cbpp.csv")
    with pytest.raises(DataError, match=r"The binomial response 'prop' is read as a proportion "
                                        r"of weights trials .* in 34 row\(s\)"):
        semgalamm.fit("prop ~ period + (1 | herd)", cbpp, family="binomial",
                      weights=cbpp["size"] + 0.5)


def test_weights_on_a_lavaan_model_are_refused():
    hs = semgalamm.load_dataset("HolzingerSwineford1939")
    with pytest.raises(UnsupportedError, match="weights= and offset"):
        semgalamm.fit("visual =~ x1 + x2 + x3", hs, weights=np.ones(len(hs)))


# ------------------------------------------------------------ fixed effects only


def test_gaussian_regression_stays_on_the_sem_path_and_equals_ols():
    sleep = _data("sleepstudy.csv")
    fit = semgalamm.fit("Reaction ~ Days", sleep)
    assert isinstance(fit, SemFit)
    X = np.column_stack([np.ones(len(sleep)), sleep.Days])
    y = sleep.Reaction.to_numpy()
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    n = len(y)
    sigma2 = np.sum((y - X @ beta) ** 2) / n
    assert fit.loglik == pytest.approx(-0.5 * n * (np.log(2 * np.pi * sigma2) + 1), abs=1e-6)


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_issue_examples_fixed_effects_only(family):
    rng = np.random.default_rng(1)
    n = 400
    d = pd.DataFrame({"x": rng.normal(size=n), "b": rng.integers(0, 2, n)})
    d["cnt"] = rng.poisson(np.exp(1 + 0.3 * d.x))
    response = "b" if family == "binomial" else "cnt"
    fit = semgalamm.fit(f"{response} ~ x", d, family=family)
    assert isinstance(fit, FitResult) and fit.design.q == 0 and fit.converged
    # IRLS from scratch: the GLM maximum likelihood
    X = np.column_stack([np.ones(n), d.x])
    y = d[response].to_numpy(dtype=float)
    beta = np.zeros(2)
    for _ in range(50):
        eta = X @ beta
        mu = 1 / (1 + np.exp(-eta)) if family == "binomial" else np.exp(eta)
        var = mu * (1 - mu) if family == "binomial" else mu
        beta = np.linalg.solve(X.T @ (var[:, None] * X), X.T @ (var * eta + y - mu))
    np.testing.assert_allclose(fit.fixef.to_numpy(), beta, rtol=1e-6, atol=1e-8)
    se = np.sqrt(np.diag(np.linalg.inv(X.T @ (var[:, None] * X))))
    np.testing.assert_allclose(fit.fixef_se.to_numpy(), se, rtol=1e-3)
