"""Residuals of a fitted GALAMM, as R's ``residuals(fit, type =)`` for lme4 fits.

With y the response (binomial: the proportion of its N trials), mu the fitted mean on that
scale, V(mu) the variance function and w the prior weights (binomial: times N),

    response   y - mu
    pearson    (y - mu) sqrt(w / V(mu))                        (V = 1 for Gaussian rows)
    deviance   sign(y - mu) sqrt(w d(y, mu)),  d the unit deviance
    working    (y - mu) / (dmu/dnu)                            (canonical links: V(mu))

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


def unit_deviance(fit: FitResult, y: FloatArray, mu: FloatArray) -> FloatArray:
    """d(y, mu) per row on the proportion scale, times the trials for binomial rows."""
    fam, trials = fit.design.families, fit.design.trials
    dev = (y - mu) ** 2
    b = fam.mask("binomial")
    dev[b] = 2 * trials[b] * (xlogy(y[b], y[b] / mu[b])
                              + xlogy(1 - y[b], (1 - y[b]) / (1 - mu[b])))
    p = fam.mask("poisson")
    dev[p] = 2 * (xlogy(y[p], y[p] / mu[p]) - (y[p] - mu[p]))
    return dev


def residuals(fit: FitResult, type: str = "response", scaled: bool = False) -> FloatArray:
    """Residuals of every row (module docstring)."""
    check_choice(type, RESIDUAL_TYPES, "type")
    d = fit.design
    y = d.y / d.trials
    mu = fit.fitted()
    raw = y - mu
    variance = d.families.variance(fit.state.nu, np.ones(d.n))  # V(mu) = dmu/dnu, canonical
    if type == "response":
        out = raw
    elif type == "working":
        out = raw / variance
    elif type == "pearson":
        out = raw * np.sqrt(d.weights * d.trials / variance)
    else:
        out = np.sign(raw) * np.sqrt(np.maximum(d.weights * unit_deviance(fit, y, mu), 0.0))
    if scaled:
        gaussian = d.families.mask("gaussian")
        out = np.where(gaussian, out / np.where(gaussian, fit._row_sigma(), 1.0), out)
    return out
