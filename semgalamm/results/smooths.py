"""Smooth terms of a fitted model: effective degrees of freedom, the estimated functions with
standard errors and plots (predictions: semgalamm.inference.predict).

Conditional on the variance parameters and loadings, the fixed effects beta and the spherical
random effects u have the joint posterior covariance ``s^2 M^{-1}`` with

    M = [[X'WX, X'WA], [A'WX, A'WA + I]],     A = Z(lambda) Lambda_theta,

(s = sigma for all-Gaussian models, 1 otherwise; W the working weights at the mode), mgcv's
``Vp`` in mixed-model form. With ``H = A'WA + I``, ``C = H^{-1} A'WX`` and
``S = X'WX - X'WA C``, the needed blocks are ``(M^{-1})_bb = S^{-1}``,
``(M^{-1})_bu = -S^{-1} C'`` and ``(M^{-1})_uu = H^{-1} + C S^{-1} C'``. The effective
degrees of freedom of a smooth are those of its coefficients in ``F = I - M^{-1} P``
(P the penalty: 0 for beta, I for u): 1 per unpenalized column and ``k_j - tr (M^{-1})_uu``
per penalized block (Wood 2017, sec. 6.1.2).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from semgalamm.design.frame import check_columns
from semgalamm.design.smooth_terms import SmoothDesign
from semgalamm.errors import SpecError, nearest
from semgalamm.results.checks import check_level, pyplot

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Posterior:
    """Blocks of the posterior covariance of (beta, u) at the optimum, unscaled (``M^{-1}``)
    and the scale ``s^2``; ``S_inv`` = (M^{-1})_bb, ``C`` = H^{-1} A'WX."""

    S_inv: FloatArray
    C: FloatArray
    scale2: float
    fit: FitResult

    def u_block(self, rows: NDArray[np.intp]) -> tuple[FloatArray, FloatArray]:
        """((M^{-1})_bu[:, rows], (M^{-1})_uu[rows, rows])."""
        system = self.fit.laplace.objective.system
        unit = np.zeros((system.q, rows.size))
        unit[rows, np.arange(rows.size)] = 1.0
        H_inv = system.solve(unit)[rows]
        C_r = self.C[rows]
        return -self.S_inv @ C_r.T, H_inv + C_r @ self.S_inv @ C_r.T


def posterior(fit: FitResult) -> Posterior:
    """Factor H at the optimum with the working weights and form S^{-1} and C."""
    d, state = fit.design, fit.state
    ell = d.row_loadings(state.lam)
    X = d.X(ell)
    system = fit.laplace.objective.system
    values = system.values(state.theta, ell)
    if fit.laplace.profiled:  # residual variance groups enter as weights 1 / ratio^2
        w, scale2 = d.weights * (state.sigma / fit._row_sigma()) ** 2, state.sigma**2
    else:
        phi = np.where(d.families.mask("gaussian"), fit._row_sigma() ** 2, 1.0)
        w, scale2 = d.weights * d.families.variance(state.nu, d.trials) / phi, 1.0
    system.factorize(values, w)
    rhs = system.weighted_At_times(np.sqrt(w)[:, None] * X)
    C = system.solve(rhs) if system.q else np.zeros((0, d.p))
    S = X.T @ (w[:, None] * X) - rhs.T @ C
    return Posterior(np.linalg.inv(S), np.asarray(C), float(scale2), fit)


def _u_rows(fit: FitResult, smooth: SmoothDesign) -> list[NDArray[np.intp]]:
    """Positions in u of each penalized block of ``smooth``."""
    starts = np.cumsum([0] + [b.k * b.n_levels for b in fit.design.blocks])
    return [np.arange(starts[j], starts[j + 1]) for j in smooth.blocks]


def _u_scales(fit: FitResult, smooth: SmoothDesign) -> FloatArray:
    """b_j = s theta_j u_j for the smooth's penalized coefficients: the factors s theta_j."""
    d = fit.design
    s = fit.state.sigma if fit.laplace.profiled else 1.0
    theta_at = np.cumsum([0] + [b.n_theta for b in d.blocks])
    return np.concatenate([np.full(d.blocks[j].k, s * fit.state.theta[theta_at[j]])
                           for j in smooth.blocks] or [np.zeros(0)])


