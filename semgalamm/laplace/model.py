"""A design bound to its Laplace objective and parameter layout: deviance(x) for the optimizer.

All-Gaussian models use the profiled objective (outer parameters theta, lambda and the log
residual SD ratios of variance groups 2..G to group 1); any other family mix uses the Laplace
GLMM objective (theta, beta, lambda and, for Gaussian rows among other families, the log
residual SD of each variance group).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from semgalamm.design.design import Design
from semgalamm.errors import DataError, SpecError, StandardErrorWarning
from semgalamm.laplace.gradient import theta_lambda_gradient
from semgalamm.laplace.objective import (
    LaplaceGLMM,
    LaplaceState,
    ProfiledGaussian,
    RowAdjoints,
)
from semgalamm.laplace.quadrature import AdaptiveQuadrature
from semgalamm.laplace.selected_inverse import DENSE_LIMIT, HAS_NUMBA
from semgalamm.optimize import (
    ParameterLayout,
    gradient_difference_hessian,
    single_threaded_blas,
)

FloatArray = NDArray[np.float64]


def _glm_start(design: Design, max_iter: int = 50) -> tuple[FloatArray, FloatArray]:
    """beta of the GLM without random effects, a start for the Laplace fit, and its standard
    errors (the scale of each fixed effect for the optimizer).

    IRLS as R's ``glm.fit``: the first working response is built around R's ``mustart`` (the
    data themselves, ``RowFamilies.initial_predictor``), and a step that does not lower the
    deviance is halved. Separated data (a coefficient running off to infinity) stop after
    ``max_iter`` steps with a large but finite beta and a large standard error. The family
    parameters are at their starts (``FamilyParameters.start``: moments, cumulative
    proportions); a first step outside the support (mu < 0 of Gamma's inverse link, where
    glm.fit asks for starting values) is halved toward the beta that reproduces each
    family's mean initial predictor (inside the support when X has an intercept)."""
    X = design.X(design.row_loadings(_lambda_start(design)))
    fam = design.families
    y, trials, weights, offset = design.y, design.trials, design.weights, design.offset
    psi = np.zeros((design.n, 2))
    if fam.parameters is not None:
        index = fam.parameters.index
        psi = np.where(index >= 0, fam.parameters.start[np.maximum(index, 0)], 0.0)
    if design.p == 0:
        return np.zeros(0), np.ones(0)

    def deviance(nu: FloatArray) -> float:
        value = -2.0 * float(np.sum(fam.loglik(y, nu, weights, trials, psi)))
        return value if np.isfinite(value) else np.inf

    nu = fam.initial_predictor(y, trials)
    family_mean = (np.bincount(fam.codes, weights=nu)
                   / np.maximum(np.bincount(fam.codes), 1))[fam.codes]
    inside = np.linalg.lstsq(X, family_mean - offset, rcond=None)[0]
    beta: FloatArray | None = None
    dev_old = np.inf
    for _ in range(max_iter):
        terms = fam.terms(y, nu, weights, trials, psi)
        info = np.maximum(terms.weight, 1e-10)
        z = nu - offset + terms.score / info
        root = np.sqrt(info)
        if not (np.all(np.isfinite(z)) and np.all(np.isfinite(root))):
            break
        new = np.linalg.lstsq(X * root[:, None], z * root, rcond=None)[0]
        dev = deviance(offset + X @ new)
        halvings = 0
        while not (dev < np.inf and dev <= dev_old + 1e-9 * abs(dev_old)) and halvings < 30:
            # step halving (glm.fit: "step size truncated"); dev_old = inf at the first step
            new = 0.5 * (new + (beta if beta is not None else inside))
            dev = deviance(offset + X @ new)
            halvings += 1
        if not (dev < np.inf and dev <= dev_old + 1e-9 * abs(dev_old)):
            break  # no step lowers the deviance: keep the last beta
        change = np.max(np.abs(new - beta)) if beta is not None else np.inf
        beta, nu = new, offset + X @ new
        if abs(dev - dev_old) <= 1e-10 * (abs(dev) + 0.1) or change < 1e-10:
            break
        dev_old = dev
    if beta is None or not np.all(np.isfinite(beta)):
        beta = np.zeros(design.p)
    nu = offset + X @ beta
    weight = fam.terms(y, nu, weights, trials, psi).weight
    info = X.T @ (np.maximum(weight, 1e-10)[:, None] * X)
    try:
        se = np.sqrt(np.diag(np.linalg.inv(info)))
    except np.linalg.LinAlgError:
        se = np.ones(design.p)
    return beta, np.where(np.isfinite(se) & (se > 0), se, 1.0)


