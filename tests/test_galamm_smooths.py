"""Smooth terms against galamm 0.3.0 (and gamm4, whose ML fits galamm's response smooths
reproduce): tests/fixtures/galamm_smooths.json, written by tests/reference/galamm_smooths.py.

The unpenalized columns ``...Fx<j>`` are eigenvectors of the penalty, whose sign is arbitrary
(mgcv's LAPACK and ours may differ), so those fixed effects are compared in absolute value;
the smooth itself is sign-free. For smooths of latent traits galamm computes the effective
degrees of freedom and standard errors of the smooth from the design *without* the loadings,
so for those we compare the likelihood, estimates and the estimated function only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import semgalamm
from tests.conftest import cached_fit, fixture

SLOW = {"v_semi_factor_gaussian", "v_semi_factor_binomial", "x_gamm_byvar_loadings_converged"}
TODO = {"v_semi_factor_binomial", "x_gamm_byvar_loadings_converged", "t_gamm_byvar_loadings_maxit0"}
WORSE = {"t_lcl_smooth_int"}  # galamm stops with a variance pinned at 0
LATENT = {"t_gamm_factor_sl_tp1", "t_gamm_factor_t2l_tp1", "t_gamm_factor_re_id50",
          "v_semi_factor_gaussian", "v_semi_factor_binomial", "x_gamm_byvar_loadings_converged"}


def _ref(case: str) -> dict:
    return fixture("galamm_smooths")[case]


def _fit(case: str) -> semgalamm.FitResult:
    ref = _ref(case)
    return cached_fit(ref["model"], ref["data"], ref["family"],
                      tuple((c, None) for c in ref["factors"]))


def _cases(kind: set[str] | None = None, exclude: set[str] | None = None):
    skip = TODO | WORSE | (exclude or set())
    cases = [c for c, r in fixture("galamm_smooths").items() if r["converged"] and c not in skip]
    cases = [c for c in cases if kind is None or c in kind]
    return [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c for c in cases]


def _assert_fixef(fit: semgalamm.FitResult, ref: dict) -> None:
    ours = fit.fixef.to_numpy()
    theirs = np.array(ref["fixef"])
    fx = np.array(["Fx" in name for name in ref["fixef_names"]])
    ours = np.where(fx, np.abs(ours), ours)
    theirs = np.where(fx, np.abs(theirs), theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("case", _cases())
def test_loglik_estimates_and_smooth_match_galamm(case):
    ref = _ref(case)
    fit = _fit(case)
    assert fit.converged
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    _assert_fixef(fit, ref)
    np.testing.assert_allclose(fit.state.lam, ref["lambda"], rtol=1e-3)
    if ref["sigma"] is not None:
        assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    for smooth, values in zip(fit.design.smooths, ref["smooths"], strict=True):
        ours = fit.smooth(smooth.label, at=np.array(values["x"]))
        scale = np.ptp(values["fit"]) or 1.0
        assert np.max(np.abs(ours["estimate"] - values["fit"])) < 1e-3 * scale
    if case in LATENT:  # galamm's predict() leaves the loadings out of a latent's smooth
        return
    population = fit.predict(fit.design.frame)  # galamm's predict(): random effects at 0
    first10 = np.array(ref["predict_link_first10"])
    assert np.max(np.abs(population[:10] - first10)) < 1e-3 * np.ptp(population)


@pytest.mark.parametrize("case", _cases(exclude=LATENT))
def test_edf_and_standard_errors_match_gamm4(case):
    ref = _ref(case)
    fit = _fit(case)
    np.testing.assert_allclose(fit.smooths()["edf"].to_numpy(), ref["edf"], rtol=1e-3)
    for smooth, values in zip(fit.design.smooths, ref["smooths"], strict=True):
        ours = fit.smooth(smooth.label, at=np.array(values["x"]))
        np.testing.assert_allclose(ours["se"], values["se"], rtol=1e-3)


@pytest.mark.parametrize("case", [c for c, r in fixture("galamm_smooths").items()
                                  if "predict_newdata" in r])
def test_population_predictions_at_new_data(case):
    ref = _ref(case)
    fit = _fit(case)
    predicted = fit.predict(pd.DataFrame(ref["newdata"]))
    np.testing.assert_allclose(predicted, ref["predict_newdata"], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_same_model_as_galamm_and_a_better_optimum():
    """latent_covariates_long with a smooth: galamm stops with the variances of (0 + response
    | id) and of the smooth at 0. At galamm's estimates our deviance reproduces its
    log-likelihood (same model); our optimum is higher. With the smooth's variance at 0 the
    smooth is its unpenalized part, whose coefficients in our basis (eigenvector signs may
    differ) are the least-squares fit to galamm's smooth values."""
    ref = _ref("t_lcl_smooth_int")
    fit = _fit("t_lcl_smooth_int")
    smooth = fit.design.smooths[0]
    values = ref["smooths"][0]
    grid = pd.DataFrame({"x": values["x"], "response": 1.0})
    A = smooth.basis.predict_matrix(grid) @ smooth.mixed.coef_map[:, :len(smooth.fixed_columns)]
    beta_f = np.linalg.lstsq(A, values["fit"], rcond=None)[0]
    np.testing.assert_allclose(np.abs(beta_f), np.abs(ref["fixef"][1:]), rtol=1e-4)
    beta = np.concatenate([ref["fixef"][:1], beta_f])
    deviance = fit.laplace.objective.full_deviance(np.array(ref["theta"]), np.array(ref["lambda"]),
                                                   beta, ref["sigma"])
    assert -0.5 * deviance == pytest.approx(ref["logLik"], abs=1e-4)
    assert fit.converged
    assert fit.loglik > ref["logLik"] + 1.0