def _coefficients(fit: FitResult, smooth: SmoothDesign, post: Posterior
                  ) -> tuple[FloatArray, FloatArray, FloatArray, NDArray[np.intp]]:
    """The smooth's coefficients c = [beta_f; b_1; ...] and their covariance; the covariance
    of (beta, u_r), u_r the smooth's spherical random effects (``state.u``), and r."""
    d, state = fit.design, fit.state
    rows = np.concatenate(_u_rows(fit, smooth) or [np.zeros(0, dtype=np.intp)])
    p_f = len(smooth.fixed_columns)
    J = np.zeros((p_f + rows.size, d.p + rows.size))
    J[np.arange(p_f), list(smooth.fixed_columns)] = 1.0
    J[p_f + np.arange(rows.size), d.p + np.arange(rows.size)] = _u_scales(fit, smooth)
    bu, uu = post.u_block(rows)
    cov_full = post.scale2 * np.block([[post.S_inv, bu], [bu.T, uu]])
    if fit.laplace.profiled:  # M is in u sigma; state.u is u
        cov_full[d.p:] /= state.sigma
        cov_full[:, d.p:] /= state.sigma
    coefs = J @ np.concatenate([state.beta, state.u[rows]])
    return coefs, J @ cov_full @ J.T, cov_full, rows


def smooth_table(fit: FitResult) -> pd.DataFrame:
    """One row per smooth: effective degrees of freedom, basis dimension, the variance (and
    SD) of its penalized coefficients (one per penalty; the smoothing parameter is
    sigma^2 / variance for Gaussian responses)."""
    columns = ["term", "edf", "k", "variance", "sd"]
    if not fit.design.smooths:
        return pd.DataFrame(columns=columns).set_index("term")
    post = posterior(fit)
    d = fit.design
    theta_at = np.cumsum([0] + [b.n_theta for b in d.blocks])
    s = fit.state.sigma if fit.laplace.profiled else 1.0
    rows = []
    for smooth in d.smooths:
        blocks = _u_rows(fit, smooth)
        traces = [np.trace(post.u_block(r)[1]) for r in blocks]
        edf = len(smooth.fixed_columns) + sum(r.size - t for r, t in zip(blocks, traces))
        variances = [(s * fit.state.theta[theta_at[j]]) ** 2 for j in smooth.blocks]
        rows.append((smooth.label, edf, len(smooth.fixed_columns) + smooth.n_penalized,
                     ", ".join(f"{v:.4g}" for v in variances),
                     ", ".join(f"{np.sqrt(v):.4g}" for v in variances)))
    return pd.DataFrame(rows, columns=columns).set_index("term")


def find_smooth(fit: FitResult, term: str | int, method: str = "smooth") -> SmoothDesign:
    """The smooth labelled ``term`` (spaces ignored) or at position ``term``; a SpecError
    naming the model's smooths (or saying it has none) otherwise."""
    smooths = fit.design.smooths
    if not smooths:
        raise SpecError(
            f"This model has no smooth terms, so {method}() has nothing to show. Smooths are "
            "formula terms such as s(x) or t2(x, z) (docs/smooths.md); fixed effects are in "
            "fit.fixef, random effects in fit.ranef()."
        )
    labels = [s.label for s in smooths]
    listing = ", ".join(f"'{label}'" for label in labels)
    count = f"{len(labels)} smooth{'s' if len(labels) > 1 else ''}"
    theirs = f"The model's smooth{'s are' if len(labels) > 1 else ' is'} {listing}."
    if isinstance(term, numbers.Integral) and not isinstance(term, bool):
        if -len(smooths) <= term < len(smooths):
            return smooths[int(term)]
        raise SpecError(f"{method}({term}): the model has {count}, at positions 0 to "
                        f"{len(smooths) - 1}. {theirs}")
    if not isinstance(term, str):
        raise SpecError(f"{method}() takes a smooth's label such as '{labels[0]}' or its "
                        f"position, not {term!r}. {theirs}")
    for smooth in smooths:
        if smooth.label == term.replace(" ", ""):
            return smooth
    of_variable = [s.label for s in smooths if term.strip() in s.basis.spec.variables]
    hint = (f" Did you mean '{of_variable[0]}'?" if of_variable
            else nearest(term.replace(" ", ""), labels))
    raise SpecError(f"The model has no smooth '{term}'.{hint} {theirs}")