def _log_sd_start(design: Design) -> FloatArray:
    """log residual SD of each variance group of Gaussian rows around the GLM start."""
    beta = _glm_start(design)[0]
    resid = design.y - design.offset - design.X(design.row_loadings(_lambda_start(design))) @ beta
    groups = design.dispersion_group
    sds = [np.sqrt(np.mean(resid[groups == g] ** 2)) for g in range(design.n_dispersion)]
    return np.log(np.maximum(sds, 1e-4))


def _check_bounded(design: Design, objective: ProfiledGaussian) -> None:
    """Gaussian rows that the fixed and random effects together reproduce exactly (3 rows,
    two subjects, an intercept and a slope; a response measured once per group) have no
    maximum likelihood: with the random-effect variances growing and the residual variance
    going to 0 the likelihood grows without bound (lme4 stops somewhere and reports a
    number). The penalized residual SD then falls as 1/theta; for any other data it tends
    to the least-squares residual SD of [X Z]."""
    if design.q == 0:
        return
    lam = _lambda_start(design)
    diagonal = design.theta_start()  # 1 on the diagonals of T, 0 elsewhere
    sigmas = [objective.evaluate(diagonal * big, lam, design.weights).sigma for big in (1e3, 1e5)]
    if not np.all(np.isfinite(sigmas)) or sigmas[1] > 0.05 * sigmas[0]:
        return
    groups = ", ".join(dict.fromkeys(b.group for b in design.blocks))
    raise DataError(
        f"The fixed effects and the random effects of {groups} together reproduce the "
        f"response exactly ({design.n} rows; {design.p} fixed and {design.q} random effects): "
        "the residual variance goes to 0 and the likelihood has no maximum. Use more rows per "
        "group, or fewer terms (a response measured once per group belongs to a model of the "
        "groups)."
    )


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

    @property
    def n_agq(self) -> int:
        """Quadrature nodes per cluster (1: the Laplace approximation), for refits."""
        return self.objective.n_agq if isinstance(self.objective, AdaptiveQuadrature) else 1

    @classmethod
    def create(cls, design: Design, reml: bool = False, n_agq: int = 1) -> LaplaceModel:
        """``n_agq`` > 1: adaptive Gauss-Hermite quadrature (``quadrature.py``)."""
        lambda_names = design.loadings.lambda_names if design.loadings is not None else ()
        theta_names = design.theta_names()
        kinds: list[tuple[str, int]] = [("theta", len(theta_names))]
        names = list(theta_names)
        lower = [design.theta_lower()]
        if design.families.all_gaussian:
            objective: ProfiledGaussian | LaplaceGLMM = ProfiledGaussian(design, reml=reml)
            _check_bounded(design, objective)
        else:
            objective = LaplaceGLMM(design) if n_agq == 1 else AdaptiveQuadrature(design, n_agq)
            kinds.append(("beta", design.p))
            names += list(design.fixed_names)
            lower.append(np.full(design.p, -np.inf))
        kinds.append(("lambda", len(lambda_names)))
        names += list(lambda_names)
        lower.append(np.full(len(lambda_names), -np.inf))
        levels = design.dispersion_levels
        if design.families.all_gaussian and len(levels) > 1:
            kinds.append(("log_sd_ratio", len(levels) - 1))
            names += [f"log(sd ratio {level})" for level in levels[1:]]
            lower.append(np.full(len(levels) - 1, -np.inf))
        elif not design.families.all_gaussian and levels:
            kinds.append(("log_sigma", len(levels)))
            names += ["log(sigma)"] if len(levels) == 1 else [f"log(sigma {lv})" for lv in levels]
            lower.append(np.full(len(levels), -np.inf))
        family = design.families.parameters
        if family is not None and family.names:
            kinds.append(("family", len(family.names)))
            names += list(family.names)
            lower.append(np.full(len(family.names), -np.inf))
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
            "family": (self.design.families.parameters.start
                       if self.design.families.parameters is not None else None),
        }
        kinds = dict(self.layout.kinds)
        if "log_sigma" in kinds or "log_sd_ratio" in kinds:
            log_sd = _log_sd_start(self.design)
            values["log_sigma"] = log_sd
            values["log_sd_ratio"] = log_sd[1:] - log_sd[0]
        for kind, given in (user or {}).items():
            size = dict(self.layout.kinds).get(kind)
            if size is None or len(given) != size:
                raise ValueError(
                    f"start['{kind}'] must have {size} values for this model "
                    f"(parameters: {', '.join(self.layout.names)})."
                )
            values[kind] = np.asarray(given, dtype=float)
            if not np.all(np.isfinite(values[kind])):
                raise SpecError(
                    f"start['{kind}'] must be finite numbers, not {list(given)}."
                )
        loadings = self.design.loadings
        if loadings is not None and loadings.structural and \
                loadings.total_effects(values["lambda"]) is None:
            free = dict.fromkeys(loadings.lambda_names[e.parameter]
                                 for e in loadings.structural if e.parameter is not None)
            raise SpecError(
                "The starting values make I - B singular (regressions among latents: "
                f"{', '.join(free)}): "
                "eta = B eta + zeta has no unique solution there. Give other values in "
                "start['lambda']."
            )
        x0 = np.concatenate([values[kind] for kind, _ in self.layout.kinds])
        if "theta" not in (user or {}):
            # lme4's theta = 1 is infeasible (H not positive definite in floating point) when
            # a random slope's covariate is in large units (1e8 x): shrink until it is not.
            theta = self.layout.slices()["theta"]
            for _ in range(16):
                if np.isfinite(self.deviance(x0)):
                    break
                x0[theta] *= 0.1
        return x0

    def row_log_sd(self, parts: dict[str, FloatArray]) -> FloatArray:
        """log of each Gaussian row's residual SD (for the profiled objective relative to the
        reference group, whose sigma is profiled out); 0 for rows of other families."""
        if "log_sigma" in parts:
            by_group = parts["log_sigma"]
        elif "log_sd_ratio" in parts:
            by_group = np.concatenate([[0.0], parts["log_sd_ratio"]])
        else:
            return np.zeros(self.design.n)
        groups = self.design.dispersion_group
        return np.where(groups >= 0, by_group[np.maximum(groups, 0)], 0.0)

    def _family_parameters(self, x: FloatArray) -> FloatArray:
        """psi (n, 2): each row's family parameters gathered from x (0 where unused)."""
        index = self._psi_index
        return np.where(index >= 0, x[np.maximum(index, 0)], 0.0)

    @cached_property
    def _psi_index(self) -> NDArray[np.intp]:
        """Position in x of each row's family parameters (n, 2), -1 where unused: psi_0 of a
        Gaussian row is the log residual SD of its variance group; the rows of families with
        parameters (``RowFamilies.parameters``) find theirs in the kind "family"."""
        index = np.full((self.design.n, 2), -1, dtype=np.intp)
        slices = self.layout.slices()
        if "log_sigma" in slices:
            groups = self.design.dispersion_group
            index[:, 0] = np.where(groups >= 0, slices["log_sigma"].start + groups, -1)
        if "family" in slices:
            family = self.design.families.parameters.index
            index = np.where(family >= 0, slices["family"].start + family, index)
        return index

    def _profiled_weights(self, parts: dict[str, FloatArray]) -> FloatArray:
        return self.design.weights * np.exp(-2.0 * self.row_log_sd(parts))

    def state(self, x: FloatArray) -> LaplaceState:
        x = np.asarray(x, dtype=float)
        parts = self.layout.unpack(x)
        if isinstance(self.objective, ProfiledGaussian):
            return self.objective.evaluate(parts["theta"], parts["lambda"],
                                           self._profiled_weights(parts))
        return self.objective.evaluate(parts["theta"], parts["beta"], parts["lambda"],
                                       self._family_parameters(x))

    @property
    def exact_gradient(self) -> Callable[[FloatArray], tuple[float, FloatArray]] | None:
        """``value_and_gradient`` when the selected inverse is available for this model (numba
        installed, or few enough random effects for a dense inverse), else None (the
        optimizer then differentiates numerically)."""
        if not HAS_NUMBA and self.design.q > DENSE_LIMIT:
            return None
        return self.value_and_gradient

    def value_and_gradient(self, x: FloatArray) -> tuple[float, FloatArray]:
        """The deviance and its exact gradient over the packed vector x (nan where the point
        is infeasible)."""
        x = np.asarray(x, dtype=float)
        parts = self.layout.unpack(x)
        if isinstance(self.objective, ProfiledGaussian):
            weights = self._profiled_weights(parts)
            state, adjoints = self.objective.adjoints(parts["theta"], parts["lambda"], weights)
        else:
            state, adjoints = self.objective.adjoints(
                parts["theta"], parts["beta"], parts["lambda"], self._family_parameters(x))
        if adjoints is None:
            return state.deviance, np.full(x.size, np.nan)
        return state.deviance, self._outer_gradient(x, adjoints)

    def _outer_gradient(self, x: FloatArray, adjoints: RowAdjoints) -> FloatArray:
        """The gradient over the packed vector x from the per-row derivatives (the chain rule
        of ``gradient.py``, and the maps to beta, the SD ratios and the family parameters)."""
        parts = self.layout.unpack(x)
        slices = self.layout.slices()
        grad = np.zeros(x.size)
        grad[slices["theta"]], grad[slices["lambda"]] = theta_lambda_gradient(
            self.design, parts["theta"], parts["lambda"], adjoints)
        if "beta" in slices:
            X = self.design.X(self.design.row_loadings(parts["lambda"]))
            grad[slices["beta"]] = X.T @ adjoints.nu
        if "log_sd_ratio" in slices:
            weights = self._profiled_weights(parts)
            by_group = np.bincount(self.design.dispersion_group,
                                   weights=-2.0 * weights * adjoints.weights,
                                   minlength=self.design.n_dispersion)
            grad[slices["log_sd_ratio"]] = by_group[1:]
        if adjoints.psi is not None:
            index = self._psi_index
            used = index >= 0
            grad += np.bincount(index[used], weights=adjoints.psi[used], minlength=x.size)
        return grad

    def _full_gaussian_gradient(self, z: FloatArray) -> FloatArray:
        """The gradient of the unprofiled Gaussian deviance over (x, beta, log sigma)."""
        n_outer = len(self.layout.names)
        x = z[:n_outer]
        parts = self.layout.unpack(x)
        beta = z[n_outer:-1]
        _, adjoints, grad_beta, grad_log_sigma = self.objective.full_gradient(
            parts["theta"], parts["lambda"], beta, float(np.exp(z[-1])),
            self._profiled_weights(parts))
        if adjoints is None:
            return np.full(z.size, np.nan)
        return np.concatenate([self._outer_gradient(x, adjoints), grad_beta, [grad_log_sigma]])

    def deviance(self, x: FloatArray) -> float:
        return self.state(x).deviance

    def covariance(self, x: FloatArray, state: LaplaceState) -> tuple[list[str], FloatArray]:
        """Covariance of the estimates of beta, lambda and the family parameters (NB size,
        Gamma dispersion, ordinal thresholds): the inverse of the observed information (half
        the Hessian of the deviance, by differences of the exact gradient) over all
        parameters."""
        d = self.design
        n_beta = d.p
        if isinstance(self.objective, ProfiledGaussian):
            n_outer = x.size  # theta, lambda, log SD ratios: the layout's order
            full = np.concatenate([x, state.beta, [np.log(state.sigma)]])
            gradient = self._full_gaussian_gradient
            lam = self.layout.slices()["lambda"]
            order = [*range(n_outer, n_outer + n_beta), *range(lam.start, lam.stop)]
        else:
            full = x
            slices = self.layout.slices()
            family = slices.get("family", slice(0, 0))
            order = [*range(slices["beta"].start, slices["beta"].stop),
                     *range(slices["lambda"].start, slices["lambda"].stop),
                     *range(family.start, family.stop)]

            def gradient(z: FloatArray) -> FloatArray:
                return self.value_and_gradient(z)[1]

        with single_threaded_blas():
            hessian = gradient_difference_hessian(gradient, full)
        self.state(x)  # restore warm starts at the optimum
        names = [self.layout.names[i] for i in order] if not self.profiled else \
            list(d.fixed_names) + list(d.loadings.lambda_names if d.loadings else ())
        free = [i for i in range(full.size) if not self._at_bound(full, i)]
        info = 0.5 * hessian[np.ix_(free, free)]
        try:
            cov_free = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            cov_free = np.linalg.pinv(info)
        cov = np.full((full.size, full.size), np.nan)
        cov[np.ix_(free, free)] = cov_free
        out = cov[np.ix_(order, order)]
        variances = np.diag(out)
        bad = [name for name, v in zip(names, variances, strict=True) if not v > 0]
        if bad:
            warnings.warn(
                f"The observed information at the optimum is not positive definite, so the "
                f"standard errors of {', '.join(bad)} are NaN: the likelihood is flat or "
                "curves the wrong way along them (separation, aliased or unidentified "
                "parameters, or an optimum not reached).", StandardErrorWarning, stacklevel=5)
            out[np.ix_(variances <= 0, variances <= 0)] = np.nan
        return names, out

    def _at_bound(self, full: FloatArray, i: int) -> bool:
        """theta elements on their lower bound (0) are left out of the information."""
        slices = self.layout.slices()
        theta = slices["theta"]
        if theta.start <= i < theta.stop:
            return bool(full[i] <= self.layout.lower[i] + 1e-8)
        return False
