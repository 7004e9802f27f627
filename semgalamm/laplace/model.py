"""A design bound to its Laplace objective and parameter layout: deviance(x) for the optimizer.

All-Gaussian models use the profiled objective (outer parameters theta, lambda); any other
family mix uses the Laplace GLMM objective (theta, beta, lambda and, for Gaussian rows among
other families, the log residual SD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from semgalamm.design.design import Design
from semgalamm.laplace.objective import LaplaceGLMM, LaplaceState, ProfiledGaussian
from semgalamm.optimize import ParameterLayout, finite_difference_hessian

FloatArray = NDArray[np.float64]


def _glm_start(design: Design, max_iter: int = 25) -> tuple[FloatArray, FloatArray]:
    """beta of the GLM without random effects (IRLS), a start for the Laplace fit, and its
    standard errors (the scale of each fixed effect for the optimizer)."""
    X = design.X(design.row_loadings(_lambda_start(design)))
    fam = design.families
    nu = np.zeros(design.n)
    beta = np.zeros(design.p)
    phi = np.ones(design.n)
    for _ in range(max_iter):
        mu = fam.mean(nu, design.trials)
        w = design.weights * fam.variance(nu, design.trials) / phi
        w = np.maximum(w, 1e-10)
        z = nu - design.offset + design.weights * (design.y - mu) / phi / w
        new = np.linalg.lstsq(X * np.sqrt(w)[:, None], z * np.sqrt(w), rcond=None)[0]
        if np.max(np.abs(new - beta)) < 1e-10:
            beta = new
            break
        beta = new
        nu = design.offset + X @ beta
    mu_w = design.weights * fam.variance(design.offset + X @ beta, design.trials)
    info = X.T @ (np.maximum(mu_w, 1e-10)[:, None] * X)
    try:
        se = np.sqrt(np.diag(np.linalg.inv(info)))
    except np.linalg.LinAlgError:
        se = np.ones(design.p)
    return beta, np.where(np.isfinite(se) & (se > 0), se, 1.0)


def _lambda_start(design: Design) -> FloatArray:
    return design.loadings.lambda_start if design.loadings is not None else np.zeros(0)


@dataclass
class LaplaceModel:
    """The objective of one fit: ``deviance(x)`` and ``state(x)`` over the packed vector x."""

    design: Design
    layout: ParameterLayout
    objective: ProfiledGaussian | LaplaceGLMM
    reml: bool
    scale: FloatArray

    @property
    def profiled(self) -> bool:
        return isinstance(self.objective, ProfiledGaussian)

    @classmethod
    def create(cls, design: Design, reml: bool = False) -> LaplaceModel:
        lambda_names = design.loadings.lambda_names if design.loadings is not None else ()
        theta_names = design.theta_names()
        kinds: list[tuple[str, int]] = [("theta", len(theta_names))]
        names = list(theta_names)
        lower = [design.theta_lower()]
        if design.families.all_gaussian:
            objective: ProfiledGaussian | LaplaceGLMM = ProfiledGaussian(design, reml=reml)
        else:
            objective = LaplaceGLMM(design)
            kinds.append(("beta", design.p))
            names += list(design.fixed_names)
            lower.append(np.full(design.p, -np.inf))
        kinds.append(("lambda", len(lambda_names)))
        names += list(lambda_names)
        lower.append(np.full(len(lambda_names), -np.inf))
        if not design.families.all_gaussian and design.families.mask("gaussian").any():
            kinds.append(("log_sigma", 1))
            names.append("log(sigma)")
            lower.append(np.full(1, -np.inf))
        low = np.concatenate(lower)
        layout = ParameterLayout(tuple(kinds), tuple(names), low, np.full(low.size, np.inf))
        scale = np.ones(low.size)
        if "beta" in dict(kinds):
            scale[layout.slices()["beta"]] = _glm_start(design)[1]
        return cls(design, layout, objective, reml, scale)

    def start(self, user: dict[str, Sequence[float]] | None = None) -> FloatArray:
        """Starting values: theta as lme4 (1 on diagonals), beta from a GLM, lambda as given."""
        values = {
            "theta": self.design.theta_start(),
            "beta": _glm_start(self.design)[0] if "beta" in dict(self.layout.kinds) else None,
            "lambda": _lambda_start(self.design),
            "log_sigma": np.zeros(1),
        }
        for kind, given in (user or {}).items():
            size = dict(self.layout.kinds).get(kind)
            if size is None or len(given) != size:
                raise ValueError(
                    f"start['{kind}'] must have {size} values for this model "
                    f"(parameters: {', '.join(self.layout.names)})."
                )
            values[kind] = np.asarray(given, dtype=float)
        return np.concatenate([values[kind] for kind, _ in self.layout.kinds])

    def _phi(self, parts: dict[str, FloatArray]) -> FloatArray:
        phi = np.ones(self.design.n)
        if "log_sigma" in parts:
            phi[self.design.families.mask("gaussian")] = np.exp(2 * parts["log_sigma"][0])
        return phi

    def state(self, x: FloatArray) -> LaplaceState:
        parts = self.layout.unpack(np.asarray(x, dtype=float))
        if isinstance(self.objective, ProfiledGaussian):
            return self.objective.evaluate(parts["theta"], parts["lambda"])
        return self.objective.evaluate(parts["theta"], parts["beta"], parts["lambda"],
                                       self._phi(parts))

    def deviance(self, x: FloatArray) -> float:
        return self.state(x).deviance

    def covariance(self, x: FloatArray, state: LaplaceState) -> tuple[list[str], FloatArray]:
        """Covariance of the estimates of beta and lambda: the inverse of the observed
        information (half the Hessian of the deviance) over all parameters."""
        d = self.design
        parts = self.layout.unpack(x)
        n_beta, n_lambda = d.p, d.n_lambda
        if isinstance(self.objective, ProfiledGaussian):
            objective = self.objective
            n_theta = parts["theta"].size
            full = np.concatenate([parts["theta"], state.lam, state.beta,
                                   [np.log(state.sigma)]])

            def deviance(z: FloatArray) -> float:
                return objective.full_deviance(
                    z[:n_theta], z[n_theta:n_theta + n_lambda],
                    z[n_theta + n_lambda:n_theta + n_lambda + n_beta], float(np.exp(z[-1])))

            order = [*range(n_theta + n_lambda, n_theta + n_lambda + n_beta),
                     *range(n_theta, n_theta + n_lambda)]
        else:
            full = x
            deviance = self.deviance
            slices = self.layout.slices()
            order = [*range(slices["beta"].start, slices["beta"].stop),
                     *range(slices["lambda"].start, slices["lambda"].stop)]
        hessian = finite_difference_hessian(deviance, full)
        self.state(x)  # restore warm starts at the optimum
        names = list(d.fixed_names) + list(d.loadings.lambda_names if d.loadings else ())
        free = [i for i in range(full.size) if not self._at_bound(full, i)]
        info = 0.5 * hessian[np.ix_(free, free)]
        try:
            cov_free = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            cov_free = np.linalg.pinv(info)
        cov = np.full((full.size, full.size), np.nan)
        cov[np.ix_(free, free)] = cov_free
        return names, cov[np.ix_(order, order)]

    def _at_bound(self, full: FloatArray, i: int) -> bool:
        """theta elements on their lower bound (0) are left out of the information."""
        slices = self.layout.slices()
        theta = slices["theta"]
        if theta.start <= i < theta.stop:
            return bool(full[i] <= self.layout.lower[i] + 1e-8)
        return False