def _grid(fit: FitResult, smooth: SmoothDesign, at, n: int) -> pd.DataFrame:
    """Covariate values to evaluate at: ``at`` (DataFrame, dict or values of a one-covariate
    smooth), or n points over the observed range (a numeric ``by`` set to 1, a factor ``by``
    to the smooth's level)."""
    spec, frame = smooth.basis.spec, fit.design.frame
    if at is None:
        if len(spec.variables) != 1:
            raise SpecError(f"Give the points of '{smooth.label}' with at=DataFrame(...).")
        x = frame[spec.variables[0]].to_numpy(dtype=float)
        grid = pd.DataFrame({spec.variables[0]: np.linspace(x.min(), x.max(), n)})
    elif isinstance(at, pd.DataFrame):
        grid = at.reset_index(drop=True).copy()
    elif isinstance(at, dict):
        grid = pd.DataFrame(at)
    else:
        grid = pd.DataFrame({spec.variables[0]: np.asarray(at, dtype=float).reshape(-1)})
    if spec.by is not None and spec.by not in grid:
        grid[spec.by] = 1.0 if smooth.basis.by_level is None else smooth.basis.by_level
    check_columns(grid, list(spec.variables), "covariate")
    return grid


def smooth_values(fit: FitResult, term: str | int = 0, at=None, n: int = 100) -> pd.DataFrame:
    """The estimated smooth f(x) (centred as mgcv plots it) at ``at``, with its standard error
    without (``se``) and with (``se_with_mean``, mgcv's ``seWithMean``) the uncertainty of the
    constant: the row of column means of X(lambda) whose own columns are the smooth's."""
    smooth = find_smooth(fit, term)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise SpecError(f"n is the number of points to evaluate '{smooth.label}' at, a whole "
                        f"number of at least 2; got {n!r}.")
    grid = _grid(fit, smooth, at, n)
    post = posterior(fit)
    coefs, cov, cov_full, rows = _coefficients(fit, smooth, post)
    estimate, se = smooth.basis.evaluate(grid, smooth.mixed, coefs, cov, centred=True)
    d = fit.design
    A = smooth.basis.centred_predict_matrix(grid) @ smooth.mixed.coef_map
    p_f = len(smooth.fixed_columns)
    means = d.X(d.row_loadings(fit.state.lam)).mean(axis=0)
    row = np.tile(np.concatenate([means, np.zeros(rows.size)]), (grid.shape[0], 1))
    row[:, list(smooth.fixed_columns)] = A[:, :p_f]
    row[:, d.p:] = A[:, p_f:] * _u_scales(fit, smooth)
    se_mean = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", row, cov_full, row), 0.0))
    out = grid[[*smooth.basis.spec.variables]].copy()
    out["estimate"], out["se"], out["se_with_mean"] = estimate, se, se_mean
    return out


def plot_smooth(fit: FitResult, term: str | int = 0, *, n: int = 100, level: float = 0.95,
                with_mean: bool = True, rug: bool = True, residuals: bool = False, ax=None):
    """Draw the estimated smooth with a pointwise ``level`` confidence band (matplotlib);
    ``rug`` marks the observed covariate values, ``residuals`` adds partial residuals
    (working residuals plus the smooth at each row; smooths on the response only).

    Needs matplotlib (``pip install semgalamm[plot]``): without it a MissingDependencyError
    (an ImportError) says so."""
    from scipy.stats import norm

    smooth = find_smooth(fit, term, "plot_smooth")
    level = check_level(level)
    spec = smooth.basis.spec
    if len(spec.variables) != 1:
        raise SpecError(f"plot_smooth draws smooths of one covariate; '{smooth.label}' has "
                        f"{len(spec.variables)}; evaluate it with fit.smooth('{smooth.label}', "
                        "at=...) and draw it yourself.")
    plt = pyplot("plot_smooth()")
    values = smooth_values(fit, smooth.label, n=n)
    x = values[spec.variables[0]].to_numpy()
    se = values["se_with_mean" if with_mean else "se"].to_numpy()
    z = norm.ppf(0.5 + level / 2)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    est = values["estimate"].to_numpy()
    ax.fill_between(x, est - z * se, est + z * se, alpha=0.3, label=f"{100 * level:g}% band")
    ax.plot(x, est, lw=2, label=smooth.label)
    observed = fit.design.frame[spec.variables[0]].to_numpy(dtype=float)
    if residuals:
        if smooth.latent is not None:
            raise SpecError("Partial residuals are defined for smooths on the response only.")
        at_rows = smooth_values(fit, smooth.label, at=fit.design.frame)["estimate"].to_numpy()
        fams = fit.design.families
        working = fit.residuals("response") / fams.variance(fit.state.nu, np.ones(fit.nobs))
        ax.scatter(observed, at_rows + working, s=4, alpha=0.4, color="grey")
    if rug:
        ax.plot(observed, np.full(observed.size, ax.get_ylim()[0]), "|", color="k", alpha=0.3)
    ax.set_xlabel(spec.variables[0])
    ax.set_ylabel(smooth.label)
    ax.legend(loc="best", frameon=False)
    return ax
