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
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cho_factor, cho_solve

from semgalamm.design.design import Design
from semgalamm.families import RowTerms
from semgalamm.laplace.bordered import BlockDiagonalFactor
from semgalamm.laplace.cholmod import RandomEffectsSystem
from semgalamm.laplace.patterns import LevelPatterns, level_patterns, profiled_fit

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


@dataclass(frozen=True)
class RowAdjoints:
    """Derivatives of a deviance f with respect to the per-row inputs of the engine.

    values: df/da_i (n, K), the row values of A; X: df/dX_ij (n, p), None when X does not
    depend on lambda (``loads_fixed_effects``: the chain rule never reads it then); nu:
    df/dnu_i (n,) through X beta (the Laplace GLMM, for beta: X' nu); weights: df/dw_i (n,)
    (profiled Gaussian); psi: df/dpsi_i (n, 2), the family parameters of each row (Laplace
    GLMM).
    """

    values: FloatArray
    X: FloatArray | None
    nu: FloatArray | None = None
    weights: FloatArray | None = None
    psi: FloatArray | None = None


def loads_fixed_effects(design: Design) -> bool:
    """Whether a fixed effect loads on a latent (X depends on lambda, df/dX is needed)."""
    return any(k is not None for k in design.fixed_latent)


@dataclass(frozen=True)
class _ProfiledFit:
    """The profiled solution at one point: the state and what its gradient needs."""

    state: LaplaceState
    X: FloatArray
    values: FloatArray
    w: FloatArray
    resid: FloatArray
    u: FloatArray  # spherical random effects in units of sigma (unscaled)
    pwrss: float
    dof: int
    C_X: FloatArray  # H^{-1} A' W X (REML's terms)
    chol_xx: tuple | None
    clique: FloatArray | None = None  # S_i a_i when known (by patterns), else from the system
    row_modes: FloatArray | None = None  # u on each row's columns (n, K) when known


