"""Residuals of a fitted GALAMM, as R's ``residuals(fit, type =)`` for lme4 fits.

With y the response (binomial: the proportion of its N trials), mu the fitted mean on that
scale, V(mu) the variance function and w the prior weights (binomial: times N),

    response   y - mu
    pearson    (y - mu) sqrt(w / V(mu))        (V = 1 for Gaussian rows, mu + mu^2 / size
                                                for negative binomial ones)
    deviance   sign(y - mu) sqrt(w d(y, mu)),  d the unit deviance
    working    (y - mu) / (dmu/dnu)            (any link)

``scaled=True`` divides by the row's residual SD (Gaussian rows; lme4's ``scaled = TRUE``,
which summary() shows as "Scaled residuals").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy.special import xlogy

from semgalamm.results.checks import check_choice

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult

FloatArray = NDArray[np.float64]
RESIDUAL_TYPES = ("response", "pearson", "deviance", "working")


def family_parameters(fit: FitResult) -> FloatArray:
    """psi (n, 2), each row's family parameters at the estimates (negative binomial: log
    size; Gamma: log dispersion; 0 where unused)."""
    if fit.optimizer.x.size == 0:  # a Gaussian model in closed form
        return np.zeros((fit.design.n, 2))
    return fit.laplace._family_parameters(fit.optimizer.x)


def mean_derivative(fit: FitResult, nu: FloatArray) -> FloatArray:
    """dmu/dnu per row on the proportion scale, by central differences of g^{-1} (any link;
    relative error about 1e-10)."""
    fam, ones = fit.design.families, np.ones(nu.size)
    h = 1e-5 * np.maximum(1.0, np.abs(nu))
    return (fam.mean(nu + h, ones) - fam.mean(nu - h, ones)) / (2 * h)


def variance_function(fit: FitResult, mu: FloatArray) -> FloatArray:
    """V(mu) per row on the proportion scale: 1 (Gaussian), mu (1 - mu), mu, mu^2 (Gamma),
    mu + mu^2 / size (negative binomial, R's negative.binomial(theta))."""
    fam = fit.design.families
    v = np.ones_like(mu)
    b = fam.mask("binomial")
    v[b] = mu[b] * (1 - mu[b])
    counts = fam.mask("poisson") | fam.mask("negative_binomial")
    v[counts] = mu[counts]
    nb = fam.mask("negative_binomial")
    v[nb] += mu[nb] ** 2 / np.exp(family_parameters(fit)[nb, 0])
    g = fam.mask("gamma")
    v[g] = mu[g] ** 2
    return v


def unit_deviance(fit: FitResult, y: FloatArray, mu: FloatArray) -> FloatArray:
    """d(y, mu) per row on the proportion scale, times the trials for binomial rows (R's
    family()$dev.resids without prior weights)."""
    fam, trials = fit.design.families, fit.design.trials
    dev = (y - mu) ** 2
    b = fam.mask("binomial")
    dev[b] = 2 * trials[b] * (xlogy(y[b], y[b] / mu[b])
                              + xlogy(1 - y[b], (1 - y[b]) / (1 - mu[b])))
    p = fam.mask("poisson")
    dev[p] = 2 * (xlogy(y[p], y[p] / mu[p]) - (y[p] - mu[p]))
    nb = fam.mask("negative_binomial")
    size = np.exp(family_parameters(fit)[nb, 0])
    dev[nb] = 2 * (xlogy(y[nb], y[nb] / mu[nb])
                   - (y[nb] + size) * np.log((y[nb] + size) / (mu[nb] + size)))
    g = fam.mask("gamma")
    dev[g] = -2 * (np.log(y[g] / mu[g]) - (y[g] - mu[g]) / mu[g])
    dev[fam.mask("ordinal")] = np.nan
    return dev


def residuals(fit: FitResult, type: str = "response", scaled: bool = False) -> FloatArray:
    """Residuals of every row (module docstring); NaN for ordinal rows."""
    check_choice(type, RESIDUAL_TYPES, "type")
    d = fit.design
    y = d.y / d.trials
    mu = fit.fitted()
    raw = y - mu
    if type == "response":
        out = raw
    elif type == "working":
        out = raw / mean_derivative(fit, fit.state.nu)
    elif type == "pearson":
        out = raw * np.sqrt(d.weights * d.trials / variance_function(fit, mu))
    else:
        out = np.sign(raw) * np.sqrt(np.maximum(d.weights * unit_deviance(fit, y, mu), 0.0))
    if scaled:
        gaussian = d.families.mask("gaussian")
        out = np.where(gaussian, out / np.where(gaussian, fit._row_sigma(), 1.0), out)
    return out
