"""New responses from a fitted GALAMM (lme4's ``simulate``).

For each draw, with the fitted beta, lambda, theta and residual SDs,

    b  ~ N(0, s^2 T T') per level of every random term     (conditional=False, lme4's default)
    b  =  the conditional modes                            (conditional=True)
    nu =  o + X(lambda) beta + f(x) + Z(lambda) b,           y ~ family(g^{-1}(nu))

Smooths keep their fitted functions f (their penalized coefficients are estimates of the
population curve, not draws of a grouping factor). Gaussian rows get N(mu, sigma_i^2 / w_i),
binomial rows successes out of their trials, Poisson rows counts, negative binomial rows
counts of mean mu and variance mu + mu^2 / size, Gamma rows shape w / phi and mean mu, and
ordinal rows (categories 0..K-1) the number of thresholds j with U > F(theta_j - nu), U
uniform on (0, 1): category j with probability F(theta_j - nu) - F(theta_{j-1} - nu).

``SimulationBasis`` holds what a draw needs as plain arrays, so that it travels to worker
processes (semgalamm.bootstrap) without the fit's CHOLMOD factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from semgalamm.errors import SpecError, UnsupportedError
from semgalamm.families import RowFamilies
from semgalamm.inference.predict import block_effects
from semgalamm.inference.residuals import family_parameters

if TYPE_CHECKING:
    from semgalamm.results.fit_result import FitResult

FloatArray = NDArray[np.float64]
SIMULATED_FAMILIES = ("gaussian", "binomial", "poisson", "negative_binomial", "gamma",
                      "ordinal")


@dataclass(frozen=True)
class RandomTermDraw:
    """One random term's rows: values z (n, k), level codes, the covariance factor s T of its
    effects and their conditional modes (levels, k)."""

    z: FloatArray
    index: NDArray[np.intp]
    factor: FloatArray
    modes: FloatArray


@dataclass(frozen=True)
class SimulationBasis:
    """nu without the random terms' contributions, the random terms, and each row's family,
    trials, prior weight, residual SD (nan for rows without one), family parameters psi
    (n, 2: log size of negative binomial rows, log dispersion of Gamma rows) and thresholds
    (n, m: an ordinal row's K - 1 thresholds theta_j, then +inf)."""

    nu_fixed: FloatArray
    terms: tuple[RandomTermDraw, ...]
    families: RowFamilies
    trials: FloatArray
    weights: FloatArray
    sigma: FloatArray
    psi: FloatArray
    thresholds: FloatArray


def row_thresholds(fit: FitResult) -> FloatArray:
    """Each ordinal row's thresholds at the estimates, padded with +inf to the largest set
    ((n, 0) without ordinal rows)."""
    from semgalamm.results.ordinal import family_parameter_values

    parameters = fit.design.families.parameters
    if parameters is None or not parameters.sets:
        return np.zeros((fit.design.n, 0))
    values = family_parameter_values(fit).to_numpy()
    width = max(len(s.categories) for s in parameters.sets) - 1
    out = np.full((fit.design.n, width), np.inf)
    for s, thresholds in enumerate(parameters.sets):
        k = len(thresholds.categories) - 1
        out[parameters.row_set == s, :k] = values[thresholds.first:thresholds.first + k]
    return out


def simulation_basis(fit: FitResult) -> SimulationBasis:
    d, state = fit.design, fit.state
    unsupported = [f.name for f in d.families.families if f.name not in SIMULATED_FAMILIES]
    if unsupported:
        raise UnsupportedError(
            f"simulate() draws {', '.join(SIMULATED_FAMILIES)} responses; this model has "
            f"{', '.join(unsupported)} rows.")
    ell = d.row_loadings(state.lam)
    smooth_blocks = {j for smooth in d.smooths for j in smooth.blocks}
    scale = state.sigma if fit.laplace.profiled else 1.0
    nu_fixed = state.nu.copy()
    terms, theta_at = [], 0
    for j, (block, modes) in enumerate(zip(d.blocks, block_effects(fit))):
        T = block.factor(state.theta[theta_at:theta_at + block.n_theta])
        theta_at += block.n_theta
        if j in smooth_blocks:
            continue
        z = d.block_values(block, ell)
        nu_fixed -= np.sum(z * modes[block.index], axis=1)
        terms.append(RandomTermDraw(z, block.index, scale * T, modes))
    return SimulationBasis(nu_fixed, tuple(terms), d.families, d.trials, d.weights,
                           fit._row_sigma(), family_parameters(fit), row_thresholds(fit))


def draw_responses(basis: SimulationBasis, rng: np.random.Generator,
                   conditional: bool = False) -> FloatArray:
    """One simulated response vector (binomial rows: successes)."""
    nu = basis.nu_fixed.copy()
    for term in basis.terms:
        effects = term.modes if conditional else \
            rng.standard_normal(term.modes.shape) @ term.factor.T
        nu += np.sum(term.z * effects[term.index], axis=1)
    fam = basis.families
    mu = fam.mean(nu, basis.trials)
    y = np.empty_like(nu)
    g = fam.mask("gaussian")
    y[g] = mu[g] + basis.sigma[g] / np.sqrt(basis.weights[g]) * rng.standard_normal(g.sum())
    binomial = fam.mask("binomial")
    y[binomial] = rng.binomial(basis.trials[binomial].astype(np.int64),
                               mu[binomial] / basis.trials[binomial])
    p = fam.mask("poisson")
    y[p] = rng.poisson(mu[p])
    nb = fam.mask("negative_binomial")
    size = np.exp(basis.psi[nb, 0])
    y[nb] = rng.negative_binomial(size, size / (size + mu[nb]))
    gamma = fam.mask("gamma")
    shape = basis.weights[gamma] * np.exp(-basis.psi[gamma, 0])
    y[gamma] = rng.gamma(shape, mu[gamma] / shape)
    for code, family in enumerate(fam.families):
        if family.name == "ordinal":
            rows = fam.codes == code
            theta = basis.thresholds[rows]
            with np.errstate(invalid="ignore"):
                cumulative = np.where(np.isfinite(theta),
                                      family.cdf(theta - nu[rows, None]), 1.0)
            y[rows] = np.sum(rng.random(rows.sum())[:, None] > cumulative, axis=1)
    return y


def simulate(fit: FitResult, n: int = 1, seed=None, conditional: bool = False
             ) -> pd.DataFrame:
    """``n`` simulated responses, one column each (sim_1, ...), indexed like the data.
    Binomial rows hold successes (of the row's trials). ``seed``: an int, a
    numpy SeedSequence or Generator (None: fresh entropy)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecError(f"n is the number of simulated responses, a whole number >= 1; got "
                        f"{n!r}.")
    rng = np.random.default_rng(seed)
    basis = simulation_basis(fit)
    draws = np.column_stack([draw_responses(basis, rng, conditional) for _ in range(n)])
    return pd.DataFrame(draws, index=fit.rows, columns=[f"sim_{i + 1}" for i in range(n)])
