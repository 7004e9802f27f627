"""A fit's parameters on the scale users read them (lme4's ``confint`` rows): SDs and
correlations of the random effects, residual SDs, fixed effects and loadings.

A random term with relative covariance factor T has covariance s^2 T T' (s = sigma for the
profiled Gaussian objective, 1 otherwise); its SDs and correlations are named as lme4's
``oldNames = FALSE``: ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``. Back
from SDs D and correlations R: T = (D / s) chol(R), lower triangular with T T' s^2 = D R D.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from semgalamm.design.design import Design

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult

FloatArray = NDArray[np.float64]


def variance_names(design: Design) -> list[str]:
    """One name per theta element: an SD for a diagonal element, a correlation otherwise."""
    names = []
    for block in design.blocks:
        if block.scalar:
            names.append(f"sd_{block.group}")
            continue
        rows, cols = block._theta_positions()
        for r, c in zip(rows, cols):
            names.append(f"sd_{block.columns[r]}|{block.group}" if r == c else
                         f"cor_{block.columns[r]}.{block.columns[c]}|{block.group}")
    return names


def is_correlation(design: Design) -> NDArray[np.bool_]:
    return np.array([name.startswith("cor_") for name in variance_names(design)], dtype=bool)


def variance_values(design: Design, theta: FloatArray, scale: float) -> FloatArray:
    """theta -> the SDs and correlations (theta's order); a correlation with an SD of 0 is 0."""
    out, at = [], 0
    for block in design.blocks:
        part = theta[at:at + block.n_theta]
        at += block.n_theta
        if block.scalar:
            out.append(scale * np.abs(part))
            continue
        T = block.factor(part)
        cov = scale**2 * T @ T.T
        sd = np.sqrt(np.diag(cov))
        rows, cols = block._theta_positions()
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where(np.outer(sd, sd) > 0, cov / np.outer(sd, sd), 0.0)
        out.append(np.where(rows == cols, sd[rows], corr[rows, cols]))
    return np.concatenate(out or [np.zeros(0)])


def theta_from_variance(design: Design, values: FloatArray, scale: float
                        ) -> FloatArray | None:
    """SDs and correlations -> theta; None when the correlations are not a correlation
    matrix (not positive definite) or the scale is not positive."""
    if not scale > 0:
        return None
    out, at = [], 0
    for block in design.blocks:
        part = values[at:at + block.n_theta]
        at += block.n_theta
        if block.scalar or not block.correlated:
            out.append(part / scale)
            continue
        rows, cols = block._theta_positions()
        sd = np.zeros(block.k)
        R = np.eye(block.k)
        for v, r, c in zip(part, rows, cols):
            if r == c:
                sd[r] = v
            else:
                R[r, c] = R[c, r] = v
        try:
            L = np.linalg.cholesky(R)
        except np.linalg.LinAlgError:
            return None
        T = (sd / scale)[:, None] * L
        out.append(T[rows, cols])
    return np.concatenate(out or [np.zeros(0)])


def sigma_names(fit: FitResult) -> list[str]:
    """The residual SDs: "sigma" (or "sigma <group>" per variance group of Gaussian rows)."""
    levels = fit.design.dispersion_levels
    if len(levels) <= 1:
        return ["sigma"] * len(levels)
    return [f"sigma {level}" for level in levels]


def parameter_estimates(fit: FitResult) -> pd.Series:
    """SDs and correlations of the random effects, residual SDs, fixed effects, free
    loadings (and regressions among latents) and family parameters on the optimizer's scale
    (``log(size)``), named as in ``fit.confint()``."""
    d, state = fit.design, fit.state
    scale = state.sigma if fit.laplace.profiled else 1.0
    names = variance_names(d) + sigma_names(fit) + list(d.fixed_names)
    values = [variance_values(d, state.theta, scale), fit._group_sigma(), state.beta]
    if d.loadings is not None:
        names += list(d.loadings.lambda_names)
        values.append(state.lam)
    family = fit.laplace.layout.slices().get("family")
    if family is not None:  # negative binomial log size, Gamma log dispersion, thresholds
        names += list(fit.laplace.layout.names[family])
        values.append(fit.optimizer.x[family])
    return pd.Series(np.concatenate(values), index=names, name="estimate")