class ProfiledGaussian:
    """-2 log L(theta, lambda) for Gaussian responses, beta and sigma profiled out."""

    def __init__(self, design: Design, reml: bool = False) -> None:
        self.design = design
        self.reml = reml
        self.system = RandomEffectsSystem(design)

    @cached_property
    def _patterns(self) -> LevelPatterns | None:
        """The levels' patterns (``patterns.py``) for fits with one grouping factor, or
        None. A row's signature: its values of A and X at two random points, its prior weight
        and its variance group (the weights' only inputs)."""
        factor = self.system._bordered
        if not isinstance(factor, BlockDiagonalFactor):
            return None
        d = self.design
        rng = np.random.default_rng(20261203)
        n_theta = sum(block.n_theta for block in d.blocks)
        n_lambda = d.loadings.lambda_start.size if d.loadings is not None else 0
        row_values = [d.weights, d.dispersion_group]
        for _ in range(2):
            ell = d.row_loadings(rng.uniform(0.5, 1.5, n_lambda))
            if not np.all(np.isfinite(ell)):
                return None
            row_values += [self.system.values(rng.uniform(0.5, 1.5, n_theta), ell), d.X(ell)]
        return level_patterns(d, factor.pattern.level, factor.pattern.lead_columns,
                              tuple(row_values))

    @cached_property
    def _fixed_XY(self) -> FloatArray:
        """[X y - offset] (n, p + 1) when X does not depend on lambda (stacked once)."""
        return np.column_stack([self.design.X0, self.design.y - self.design.offset])

    def _row_values(self, theta: FloatArray, lam: FloatArray
                    ) -> tuple[FloatArray, FloatArray] | None:
        """(X(lambda), values of A) at (theta, lambda), or None where I - B is singular."""
        ell = self.design.row_loadings(lam)
        if not np.all(np.isfinite(ell)):  # I - B singular
            return None
        return self.design.X(ell), self.system.values(theta, ell)

    def _factorize(
        self, theta: FloatArray, lam: FloatArray, w: FloatArray
    ) -> tuple[FloatArray, FloatArray] | None:
        """Factor H = A' W A + I at (theta, lambda, w); return (X(lambda), values of A) or None
        when the point is infeasible."""
        rows = self._row_values(theta, lam)
        if rows is None or not self.system.factorize(rows[1], w):
            return None
        return rows

    def evaluate(self, theta: FloatArray, lam: FloatArray, w: FloatArray) -> LaplaceState:
        """The profiled deviance at (theta, lambda) with row weights w."""
        fitted = self._fit(theta, lam, w)
        return fitted.state if isinstance(fitted, _ProfiledFit) else fitted

    def _fit(self, theta: FloatArray, lam: FloatArray, w: FloatArray
             ) -> _ProfiledFit | LaplaceState:
        """The profiled fit at (theta, lambda, w) with what its gradient needs, or the failed
        state of an infeasible point."""
        if self._patterns is not None:
            return self._fit_by_patterns(theta, lam, w)
        d = self.design
        factored = self._factorize(theta, lam, w)
        if factored is None:
            return self._failed(theta, lam)
        X, values = factored
        XY = self._fixed_XY if X is d.X0 else np.column_stack([X, d.y - d.offset])
        root_w_XY = np.sqrt(w)[:, None] * XY
        rhs = self.system.weighted_At_times(root_w_XY)
        C = self.system.solve(rhs)
        S = root_w_XY.T @ root_w_XY - rhs.T @ C
        p = d.p
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
        resid = d.y - d.offset - nu_fit
        pwrss = float(np.sum(w * resid**2) + u @ u)
        if not pwrss > 0:
            return self._failed(theta, lam)
        return self._profiled(theta, lam, X, values, w, beta, u, resid, d.offset + nu_fit,
                              pwrss, self.system.logdet(), C[:, :p], chol_xx)

    def _fit_by_patterns(self, theta: FloatArray, lam: FloatArray, w: FloatArray
                         ) -> _ProfiledFit | LaplaceState:
        """``_fit`` by the levels' patterns (one grouping factor: ``patterns.py``)."""
        d = self.design
        rows = self._row_values(theta, lam)
        if rows is None:
            return self._failed(theta, lam)
        X, values = rows
        try:
            fit = profiled_fit(self._patterns, values, X, d.y - d.offset, w)
        except np.linalg.LinAlgError:
            fit = None
        if fit is None or not fit.pwrss > 0 or not np.isfinite(fit.logdet):
            return self._failed(theta, lam)
        chol_xx = None
        if self.reml and d.p:
            try:
                chol_xx = cho_factor(fit.xvx, lower=True)
            except np.linalg.LinAlgError:
                return self._failed(theta, lam)
        return self._profiled(theta, lam, X, values, w, fit.beta, fit.u, fit.resid,
                              d.y - fit.resid, fit.pwrss, fit.logdet, fit.C_X, chol_xx,
                              clique=fit.clique, row_modes=fit.row_modes)

    def _profiled(self, theta: FloatArray, lam: FloatArray, X: FloatArray, values: FloatArray,
                  w: FloatArray, beta: FloatArray, u: FloatArray, resid: FloatArray,
                  nu: FloatArray, pwrss: float, logdet: float, C_X: FloatArray,
                  chol_xx: tuple | None, clique: FloatArray | None = None,
                  row_modes: FloatArray | None = None) -> _ProfiledFit:
        """The profiled deviance (module docstring) and state from a solved fit, however it
        was solved: log|H|, r^2 and, for REML, the factor of X' V^{-1} X (None: p = 0)."""
        d = self.design
        dof = d.n - d.p if self.reml else d.n
        dev = logdet - float(np.sum(np.log(w))) + dof * (1 + np.log(2 * np.pi * pwrss / dof))
        if self.reml and chol_xx is not None:
            dev += 2.0 * float(np.sum(np.log(np.diag(chol_xx[0]))))
        sigma = float(np.sqrt(pwrss / dof))
        state = LaplaceState(float(dev), theta, beta, lam, u / sigma, sigma, nu, logdet)
        return _ProfiledFit(state, X, values, w, resid, u, pwrss, dof, C_X, chol_xx,
                            clique=clique, row_modes=row_modes)

    def adjoints(self, theta: FloatArray, lam: FloatArray, w: FloatArray
                 ) -> tuple[LaplaceState, RowAdjoints | None]:
        """The state and the derivatives of the profiled deviance f with respect to each
        row's values of A, X and its weight (None at an infeasible point).

        d log|H| = 2 sum_i w_i da_i' S_i a_i + sum_i dw_i a_i' S_i a_i; for REML log|H| +
        log|R_X|^2 is the log determinant of the augmented system of (u, beta), whose inverse
        on row i's clique adds t_i = x_i - C_X' a_i terms (C_X = H^{-1} A' W X). r^2 by the
        envelope theorem at the profiled (beta, u): dr^2 = sum dw e^2 - 2 w e (dX beta + dA u).
        """
        fit = self._fit(theta, lam, w)
        if not isinstance(fit, _ProfiledFit):
            return fit, None
        system = self.system
        Sa = fit.clique if fit.clique is not None else system.clique_inverse_times(fit.values)
        row_modes = fit.row_modes if fit.row_modes is not None else fit.u[system.columns]
        leverage = np.einsum("ik,ik->i", fit.values, Sa)
        Sx = None  # REML's d log|R_X|^2 / dX; ML: none
        if self.reml and self.design.p:
            t = fit.X - np.column_stack([system.times(fit.values, c) for c in fit.C_X.T])
            Sx = cho_solve(fit.chol_xx, t.T).T
            leverage += np.einsum("ij,ij->i", t, Sx)
            for j in range(self.design.p):
                Sa -= fit.C_X[system.columns, j] * Sx[:, j : j + 1]
        ratio = fit.dof / fit.pwrss
        we = fit.w * fit.resid
        d_X = None
        if loads_fixed_effects(self.design):
            d_X = -2.0 * ratio * np.outer(we, fit.state.beta)
            if Sx is not None:
                d_X += 2.0 * fit.w[:, None] * Sx
        return fit.state, RowAdjoints(
            values=2.0 * fit.w[:, None] * Sa - 2.0 * ratio * we[:, None] * row_modes,
            X=d_X,
            weights=leverage - 1.0 / fit.w + ratio * fit.resid**2,
        )

    def _failed(self, theta: FloatArray, lam: FloatArray) -> LaplaceState:
        empty = np.full(self.design.p, np.nan)
        return LaplaceState(np.inf, theta, empty, lam, np.zeros(self.system.q), np.nan,
                            np.full(self.design.n, np.nan), np.nan, converged=False)

    def full_deviance(
        self, theta: FloatArray, lam: FloatArray, beta: FloatArray, sigma: float, w: FloatArray
    ) -> float:
        """-2 log L at given beta and sigma (not profiled), for Hessians over all parameters
        (ML only)."""
        return self.full_gradient(theta, lam, beta, sigma, w, derivatives=False)[0]

    def full_gradient(
        self, theta: FloatArray, lam: FloatArray, beta: FloatArray, sigma: float, w: FloatArray,
        derivatives: bool = True,
    ) -> tuple[float, RowAdjoints | None, FloatArray, float]:
        """The unprofiled deviance f = log|H| - sum log w + n log(2 pi sigma^2) + r^2 / sigma^2
        at (theta, lambda, beta, sigma), the per-row derivatives of f (A's values, X, w),
        df/dbeta and df/dlog(sigma) (derivatives by the envelope theorem at u^ given beta)."""
        d = self.design
        factored = self._factorize(theta, lam, w)
        if factored is None:
            return np.inf, None, np.full(beta.size, np.nan), np.nan
        X, values = factored
        resid_fixed = d.y - d.offset - X @ beta
        rhs = self.system.weighted_At_times(np.sqrt(w) * resid_fixed)
        u = self.system.solve(rhs)
        resid = resid_fixed - self.system.times(values, u)
        r2 = float(np.sum(w * resid**2) + u @ u)
        deviance = (self.system.logdet() - float(np.sum(np.log(w)))
                    + d.n * np.log(2 * np.pi * sigma**2) + r2 / sigma**2)
        if not derivatives:
            return deviance, None, np.zeros(0), 0.0
        Sa = self.system.clique_inverse_times(values)
        we = w * resid / sigma**2
        adjoints = RowAdjoints(
            values=2.0 * w[:, None] * Sa - 2.0 * we[:, None] * u[self.system.columns],
            X=-2.0 * np.outer(we, beta) if loads_fixed_effects(d) else None,
            weights=np.einsum("ik,ik->i", values, Sa) - 1.0 / w + resid**2 / sigma**2,
        )
        return deviance, adjoints, -2.0 * X.T @ we, 2.0 * d.n - 2.0 * r2 / sigma**2


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

    def _penalized(self, nu_fixed, values, u, psi) -> tuple[float, FloatArray, RowTerms]:
        """sum l(y | nu) - |u|^2 / 2 at u, nu and the row terms there (the next PIRLS step
        needs them whenever the line search accepts u)."""
        d = self.design
        nu = nu_fixed + self.system.times(values, u)
        terms = d.families.terms(d.y, nu, d.weights, d.trials, psi)
        with np.errstate(over="ignore", invalid="ignore"):  # -inf at an infeasible point
            return float(np.sum(terms.loglik) - 0.5 * u @ u), nu, terms

    def evaluate(
        self, theta: FloatArray, beta: FloatArray, lam: FloatArray, psi: FloatArray
    ) -> LaplaceState:
        return self._fit(theta, beta, lam, psi)[0]

    def _fit(
        self, theta: FloatArray, beta: FloatArray, lam: FloatArray, psi: FloatArray
    ) -> tuple[LaplaceState, FloatArray | None, FloatArray | None, RowTerms | None]:
        """The Laplace fit: the state, the values of A, X(lambda) and the row terms at the
        conditional modes (None at an infeasible point)."""
        d = self.design
        ell = d.row_loadings(lam)
        if not np.all(np.isfinite(ell)):  # I - B singular: an infeasible point
            return LaplaceState(np.inf, theta, beta, lam, self._u_warm.copy(), 1.0,
                                np.full(d.n, np.nan), np.nan, converged=False), None, None, None
        X = d.X(ell)
        values = self.system.values(theta, ell)
        nu_fixed = d.offset + X @ beta
        u = self._u_warm.copy()
        objective, nu, terms = self._penalized(nu_fixed, values, u, psi)
        if not np.isfinite(objective):
            u = np.zeros_like(u)
            objective, nu, terms = self._penalized(nu_fixed, values, u, psi)
        converged = False
        for _ in range(self.max_iter):
            # Newton steps with the observed weight where it is positive: quadratic
            # convergence also for non-canonical links, whose Fisher scoring converges
            # linearly and leaves u^ too inexact for the gradient (the envelope theorem).
            newton = np.where(terms.observed_weight > 0, terms.observed_weight, terms.weight)
            if not self.system.factorize(values, newton):
                break
            step = self.system.solve(self.system.At_times(values, terms.score) - u)
            scale = 1.0
            while True:
                candidate = u + scale * step
                new_objective, new_nu, new_terms = self._penalized(nu_fixed, values, candidate,
                                                                   psi)
                if new_objective >= objective - 1e-12 * abs(objective) or scale < 1e-8:
                    break
                scale *= 0.5
            change = new_objective - objective
            u, nu, objective, terms = candidate, new_nu, new_objective, new_terms
            if abs(change) <= self.tol * (1.0 + abs(objective)) and (
                np.max(np.abs(scale * step), initial=0.0) < 1e-6
            ):
                converged = True
                break
        feasible = self.system.factorize(values, terms.weight)
        logdet = self.system.logdet()
        if feasible and np.all(np.isfinite(u)):
            self._u_warm = u
        deviance = -2.0 * objective + logdet
        if not feasible or not np.isfinite(deviance):
            deviance = np.inf
        state = LaplaceState(float(deviance), theta, beta, lam, u, 1.0, nu, logdet, converged)
        return state, values, X, terms

    def adjoints(
        self, theta: FloatArray, beta: FloatArray, lam: FloatArray, psi: FloatArray
    ) -> tuple[LaplaceState, RowAdjoints | None]:
        """The state and the derivatives of f = -2 sum l + |u|^2 + log|H| with respect to each
        row's values of A, its nu through X beta and its family parameters (None at an
        infeasible point).

        With s = dl/dnu, d the weight in H, d' = dd/dnu, S_i = H^{-1}[c_i, c_i],
        h_i = a_i' S_i a_i, and the adjoint w = H_obs^{-1} A'(d' h) of u^'s dependence:

            df/dnu_i|_u = -2 s_i + h_i d'_i - (A w)_i d_obs,i
            df/da_i     = 2 d_i S_i a_i + s_i w[c_i] + (df/dnu_i|_u) u[c_i]
            df/dpsi_i   = -2 dl_i/dpsi + h_i dd_i/dpsi + (A w)_i ds_i/dpsi
        """
        state, values, X, terms = self._fit(theta, beta, lam, psi)
        if not np.isfinite(state.deviance) or terms is None:
            return state, None
        system = self.system
        Sa = system.clique_inverse_times(values)
        leverage = np.einsum("ik,ik->i", values, Sa)
        v = system.At_times(values, terms.weight_nu * leverage)
        if not self.design.families.weight_is_observed:
            system.factorize(values, terms.observed_weight)  # H_obs: non-canonical links
        w = system.solve(v)
        w_rows = w[system.columns]
        Aw = np.einsum("ik,ik->i", values, w_rows)
        r_nu = -2.0 * terms.score + leverage * terms.weight_nu - Aw * terms.observed_weight
        return state, RowAdjoints(
            values=2.0 * terms.weight[:, None] * Sa + terms.score[:, None] * w_rows
            + r_nu[:, None] * state.u[system.columns],
            X=np.outer(r_nu, beta) if loads_fixed_effects(self.design) else None,
            nu=r_nu,
            psi=-2.0 * terms.loglik_psi + leverage[:, None] * terms.weight_psi
            + Aw[:, None] * terms.score_psi,
        )
