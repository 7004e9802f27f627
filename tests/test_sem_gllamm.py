"""Wide models with non-Gaussian indicators (GLLAMMs) through the stacked long data.

Checks: (1) with Gaussian indicators only, the stacked Laplace fit equals lavaan's
covariance-structure fit (the Laplace approximation is exact for Gaussian models), complete
data and FIML; (2) with a binary indicator, the log-likelihood equals an independent
Laplace approximation computed unit by unit at the estimates, and is close to adaptive
Gauss-Hermite quadrature of the exact marginal likelihood.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, log1p

import semgalamm
from semgalamm.errors import DataError, UnsupportedError
from tests.conftest import TESTS

HS = semgalamm.load_dataset("HolzingerSwineford1939")
HS3 = "visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9"


def test_stacked_gaussian_equals_covariance_structure() -> None:
    lavaan_style = semgalamm.cfa(HS3, HS)
    stacked = semgalamm.fit(HS3, HS, family={"x1": "gaussian"})  # forces the Laplace engine
    assert stacked.loglik == pytest.approx(lavaan_style.loglik, abs=1e-5)
    ours = lavaan_style.parameter_estimates().query("op == '=~'").set_index("rhs")["est"]
    loadings = stacked.loadings
    for latent in ("visual", "textual", "speed"):
        column = loadings[latent].dropna()
        for item, value in column.items():
            assert value == pytest.approx(ours[item.split("[")[1][:-1]], rel=1e-4)


@pytest.mark.slow
def test_stacked_fiml_equals_covariance_structure() -> None:
    """Missing cells are absent rows in long data: the same likelihood as FIML."""
    data = pd.read_csv(TESTS / "data" / "HolzingerSwineford1939_missing.csv")
    fiml = semgalamm.cfa(HS3, data, missing="ml")
    stacked = semgalamm.fit(HS3, data, family={"x1": "gaussian"})
    assert stacked.loglik == pytest.approx(fiml.loglik, abs=1e-4)


def _unit_logjoint(eta, y, nu, lam, sd, psi):
    """log p(x1b, x2, x3, eta) of one unit (x1b binary, logit link)."""
    linear = nu + lam * eta
    binary = y[0] * linear[0] - log1p(np.exp(linear[0]))
    gauss = -0.5 * (((y[1:] - linear[1:]) / sd) ** 2).sum(axis=0) - np.log(
        sd * np.sqrt(2 * np.pi)).sum()
    prior = -0.5 * eta**2 / psi - 0.5 * np.log(2 * np.pi * psi)
    return binary + gauss + prior


def test_binary_indicator_matches_independent_laplace() -> None:
    data = HS.assign(x1b=(HS.x1 > HS.x1.median()).astype(int))
    fit = semgalamm.fit("visual =~ x1b + x2 + x3", data, family={"x1b": "binomial"})
    nu = fit.fixef.to_numpy()
    lam = fit.loadings["visual"].to_numpy()
    sd = fit.residual_sd()["sd"].to_numpy()
    psi = float(fit.varcorr().query("group == 'sg_unit'")["variance"].iloc[0])
    y = data[["x1b", "x2", "x3"]].to_numpy(float)
    laplace = quadrature = 0.0
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    for row in y:
        eta = 0.0
        for _ in range(50):  # Newton on the unit's latent value
            p = expit(nu[0] + lam[0] * eta)
            grad = lam[0] * (row[0] - p) + (lam[1:] * (row[1:] - nu[1:] - lam[1:] * eta)
                                            / sd**2).sum() - eta / psi
            hess = -(lam[0] ** 2) * p * (1 - p) - (lam[1:] ** 2 / sd**2).sum() - 1 / psi
            eta -= grad / hess
        p = expit(nu[0] + lam[0] * eta)
        hess = -(lam[0] ** 2) * p * (1 - p) - (lam[1:] ** 2 / sd**2).sum() - 1 / psi
        mode_value = _unit_logjoint(eta, row, nu, lam, sd, psi)
        laplace += mode_value + 0.5 * np.log(2 * np.pi) - 0.5 * np.log(-hess)
        scale = 1 / np.sqrt(-hess)  # adaptive Gauss-Hermite around the mode
        points = eta + scale * nodes
        values = np.array([_unit_logjoint(e, row, nu, lam, sd, psi) for e in points])
        quadrature += np.log(np.sum(weights * np.exp(values - mode_value + nodes**2 / 2))
                             * scale) + mode_value
    assert fit.loglik == pytest.approx(laplace, abs=1e-6)
    # The Laplace approximation is close to the exact marginal likelihood (one binary item).
    assert abs(fit.loglik - quadrature) < 0.5
    assert lam[1] == pytest.approx(0.473, abs=0.01)


def test_family_names_an_indicator() -> None:
    with pytest.raises(DataError, match=r"'x11', which is not an indicator.*x1, x2, x3"):
        semgalamm.fit("visual =~ x1 + x2 + x3", HS, family={"x11": "binomial"})


def test_unsupported_statement_with_binary_indicator() -> None:
    with pytest.raises(UnsupportedError, match=r"cannot be fitted with non-Gaussian"):
        semgalamm.fit("visual =~ x1 + x2 + x3\nx2 ~~ x3", HS, family={"x1": "gaussian"})


def test_one_family_for_every_indicator() -> None:
    """family="binomial" on a wide model: every indicator binary (a 2PL-like IRT model)."""
    items = HS[["x1", "x2", "x3", "x4"]].gt(HS[["x1", "x2", "x3", "x4"]].median()).astype(int)
    fit = semgalamm.fit("ability =~ x1 + x2 + x3 + x4", items, family="binomial")
    assert set(fit.families["family"]) == {"binomial"}
    assert fit.loadings["ability"].notna().sum() == 4
