"""Laplace objectives: the deviance -2 log L as a function of the outer parameters.

Two objectives share the random-effects system of ``cholmod.py``:

``ProfiledGaussian`` (all rows Gaussian with identity link): beta and sigma^2 are profiled out
in closed form as in lme4 (Bates et al. 2015, eqs. 34 and 41), so the outer parameters are
theta (relative covariance factors), lambda (loadings) and the residual SD ratios of variance
groups (nlme's varIdent), which enter as weights: row i has residual variance sigma^2 / w_i.
With these weights w,

    -2 log L = log|H| - sum log w + n (1 + log(2 pi r^2 / n)),         H = A' W A + I
    -2 log L_R = log|H| + log|R_X|^2 - sum log w + (n - p)(1 + log(2 pi r^2 / (n - p)))

where r^2 is the penalized weighted residual sum of squares at the conditional modes.

``LaplaceGLMM`` (any row families): the Laplace approximation with beta as an outer parameter
(lme4's nAGQ = 1, galamm), the conditional modes u found by penalized iteratively reweighted
least squares (PIRLS) with step halving, warm-started from the previous evaluation:

    log L = sum_i log f(y_i | nu_i(u^)) - |u^|^2 / 2 - log|A' D A + I| / 2,   u ~ N(0, I)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_factor, cho_solve

from semgalamm.design.design import Design
from semgalamm.laplace.cholmod import RandomEffectsSystem

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LaplaceState:
    """Everything known at one parameter value: the deviance and the conditional modes.

    ``u`` are spherical random effects, ``b = Lambda_theta u`` (times sigma for the profiled
    Gaussian objective) the random effects on the scale of the data.
    """

    deviance: float
    theta: FloatArray
    beta: FloatArray
    lam: FloatArray
    u: FloatArray
    sigma: float
    nu: FloatArray
    logdet: float
    converged: bool = True


class ProfiledGaussian:
    """-2 log L(theta, lambda) for Gaussian responses, beta and sigma profiled out."""

    def __init__(self, design: Design, reml: bool = False) -> None:
        self.design = design
        self.reml = reml
        self.system = RandomEffectsSystem(design)

    def _factorize(
        self, theta: FloatArray, lam: FloatArray, w: FloatArray
    ) -> tuple[FloatArray, FloatArray] | None:
        """Factor H = A' W A + I at (theta, lambda, w); return (X(lambda), values of A) or None
        when the point is infeasible."""
        ell = self.design.row_loadings(lam)
        if not np.all(np.isfinite(ell)):  # I - B singular
            return None
        values = self.system.values(theta, ell)
        if not self.system.factorize(values, w):
            return None
        return self.design.X(ell), values

    def evaluate(self, theta: FloatArray, lam: FloatArray, w: FloatArray) -> LaplaceState:
        """The profiled deviance at (theta, lambda) with row weights w."""
        d = self.design
        factored = self._factorize(theta, lam, w)
        if factored is None:
            return self._failed(theta, lam)
        X, values = factored
        log_weights = float(np.sum(np.log(w)))
        XY = np.column_stack([X, d.y - d.offset])
        rhs = self.system.weighted_At_times(np.sqrt(w)[:, None] * XY)
        C = self.system.solve(rhs)
        S = XY.T @ (w[:, None] * XY) - rhs.T @ C
        p = d.p
        n = d.n
        try:
            chol_xx = cho_factor(S[:p, :p], lower=True)
        except np.linalg.LinAlgError:
            return self._failed(theta, lam)
        beta = cho_solve(chol_xx, S[:p, p])
        u = C[:, p] - C[:, :p] @ beta
        # The penalized residual sum of squares from the residuals themselves (as lme4), not
        # as S_yy - S_yX beta: that difference loses every digit when the fit is close to
        # exact (residual SD 1e-3 beside a response of 300: 1e-11 of y'y), which made the
        # deviance too noisy to optimize; at the minimum the direct sum is accurate to
        # second order in the errors of beta and u.
        nu_fit = X @ beta + self.system.times(values, u)
        pwrss = float(np.sum(w * (d.y - d.offset - nu_fit) ** 2) + u @ u)
        if not pwrss > 0:
            return self._failed(theta, lam)
        logdet = self.system.logdet()
        if self.reml:
            ld_rx2 = 2.0 * float(np.sum(np.log(np.diag(chol_xx[0]))))
            dof = n - p
            dev = logdet + ld_rx2 - log_weights + dof * (1 + np.log(2 * np.pi * pwrss / dof))
            sigma2 = pwrss / dof
        else:
            dev = logdet - log_weights + n * (1 + np.log(2 * np.pi * pwrss / n))
            sigma2 = pwrss / n
        sigma = float(np.sqrt(sigma2))
        nu = d.offset + nu_fit
        return LaplaceState(float(dev), theta, beta, lam, u / sigma, sigma, nu, logdet)

    def _failed(self, theta: FloatArray, lam: FloatArray) -> LaplaceState:
        empty = np.full(self.design.p, np.nan)
        return LaplaceState(np.inf, theta, empty, lam, np.zeros(self.system.q), np.nan,
                            np.full(self.design.n, np.nan), np.nan, converged=False)

    def full_deviance(
        self, theta: FloatArray, lam: FloatArray, beta: FloatArray, sigma: float, w: FloatArray
    ) -> float:
        """-2 log L at given beta and sigma (not profiled), for Hessians over all parameters
        (ML only)."""
        d = self.design
        factored = self._factorize(theta, lam, w)
        if factored is None:
            return np.inf
        X, values = factored
        resid = d.y - d.offset - X @ beta
        rhs = self.system.weighted_At_times(np.sqrt(w) * resid)
        u = self.system.solve(rhs)
        r2 = float(np.sum(w * (resid - self.system.times(values, u)) ** 2) + u @ u)
        return (self.system.logdet() - float(np.sum(np.log(w)))
                + d.n * np.log(2 * np.pi * sigma**2) + r2 / sigma**2)


class LaplaceGLMM:
    """-2 log L(theta, beta, lambda, psi) by the Laplace approximation, for any row families.

    ``psi`` (n, 2) are the family parameters of every row (``semgalamm.families``).
    """

    def __init__(self, design: Design, tol: float = 1e-10, max_iter: int = 100) -> None:
        self.design = design
        self.system = RandomEffectsSystem(design)
        self.tol = tol
        self.max_iter = max_iter
        self._u_warm = np.zeros(self.system.q)

    def _penalized(self, nu_fixed, values, u, psi) -> tuple[float, FloatArray]:
        d = self.design
        nu = nu_fixed + self.system.times(values, u)
        ll = d.families.loglik(d.y, nu, d.weights, d.trials, psi)
        with np.errstate(over="ignore", invalid="ignore"):  # -inf at an infeasible point
            return float(np.sum(ll) - 0.5 * u @ u), nu

    def evaluate(
        self, theta: FloatArray, beta: FloatArray, lam: FloatArray, psi: FloatArray
    ) -> LaplaceState:
        d = self.design
        ell = d.row_loadings(lam)
        if not np.all(np.isfinite(ell)):  # I - B singular: an infeasible point
            return LaplaceState(np.inf, theta, beta, lam, self._u_warm.copy(), 1.0,
                                np.full(d.n, np.nan), np.nan, converged=False)
        values = self.system.values(theta, ell)
        nu_fixed = d.offset + d.X(ell) @ beta
        u = self._u_warm.copy()
        objective, nu = self._penalized(nu_fixed, values, u, psi)
        if not np.isfinite(objective):
            u = np.zeros_like(u)
            objective, nu = self._penalized(nu_fixed, values, u, psi)
        converged = False
        for _ in range(self.max_iter):
            terms = d.families.terms(d.y, nu, d.weights, d.trials, psi)
            if not self.system.factorize(values, terms.weight):
                break
            step = self.system.solve(self.system.At_times(values, terms.score) - u)
            scale = 1.0
            while True:
                candidate = u + scale * step
                new_objective, new_nu = self._penalized(nu_fixed, values, candidate, psi)
                if new_objective >= objective - 1e-12 * abs(objective) or scale < 1e-8:
                    break
                scale *= 0.5
            change = new_objective - objective
            u, nu, objective = candidate, new_nu, new_objective
            if abs(change) <= self.tol * (1.0 + abs(objective)) and (
                np.max(np.abs(scale * step), initial=0.0) < 1e-6
            ):
                converged = True
                break
        terms = d.families.terms(d.y, nu, d.weights, d.trials, psi)
        feasible = self.system.factorize(values, terms.weight)
        logdet = self.system.logdet()
        if feasible and np.all(np.isfinite(u)):
            self._u_warm = u
        deviance = -2.0 * objective + logdet
        if not feasible or not np.isfinite(deviance):
            deviance = np.inf
        return LaplaceState(float(deviance), theta, beta, lam, u, 1.0, nu, logdet, converged)
