"""Adaptive Gauss-Hermite quadrature, ``fit(..., n_agq=)``, against glmer(nAGQ = k) on cbpp
(tests/reference/quadrature_fits.R, tests/fixtures/quadrature.json); n_agq=1 is the Laplace
fit; the exact gradient (through the modes and curvatures) equals central differences for
families with parameters (Gamma dispersion, ordinal thresholds, NB size); models with more
than one random effect per row are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import semgalamm
from semgalamm.errors import UnsupportedError
from semgalamm.laplace.model import LaplaceModel
from semgalamm.laplace.quadrature import AdaptiveQuadrature
from tests.test_gradient import central_differences

DATA = Path(__file__).parent / "data"
REF = json.loads((Path(__file__).parent / "fixtures" / "quadrature.json").read_text())
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _cbpp() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "cbpp.csv")
    return frame.assign(period=frame.period.astype("category"), herd=frame.herd.astype(str))


@pytest.mark.parametrize("case", ["cbpp_logit_agq15", "cbpp_probit_agq15", "cbpp_logit_agq5",
                                  "cbpp_logit_agq1"])
def test_equals_glmer_nagq(case):
    """lme4's nAGQ > 1 logLik sums deviance residuals; ``loglik_full`` adds the constant
    (the R script), so it is the log-likelihood with every constant, as ours."""
    ref = REF[case]
    link = "probit" if "probit" in case else "logit"
    n_agq = int(case.rsplit("agq", 1)[1])
    fit = semgalamm.fit(CBPP, _cbpp(), family=f"binomial(link='{link}')", n_agq=n_agq)
    assert fit.converged and fit.laplace.n_agq == n_agq
    assert fit.loglik == pytest.approx(ref["loglik_full"], abs=1e-3)
    names = list(ref["fixef"])
    assert fit.fixef[names].to_numpy() == pytest.approx(list(ref["fixef"].values()), rel=1e-3)
    se = np.sqrt(np.diag(fit.vcov().loc[names, names]))
    assert se == pytest.approx(list(ref["se"].values()), rel=2e-2)
    assert fit.varcorr().dropna(subset=["sd"]).sd.iloc[0] == pytest.approx(ref["sd_herd"],
                                                                           rel=5e-3)


def test_one_node_is_the_laplace_fit():
    laplace = semgalamm.fit(CBPP, _cbpp(), family="binomial")
    one = semgalamm.fit(CBPP, _cbpp(), family="binomial", n_agq=1)
    model = LaplaceModel.create(laplace.laplace.design, n_agq=1)
    assert one.loglik == laplace.loglik
    x = laplace.optimizer.x
    quadrature = AdaptiveQuadrature(model.design, 1)
    parts = model.layout.unpack(x)
    state = quadrature.evaluate(parts["theta"], parts["beta"], parts["lambda"],
                                model._family_parameters(x))
    assert state.deviance == pytest.approx(laplace.laplace.deviance(x), rel=1e-14)


def _gamma() -> tuple[str, pd.DataFrame, str]:
    return "y ~ x + (1 | g)", pd.read_csv(DATA / "gamma_sim.csv").astype({"g": str}), \
        "gamma(link='log')"


def _wine() -> tuple[str, pd.DataFrame, str]:
    return "rating ~ temp + contact + (1 | judge)", \
        pd.read_csv(DATA / "wine.csv").astype({"judge": str}), "ordinal"


def _ticks() -> tuple[str, pd.DataFrame, str]:
    frame = pd.read_csv(DATA / "grouseticks.csv").astype({"YEAR": "category", "BROOD": str})
    return "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)", frame, "negative_binomial"


@pytest.mark.parametrize("case", [_gamma, _wine, _ticks])
def test_exact_gradient(case):
    """The gradient through u^ and h (family parameters included) equals central
    differences of the quadrature deviance (9 nodes), away from the optimum."""
    model, data, family = case()
    fit = semgalamm.fit(model, data, family=family, n_agq=9)
    laplace = fit.laplace
    x = fit.optimizer.x * 1.05 + 0.01
    value, gradient = laplace.value_and_gradient(x)
    numeric = central_differences(laplace, x)
    assert gradient == pytest.approx(numeric, rel=1e-4, abs=1e-4)
    assert value == pytest.approx(laplace.deviance(x), rel=1e-12)


def test_quadrature_differs_from_laplace_and_converges_in_nodes():
    """More nodes, a different likelihood: on wine the 9-node fit differs from the Laplace
    fit, and 9 and 15 nodes agree (the quadrature has converged)."""
    model, data, family = _wine()
    fits = [semgalamm.fit(model, data, family=family, n_agq=k).loglik for k in (1, 9, 15)]
    assert abs(fits[1] - fits[0]) > 1e-3
    assert fits[2] == pytest.approx(fits[1], abs=1e-4)


@pytest.mark.parametrize("model, family, match", [
    ("cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | period)", "binomial",
     "one random effect per cluster"),
    ("incidence ~ period + (1 | herd)", "gaussian", "Gaussian responses only"),
    ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial",
     "positive integer"),
])
def test_out_of_scope(model, family, match):
    n_agq = 0 if match == "positive integer" else 5
    with pytest.raises(UnsupportedError, match=match):
        semgalamm.fit(model, _cbpp(), family=family, n_agq=n_agq)


def test_bootstrap_refits_keep_the_quadrature():
    """A bootstrap refit (RefitPlan) of an n_agq fit uses the same quadrature: refitted to the
    original response it reproduces the fit's logLik, which differs from the Laplace one."""
    from semgalamm.inference.bootstrap import RefitPlan

    fit = semgalamm.fit(CBPP, _cbpp(), family="binomial", n_agq=9)
    again = RefitPlan.of(fit).refit(fit.design.y)
    laplace = semgalamm.fit(CBPP, _cbpp(), family="binomial")
    assert again.laplace.n_agq == 9
    assert abs(again.loglik - fit.loglik) < 1e-6
    assert abs(laplace.loglik - fit.loglik) > 1e-2
