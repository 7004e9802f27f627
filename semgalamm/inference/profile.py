"""Profile-likelihood confidence intervals (lme4's ``confint(fit, method = "profile")``).

For a parameter phi_j (an SD or correlation of random effects, a residual SD, a fixed effect
or a loading) the profile deviance P(v) is the deviance minimized over every other parameter
with phi_j = v, and the interval is where the likelihood-ratio statistic P(v) - P(phi_j_hat)
stays below the chi-square(1) quantile q (3.84 at 95%). The ends are found on the signed
root zeta(v) = sign(v - phi_hat) sqrt(P(v) - P(phi_hat)), nearly linear in v, by
extrapolating to a bracket and Brent's method (scipy's brentq) inside it.

The parameters are those users read (semgalamm.inference.parameters): the random effects' SDs
and correlations, not theta. For all-Gaussian models the deviance over (SDs, correlations,
sigma, loadings, log SD ratios) keeps beta profiled out (lme4's ``devfun2``):

    D(phi) = c(theta) + m log(2 pi sigma^2) + m s^2(theta) / sigma^2,   theta = T(phi) / sigma

where s^2 = r^2 / m is the residual variance that profiles sigma out at theta (m = n) and
c(theta) the rest of the profiled deviance. A fixed effect beta_j of such a model is not an
outer parameter: its profile moves x_j beta_j into the offset and drops column j (a column
multiplied by a latent's row loadings ell_k(lambda) moves v x_j ell_k(lambda), recomputed at
every lambda). For other families beta is an outer parameter and is fixed directly.

A REML fit is profiled on the ML deviance of its refit by maximum likelihood, as lme4's
``profile`` does (devfun2 calls refitML): the REML criterion has no profile over beta.

A parameter whose profile does not reach q before its bound (an SD of 0, a correlation of
+-1) gets the bound as that end, with a ProfileWarning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.stats import chi2

from semgalamm.errors import SpecError, nearest
from semgalamm.inference.parameters import (
    is_correlation,
    parameter_estimates,
    sigma_names,
    theta_from_variance,
    variance_names,
    variance_values,
)
from semgalamm.optimize import INFEASIBLE, ParameterLayout, minimize_deviance

if TYPE_CHECKING:
    from semgalamm.laplace.model import LaplaceModel
    from semgalamm.results.fit_result import FitResult

FloatArray = NDArray[np.float64]


class ProfileWarning(UserWarning):
    """A profile interval ends at a parameter's bound (its profile never reaches the
    chi-square quantile there)."""


@dataclass(frozen=True)
class NaturalObjective:
    """The deviance over the parameters users read, with their names, estimates and
    bounds."""

    names: tuple[str, ...]
    estimate: FloatArray
    lower: FloatArray
    upper: FloatArray
    deviance: Callable[[FloatArray], float]


def _variance_bounds(laplace: LaplaceModel) -> tuple[FloatArray, FloatArray]:
    corr = is_correlation(laplace.design)
    return np.where(corr, -1.0, 0.0), np.where(corr, 1.0, np.inf)


def natural_objective(laplace: LaplaceModel, x: FloatArray) -> NaturalObjective:
    """The deviance of ``laplace`` over (SDs and correlations, sigma, loadings, log SD
    ratios) for the profiled Gaussian objective, or (SDs and correlations, beta, loadings,
    residual SDs) for the Laplace GLMM objective, at its estimates ``x``."""
    d, layout = laplace.design, laplace.layout
    parts = layout.unpack(x)
    n_var = parts["theta"].size
    low_var, high_var = _variance_bounds(laplace)
    if laplace.profiled:
        state = laplace.state(x)
        m = d.n - d.p if laplace.reml else d.n
        rest = np.concatenate([parts["lambda"], parts.get("log_sd_ratio", np.zeros(0))])
        estimate = np.concatenate([variance_values(d, parts["theta"], state.sigma),
                                   [state.sigma], rest])
        rest_names = [*(d.loadings.lambda_names if d.loadings else ()),
                      *layout.names[n_var + parts["lambda"].size:]]
        names = [*variance_names(d), "sigma", *rest_names]
        lower = np.concatenate([low_var, [0.0], np.full(rest.size, -np.inf)])
        upper = np.concatenate([high_var, [np.inf], np.full(rest.size, np.inf)])

        def deviance(phi: FloatArray) -> float:
            sigma = phi[n_var]
            theta = theta_from_variance(d, phi[:n_var], sigma)
            if theta is None:
                return np.inf
            at = laplace.state(np.concatenate([theta, phi[n_var + 1:]]))
            s2 = at.sigma**2
            if not (np.isfinite(at.deviance) and s2 > 0):
                return np.inf
            rest_of_deviance = at.deviance - m * (1 + np.log(2 * np.pi * s2))
            return float(rest_of_deviance + m * np.log(2 * np.pi * sigma**2) + m * s2 / sigma**2)
    else:
        slices = layout.slices()
        after_theta = x[slices["theta"].stop:]
        sigma_at = slices["log_sigma"] if "log_sigma" in slices else slice(x.size, x.size)
        log_sigma = np.zeros(x.size, dtype=bool)
        log_sigma[sigma_at] = True
        estimate = np.concatenate([variance_values(d, parts["theta"], 1.0),
                                   np.where(log_sigma, np.exp(x), x)[n_var:]])
        names = [*variance_names(d), *(
            name.replace("log(", "", 1)[:-1] if is_log else name
            for name, is_log in zip(layout.names[n_var:], log_sigma[n_var:]))]
        lower = np.concatenate([low_var, np.where(log_sigma, 0.0, -np.inf)[n_var:]])
        upper = np.concatenate([high_var, np.full(after_theta.size, np.inf)])

        def deviance(phi: FloatArray) -> float:
            theta = theta_from_variance(d, phi[:n_var], 1.0)
            if theta is None:
                return np.inf
            with np.errstate(divide="ignore"):
                rest = np.where(log_sigma[n_var:], np.log(np.abs(phi[n_var:])), phi[n_var:])
            return float(laplace.deviance(np.concatenate([theta, rest])))
    return NaturalObjective(tuple(names), estimate, lower, upper, deviance)


def _minimize_rest(f: Callable[[FloatArray], float], start: FloatArray, lower: FloatArray,
                   upper: FloatArray, scale: FloatArray) -> tuple[float, FloatArray]:
    """min f over a box, from ``start``: (deviance, minimizer)."""
    if start.size == 0:
        return f(start), start
    layout = ParameterLayout((("phi", start.size),), tuple(f"phi{i}" for i in
                                                          range(start.size)), lower, upper)
    opt = minimize_deviance(f, np.clip(start, lower, upper), layout, scale=scale)
    return opt.deviance, opt.x


class _Profile:
    """P(v) for one parameter, each evaluation warm-started at the nearest one before."""

    def __init__(self, evaluate: Callable[[float, FloatArray], tuple[float, FloatArray]],
                 estimate: float, start: FloatArray, minimum: float) -> None:
        self._evaluate = evaluate
        self.estimate = estimate
        self.minimum = minimum
        self._optima: dict[float, FloatArray] = {estimate: start}

    def lr(self, v: float) -> float:
        nearest_v = min(self._optima, key=lambda u: abs(u - v))
        value, optimum = self._evaluate(v, self._optima[nearest_v])
        if not value < INFEASIBLE:
            return np.inf
        self._optima[v] = optimum
        return max(value - self.minimum, 0.0)

    def end(self, direction: int, q: float, step: float, bound: float, name: str) -> float:
        """The end of the interval on one side: where lr = q, or the bound."""
        target = np.sqrt(q)
        inner, v = self.estimate, self.estimate + direction * step
        for _ in range(30):
            if direction * (v - bound) >= 0:
                v = bound
            z = np.sqrt(self.lr(v))
            if z >= target:
                zeta = lambda u: np.sqrt(self.lr(u)) - target  # noqa: E731
                return brentq(zeta, inner, v, xtol=1e-7 * max(1.0, abs(v)), rtol=1e-10)
            if v == bound:
                warnings.warn(
                    f"The profile of {name} stays below the chi-square quantile up to its bound "
                    f"{bound:g}; that end of its interval is the bound.", ProfileWarning,
                    stacklevel=4)
                return bound
            inner = v
            reach = (v - self.estimate) * (target / z * 1.2 if z > 0.2 * target else 3.0)
            v = self.estimate + reach
        raise RuntimeError(f"the profile of {name} did not reach the chi-square quantile")


def _step(name: str, estimate: float, wald_se: dict[str, float]) -> float:
    """A first step from the estimate: its Wald SE, or a fraction of an SD or sigma."""
    se = wald_se.get(name, np.nan)
    if np.isfinite(se) and se > 0:
        return float(se)
    if name.startswith("cor_"):
        return 0.2
    return 0.2 * max(abs(estimate), 1e-3)


def _scale(objective: NaturalObjective) -> FloatArray:
    corr = np.array([n.startswith("cor_") for n in objective.names], dtype=bool)
    return np.where(corr, 0.5, np.maximum(np.abs(objective.estimate), 0.1))


def _outer_profile(objective: NaturalObjective, j: int, minimum: float,
                   phi_j: Callable[[float, FloatArray], float] = lambda v, rest: v,
                   estimate: float | None = None) -> _Profile:
    """The profile of an outer parameter: fix phi_j = v, minimize over the others. A
    parameter that is a function of phi (a group's residual SD sigma exp(rho_k)) is profiled
    with phi_j = ``phi_j(v, rest)`` and its ``estimate``."""
    keep = np.arange(objective.estimate.size) != j
    scale = _scale(objective)[keep]

    def evaluate(v: float, start: FloatArray) -> tuple[float, FloatArray]:
        def f(rest: FloatArray) -> float:
            return objective.deviance(np.insert(rest, j, phi_j(v, rest)))

        return _minimize_rest(f, start, objective.lower[keep], objective.upper[keep], scale)

    at = float(objective.estimate[j]) if estimate is None else estimate
    return _Profile(evaluate, at, objective.estimate[keep], minimum)


def _group_sigma_profile(fit: FitResult, k: int, position: dict[str, int],
                         objective: NaturalObjective, minimum: float) -> _Profile:
    """sigma_k = sigma exp(rho_k) of variance group k > 0 (profiled Gaussian objective):
    rho_k = log(v / sigma) while sigma and the rest are re-optimized."""
    s = position["sigma"]
    rho = fit.laplace.layout.slices()["log_sd_ratio"]
    j = s + 1 + (rho.start - fit.laplace.layout.slices()["theta"].stop) + (k - 1)

    def log_ratio(v: float, rest: FloatArray) -> float:
        return float(np.log(v / rest[s])) if v > 0 and rest[s] > 0 else -np.inf

    return _outer_profile(objective, j, minimum, log_ratio, float(fit._group_sigma()[k]))


def _fixed_effect_profile(fit: FitResult, j: int, objective: NaturalObjective,
                          minimum: float) -> _Profile:
    """beta_j of a profiled Gaussian model: x_j beta_j moved into the offset, column j
    dropped, every outer parameter re-optimized (beta_-j stays profiled out). A column
    multiplied by latent k's row loadings gets the offset v x_j ell_k(lambda) anew at every
    lambda of the minimization."""
    from semgalamm.laplace.model import LaplaceModel

    d = fit.design
    reduced = replace(d, X0=np.delete(d.X0, j, axis=1),
                      fixed_names=tuple(n for i, n in enumerate(d.fixed_names) if i != j),
                      fixed_latent=tuple(k for i, k in enumerate(d.fixed_latent) if i != j))
    column, latent = d.X0[:, j], d.fixed_latent[j]
    x_start = fit.optimizer.x
    scale = _scale(objective)
    n_var = len(variance_names(d))
    lam = slice(n_var + 1, n_var + 1 + d.n_lambda)  # after the SDs and sigma

    def shifted(offset: FloatArray) -> NaturalObjective:
        return natural_objective(LaplaceModel.create(replace(reduced, offset=offset)), x_start)

    def evaluate(v: float, start: FloatArray) -> tuple[float, FloatArray]:
        if latent is None:
            at_v = shifted(d.offset + v * column)
            return _minimize_rest(at_v.deviance, start, at_v.lower, at_v.upper, scale)

        def deviance(phi: FloatArray) -> float:
            ell = d.row_loadings(phi[lam])[:, latent]
            return shifted(d.offset + v * column * ell).deviance(phi)

        return _minimize_rest(deviance, start, objective.lower, objective.upper, scale)

    return _Profile(evaluate, float(fit.state.beta[j]), objective.estimate, minimum)


def ml_refit(fit: FitResult) -> FitResult:
    """A REML fit refitted by maximum likelihood (lme4's refitML), started at its estimates."""
    from semgalamm.inference.bootstrap import RefitPlan

    return replace(RefitPlan.of(fit), reml=False).refit(fit.design.y)


def profile_confint(fit: FitResult, level: float = 0.95, parm: list[str] | None = None
                    ) -> pd.DataFrame:
    """Profile-likelihood intervals (module docstring): columns lower and upper bound
    (lme4's "2.5 %", "97.5 %") and the estimate, one row per parameter of ``parm`` (default:
    all of ``parameter_estimates(fit)``). A REML fit is profiled as lme4 does it: on the
    deviance of its maximum-likelihood refit (the estimate column stays the REML one)."""
    estimates = parameter_estimates(fit)
    if fit.laplace.reml:  # lme4's devfun2 profiles the ML refit (refitML)
        fit = ml_refit(fit)
    names = list(estimates.index)
    chosen = names if parm is None else ([parm] if isinstance(parm, str) else list(parm))
    for name in chosen:
        if name not in names:
            raise SpecError(f"parm: the fit has no parameter '{name}'.{nearest(name, names)} "
                            f"Its parameters are {', '.join(names)}.")
    q = float(chi2.ppf(level, 1))
    objective = natural_objective(fit.laplace, fit.optimizer.x)
    minimum = objective.deviance(objective.estimate)
    fit.laplace.state(fit.optimizer.x)  # restore warm starts at the optimum
    wald = {}
    try:
        cov = fit.vcov()
        wald = dict(zip(cov.index, np.sqrt(np.diag(cov.to_numpy()))))
    except Exception:  # noqa: BLE001 - only a first step size
        pass
    position = {name: i for i, name in enumerate(objective.names)}
    sigma_rows = sigma_names(fit)
    rows = []
    for name in chosen:
        estimate = float(estimates[name])
        profile = _parameter_profile(fit, name, position, objective, minimum, sigma_rows)
        j = position.get("sigma" if name in sigma_rows else name)
        low_bound, high_bound = (objective.lower[j], objective.upper[j]) if j is not None \
            else (-np.inf, np.inf)
        step = _step(name, estimate, wald)
        lower = profile.end(-1, q, step, low_bound, name)
        upper = profile.end(+1, q, step, high_bound, name)
        rows.append((lower, upper, estimate))
    fit.laplace.state(fit.optimizer.x)
    alpha = 1 - level
    return pd.DataFrame(rows, index=chosen,
                        columns=[f"{100 * alpha / 2:g} %", f"{100 * (1 - alpha / 2):g} %",
                                 "estimate"])


def _parameter_profile(fit: FitResult, name: str, position: dict[str, int],
                       objective: NaturalObjective, minimum: float, sigma_rows: list[str]
                       ) -> _Profile:
    if name in position:
        return _outer_profile(objective, position[name], minimum)
    if fit.laplace.profiled and name == sigma_rows[0]:  # the reference group's sigma
        return _outer_profile(objective, position["sigma"], minimum)
    if name in sigma_rows:
        return _group_sigma_profile(fit, sigma_rows.index(name), position, objective, minimum)
    return _fixed_effect_profile(fit, list(fit.design.fixed_names).index(name), objective,
                                 minimum)
